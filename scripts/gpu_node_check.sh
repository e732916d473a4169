#!/usr/bin/env bash
# The node end to end on a bare CUDA machine (Python 3.12 with a CUDA torch already installed, no
# ROS, no package index), in under 8 minutes:
#   - the ros2_benchmark form (icnet-bench-node ros2-benchmark) at 1024x2048 for the demo weights and
#     the official-size network (width 0.5, 1025x2049 input, random weights), fp16 and fp32;
#   - the node against the model alone + the echo floor (icnet-bench-node --parts overhead);
#   - one node with 4 cameras against 4 nodes on one GPU (--parts cameras; official-size network);
#   - OUT_DIR/summary.md: the figures against the issue's targets (reported, not asserted).
# Every node runs with the project's Fast DDS shared-memory profile, in a private ROS domain.
#
#   scripts/prepare_gpu_wheels.sh node        # beforehand, with a package index: .gpu_wheels/
#   scripts/gpu_node_check.sh OUT_DIR         # on the GPU machine: a venv over the machine's torch
#   scripts/gpu_node_check.sh --dry-run OUT_DIR   # here, on the CPU: the same steps, tiny and short,
#                                                 # in the project's .venv (make setup)
# Environment: PYTHON (the machine's Python 3.12; dry run: .venv/bin/python), WHEELS (.gpu_wheels),
# GPU_VENV (/tmp/icnet_gpu_node_venv), BUDGET_S (480: the steps left when it is spent are skipped
# and listed).
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)

dry_run=0
if [ "${1:-}" = "--dry-run" ]; then dry_run=1; shift; fi
if [ $# -ne 1 ]; then echo "usage: $0 [--dry-run] OUT_DIR" >&2; exit 2; fi
mkdir -p "$1"
OUT=$(cd "$1" && pwd)
BUDGET_S=${BUDGET_S:-480}
START=$(date +%s)
log() { echo "gpu_node_check $(date +%H:%M:%S): $*" | tee -a "$OUT/check.log" >&2; }

# ------------------------------------------------------------------ the Python environment
if [ "$dry_run" = 1 ]; then
    PY=${PYTHON:-$REPO/.venv/bin/python}
    [ -x "$PY" ] || { echo "gpu_node_check: no $PY (run make setup, or set PYTHON)" >&2; exit 2; }
    DEVICE=cpu; PRECISIONS=(fp32); SIZE=(48 96); CAMERAS=2
    # The demo weights as on the GPU; a random tiny network in place of the official-size one.
    DEMO=()
    OFFICIAL=(--weights random --width 0.125 --input-size 65x129)
    FORM=(--runs 3 --run-seconds 0.4 --search-seconds 0.4 --max-rate 20 --rates 10,30 --cpu-threads 1)
    OVERHEAD=(--frames 2 --warmup 1 --cpu-threads 1)
    CAMERA_RUN=(--rounds 1 --throughput-seconds 0.4 --throughput-blocks 2)
else
    PY_BASE=${PYTHON:-python3.12}
    command -v "$PY_BASE" >/dev/null || { echo "gpu_node_check: no $PY_BASE (set PYTHON)" >&2; exit 2; }
    if ! "$PY_BASE" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
        echo "gpu_node_check: $PY_BASE has no CUDA torch (torch missing, or no GPU visible)" >&2; exit 3
    fi
    WHEELS=${WHEELS:-$REPO/.gpu_wheels}
    [ -d "$WHEELS" ] || { echo "gpu_node_check: no wheels in $WHEELS (scripts/prepare_gpu_wheels.sh node)" >&2; exit 2; }
    log "venv over $("$PY_BASE" -c 'import sys, torch; print(sys.version.split()[0], "torch", torch.__version__)')"
    # Outside OUT_DIR (what comes back stays small); kept for a rerun on the same machine.
    VENV=${GPU_VENV:-${TMPDIR:-/tmp}/icnet_gpu_node_venv}
    [ -x "$VENV/bin/python" ] || "$PY_BASE" -m venv --system-site-packages "$VENV"
    PY=$VENV/bin/python
    # Offline, from the carried wheels; what the machine has already (numpy, ...) is kept; never torch.
    if ! "$PY" -m pip install -q --no-index --find-links "$WHEELS" -r scripts/gpu-wheels/node.txt; then
        echo "gpu_node_check: $WHEELS lacks a wheel this machine needs (left out by EXCLUDE?)" >&2; exit 2
    fi
    "$PY" -m pip install -q --no-index --no-deps --no-build-isolation -e .
    DEVICE=cuda; PRECISIONS=(fp16 fp32); SIZE=(1024 2048); CAMERAS=4
    DEMO=()
    OFFICIAL=(--weights random --width 0.5 --input-size 1025x2049)
    FORM=(--runs 3 --run-seconds 2 --search-seconds 1.5 --search-start 20)
    OVERHEAD=(--frames 30 --warmup 3)
    CAMERA_RUN=(--rounds 10 --throughput-seconds 4 --throughput-blocks 2)
fi
"$PY" - <<'PY' | tee "$OUT/environment.txt"
import platform, rclpy, torch, cv2, numpy  # noqa: F401 - the check needs every one
gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
print(f"python {platform.python_version()}, torch {torch.__version__}, CUDA {torch.version.cuda}, GPU {gpu}, "
      f"numpy {numpy.__version__}, opencv {cv2.__version__}")
PY

# ------------------------------------------------------------------------------- the steps
skipped=(); failed=()
step() {  # step NAME COMMAND...: run within what is left of the budget, log to OUT/NAME.log
    local name=$1; shift
    local left=$((BUDGET_S - ($(date +%s) - START)))
    if [ "$left" -lt 20 ]; then skipped+=("$name"); log "skipped $name (budget spent)"; return 0; fi
    log "$name"
    if ! timeout "$left" "$@" >"$OUT/$name.log" 2>&1; then
        failed+=("$name"); log "$name failed or ran out of time: see $OUT/$name.log"; tail -5 "$OUT/$name.log" >&2
    fi
}
BENCH=("$PY" -m icnet_bench.node_bench)

step sample_bag "$PY" -m icnet_ros.tools.make_sample_bag "$OUT/sample_bag" --frames 8 --rate 10 \
    --size "${SIZE[0]}" "${SIZE[1]}"
for precision in "${PRECISIONS[@]}"; do
    [ "$precision" = fp32 ] && [ "$dry_run" = 0 ] && continue  # fp16 first: fp32 after the other steps
    step "ros2_benchmark_demo_$precision" "${BENCH[@]}" ros2-benchmark "$OUT/sample_bag" "${DEMO[@]}" --device "$DEVICE" \
        --precision "$precision" "${FORM[@]}" --label "demo_$precision" --out-dir "$OUT"
    step "ros2_benchmark_official_$precision" "${BENCH[@]}" ros2-benchmark "$OUT/sample_bag" "${OFFICIAL[@]}" \
        --device "$DEVICE" --precision "$precision" "${FORM[@]}" --label "official_$precision" --out-dir "$OUT"
done
size="${SIZE[0]}x${SIZE[1]}"
step overhead_demo "${BENCH[@]}" --parts overhead --profiles shm --sizes "$size" "${DEMO[@]}" --device "$DEVICE" \
    --precision "${PRECISIONS[0]}" "${OVERHEAD[@]}" --out-dir "$OUT"
# One run for both (the 4 + 1 camera nodes sit idle while the overhead is measured on the first).
step overhead_cameras_official "${BENCH[@]}" --parts overhead,cameras --profiles shm --sizes "$size" \
    --cameras "$CAMERAS" --camera-size "$size" "${OFFICIAL[@]}" --device "$DEVICE" --precision "${PRECISIONS[0]}" \
    "${OVERHEAD[@]}" "${CAMERA_RUN[@]}" --out-dir "$OUT"
if [ "$dry_run" = 0 ]; then
    step ros2_benchmark_demo_fp32 "${BENCH[@]}" ros2-benchmark "$OUT/sample_bag" --device cuda --precision fp32 \
        "${FORM[@]}" --label demo_fp32 --out-dir "$OUT"
    step ros2_benchmark_official_fp32 "${BENCH[@]}" ros2-benchmark "$OUT/sample_bag" "${OFFICIAL[@]}" --device cuda \
        --precision fp32 "${FORM[@]}" --label official_fp32 --out-dir "$OUT"
fi
rm -rf "$OUT/sample_bag"  # regenerated by the same command: not worth bringing back
"$PY" -m icnet_bench.node_check_summary "$OUT" >/dev/null
log "done in $(( $(date +%s) - START )) s; failed: ${failed[*]:-none}; skipped: ${skipped[*]:-none}; $OUT/summary.md"
[ ${#failed[@]} -eq 0 ]
