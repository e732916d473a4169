"""The demo weights shipped in the package: the default of the node and of icnet-eval."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from eval_support import REPO

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
    log_path = tmp_path / "node.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen([str(Path(sys.executable).parent / "segmentation_node"), "--ros-args",
                                    "--params-file", str(REPO / "config" / "icnet.yaml"), "-p", "cpu_threads:=1",
                                    "-r", f"__ns:=/demo_weights_{os.getpid()}"],
                                   stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        deadline = time.monotonic() + 90.0
        while "active: segmenting" not in log_path.read_text() and process.poll() is None:
            assert time.monotonic() < deadline, f"the node did not become active:\n{log_path.read_text()}"
            time.sleep(0.1)
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(20)
    text = log_path.read_text()
    assert f"using the demo weights {default_weights_path()}" in text, text
    assert "active: segmenting" in text and "Traceback" not in text
