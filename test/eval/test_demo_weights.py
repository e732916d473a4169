"""The demo weights shipped in the package: the default of the node and of icnet-eval."""

from __future__ import annotations

import math
import os
import time

import pytest
import torch
from eval_support import REPO

from icnet_ros.ros.node_process import NodeProcess
from icnet_ros.weights.demo import default_weights_path
from icnet_ros.weights.weight_file import load_model

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


@pytest.mark.ros
def test_the_node_uses_them_without_weights_and_says_so(tmp_path, ros_isolation):
    """segmentation_node with the shipped parameter file (weights: '') loads the demo weights."""
    process = NodeProcess(tmp_path / "node.log", params_file=REPO / "config" / "icnet.yaml",
                          parameters={"cpu_threads": 1}, namespace=f"/demo_weights_{os.getpid()}")
    try:
        deadline = time.monotonic() + 90.0
        while "active: segmenting" not in process.log() and process.alive():
            assert time.monotonic() < deadline, f"the node did not become active:\n{process.log()}"
            time.sleep(0.1)
    finally:
        process.stop(20)
    text = process.log()
    assert f"using the demo weights {default_weights_path()}" in text, text
    assert "active: segmenting" in text and "Traceback" not in text
