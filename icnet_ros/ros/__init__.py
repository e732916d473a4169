"""ROS 2 adapters (rclpy): the segmentation node, its parameters, QoS, messages, diagnostics.

Nothing here holds model logic: the node translates between ROS messages and the
ROS-free runtime (``icnet_ros.runtime``). An rclpy older than Humble's is refused here,
with one line naming what is supported (:mod:`distributions`).
"""

from icnet_ros.ros.distributions import require_supported_rclpy

require_supported_rclpy()
