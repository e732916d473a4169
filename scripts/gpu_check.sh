#!/usr/bin/env bash
# The one command for a CUDA machine: scripts/gpu_check.sh [--dry-run] OUT_DIR
#
# Needs a Python 3.12 with a CUDA build of torch (used as it is, never installed). What that
# Python lacks is unpacked, per distribution, from the wheels carried in .gpu_wheels/
# (scripts/prepare_gpu_wheels.sh, run beforehand where the registries are; no pip needed:
# icnet_bench.carried_wheels). The steps, most important first, each with its own time cap
# within BUDGET_S (default 480 s: a step that would start with less than 15 s left is skipped);
# each writes its files into OUT_DIR as soon as it ends, so a run cut anywhere keeps them:
#   tests   the CUDA tests with ICNET_REQUIRE_CUDA=1 (a skip is a failure): tests.xml
#   masks   fp32/fp16/bf16 masks against CPU fp32 (demo weights, 1024x2048): engine.json "masks"
#   steady  the engine's steady state free of synchronisation and allocation: engine.json "steady"
#   speed   engine ms/frame at 1024x2048, fp16 and fp32, with and without CUDA graphs: engine.json "speed"
#   node    the node end to end in the ros2_benchmark form (30 Hz and the peak rate), released-width
#           ICNet, fp16: ros2_benchmark_*_gpu-check.json/.md (needs the carried ROS wheels)
#   model   icnet-bench model tables at 1025x2049 (sub124 and the baseline, six memory probes):
#           model_*_gpu-check.json/.md
# then summary.json and summary.md (steps, targets met or not): 8 files at most. Step logs go
# to a temporary folder; a failed step's last lines go to stderr.
# ONLY=masks,speed runs those steps alone (a rerun of what a first run showed; node brings its bag).
# --dry-run: no CUDA needed; the same steps on the CPU at reduced sizes, CUDA parts marked
# skipped (test/bench/test_gpu_check.py). Exit status: 0 when no step failed.
set -uo pipefail
DRY_RUN=0
if [ "${1:-}" = "--dry-run" ]; then DRY_RUN=1; shift; fi
if [ $# -ne 1 ]; then
    echo "usage: $0 [--dry-run] OUT_DIR" >&2
    exit 2
fi
START=$(date +%s)
REPO=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$1" && OUT=$(cd "$1" && pwd)
PYTHON=${PYTHON:-python3}
WHEELS=${GPU_WHEELS:-$REPO/.gpu_wheels}
BUDGET_S=${BUDGET_S:-480}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/icnet-gpu-check.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
log() { echo "gpu_check $(date +%H:%M:%S) +$(($(date +%s) - START))s: $*" >&2; }

command -v "$PYTHON" >/dev/null || { log "no $PYTHON (set PYTHON)"; exit 2; }
# One interpreter start: torch there (2 if not), a GPU visible (3 if not, unless a dry run).
found=$("$PYTHON" -c 'import sys
try:
    import torch
except ImportError:
    sys.exit(2)
gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else "no GPU"
print("python", sys.version.split()[0], "torch", torch.__version__, "CUDA", torch.version.cuda, gpu)
sys.exit(0 if gpu != "no GPU" or sys.argv[1] == "1" else 3)' "$DRY_RUN" 2>/dev/null)
case $? in
    0) ;;
    2) log "$PYTHON has no torch (a CUDA build is expected)"; exit 2 ;;
    3) log "no CUDA device visible to $PYTHON (use --dry-run to check the steps without one)"; exit 3 ;;
    *) log "$PYTHON could not check torch"; exit 2 ;;
esac
cd "$REPO"
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
exports=$("$PYTHON" -m icnet_bench.carried_wheels "$WHEELS" "$WORK/site") || { log "unpacking $WHEELS failed"; exit 2; }
eval "$exports"
# The node's console script, as pip would write it (nothing is pip-installed here).
mkdir -p "$WORK/bin"
printf '#!/bin/sh\nexec %q -m icnet_ros.ros.node_main "$@"\n' "$(command -v "$PYTHON")" >"$WORK/bin/segmentation_node"
chmod +x "$WORK/bin/segmentation_node"
export PATH="$WORK/bin:$PATH"
log "$found"

STEPS=()
FAILED=0
step() {  # step NAME CAP_S COMMAND...: run within min(CAP_S, what is left of the budget)
    local name=$1 cap=$2 left start code status
    shift 2
    selected "$name" || { skip "$name" "not in ONLY=$ONLY"; return; }
    left=$((BUDGET_S - ($(date +%s) - START)))
    if [ "$left" -lt 15 ]; then
        STEPS+=(--step "$name=skipped:0"); log "$name skipped: budget spent"; return
    fi
    [ "$cap" -le "$left" ] || cap=$left
    log "$name (at most ${cap}s)"
    start=$(date +%s)
    timeout -k 5 "$cap" "$@" >"$WORK/$name.log" 2>&1
    code=$?
    case $code in
        0) status=ok ;;
        124|137) status=timeout ;;
        *) status=failed ;;
    esac
    STEPS+=(--step "$name=$status:$(($(date +%s) - start))")
    log "$name $status (exit $code, $(($(date +%s) - start))s)"
    if [ $status != ok ]; then FAILED=1; tail -20 "$WORK/$name.log" >&2; fi
}
skip() { STEPS+=(--step "$1=skipped:0"); log "$1 skipped: $2"; }
selected() {  # in ONLY (or no ONLY); the bag goes with the node
    [ -z "${ONLY:-}" ] || [[ ",$ONLY," == *",$1,"* ]] || { [ "$1" = bag ] && [[ ",$ONLY," == *",node,"* ]]; }
}

DRY=()
if [ $DRY_RUN -eq 1 ]; then
    DRY=(--dry-run)
    DEVICE=cpu; PRECISION=fp32; BAG_SIZE=(48 96)
    NODE_NET=(--weights random --width 0.125 --input-size 65x129 --cpu-threads 1)
    FORM=(--rates 30 --runs 1 --run-seconds 0.5 --search-seconds 0.4 --max-rate 20)
    MODEL=(--models sub124,baseline,pidnet-s --devices cpu --sizes 65x129 --precisions fp16,fp32 --repeats 2 --warmup 1
           --threads 1 --backends eager+channels_last+fold@fp32,cuda_graphs+channels_last+fold --no-memory)
else
    export ICNET_REQUIRE_CUDA=1
    DEVICE=cuda; PRECISION=fp16; BAG_SIZE=(1024 2048)
    NODE_NET=(--weights random --width 0.5 --input-size 1025x2049)
    FORM=(--rates 30 --runs 3 --run-seconds 3 --search-seconds 1.5 --search-start 40)
    MODEL=(--models sub124,baseline,pidnet-s --devices cuda --sizes 1025x2049 --precisions fp16,fp32 --repeats 20 --warmup 3
           --backends eager+channels_last+fold@fp32,cuda_graphs+channels_last+fold)
fi
GPU_CHECK=("$PYTHON" -m icnet_bench.gpu_check)

step tests 120 "$PYTHON" -m pytest -q -p no:cacheprovider -m cuda -o addopts="" -rs \
    test/runtime/test_engine_devices.py test/runtime/test_cuda_pipeline.py test/runtime/test_precision.py \
    test/runtime/test_precision_networks.py \
    --junitxml="$OUT/tests.xml"
step masks 75 "${GPU_CHECK[@]}" masks "$OUT" "${DRY[@]}"
step steady 60 "${GPU_CHECK[@]}" steady "$OUT" "${DRY[@]}"
step speed 90 "${GPU_CHECK[@]}" speed "$OUT" "${DRY[@]}"
if "$PYTHON" -c "import rclpy, rosbags" >/dev/null 2>&1; then
    selected node && rm -f "$OUT"/ros2_benchmark_*_gpu-check.json "$OUT"/ros2_benchmark_*_gpu-check.md  # replaced
    step bag 30 "$PYTHON" -m icnet_ros.tools.make_sample_bag "$WORK/bag" --frames 8 --rate 10 --size "${BAG_SIZE[@]}"
    step node 120 "$PYTHON" -m icnet_bench.node_bench ros2-benchmark "$WORK/bag" "${NODE_NET[@]}" --device $DEVICE \
        --precision $PRECISION "${FORM[@]}" --label gpu-check --out-dir "$OUT"
else
    skip node "rclpy or rosbags do not import: carry the wheels of scripts/gpu-wheels/node.txt"
fi
selected model && rm -f "$OUT"/model_*_gpu-check.json "$OUT"/model_*_gpu-check.md
step model 150 "$PYTHON" -m icnet_bench.model_bench model --out-dir "$OUT" --label gpu-check "${MODEL[@]}"

"${GPU_CHECK[@]}" summary "$OUT" "${STEPS[@]}" "${DRY[@]}" || FAILED=1
log "done; results in $OUT (summary.md): $([ $FAILED -eq 0 ] && echo passed || echo FAILED)"
exit $FAILED
