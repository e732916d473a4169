"""icnet_ros: ICNet real-time semantic segmentation for ROS 2.

Layers, each importable without the ones above it: ``model`` (pure PyTorch) ->
``weights`` (the file format training shares) -> ``runtime`` (inference) and ``evaluation``
(scoring, bags) -> ``ros`` (the rclpy node and adapters) -> ``tools`` (user commands).

Python 3.10 or newer: older ones are refused here with one line (the ROS 2 distributions are
checked by ``icnet_ros.ros``, see :mod:`icnet_ros.ros.distributions`).
"""

import sys

__version__ = "0.1.0"

if sys.version_info < (3, 10):  # noqa: UP036 - the refusal older Pythons get
    raise SystemExit(f"icnet_ros needs Python 3.10 or newer (ROS 2 Humble, Jazzy, Kilted); "
                     f"this is Python {sys.version_info[0]}.{sys.version_info[1]}")
