"""Offline training of ICNet for icnet_ros (cascade label guidance, pruning, export).

Imports ``icnet_ros.model`` and ``icnet_ros.runtime`` only: never rclpy, so it runs on a
training machine without ROS. Entry point: ``icnet-train`` / ``python -m icnet_train``.
"""
