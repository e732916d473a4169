"""The CUDA pipeline: no host synchronisation in the steady state, and real overlap.

``torch.cuda.set_sync_debug_mode("error")`` makes every synchronising CUDA call raise
(blocking copies, stream or device synchronisation); waiting on an event, which is what
collecting does (on the engine's waiting thread), is not one. Overlap is read from the
engine's own CUDA event timestamps. Skipped without a GPU (a failure with
ICNET_REQUIRE_CUDA=1).
"""

from __future__ import annotations

from collections import deque

import numpy as np
import pytest
import torch

from icnet_ros.model import icnet
from icnet_ros.runtime.device_decoding import DEVICE_ENCODINGS
from icnet_ros.runtime.engine import SegmentationEngine
from icnet_ros.runtime.image_decoding import LAYOUTS, RawFrame
from icnet_ros.weights.labels import CITYSCAPES
from icnet_ros.weights.preprocessing import Preprocessing
from icnet_ros.weights.weight_file import WeightsMetadata, save_weights

pytestmark = pytest.mark.cuda


def raw_frame(encoding: str, height: int, width: int, rng: np.random.Generator, padding: int = 8) -> RawFrame:
    """A frame of ``encoding`` with random bytes (any bytes are a valid image) and padded rows."""
    layout = LAYOUTS[encoding]
    step = width * layout.channels * layout.depth + padding
    rows = height * layout.rows_num // layout.rows_den
    return RawFrame.validated(encoding, height, width, step, rng.integers(0, 256, rows * step, np.uint8).tobytes())


def every_kind(height: int, width: int, seed: int) -> list:
    """One frame of every encoding the GPU converts, and one RGB array (decoded on the CPU)."""
    rng = np.random.default_rng(seed)
    return ([raw_frame(encoding, height, width, rng) for encoding in sorted(DEVICE_ENCODINGS)]
            + [rng.integers(0, 256, (height, width, 3), np.uint8)])


class Driver:
    """A single-threaded caller: submits, and collects the oldest submission when the pipeline is full."""

    def __init__(self, engine: SegmentationEngine) -> None:
        self.engine, self.sizes, self.results = engine, deque(), []

    def submit(self, frames: list, **options) -> None:
        if len(self.sizes) == self.engine.pipeline_depth:
            self._collect_oldest()
        if len(frames) == 1:
            self.engine.submit(frames[0], **options)
        else:
            assert not any(self.engine.submit_batch(frames, **options))
        self.sizes.append(len(frames))

    def drain(self) -> list:
        while self.sizes:
            self._collect_oldest()
        results, self.results = self.results, []
        return results

    def _collect_oldest(self) -> None:
        for _ in range(self.sizes.popleft()):
            self.results.append(self.engine.collect())


def test_steady_state_never_synchronises_the_host(tiny_weights):
    """Every device encoding alone, batches, and batch compositions that change (a camera
    misses a batch, another comes back, sizes differ): once each shape has been seen, no
    submit or collect makes a synchronising CUDA call."""
    singles = every_kind(96, 160, seed=0)
    small = every_kind(48, 80, seed=1)
    compositions = [[singles[0], singles[1], small[2]], [singles[1], small[2]], [singles[0]],
                    [small[3], singles[0], singles[1]], [singles[0], singles[1], small[2]]]
    with SegmentationEngine(tiny_weights, device="cuda") as engine:
        engine.warmup((96, 160), batch_size=3)
        driver = Driver(engine)

        def everything() -> list:
            for index, frame in enumerate(singles + small):
                driver.submit([frame], want_confidence=index % 2 == 0, want_rgb=index % 3 == 0)
            for batch in compositions:
                driver.submit(batch, want_confidence=True)
            return driver.drain()

        first = everything()  # allocates each shape's buffers
        torch.cuda.synchronize()
        torch.cuda.set_sync_debug_mode("error")
        try:
            again = [everything() for _ in range(2)]
        finally:
            torch.cuda.set_sync_debug_mode("default")
    for results in again:
        assert len(results) == len(first)
        for result, reference in zip(results, first):
            np.testing.assert_array_equal(result.class_mask, reference.class_mask)


@pytest.fixture(scope="module")
def official_width_weights(tmp_path_factory):
    """The released ICNet width at the official 1025x2049 input: enough GPU work per frame
    that the next frame's upload has something to overlap."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("official") / "icnet_random.safetensors"
    metadata = WeightsMetadata({}, CITYSCAPES, Preprocessing(input_size=(1025, 2049)), {"source": "random"})
    save_weights(path, icnet(), metadata)
    return path


def test_the_next_frame_uploads_while_this_one_computes(official_width_weights):
    """From the engine's CUDA events: frame N+1's upload starts before frame N is done."""
    frames = [raw_frame("bgr8", 1024, 2048, np.random.default_rng(seed)) for seed in range(2)]
    with SegmentationEngine(official_width_weights, device="cuda") as engine:
        engine.warmup((1024, 2048))
        driver = Driver(engine)
        for index in range(12):
            driver.submit([frames[index % 2]])
        results = driver.drain()
    gaps = [before.events["done"].elapsed_time(after.events["upload"])  # < 0: upload first
            for before, after in zip(results[1:], results[2:])]  # the first pair has no steady state
    assert sum(gap < 0 for gap in gaps) >= 0.8 * len(gaps), f"upload after the previous frame's end (ms): {gaps}"
    for result in results:  # within one frame, the stages follow each other
        events = result.events
        assert events["upload"].elapsed_time(events["uploaded"]) >= 0
        assert events["uploaded"].elapsed_time(events["done"]) > 0
