#!/usr/bin/env bash
# One command for a CUDA machine: scripts/gpu_check.sh [--dry-run] OUT_DIR
#
# Needs Python 3.12 with a CUDA build of torch (used as it is, never installed) and the
# wheels of scripts/gpu-wheels/*.txt in .gpu_wheels/ (scripts/prepare_gpu_wheels.sh, run
# beforehand where the registries are). Steps, each timed, results in OUT_DIR (7 files):
#   tests    the CUDA tests with ICNET_REQUIRE_CUDA=1 (a skip is a failure): tests.xml, tests.log
#   engine   fp32/fp16/bf16 masks against CPU fp32 at 1024x2048 on the demo weights, the
#            sync-free steady state, pipelined against one-at-a-time frames/s: engine.json
#   model    icnet-bench model on CUDA at 1025x2049: sub4, sub24, sub124 and the baseline,
#            true fp32 (TF32 off) and fp16; eager, channels_last + folded BN, CUDA graphs:
#            model_<gpu>_<date>_gpu-check.json/.md (Tables 3 and 4 beside the paper)
#   summary  summary.json, summary.md (step status, agreement, targets met or not)
# --dry-run: no CUDA needed; the same steps and files at reduced sizes on the CPU, CUDA
# parts marked skipped (what CI runs). Exit status: 0 when every step passed.
set -uo pipefail
DRY_RUN=0
if [ "${1:-}" = "--dry-run" ]; then DRY_RUN=1; shift; fi
if [ $# -ne 1 ]; then
    echo "usage: $0 [--dry-run] OUT_DIR" >&2
    exit 2
fi
REPO=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$1" && OUT=$(cd "$1" && pwd)
PYTHON=${PYTHON:-python3}
WHEELS=${GPU_WHEELS:-$REPO/.gpu_wheels}
log() { echo "gpu_check: $*" >&2; }

"$PYTHON" -c "import torch" 2>/dev/null || { log "$PYTHON has no torch (a CUDA build is expected)"; exit 2; }
if [ $DRY_RUN -eq 0 ] && ! "$PYTHON" -c "import torch, sys; sys.exit(not torch.cuda.is_available())"; then
    log "no CUDA device visible to $PYTHON (use --dry-run to check the steps without one)"
    exit 2
fi
# Everything but torch from the carried wheels, into a temporary folder on PYTHONPATH (the
# machine's torch stays as it is); pip itself from the carried pip wheel if Python has none.
DEPS=
if ! "$PYTHON" -c "import numpy, safetensors, psutil, pytest, pytest_timeout" 2>/dev/null; then
    [ -d "$WHEELS" ] || { log "missing $WHEELS: run scripts/prepare_gpu_wheels.sh where the registries are"; exit 2; }
    DEPS=$(mktemp -d "${TMPDIR:-/tmp}/icnet-gpu-check.XXXXXX")
    PIP=("$PYTHON" -m pip)
    if ! "$PYTHON" -m pip --version >/dev/null 2>&1; then
        wheel=$(ls "$WHEELS"/pip-*.whl 2>/dev/null | head -1)
        [ -n "$wheel" ] || { log "$PYTHON has no pip and $WHEELS no pip wheel"; exit 2; }
        PIP=("$PYTHON" "$wheel/pip")
    fi
    "${PIP[@]}" install --quiet --disable-pip-version-check --no-index --find-links "$WHEELS" --target "$DEPS" \
        -r "$REPO/scripts/gpu-wheels/model.txt" || { log "installing the carried wheels failed"; exit 2; }
fi
export PYTHONPATH="$REPO${DEPS:+:$DEPS}${PYTHONPATH:+:$PYTHONPATH}"
cd "$REPO"

STEPS=()
step() {  # step NAME COMMAND...: run, time, record "NAME=exit:seconds"
    local name=$1 start code
    shift
    log "$name: $*"
    start=$(date +%s)
    "$@"
    code=$?
    STEPS+=(--step "$name=$code:$(($(date +%s) - start))")
    [ $code -eq 0 ] || log "$name failed (exit $code)"
}

DRY=()
if [ $DRY_RUN -eq 1 ]; then
    DRY=(--dry-run)
    MODEL=(--models sub124,baseline --devices cpu --sizes 65x129 --precisions fp32 --repeats 2 --warmup 1 --no-memory --threads 1)
else
    export ICNET_REQUIRE_CUDA=1
    MODEL=(--models sub4,sub24,sub124,baseline,pidnet-s --devices cuda --sizes 1025x2049 --precisions fp32,fp16 --repeats 20 --warmup 3)
fi
step tests "$PYTHON" -m pytest -q -p no:cacheprovider -m cuda -o addopts="" \
    test/runtime/test_engine_devices.py test/runtime/test_cuda_pipeline.py test/runtime/test_precision.py \
    test/runtime/test_precision_networks.py \
    --junitxml="$OUT/tests.xml" -rs >"$OUT/tests.log" 2>&1
[ $DRY_RUN -eq 0 ] || tail -1 "$OUT/tests.log" >&2
step engine "$PYTHON" -m icnet_bench.gpu_check engine "$OUT" "${DRY[@]}"
rm -f "$OUT"/model_*_gpu-check*.json "$OUT"/model_*_gpu-check*.md  # a rerun replaces them
step model "$PYTHON" -m icnet_bench.model_bench model \
    --backends eager,eager+channels_last+fold,cuda_graphs+channels_last+fold \
    --out-dir "$OUT" --label gpu-check "${MODEL[@]}" >/dev/null
"$PYTHON" -m icnet_bench.gpu_check summary "$OUT" "${STEPS[@]}" "${DRY[@]}"
code=$?
log "results in $OUT (summary.md); $([ $code -eq 0 ] && echo passed || echo FAILED)"
exit $code
