"""fp16 and bf16 against fp32 for PIDNet-S with TRAINED weights: a small PIDNet-S trained briefly
on synthetic street scenes (data/pidnet_s_small_synthetic.safetensors, made by
scripts/train_small_pidnet.py), on held-out scenes. Random weights cannot show this: their masks
follow rounding noise."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from icnet_ros.runtime.engine import SegmentationEngine
from icnet_ros.weights.weight_file import load_model

DATA = Path(__file__).parent / "data"
WEIGHTS = DATA / "pidnet_s_small_synthetic.safetensors"
# Held-out street scenes (generate_scene seeds 2000000..2000003 at 128x256, outside the training
# seeds 0.. and the script's held-out 1000000..), stored: the GPU machine has no OpenCV to draw them.
FRAMES = DATA / "street_scenes_128x256.npz"
MIN_AGREEMENT = {"fp16": 0.99, "bf16": 0.98}
DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.cuda)]


@pytest.fixture(scope="module")
def frames() -> list[np.ndarray]:
    return list(np.load(FRAMES)["frames"])


def masks_of(device: str, precision: str, frames) -> list[np.ndarray]:
    with SegmentationEngine(WEIGHTS, device=device, precision=precision, cpu_threads=1,
                            cpu_backend="torch") as engine:
        return [engine.segment(frame).class_mask for frame in frames]


@pytest.fixture(scope="module")
def cpu_fp32_masks(frames) -> list[np.ndarray]:
    return masks_of("cpu", "fp32", frames)


def test_the_weights_are_a_trained_pidnet_s():
    model, metadata = load_model(WEIGHTS)
    assert metadata.architecture["name"] == "pidnet" and metadata.architecture["variant"] == "s"
    assert metadata.metrics["heldout_pixel_accuracy"] > 0.8


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("precision", ["fp16", "bf16"])
def test_reduced_precision_masks_agree_with_cpu_fp32(frames, cpu_fp32_masks, device, precision):
    masks = masks_of(device, precision, frames)
    worst = min(float((a == b).mean()) for a, b in zip(masks, cpu_fp32_masks))
    print(f"PIDNet-S {device} {precision}: worst frame agrees with CPU fp32 on {100 * worst:.2f} % of pixels")
    assert worst >= MIN_AGREEMENT[precision]
