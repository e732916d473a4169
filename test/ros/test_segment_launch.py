"""launch_testing: ``segment.launch.py`` starts the node, which answers a frame in its
namespace and exits cleanly when the launch ends.

Needs ``launch_testing`` and icnet_ros in an ament prefix (a colcon build, sourced):
``test_launch_testing.py`` runs this file so against a temporary workspace; by hand,
``launch_test test/ros/test_segment_launch.py`` or ``colcon test``. ICNET_WEIGHTS names a
weight file; without it the node uses the demo weights.
"""

from __future__ import annotations

import os
import unittest

import pytest

pytest.importorskip("launch_testing", reason="launch_testing is not installed "
                                             "(../shared/ros2-launch, or a ROS 2 installation)")
pytest.importorskip("launch_ros.actions", reason="launch_ros is not installed")

import launch_testing.actions  # noqa: E402
import launch_testing.asserts  # noqa: E402
import numpy as np  # noqa: E402
import rclpy  # noqa: E402
from ament_index_python.packages import PackageNotFoundError, get_package_share_directory  # noqa: E402
from launch.launch_description_sources import PythonLaunchDescriptionSource  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402

import launch  # noqa: E402

try:
    SHARE = get_package_share_directory("icnet_ros")
except (PackageNotFoundError, OSError):    # OSError: no ament prefix at all
    pytest.skip("icnet_ros is not in a sourced ament prefix (test_launch_testing.py runs this file "
                "against a colcon build)", allow_module_level=True)
WEIGHTS = os.environ.get("ICNET_WEIGHTS", "")
ANSWER_TIMEOUT_NS = 120 * 10**9


@pytest.mark.launch_test
def generate_test_description():
    segment = launch.actions.IncludeLaunchDescription(
        PythonLaunchDescriptionSource(os.path.join(SHARE, "launch", "segment.launch.py")),
        launch_arguments={"namespace": "front", "image": "/front/camera", "weights": WEIGHTS,
                          "device": "cpu"}.items())
    return launch.LaunchDescription([segment, launch_testing.actions.ReadyToTest()])


class TestSegmentLaunch(unittest.TestCase):
    def test_node_answers_a_frame_in_its_namespace(self):
        rclpy.init()
        node = rclpy.create_node("segment_launch_test")
        masks = []
        node.create_subscription(Image, "/front/segmentation/class_mask", masks.append, 10)
        publisher = node.create_publisher(Image, "/front/camera", 10)
        try:
            frame = Image(height=48, width=64, encoding="rgb8", step=64 * 3)
            frame.header.frame_id = "launch_test"
            frame.data = np.zeros(48 * 64 * 3, np.uint8).tobytes()
            end = node.get_clock().now().nanoseconds + ANSWER_TIMEOUT_NS
            while not masks and node.get_clock().now().nanoseconds < end:
                publisher.publish(frame)
                rclpy.spin_once(node, timeout_sec=0.5)
            self.assertTrue(masks, "no class mask from the launched node")
            mask = masks[0]
            self.assertEqual((mask.height, mask.width, mask.encoding, mask.header.frame_id),
                             (48, 64, "mono8", "launch_test"))
        finally:
            node.destroy_node()
            rclpy.shutdown()


@launch_testing.post_shutdown_test()
class TestSegmentLaunchShutdown(unittest.TestCase):
    def test_node_exits_cleanly(self, proc_info):
        launch_testing.asserts.assertExitCodes(proc_info)
