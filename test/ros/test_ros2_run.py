"""``ros2 run icnet_ros segmentation_node`` of the colcon-built package, and ``ros2 param
get/set`` on it, as docs/node.md and docs/parameters.md say."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
from launch_harness import daemon_sees, parameters, run_to_end, wait_for_node_name
from ros_harness import Segmenter, rgb_message

pytestmark = pytest.mark.ros

NODE = "/icnet_segmenter"


@pytest.fixture(scope="module")
def ros2_run(workspace_command, ros_client, tiny_weights):
    command = workspace_command(["ros2", "run", "icnet_ros", "segmentation_node", "--ros-args",
                            "-p", f"weights:={tiny_weights}"], "ros2_run")
    segmenter = Segmenter(ros_client, command)
    segmenter.wait_active()
    yield command, segmenter
    segmenter.close()
    command.close()


@pytest.fixture
def ros2_param(ros2_run, workspace_command):
    """Run ``ros2 param ...`` to its end (through the ros2 daemon, once it knows the node):
    its status and output; a skip with the reason where ros2param is not installed."""
    if importlib.util.find_spec("ros2param") is None:
        pytest.skip("`ros2 param` (ros2param) is not installed: ../shared/ros2-launch/install.sh "
                    "(make setup does it where present) or a ROS 2 installation provides it")
    daemon_sees(workspace_command, NODE)

    def run(*args: str) -> tuple[int, str]:
        status, output = run_to_end(workspace_command, ["ros2", "param", *args])
        return status, "\n".join(output)
    yield run
    run_to_end(workspace_command, ["ros2", "daemon", "stop"])


def test_ros2_run_starts_the_node_with_its_defaults(ros2_run, ros_client, tiny_weights):
    command, segmenter = ros2_run
    wait_for_node_name(ros_client, "icnet_segmenter", "/")
    assert set(command.wait_for_nodes({"/"})) == {"/"}
    header = segmenter.header("ros2_run")
    segmenter.send(rgb_message(header, np.full((30, 50, 3), 200, np.uint8)))
    mask = segmenter.answer(header)
    assert (mask.height, mask.width, mask.encoding) == (30, 50, "mono8")
    values = parameters(ros_client, NODE, ["weights", "device", "overlay_alpha"])
    assert values == {"weights": str(tiny_weights), "device": "auto", "overlay_alpha": 0.5}


def test_ros2_param_get_and_set(ros2_run, ros2_param, ros_client):
    status, output = ros2_param("get", NODE, "overlay_alpha")
    assert status == 0 and "0.5" in output, output
    status, output = ros2_param("set", NODE, "overlay_alpha", "0.7")
    assert status == 0 and "Set parameter successful" in output, output
    assert parameters(ros_client, NODE, ["overlay_alpha"]) == {"overlay_alpha": 0.7}
    status, output = ros2_param("set", NODE, "overlay_alpha", "1.5")
    assert "Setting parameter failed" in output, output
    assert parameters(ros_client, NODE, ["overlay_alpha"]) == {"overlay_alpha": 0.7}


def test_ctrl_c_ends_ros2_run_and_the_node(ros2_run):
    command, _ = ros2_run
    status, seconds = command.interrupt(group=True)
    left = command.wait_stopped()
    print(f"ros2 run ended {seconds:.1f} s after SIGINT")
    assert status == 0, command.log()
    assert left == [], [p.cmdline() for p in left]
