#!/usr/bin/env bash
# Downloads, for CPython 3.12 on x86-64 Linux, every requirement listed in scripts/gpu-wheels/*.txt
# (with their dependencies) as wheels into .gpu_wheels/ (gitignored), for the GPU checks on a machine
# without a package index: scripts/gpu_check.sh unpacks those the machine lacks (no pip needed). Torch is never
# downloaded (constraints.txt pins it and no list names it; a torch or CUDA wheel found is an error).
#   scripts/prepare_gpu_wheels.sh            # every list
#   scripts/prepare_gpu_wheels.sh node       # scripts/gpu-wheels/node.txt only
#   EXCLUDE= scripts/prepare_gpu_wheels.sh   # carry everything
# EXCLUDE (default below) leaves out what the GPU machine's CUDA image already has (check with
# `python3 -m pip show NAME` there, or KINDS.md's list); the machine's copy is used. Without it the node's
# wheels come to about 124 MiB (OpenCV 58, NumPy 15), over the 64 MiB a device call carries.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
DEST=${DEST:-.gpu_wheels}
EXCLUDE=${EXCLUDE-numpy opencv-python-headless safetensors pyyaml psutil pytest pytest-timeout typing-extensions}
GPU_PYTHON=${GPU_PYTHON:-3.12}
abi="cp${GPU_PYTHON/./}"
if [ $# -gt 0 ]; then lists=(); for name in "$@"; do lists+=("scripts/gpu-wheels/$name.txt"); done
else lists=(scripts/gpu-wheels/*.txt); fi
mkdir -p "$DEST"
download() {
    "$PYTHON" -m pip download -q --only-binary=:all: --dest "$DEST" --find-links "$DEST" -c constraints.txt \
        -r "$1" --python-version "$GPU_PYTHON" --implementation cp --abi "$abi" --abi abi3 --abi none \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
        --platform manylinux2014_x86_64 --platform linux_x86_64 --platform any 2>&1 | { grep -v "is ignored" || true; }
}
for list in "${lists[@]}"; do
    [ -f "$list" ] || { echo "prepare_gpu_wheels: no list $list" >&2; exit 2; }
    echo "prepare_gpu_wheels: $list -> $DEST (CPython $GPU_PYTHON, manylinux x86_64)"
    # A dependency published as a source archive only (empy) is built here into a wheel, which
    # must be pure Python (py3-none-any) to serve CPython $GPU_PYTHON; then the download resumes.
    for attempt in 1 2 3 4 5 6 7 8; do
        if output=$(download "$list"); then break; fi
        missing=$(sed -n 's/.*No matching distribution found for \([A-Za-z0-9_.-]*\).*/\1/p' <<<"$output" | head -1)
        if [ -z "$missing" ] || [ "$attempt" = 8 ]; then echo "$output" >&2; exit 1; fi
        echo "prepare_gpu_wheels: $missing has no wheel on the index: building a pure-Python one"
        "$PYTHON" -m pip wheel -q --no-deps -c constraints.txt -w "$DEST" "$missing" 2>&1 | { grep -v "is ignored" || true; }
        if ls "$DEST" | grep -i "^${missing//-/_}-" | grep -vq "py3-none-any\|py2.py3-none-any"; then
            echo "prepare_gpu_wheels: $missing is not pure Python: it cannot be built here for CPython $GPU_PYTHON" >&2
            exit 1
        fi
    done
done
for name in ${EXCLUDE:-}; do
    rm -f "$DEST/${name//-/_}"-*.whl "$DEST/$name"-*.whl
    echo "prepare_gpu_wheels: left out $name (EXCLUDE: the GPU machine must have it)"
done
if ls "$DEST" | grep -Eiq '^(torch|nvidia|triton)[-_]'; then
    echo "prepare_gpu_wheels: a torch or CUDA wheel was pulled into $DEST; remove it (torch comes from the GPU machine)" >&2
    exit 1
fi
echo "prepare_gpu_wheels: $(ls "$DEST" | wc -l) wheels, $(du -sh "$DEST" | cut -f1) in $DEST"
