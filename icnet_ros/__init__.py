"""icnet_ros: ICNet real-time semantic segmentation for ROS 2.

Layers, each importable without the ones above it:
``model`` (pure PyTorch) -> ``runtime`` (weights, images, engine, metrics; no ROS)
-> ``ros`` (rclpy node and adapters) -> ``tools`` (command-line entry points).
"""

__version__ = "0.1.0"
