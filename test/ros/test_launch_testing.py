"""test_segment_launch.py run for real by launch_testing's pytest plugin, as ``colcon test``
runs it: in the colcon-built workspace, with its ``install/setup.bash`` sourced."""

from __future__ import annotations

import importlib.util
import re
import sys

import pytest

pytestmark = pytest.mark.ros

LAUNCH_TEST = "test/ros/test_segment_launch.py"


def test_segment_launch_passes_under_launch_testing(workspace_command, colcon_workspace, tiny_weights):
    if importlib.util.find_spec("launch_testing") is None:
        pytest.skip("launch_testing is not installed (../shared/ros2-launch, or a ROS 2 installation)")
    source = colcon_workspace.root / "src" / "icnet_ros"
    command = workspace_command(
        [sys.executable, "-m", "pytest", str(source / LAUNCH_TEST), "--rootdir", str(source),
         "-p", "no:cacheprovider", "-q"], "launch_testing", env={"ICNET_WEIGHTS": str(tiny_weights)})
    status = command.process.wait(300)
    log = command.log()
    assert status == 0, log
    # launch_testing reports the file as one item; it fails when any of its unittest cases does.
    summary = log.strip().splitlines()[-1]
    assert re.fullmatch(r"1 passed in [\d.]+s", summary), log
    assert command.wait_stopped() == []
