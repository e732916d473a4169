"""ROS 2 adapters (rclpy): the segmentation node, its parameters, QoS, messages, diagnostics.

Nothing here holds model logic: the node translates between ROS messages and the
ROS-free runtime (``icnet_ros.runtime``).
"""
