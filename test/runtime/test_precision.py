"""fp16 and bf16 against fp32 with TRAINED weights (the demo weights) at a realistic size.

The tiny random test weights (BN variances 0.5..1.5) cannot show what breaks reduced
precision: the demo weights' BN variances reach 1.46e6, inf in fp16. The engine folds
BN in fp32 before the cast, and ``save_weights`` with a dtype keeps what it cannot hold.
Frames come from ``icnet_bench.synthetic_frames`` (no OpenCV: these run on the GPU machine too).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from icnet_bench.synthetic_frames import smooth_scene
from icnet_ros.runtime.engine import SegmentationEngine
from icnet_ros.weights.demo import default_weights_path
from icnet_ros.weights.weight_file import load_model, read_weights, save_weights

FRAME_SIZE = (512, 1024)  # camera frames
NETWORK_INPUT = (513, 1025)  # the network's input (the demo weights were trained at 257x513)
SEEDS = (0, 1, 2)
REGION = 128  # pixels per colour cell of the smooth scenes: regions the size of road-scene objects
MIN_AGREEMENT = {"fp16": 0.99, "bf16": 0.98}
DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.cuda)]


@pytest.fixture(scope="module")
def frames() -> list[np.ndarray]:
    return [smooth_scene(*FRAME_SIZE, seed, cell=REGION) for seed in SEEDS]


@pytest.fixture(scope="module")
def cpu_fp32_masks(frames) -> list[np.ndarray]:
    return masks_of(default_weights_path(), "cpu", "fp32", frames)


def masks_of(weights, device: str, precision: str, frames) -> list[np.ndarray]:
    # The torch module on the CPU too: the reference never waits for an ONNX export (onnxscript
    # may be installed, as on the GPU machine).
    with SegmentationEngine(weights, device=device, precision=precision, input_size=NETWORK_INPUT,
                            cpu_threads=1, cpu_backend="torch") as engine:
        return [engine.segment(frame).class_mask for frame in frames]


def agreement(masks, reference) -> float:
    """The worst frame's fraction of pixels with the same class."""
    return min(float((a == b).mean()) for a, b in zip(masks, reference))


def test_the_demo_weights_hold_what_fp16_cannot():
    """The premise of these tests: a plain cast would overflow."""
    tensors, _ = read_weights(default_weights_path())
    largest = max(float(t.max()) for name, t in tensors.items() if name.endswith("running_var"))
    assert largest > torch.finfo(torch.float16).max


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("precision", ["fp16", "bf16"])
def test_reduced_precision_masks_agree_with_cpu_fp32(frames, cpu_fp32_masks, device, precision):
    masks = masks_of(default_weights_path(), device, precision, frames)
    assert agreement(masks, cpu_fp32_masks) >= MIN_AGREEMENT[precision]


@pytest.mark.cuda
def test_cuda_fp32_masks_agree_with_cpu_fp32(frames, cpu_fp32_masks):
    assert agreement(masks_of(default_weights_path(), "cuda", "fp32", frames), cpu_fp32_masks) >= 0.999


@pytest.mark.parametrize("device", DEVICES)
def test_a_half_file_keeps_the_masks(tmp_path, frames, cpu_fp32_masks, device):
    """A float16 file (what ``icnet-convert-caffe --half`` writes): BN statistics stay
    float32, the metadata says so, and the fp32 engine's masks barely move."""
    model, metadata = load_model(default_weights_path())
    half = tmp_path / "demo_half.safetensors"
    save_weights(half, model, metadata, dtype=torch.float16)
    tensors, stored = read_weights(half)
    assert stored.storage["dtype"] == "float16"
    kept = set(stored.storage["kept_float32"])
    assert {name for name in tensors if name.endswith(("running_mean", "running_var"))} <= kept
    assert all(tensors[name].dtype == torch.float32 for name in kept)
    assert {t.dtype for name, t in tensors.items() if t.is_floating_point() and name not in kept} == {torch.float16}
    assert all(bool(torch.isfinite(t).all()) for t in tensors.values() if t.is_floating_point())
    assert half.stat().st_size < 0.6 * default_weights_path().stat().st_size
    assert agreement(masks_of(half, device, "fp32", frames), cpu_fp32_masks) >= 0.995
