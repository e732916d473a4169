"""icnet_ros: ICNet real-time semantic segmentation for ROS 2.

Layers, each importable without the ones above it: ``model`` (pure PyTorch) ->
``weights`` (the file format training shares) -> ``runtime`` (inference) and ``evaluation``
(scoring, bags) -> ``ros`` (the rclpy node and adapters) -> ``tools`` (user commands).

Python 3.10 or newer: older ones are refused here with one line (the ROS 2 distributions are
checked by ``icnet_ros.ros``, see :mod:`icnet_ros.ros.distributions`).
"""

import sys
from importlib.util import find_spec

__version__ = "0.1.0"

if sys.version_info < (3, 10):  # noqa: UP036 - the refusal older Pythons get
    raise SystemExit(f"icnet_ros needs Python 3.10 or newer (ROS 2 Humble, Jazzy, Kilted); "
                     f"this is Python {sys.version_info[0]}.{sys.version_info[1]}")

if find_spec("torch") is None:   # no install pulls torch implicitly (setup.py): say how to get it
    raise ImportError("icnet_ros needs PyTorch, which you install with the build you want: e.g. "
                      "pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu "
                      "(docs/setup.md names the CUDA builds)")
