"""Fixtures shared by every layer's tests."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED_REFERENCE = REPO.parent / "shared" / "reference"


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    """../shared/reference, or a clean skip where it is absent."""
    if not (SHARED_REFERENCE / "icnet_cityscapes_bnnomerge.prototxt").is_file():
        pytest.skip("../shared/reference is not present beside the project")
    return SHARED_REFERENCE


def make_test_weights(path: Path, *, width: float = 0.125, input_size=(65, 129), seed: int = 0,
                      branches: str = "sub124") -> Path:
    """A real weight file of a small random ICNet with non-trivial BN statistics."""
    from icnet_ros.model import icnet
    from icnet_ros.weights.labels import CITYSCAPES
    from icnet_ros.weights.preprocessing import Preprocessing
    from icnet_ros.weights.weight_file import WeightsMetadata, save_weights

    torch.manual_seed(seed)
    model = icnet(width=width, branches=branches)
    with torch.no_grad():
        for name, buffer in model.named_buffers():
            if name.endswith("running_mean"):
                buffer.uniform_(-0.1, 0.1)
            elif name.endswith("running_var"):
                buffer.uniform_(0.5, 1.5)
    metadata = WeightsMetadata({}, CITYSCAPES, Preprocessing(input_size=tuple(input_size)),
                               {"source": "random initialisation for tests", "seed": seed})
    save_weights(path, model, metadata)
    return path


@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory) -> Path:
    """Small random ICNet weights (width 0.125, 65x129 network input) in the project format."""
    return make_test_weights(tmp_path_factory.mktemp("weights") / "tiny.safetensors")


@pytest.fixture(scope="session")
def colcon_workspace(tmp_path_factory):
    """This package colcon-built once per session in a temporary workspace."""
    from colcon_workspace import ColconWorkspace

    return ColconWorkspace.build(tmp_path_factory.mktemp("ws"))
