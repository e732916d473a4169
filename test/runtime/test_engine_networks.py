"""Every network of the registry through the engine: the network the weights name is built,
BN-folded, run channels_last, alone and in batches, and on onnxruntime (tiny random weights)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from icnet_bench.random_weights import TINY_ARCHITECTURES, random_weights
from icnet_ros.model.registry import display_name
from icnet_ros.runtime.engine import SegmentationEngine
from icnet_ros.weights.weight_file import load_model

INPUT_SIZE = (64, 128)


def scene(height: int, width: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (height // 8, width // 8, 3), dtype=np.uint8)
    return cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)


def reference_scores(weights, rgb: np.ndarray) -> torch.Tensor:
    """The unfolded network on the metadata's pre-processing, written out: CxHxW probabilities."""
    model, metadata = load_model(weights)
    prep = metadata.preprocessing
    x = torch.from_numpy(rgb).permute(2, 0, 1)[None].float()
    x = F.interpolate(x, size=prep.input_size, mode="bilinear", align_corners=False)
    x = (x - torch.tensor(prep.mean).view(1, 3, 1, 1)) / torch.tensor(prep.std or (1, 1, 1)).view(1, 3, 1, 1)
    if prep.channel_order == "BGR":
        x = x.flip(1)
    with torch.no_grad():
        logits = model(x)
    return F.interpolate(logits.softmax(1), size=rgb.shape[:2], mode="bilinear", align_corners=False)[0]


def agreement(mask: np.ndarray, scores: torch.Tensor) -> float:
    return float((mask == scores.argmax(0).numpy()).mean())


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def network_weights(tmp_path_factory):
    folder = tmp_path_factory.mktemp("networks")
    return {name: random_weights(folder / f"{name}.safetensors", architecture=architecture, input_size=INPUT_SIZE,
                                 bn_statistics=True, source="random initialisation for tests")
            for name, architecture in TINY_ARCHITECTURES.items()}


@pytest.mark.parametrize("name", sorted(TINY_ARCHITECTURES))
def test_the_engine_builds_and_runs_the_network_the_weights_name(network_weights, name):
    weights = network_weights[name]
    frames = [scene(64, 128, seed=1), scene(48, 80, seed=2)]
    with SegmentationEngine(weights, device="cpu", cpu_backend="torch") as engine:
        assert display_name(engine.metadata.architecture) == display_name(TINY_ARCHITECTURES[name])
        assert engine.model.training is False
        assert not any(isinstance(m, torch.nn.BatchNorm2d) and bool(m.running_mean.any())
                       for m in engine.model.modules())  # folded (the rest normalised)
        singles = [engine.segment(frame, want_confidence=True) for frame in frames]
        batch = engine.segment_batch(frames, want_confidence=True)
    for frame, single, batched in zip(frames, singles, batch):
        assert single.class_mask.shape == frame.shape[:2]
        assert agreement(single.class_mask, reference_scores(weights, frame)) >= 0.999
        assert (batched.class_mask == single.class_mask).mean() >= 0.999


@pytest.mark.parametrize("name", ["pidnet-l"])
def test_the_onnxruntime_backend_runs_each_network(network_weights, name, tmp_path, monkeypatch):
    """DAPPM, Bag and PagFM of PIDNet-L (DDRNet has no other operation) exported and run; PIDNet-S
    (PAPPM, the light Bag) runs on onnxruntime in test/ros/test_networks_node.py (cpu_backend auto)."""
    monkeypatch.setenv("ICNET_ROS_CACHE", str(tmp_path))
    weights = network_weights[name]
    frame = scene(64, 128, seed=3)
    with SegmentationEngine(weights, device="cpu", cpu_backend="onnxruntime") as engine:
        assert type(engine._network).__name__ == "OnnxRuntimeNetwork"
        mask = engine.segment(frame).class_mask
    assert list((tmp_path / "onnx").glob("*.onnx"))
    assert agreement(mask, reference_scores(weights, frame)) >= 0.999


def test_an_input_size_the_network_cannot_take_is_refused_at_construction(network_weights):
    with pytest.raises(ValueError, match="DDRNet-23-slim needs a network input height and width divisible by 8, "
                                         "got 65x129"):
        SegmentationEngine(network_weights["ddrnet-23-slim"], device="cpu", input_size=(65, 129))
