#!/usr/bin/env bash
# Creates .venv with every dependency pinned by constraints.txt. Where ROS 2 is installed
# on the system (rclpy imports from the system Python), the venv sees it and the ROS
# wheels are not installed.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
PIP_QUIET=${PIP_QUIET:--q}

if "$PYTHON" -c "import rclpy" >/dev/null 2>&1; then
    echo "setup: using the system ROS 2 (rclpy imports from $PYTHON)"
    "$PYTHON" -m venv --system-site-packages "$VENV"
    ros_requirements=()
else
    echo "setup: installing ROS 2 Kilted wheels from PyPI"
    "$PYTHON" -m venv "$VENV"
    ros_requirements=(-r requirements-ros.txt)
fi
# pip's notes about this machine's local indexes are noise; its exit status is kept.
pip_install() { "$VENV/bin/python" -m pip install $PIP_QUIET "$@" 2>&1 | { grep -v "is ignored" || true; }; }
pip_install --upgrade pip setuptools
pip_install -c constraints.txt -r requirements.txt "${ros_requirements[@]}"
pip_install -c constraints.txt --no-deps --no-build-isolation -e .
"$VENV/bin/python" - <<'PY'
import rclpy, torch, cv2, numpy, safetensors  # noqa: F401 - the install must provide these
assert torch.__version__.split("+")[0] == "2.13.0", f"unexpected torch {torch.__version__}"
print(f"setup: torch {torch.__version__}, numpy {numpy.__version__}, opencv {cv2.__version__}")
PY
