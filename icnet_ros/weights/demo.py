"""The demo weights shipped inside the package: the default when no weights are given.

ICNet (width 0.25, 257x513 network input) trained by ``icnet-train`` on synthetic
street scenes (``scripts/train_demo_weights.sh``); pip and colcon installs carry the
file as package data. Their scores on held-out synthetic frames are in their metadata.
"""

from __future__ import annotations

from pathlib import Path

DEMO_WEIGHTS_FILE = "icnet_demo_synthetic.safetensors"


def default_weights_path() -> Path:
    """Where the demo weights are (``icnet_ros/data/icnet_demo_synthetic.safetensors``)."""
    return Path(__file__).resolve().parent.parent / "data" / DEMO_WEIGHTS_FILE
