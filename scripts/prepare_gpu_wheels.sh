#!/usr/bin/env bash
# Download, on a machine with the package registries, every requirement listed in
# scripts/gpu-wheels/*.txt as wheels for CPython 3.12 on manylinux x86_64 into .gpu_wheels/
# (gitignored), dependencies included, for a GPU machine without registries. Rerunnable:
# wheels already there are kept. torch is never downloaded (the GPU machine has its own).
#   scripts/prepare_gpu_wheels.sh            # then carry .gpu_wheels/ with the repository
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
DEST=${GPU_WHEELS:-.gpu_wheels}
mkdir -p "$DEST"
shopt -s nullglob
lists=(scripts/gpu-wheels/*.txt)
[ ${#lists[@]} -gt 0 ] || { echo "prepare_gpu_wheels: no scripts/gpu-wheels/*.txt" >&2; exit 2; }
if grep -hiE '^[[:space:]]*torch([^a-z0-9_-]|$)' "${lists[@]}"; then
    echo "prepare_gpu_wheels: torch must not be listed (the GPU machine's own torch is used)" >&2
    exit 2
fi
requirements=()
for list in "${lists[@]}"; do requirements+=(-r "$list"); done
"$PYTHON" -m pip download --quiet --disable-pip-version-check --only-binary=:all: \
    --python-version 3.12 --implementation cp --abi cp312 \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    --dest "$DEST" "${requirements[@]}" 2>&1 | { grep -v "is ignored" || true; }
if compgen -G "$DEST/torch-*" >/dev/null; then
    echo "prepare_gpu_wheels: a requirement pulled torch into $DEST; remove it and that requirement" >&2
    exit 2
fi
echo "prepare_gpu_wheels: $(ls "$DEST" | wc -l) wheels, $(du -sh "$DEST" | cut -f1) in $DEST"
