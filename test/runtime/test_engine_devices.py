"""The engine on CUDA against the engine on the CPU, with frames of every encoding.

OpenCV-free (frames from ``icnet_bench.synthetic_frames``; expected RGB from the torch conversion, which
test_image_decoding.py proves bit-exact with OpenCV on the CPU), so that these run on a
GPU machine that carries no OpenCV. CUDA tests are skipped without a GPU (a failure with
ICNET_REQUIRE_CUDA=1).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from icnet_bench.synthetic_frames import encode, smooth_scene
from icnet_ros.runtime.device_decoding import DEVICE_ENCODINGS, raw_rows, to_rgb_tensor
from icnet_ros.runtime.engine import SegmentationEngine
from icnet_ros.runtime.image_decoding import RawFrame
from icnet_ros.runtime.stages import ENGINE_STAGES as STAGES

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.cuda)]


@pytest.fixture(scope="module")
def cpu_engine(tiny_weights):
    with SegmentationEngine(tiny_weights, device="cpu", cpu_threads=1) as engine:
        yield engine


def decoded(frame) -> np.ndarray:
    """The RGB the engine must see: an array as it is, a raw frame through the torch conversion."""
    if isinstance(frame, RawFrame):
        return to_rgb_tensor(torch.from_numpy(raw_rows(frame).copy()), frame).numpy()
    return frame


def every_encoding(height: int, width: int, seed: int) -> list:
    rgb = smooth_scene(height, width, seed, cell=8)
    return [rgb] + [encode(rgb, encoding) for encoding in sorted(DEVICE_ENCODINGS)]


def test_the_test_frames_decode_to_their_scene():
    """The helper's messages hold the scene they were made from: RGB orders exactly, YUV up
    to chroma subsampling, mono as its green channel."""
    rgb = smooth_scene(48, 80, seed=3, cell=8)
    for encoding in sorted(DEVICE_ENCODINGS):
        image = decoded(encode(rgb, encoding))
        if encoding.startswith("mono"):
            np.testing.assert_array_equal(image, np.repeat(rgb[..., 1:2], 3, 2))
        elif encoding.startswith(("rgb", "bgr")):
            np.testing.assert_array_equal(image, rgb)
        else:
            assert np.abs(image.astype(int) - rgb).mean() < 12, encoding


def check_against_cpu(cpu_engine, result, frames) -> None:
    frame = frames[result.tag]
    cpu = cpu_engine.segment(decoded(frame), want_confidence=True, want_rgb=True)
    np.testing.assert_array_equal(result.rgb, cpu.rgb)  # the GPU's colour conversion is bit-exact
    # fp32 on both (the engine turns TF32 off): only near-tied pixels may differ.
    assert (result.class_mask == cpu.class_mask).mean() > 0.995
    assert np.abs(result.confidence - cpu.confidence).mean() < 1e-3
    assert set(result.timings_ms) == set(STAGES) and all(v >= 0 for v in result.timings_ms.values())


@pytest.mark.cuda
def test_cuda_matches_cpu(cpu_engine, tiny_weights):
    frames = every_encoding(96, 160, seed=0)
    with SegmentationEngine(tiny_weights, device="cuda") as gpu:
        gpu.warmup((96, 160))
        for index, frame in enumerate(frames):  # through the two-deep pipeline
            gpu.submit(frame, tag=index, want_confidence=True, want_rgb=True)
            if gpu.pending() == gpu.pipeline_depth:
                check_against_cpu(cpu_engine, gpu.collect(), frames)
        while gpu.pending():
            check_against_cpu(cpu_engine, gpu.collect(), frames)
        assert gpu.memory_stats()["peak"] > 0
        gpu.close()
        assert torch.cuda.memory_allocated(gpu.device) < 1 << 20


@pytest.mark.cuda
def test_cuda_batch_matches_cpu(cpu_engine, tiny_weights):
    big, small = every_encoding(96, 160, seed=1), every_encoding(64, 128, seed=2)
    frames = [big[0], small[1], small[5], big[9], smooth_scene(50, 70, seed=3)]
    with SegmentationEngine(tiny_weights, device="cuda") as gpu:
        gpu.warmup((96, 160), batch_size=len(frames))
        for _ in range(2):  # the second time through reuses the slots' buffers
            gpu.submit_batch(frames, tags=range(len(frames)), want_confidence=True, want_rgb=True)
            for _ in frames:
                result = gpu.collect()
                assert result.batch_size == len(frames)
                check_against_cpu(cpu_engine, result, frames)


@pytest.mark.parametrize("device", DEVICES)
def test_warmup_runs_every_batch_size_the_network_will_see(tiny_weights, device):
    """CPU: alone and the full batch (nothing to autotune); CUDA: every size from 1 to N,
    so cuDNN never autotunes on live frames when a camera misses a batch."""
    with SegmentationEngine(tiny_weights, device=device, cpu_backend="torch") as engine:  # hooks see torch
        batches = []
        engine.model.register_forward_pre_hook(lambda module, args: batches.append(args[0].shape[0]))
        engine.warmup((48, 64), batch_size=3)
        assert set(batches) == ({1, 3} if device == "cpu" else {1, 2, 3}), batches
