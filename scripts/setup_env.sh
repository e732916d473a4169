#!/usr/bin/env bash
# Creates .venv with torch==2.13.0 (constraints.txt) and every requirement: the runtime
# (requirements.txt), tests and tools (requirements-dev.txt), training (requirements-train.txt).
# TORCH_INDEX_URL picks torch's build (e.g. https://download.pytorch.org/whl/cpu); without it pip's
# configured index serves torch==2.13.0 (the CUDA build on Linux x86-64 from pypi.org).
#
# Where ROS 2 is installed on the system (rclpy imports from $PYTHON: a sourced
# /opt/ros/<distro>/setup.bash), the venv is made with --system-site-packages as a ROS 2
# workspace's is (docs/setup.md), and the distribution's packages stay: no ROS wheels, the
# workspace's pip packages (requirements-workspace.txt, constraints-workspace.txt), the system's
# pytest version kept, and a pip package only for a module the system lacks.
#
# Test fixtures: where $ICNET_FIXTURES (default ../shared, beside the project) holds
# ros2-launch/, ros2-msgs/ or cv-bridge/, their install.sh adds what the registries lack
# (launch, ros2cli, vision_msgs, cv_bridge) to the venv of the PyPI wheels; exit 3 means
# "cannot serve here" and is skipped with one line. ICNET_FIXTURES= (empty) installs none.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
PIP_QUIET=${PIP_QUIET:--q}
FIXTURES=${ICNET_FIXTURES-../shared}
FIXTURE_NAMES=(ros2-launch ros2-msgs cv-bridge)

# pip's notes about this machine's local indexes are noise; its exit status is kept.
pip_install() { "$VENV/bin/python" -m pip install $PIP_QUIET "$@" 2>&1 | { grep -v "is ignored" || true; }; }

if "$PYTHON" -c "import rclpy" >/dev/null 2>&1; then
    echo "setup: using the system ROS 2 (rclpy imports from $PYTHON)"
    "$PYTHON" -m venv --system-site-packages "$VENV"
    FIXTURE_NAMES=()   # the system's ROS 2 has launch, ros2cli and the message packages
    keep="$(cd "$VENV" && pwd)/constraints-system.txt"
    {
        echo "-c $PWD/constraints-workspace.txt"
        "$PYTHON" -c "import importlib.metadata as m; print('pytest==' + m.version('pytest'))" 2>/dev/null || true
    } > "$keep"
    requirements=(-c "$keep" -r requirements-workspace.txt)
    for module_package in numpy:numpy cv2:opencv-python-headless yaml:pyyaml tqdm:tqdm \
            matplotlib:matplotlib pytest:pytest pytest_timeout:pytest-timeout psutil:psutil \
            ruff:ruff colcon:colcon-common-extensions rosdep2:rosdep setuptools:setuptools; do
        "$PYTHON" -c "import ${module_package%%:*}" >/dev/null 2>&1 || requirements+=("${module_package#*:}")
    done
    requirements+=(-r requirements-train.txt)
else
    echo "setup: installing ROS 2 Kilted wheels from PyPI"
    "$PYTHON" -m venv "$VENV"
    keep="$PWD/constraints.txt"
    requirements=(-c constraints.txt setuptools -r requirements.txt -r requirements-dev.txt
                  -r requirements-train.txt -r requirements-ros.txt)
fi
# setuptools comes with the requirements: colcon-core needs one below 80 (setup.py develop).
pip_install --upgrade pip
if [ -n "${TORCH_INDEX_URL:-}" ]; then
    pip_install -c constraints.txt torch --index-url "$TORCH_INDEX_URL"
fi
pip_install -c constraints.txt torch "${requirements[@]}"
pip_install -c constraints.txt --no-deps --no-build-isolation -e .

# One fixture: its output on success, one line where it cannot serve (exit 3), the set-up
# fails on any other status.
install_fixture() {
    local script=$1 log status=0
    log=$(mktemp)
    PYTHON="$VENV/bin/python" PIP_CONSTRAINT="$keep" bash "$script" >"$log" 2>&1 || status=$?
    case $status in
        0) grep -v "is ignored" "$log" || true ;;
        3) echo "setup: skipped $script (cannot serve here: $(grep -v 'is ignored' "$log" | tail -n 1))" ;;
        *) cat "$log" >&2; rm -f "$log"; echo "setup: $script failed (exit $status)" >&2; exit "$status" ;;
    esac
    rm -f "$log"
}
for name in "${FIXTURE_NAMES[@]}"; do
    if [ -n "$FIXTURES" ] && [ -f "$FIXTURES/$name/install.sh" ]; then
        install_fixture "$FIXTURES/$name/install.sh"
    fi
done

"$VENV/bin/python" - <<'PY'
import rclpy, torch, cv2, numpy, safetensors  # noqa: F401 - the install must provide these
assert torch.__version__.split("+")[0] == "2.13.0", f"unexpected torch {torch.__version__}"
print(f"setup: torch {torch.__version__}, numpy {numpy.__version__}, opencv {cv2.__version__}")
PY
