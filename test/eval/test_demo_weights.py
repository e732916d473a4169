"""The demo weights shipped in the package: the default of the node and of icnet-eval."""

from __future__ import annotations

import math

import torch

from icnet_ros.runtime.default_weights import default_weights_path
from icnet_ros.runtime.weights import load_model

MAX_BYTES = 10 * 1024 * 1024


def test_demo_weights_load_and_record_their_heldout_score():
    path = default_weights_path()
    assert path.is_file() and path.stat().st_size <= MAX_BYTES
    model, metadata = load_model(path)
    assert model.config["width"] == 0.25 and metadata.labels.name == "cityscapes"
    assert tuple(metadata.preprocessing.input_size) == (257, 513)
    metrics = metadata.metrics
    assert 0.0 < metrics["heldout_miou"] <= 1.0 and metrics["heldout_images"] == 100
    assert not math.isnan(metrics["heldout_pixel_accuracy"])
    assert metadata.provenance["command"] == "scripts/train_demo_weights.sh"
    with torch.inference_mode():
        logits = model(torch.zeros(1, 3, 257, 513))
    assert logits.shape == (1, 19, 257, 513) and torch.isfinite(logits).all()
