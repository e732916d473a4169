"""icnet_ros: ICNet real-time semantic segmentation for ROS 2.

Layers, each importable without the ones above it: ``model`` (pure PyTorch) ->
``weights`` (the file format training shares) -> ``runtime`` (inference) and ``evaluation``
(scoring, bags) -> ``ros`` (the rclpy node and adapters) -> ``tools`` (user commands).
"""

__version__ = "0.1.0"
