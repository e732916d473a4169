#!/usr/bin/env bash
# Creates .venv-jazzy: the project on the ROS 2 Jazzy wheels of the package registries
# (requirements-ros-jazzy.txt), where `make test` runs the tests marked `jazzy`.
#
# torch is not installed again: a .pth file puts a folder on the path that links only
# torch (and its CUDA libraries, where .venv has a CUDA build) from .venv; pip sees that
# torch 2.13.0 and installs the rest (numpy, OpenCV, onnxruntime... from its cache).
# .venv cannot be reused whole (--system-site-packages or a .pth to its site-packages):
# it holds Kilted's rclpy and messages, which would mix with Jazzy's.
#
# Exit 3 with one line, and no .venv-jazzy left, where the registries do not serve the
# Jazzy wheels (offline, a mirror without them): `make test` then says so and goes on.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
BASE=${VENV:-.venv}
JAZZY=${JAZZY_VENV:-.venv-jazzy}
PIP_QUIET=${PIP_QUIET:--q}

"$BASE/bin/python" -c "import torch" 2>/dev/null || { echo "setup-jazzy: $BASE has no torch: run make setup first" >&2; exit 1; }
rm -rf "$JAZZY"
"$PYTHON" -m venv "$JAZZY"
pip_install() { "$JAZZY/bin/python" -m pip install $PIP_QUIET "$@" 2>&1 | { grep -v "is ignored" || true; }; }
pip_install --upgrade pip setuptools

log=$(mktemp)
if ! "$JAZZY/bin/python" -m pip install $PIP_QUIET -c constraints.txt -r requirements-ros-jazzy.txt >"$log" 2>&1; then
    reason=$(grep -E "ERROR|No matching|Could not" "$log" | head -n 1)
    rm -rf "$JAZZY" "$log"
    echo "setup-jazzy: the registries do not serve the ROS 2 Jazzy wheels here (${reason:-pip failed}); Jazzy tests skipped"
    exit 3
fi
rm -f "$log"

# torch from .venv: its distributions (torch, and the nvidia-*/triton ones a CUDA build
# requires) linked into one folder that a .pth file puts on Jazzy's path.
"$BASE/bin/python" - "$JAZZY" <<'PY'
import importlib.metadata as metadata
import re
import sys
import sysconfig
from pathlib import Path

jazzy = Path(sys.argv[1]).resolve()
site = Path(sysconfig.get_paths()["purelib"])
linked = jazzy / "linked-torch"
linked.mkdir()
torch = metadata.distribution("torch")
names = ["torch"] + [re.split(r"[ ;<>=!~\[]", requirement)[0] for requirement in torch.requires or []
                     if re.match(r"(nvidia-|triton|cuda-)", requirement)]
for name in names:
    try:
        distribution = metadata.distribution(name)
    except metadata.PackageNotFoundError:
        continue   # an optional one this build did not install
    tops = {Path(str(file)).parts[0] for file in distribution.files or []} - {"..", "__pycache__"}
    for top in sorted(tops):
        if (site / top).exists() and not (linked / top).exists():
            (linked / top).symlink_to(site / top)
pth = next(Path(jazzy).glob("lib/python3*/site-packages")) / "icnet_linked_torch.pth"
pth.write_text(f"{linked}\n")
PY

# The package (editable, its console scripts in .venv-jazzy/bin) with what the node and the tests import.
pip_install -c constraints.txt --no-build-isolation -e ".[test]"

"$JAZZY/bin/python" - <<'PY'
import importlib.metadata as metadata

import rclpy, torch, cv2, numpy  # noqa: F401 - the install must provide these
assert torch.__version__.split("+")[0] == "2.13.0", f"unexpected torch {torch.__version__}"
print(f"setup-jazzy: rclpy {metadata.version('ros-rclpy')} (Jazzy), Fast DDS {metadata.version('ros-fastrtps')}, "
      f"torch {torch.__version__} (linked from .venv), numpy {numpy.__version__}")
PY
