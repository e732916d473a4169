"""launch_testing: ``segment.launch.py`` starts the node, which answers a frame.

Runs where ROS 2 is installed with launch_testing and the package is built
(``colcon test --packages-select icnet_ros``, or ``launch_test`` on this file); skips
elsewhere with the reason. Needs weights: set ICNET_WEIGHTS to a weight file.
"""

from __future__ import annotations

import os
import unittest

import pytest

pytest.importorskip(
    "launch_testing", reason="launch_testing/launch_ros are not installable here (no wheels); "
                             "they exist on a ROS 2 install from apt")
pytest.importorskip("launch_ros.actions", reason="launch_ros is not installed")

import launch  # noqa: E402
import launch_testing.actions  # noqa: E402
import numpy as np  # noqa: E402
import rclpy  # noqa: E402
from ament_index_python.packages import PackageNotFoundError, get_package_share_directory  # noqa: E402
from launch.launch_description_sources import PythonLaunchDescriptionSource  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402

try:
    SHARE = get_package_share_directory("icnet_ros")
except PackageNotFoundError:
    pytest.skip("icnet_ros is not installed in an ament prefix (colcon build first)", allow_module_level=True)
WEIGHTS = os.environ.get("ICNET_WEIGHTS", "")
if not WEIGHTS:
    pytest.skip("set ICNET_WEIGHTS to a weight file to run the launch file", allow_module_level=True)


@pytest.mark.launch_test
def generate_test_description():
    segment = launch.actions.IncludeLaunchDescription(
        PythonLaunchDescriptionSource(os.path.join(SHARE, "launch", "segment.launch.py")),
        launch_arguments={"namespace": "front", "weights": WEIGHTS, "device": "cpu"}.items())
    return launch.LaunchDescription([segment, launch_testing.actions.ReadyToTest()])


class TestSegmentLaunch(unittest.TestCase):
    def test_node_answers_a_frame(self):
        rclpy.init()
        node = rclpy.create_node("segment_launch_test")
        masks = []
        node.create_subscription(Image, "/front/class_mask", masks.append, 10)
        publisher = node.create_publisher(Image, "/front/image", 10)
        try:
            frame = Image(height=48, width=64, encoding="rgb8", step=64 * 3)
            frame.data = np.zeros(48 * 64 * 3, np.uint8).tobytes()
            end = node.get_clock().now().nanoseconds + 120 * 10**9
            while not masks and node.get_clock().now().nanoseconds < end:
                publisher.publish(frame)
                rclpy.spin_once(node, timeout_sec=0.5)
            self.assertTrue(masks, "no class mask from the launched node")
            self.assertEqual((masks[0].height, masks[0].width, masks[0].encoding), (48, 64, "mono8"))
        finally:
            node.destroy_node()
            rclpy.shutdown()
