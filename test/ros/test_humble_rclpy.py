"""The node on Humble's rclpy: the real node with every rclpy name that Humble lacks hidden.

Humble (rclpy 3.3) has no wheels on the registries, so ``humble_node.py`` runs the real
``segmentation_node`` on this rclpy with the names of ../shared/ros2-distros/
rclpy_not_in_humble.txt hidden from the project's code: start-up, frames, a runtime
parameter (applied in the on-set callback there) and the input watch's publisher count
(counted on the topic there) must all work, and no callback may fail.
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import pytest
from rcl_interfaces.srv import SetParameters
from rclpy.parameter import Parameter
from ros_harness import REPO, image_message, values_of, wait_until

from icnet_ros.ros.diagnostics import FAILURES_SURVIVED

pytestmark = [pytest.mark.ros, pytest.mark.slow]

NAMES = REPO.parent / "shared" / "ros2-distros" / "rclpy_not_in_humble.txt"
HUMBLE_NODE = Path(__file__).with_name("humble_node.py")
PARAMETERS = {"input_height": 65, "input_width": 129, "diagnostics_period_s": 0.25}
FRAMES = {"rgb8": 3, "mono16": 2, "bayer_rggb8": 1, "yuv422": 2}   # bytes per pixel
SIZE = (36, 50)


@pytest.fixture(scope="module")
def humble_node(start_segmenter, tiny_weights):
    if not NAMES.is_file():
        pytest.skip(f"{NAMES} is absent (the list of rclpy names Humble lacks, ../shared/ros2-distros)")
    return start_segmenter(tiny_weights, parameters=PARAMETERS, name="humble",
                           command=[sys.executable, str(HUMBLE_NODE), str(NAMES)])


def set_parameter(node, name: str, value) -> None:
    request = SetParameters.Request(parameters=[Parameter(name, value=value).to_parameter_msg()])
    (result,) = node.client.call(SetParameters, node.service("set_parameters"), request).results
    assert result.successful, result.reason


def send(node, encoding: str, frame_id: str):
    height, width = SIZE
    step = width * FRAMES[encoding]
    header = node.header(frame_id)
    node.send(image_message(header, encoding, height, width, step, bytes(step * height)))
    return header


def test_the_node_serves_with_the_rclpy_names_humble_lacks_hidden(humble_node):
    node = humble_node
    hidden = int(node.process.log().split("hidden ", 1)[1].split()[0])
    assert hidden >= 2, node.process.log()   # at least the two the node used to need

    for encoding in FRAMES:
        mask = node.answer(send(node, encoding, f"humble_{encoding}"))
        assert (mask.height, mask.width) == SIZE

    # A runtime parameter takes effect at once: applied with the new values in the on-set callback.
    set_parameter(node, "max_image_pixels", SIZE[0] * SIZE[1] - 1)
    send(node, "rgb8", "humble_oversize")
    wait_until(lambda: "refused a frame (oversize)" in node.process.log(), 20, "the oversize refusal")
    set_parameter(node, "max_image_pixels", 16777216)
    node.answer(send(node, "rgb8", "humble_after"))

    # The diagnostics timer (the input watch counts publishers on the topic) never failed.
    status = node.status("pipeline", lambda values: FAILURES_SURVIVED in values)
    assert values_of(status)[FAILURES_SURVIVED] == "0", node.process.log()
    node.process.exit_on(signal.SIGINT)
    assert "AttributeError" not in node.process.log()
