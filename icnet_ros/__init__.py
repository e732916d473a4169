"""icnet_ros: ICNet real-time semantic segmentation for ROS 2.

Layers, each importable without the ones above it: ``model`` (pure PyTorch) ->
``weights`` (the file format training shares) -> ``runtime`` (inference) and ``evaluation``
(scoring, bags) -> ``ros`` (the rclpy node and adapters) -> ``tools`` (user commands).
"""

__version__ = "0.1.0"

from importlib.util import find_spec

if find_spec("torch") is None:   # no install pulls torch implicitly (setup.py): say how to get it
    raise ImportError("icnet_ros needs PyTorch, which you install with the build you want: e.g. "
                      "pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu "
                      "(docs/setup.md names the CUDA builds)")
