"""The CUDA pipeline: no host synchronisation and no allocation in the steady state, and real overlap.

``torch.cuda.set_sync_debug_mode("error")`` makes synchronising CUDA calls inside torch's
operations raise (blocking copies, ``.item()``), but it does not see
``torch.cuda.synchronize()``, ``Stream.synchronize()``, ``Event.synchronize()`` nor a
``non_blocking`` copy from or to unpinned host memory (which is silently synchronous):
:class:`icnet_bench.host_waits.HostWaits` counts those. Waiting on each submission's last
event is what collecting does, on the engine's waiting thread, and is allowed there only.
Allocation: the slot buffers' count and the CUDA caching allocator's device allocations
(``torch.cuda.memory_stats()``) stay unchanged. Overlap is read from the engine's CUDA event
timeline. Skipped without a GPU (a failure with ICNET_REQUIRE_CUDA=1).
"""

from __future__ import annotations

from collections import deque

import numpy as np
import pytest
import torch

from icnet_bench.host_waits import HostWaits, device_allocations
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


def test_steady_state_neither_synchronises_nor_allocates(tiny_weights):
    """Every device encoding alone, batches, and batch compositions that change (a camera
    misses a batch, another comes back, sizes differ), with confidence and RGB on and off:
    once each has been seen, no submit or collect makes a synchronising CUDA call, waits
    for the device outside the waiting thread, or allocates host or device memory."""
    singles = every_kind(96, 160, seed=0)
    small = every_kind(48, 80, seed=1)
    compositions = [[singles[0], singles[1], small[2]], [singles[1], small[2]], [singles[0]],
                    [small[3], singles[0], singles[1]], [singles[0], singles[1], small[2]]]
    with SegmentationEngine(tiny_weights, device="cuda") as engine:
        engine.warmup((96, 160), batch_size=3)
        assert engine.cuda_graphs_status.startswith("CUDA graphs for batch sizes 1, 2, 3"), engine.cuda_graphs_status
        driver = Driver(engine)

        def everything() -> list:
            for index, frame in enumerate(singles + small):
                driver.submit([frame], want_confidence=index % 2 == 0, want_rgb=index % 3 == 0)
            for batch in compositions:
                driver.submit(batch, want_confidence=True)
            return driver.drain()

        first = everything()  # allocates each shape's buffers
        everything()
        torch.cuda.synchronize()
        buffers, device = engine.buffer_allocations, device_allocations()
        torch.cuda.set_sync_debug_mode("error")
        try:
            with HostWaits() as waits:
                again = [everything() for _ in range(3)]
        finally:
            torch.cuda.set_sync_debug_mode("default")
        assert engine.buffer_allocations == buffers
        assert device_allocations() == device
    assert not waits.outside_the_waiting_thread(), waits.calls[:10]
    assert sum(what == "Event.synchronize" for what, _ in waits.calls) == 3 * (len(singles + small) + len(compositions))
    assert waits.unpinned_copies == 0
    for results in again:
        assert len(results) == len(first)
        for result, reference in zip(results, first):
            np.testing.assert_array_equal(result.class_mask, reference.class_mask)


def test_graphs_off_gives_the_same_masks(tiny_weights):
    """cuda_graphs=False: the network runs eagerly, with the masks of the graphs."""
    frames = every_kind(96, 160, seed=2)[:4]
    masks = {}
    for graphs in (True, False):
        with SegmentationEngine(tiny_weights, device="cuda", cuda_graphs=graphs) as engine:
            engine.warmup((96, 160), batch_size=2)
            assert engine.cuda_graphs_status.startswith("CUDA graphs" if graphs else "eager (cuda_graphs off)")
            masks[graphs] = [r.class_mask for r in engine.segment_batch(frames[:2])] + [
                engine.segment(frame).class_mask for frame in frames]
    for with_graphs, eager in zip(masks[True], masks[False]):
        np.testing.assert_array_equal(with_graphs, eager)


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
    gaps = [after.timeline_ms["upload"] - before.timeline_ms["done"]  # < 0: upload first
            for before, after in zip(results[1:], results[2:])]  # the first pair has no steady state
    assert sum(gap < 0 for gap in gaps) >= 0.8 * len(gaps), f"upload after the previous frame's end (ms): {gaps}"
    for result in results:  # within one frame, the stages follow each other
        times = result.timeline_ms
        assert times["upload"] <= times["uploaded"] < times["done"]
