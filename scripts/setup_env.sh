#!/usr/bin/env bash
# Creates .venv with every dependency pinned by constraints.txt. Where ROS 2 is installed
# on the system (rclpy imports from the system Python), the venv sees it and the ROS
# wheels are not installed.
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

if "$PYTHON" -c "import rclpy" >/dev/null 2>&1; then
    echo "setup: using the system ROS 2 (rclpy imports from $PYTHON)"
    "$PYTHON" -m venv --system-site-packages "$VENV"
    ros_requirements=()
    FIXTURE_NAMES=()   # the system's ROS 2 has launch, ros2cli and the message packages
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

# One fixture: its output on success, one line where it cannot serve (exit 3), the set-up
# fails on any other status.
install_fixture() {
    local script=$1 log status=0
    log=$(mktemp)
    PYTHON="$VENV/bin/python" PIP_CONSTRAINT="$PWD/constraints.txt" bash "$script" >"$log" 2>&1 || status=$?
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
