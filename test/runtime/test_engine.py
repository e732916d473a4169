"""The segmentation engine against the official protocol computed independently here."""

from __future__ import annotations

import gc
import subprocess
import sys
import textwrap
import threading
import weakref

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from icnet_bench.synthetic_frames import encode, smooth_scene
from icnet_ros.model import icnet
from icnet_ros.runtime.device_decoding import DEVICE_ENCODINGS, raw_rows
from icnet_ros.runtime.engine import EngineError, SegmentationEngine
from icnet_ros.runtime.image_decoding import CompressedFrame, ImageRejected, RawFrame
from icnet_ros.runtime.postprocessing import ScoreUpsampler, upsample_argmax, upsample_argmax_dense
from icnet_ros.runtime.slot_buffers import SlotBuffers
from icnet_ros.runtime.stages import ENGINE_STAGES as STAGES
from icnet_ros.weights.labels import CITYSCAPES, LabelSet
from icnet_ros.weights.preprocessing import Preprocessing
from icnet_ros.weights.weight_file import WeightsMetadata, load_model, save_weights


def scene(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A smooth random RGB image: large regions, so the network's classes form regions too."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (max(2, height // 8), max(2, width // 8), 3), dtype=np.uint8)
    return cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)


def protocol_scores(weights, rgb: np.ndarray, input_size=None) -> torch.Tensor:
    """The official protocol, written out: resize, mean (and std), channel order, forward,
    softmax, bilinear resize of the scores to the image size. Returns CxHxW probabilities."""
    model, metadata = load_model(weights)
    prep = metadata.preprocessing
    x = torch.from_numpy(rgb).permute(2, 0, 1)[None].float()
    x = F.interpolate(x, size=input_size or prep.input_size, mode="bilinear", align_corners=False)
    x = x - torch.tensor(prep.mean).view(1, 3, 1, 1)
    if prep.std is not None:
        x = x / torch.tensor(prep.std).view(1, 3, 1, 1)
    if prep.channel_order == "BGR":
        x = x.flip(1)
    with torch.no_grad():
        logits = model(x)
    return F.interpolate(logits.softmax(1), size=rgb.shape[:2], mode="bilinear", align_corners=False)[0]


def assert_same_mask(mask: np.ndarray, scores: torch.Tensor, tie: float = 1e-2) -> None:
    """``mask`` is the argmax of ``scores`` wherever the best two classes are not tied.

    The random test network's logits reach 6e4, where channels-last and contiguous
    convolutions differ by 0.05: probabilities of near-tied classes move by up to ~1e-2.
    """
    expected = scores.argmax(0).numpy()
    differ = mask != expected
    chosen = scores.gather(0, torch.from_numpy(mask.astype(np.int64))[None])[0].numpy()
    best = scores.max(0).values.numpy()
    assert differ.mean() <= 1e-3, f"{differ.sum()} of {mask.size} pixels differ"
    assert np.all(best[differ] - chosen[differ] <= tie), "a differing pixel is not a tie"


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Small images gain nothing from threads, and a busy shared CPU makes two crawl."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def engine(tiny_weights):
    with SegmentationEngine(tiny_weights, device="cpu") as engine:
        yield engine


@pytest.mark.parametrize("size", [(65, 129), (48, 96), (130, 259), (37, 301), (1, 7)])
def test_mask_follows_the_official_protocol(engine, tiny_weights, size):
    rgb = scene(*size, seed=size[1])
    result = engine.segment(rgb, want_confidence=True)
    assert result.class_mask.shape == size and result.class_mask.dtype == np.uint8
    assert result.class_mask.max() < engine.labels.num_classes
    scores = protocol_scores(tiny_weights, rgb)
    assert_same_mask(result.class_mask, scores)
    assert result.confidence.shape == size and result.confidence.dtype == np.float32
    assert np.all(result.confidence > 0) and np.all(result.confidence <= 1)
    np.testing.assert_allclose(result.confidence, scores.max(0).values.numpy(), atol=5e-3)
    if size[0] > 8:
        assert len(np.unique(result.class_mask)) > 1  # the comparison is not a trivial one


def test_every_frame_kind_gives_the_same_mask(engine):
    rgb = scene(50, 80, seed=3)
    reference = engine.segment(rgb, want_rgb=True)
    np.testing.assert_array_equal(reference.rgb, rgb)
    bgr = np.zeros((50, 80 * 3 + 8), np.uint8)  # padded rows
    bgr[:, : 80 * 3] = rgb[:, :, ::-1].reshape(50, -1)
    raw = engine.segment(RawFrame.validated("bgr8", 50, 80, 80 * 3 + 8, bgr.tobytes()), want_rgb=True)
    png = cv2.imencode(".png", rgb[:, :, ::-1])[1].tobytes()
    compressed = engine.segment(CompressedFrame("png", png))
    for result in (raw, compressed):
        np.testing.assert_array_equal(result.class_mask, reference.class_mask)
    np.testing.assert_array_equal(raw.rgb, rgb)
    assert reference.confidence is None and compressed.rgb is None
    with pytest.raises(ImageRejected) as refusal:
        engine.submit(np.zeros((4, 4), np.uint8))
    assert refusal.value.reason == "unknown_encoding" and engine.pending() == 0


def test_pipeline_is_fifo_two_deep_and_blocks_when_full(engine):
    frames = [scene(40, 60, seed=s) for s in range(3)]
    alone = [engine.segment(f).class_mask for f in frames]
    engine.submit(frames[0], tag="first")
    engine.submit(frames[1], tag="second")
    assert engine.pending() == 2 == engine.pipeline_depth
    third = threading.Thread(target=engine.submit, args=(frames[2],), kwargs={"tag": "third"})
    third.start()
    third.join(timeout=0.5)
    assert third.is_alive()  # blocked: two frames in flight
    results = [engine.collect()]
    third.join(timeout=30)
    assert not third.is_alive()
    results += [engine.collect(), engine.collect()]
    assert [r.tag for r in results] == ["first", "second", "third"]
    for result, mask in zip(results, alone):
        np.testing.assert_array_equal(result.class_mask, mask)
    assert engine.collect(timeout=0) is None and engine.pending() == 0
    with pytest.raises(RuntimeError, match="empty pipeline"):
        engine.submit(frames[0])
        engine.segment(frames[1])
    engine.collect()


def test_warmup_timings_and_memory(engine):
    engine.warmup((20, 30))
    assert engine.pending() == 0
    result = engine.segment(scene(64, 96))
    assert set(result.timings_ms) == set(STAGES)
    assert all(value >= 0 for value in result.timings_ms.values())
    assert result.timings_ms["inference"] > 0
    stats = engine.memory_stats()
    assert set(stats) == {"allocated", "peak"} and stats["allocated"] > 0 and stats["peak"] > 0


def test_out_of_memory_skips_the_frame_and_the_engine_goes_on(tiny_weights):
    """A real allocation failure (address space limited in a child process), no mocks."""
    script = textwrap.dedent("""
        import resource, sys
        import numpy as np, psutil
        from icnet_ros.runtime.engine import EngineError, SegmentationEngine
        engine = SegmentationEngine(sys.argv[1], device="cpu", cpu_threads=1)
        small = np.zeros((64, 128, 3), np.uint8)
        engine.segment(small)
        big = np.zeros((6000, 8000, 3), np.uint8)  # its float copy alone needs 576 MB
        limit = psutil.Process().memory_info().vms + (256 << 20)
        resource.setrlimit(resource.RLIMIT_AS, (limit, resource.RLIM_INFINITY))
        try:
            engine.submit(big, tag="big")
            print("no error")
        except EngineError as error:
            print("EngineError:", error)
        print("pending", engine.pending())
        print("after", engine.segment(small).class_mask.shape)
    """)
    run = subprocess.run([sys.executable, "-c", script, str(tiny_weights)], capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0].startswith("EngineError: out of memory on cpu"), run.stdout
    assert lines[1:] == ["pending 0", "after (64, 128)"]


def test_close_releases_the_model(tiny_weights):
    engine = SegmentationEngine(tiny_weights, device="cpu")
    engine.segment(scene(20, 30))
    engine.submit(scene(20, 30))
    model = weakref.ref(engine.model)
    engine.close()
    gc.collect()
    assert model() is None and engine.pending() == 0
    with pytest.raises(RuntimeError, match="closed"):
        engine.submit(scene(20, 30))
    engine.close()  # idempotent


def test_bf16_on_cpu_agrees_mostly_with_fp32(engine, tiny_weights):
    rgb = scene(65, 129, seed=5)
    with SegmentationEngine(tiny_weights, device="cpu", precision="bf16") as bf16:
        assert bf16.precision == "bf16" and next(bf16.model.parameters()).dtype == torch.bfloat16
        agreement = (bf16.segment(rgb).class_mask == engine.segment(rgb).class_mask).mean()
    assert agreement > 0.95


def test_refusals(tiny_weights):
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA"):
            SegmentationEngine(tiny_weights, device="cuda")
        with pytest.raises(ValueError, match="CUDA"):
            SegmentationEngine(tiny_weights, device="cuda:1")
    for device in ("gpu", "cuda:x", "tpu"):
        with pytest.raises(ValueError, match="auto, cpu, cuda or cuda:N"):
            SegmentationEngine(tiny_weights, device=device)
    with pytest.raises(ValueError, match="precision"):
        SegmentationEngine(tiny_weights, device="cpu", precision="fp8")
    with pytest.raises(ValueError, match="classes"):
        two = LabelSet("two", ("a", "b"), ((0, 0, 0), (1, 1, 1)))
        SegmentationEngine(tiny_weights, device="cpu", labels=two)
    with pytest.raises(ValueError, match="pipeline_depth"):
        SegmentationEngine(tiny_weights, device="cpu", pipeline_depth=0)


def test_input_size_and_preprocessing_come_from_the_weights(tmp_path):
    """RGB order with std, 33x49 input: the engine applies what the metadata says."""
    torch.manual_seed(1)
    model = icnet(width=0.125, branches="sub24")
    prep = Preprocessing(input_size=(33, 49), channel_order="RGB", mean=(120.0, 110.0, 100.0),
                         std=(60.0, 55.0, 50.0))
    path = tmp_path / "rgb_std.safetensors"
    save_weights(path, model, WeightsMetadata({}, CITYSCAPES, prep))
    rgb = scene(70, 90, seed=9)
    with SegmentationEngine(path, device="cpu") as engine:
        assert engine.input_size == (33, 49) and engine.metadata.preprocessing == prep
        assert_same_mask(engine.segment(rgb).class_mask, protocol_scores(path, rgb))
    with SegmentationEngine(path, device="cpu", input_size=(41, 61)) as engine:
        assert engine.input_size == (41, 61)
        assert_same_mask(engine.segment(rgb).class_mask, protocol_scores(path, rgb, (41, 61)))


@pytest.mark.parametrize("source,target", [((17, 33), (130, 257)), ((33, 65), (32, 64)),
                                           ((9, 13), (40, 17)), ((20, 20), (20, 20)), ((1, 5), (3, 11))])
@pytest.mark.parametrize("smooth", [True, False])
def test_cell_upsampling_equals_the_dense_protocol(source, target, smooth):
    generator = torch.Generator().manual_seed(source[0] * 100 + target[1])
    logits = torch.randn(19, *source, generator=generator) * 4
    if smooth:
        logits = F.avg_pool2d(logits[None], 3, stride=1, padding=1, count_include_pad=False)[0]
    mask, confidence = upsample_argmax(logits, target, want_confidence=True)
    dense_mask, dense_confidence = upsample_argmax_dense(logits, target, want_confidence=True)
    scores = F.interpolate(logits.softmax(0)[None], size=target, mode="bilinear", align_corners=False)[0]
    # Float32 rounding of the interpolation weights alone moves scores by ~2e-6.
    assert mask.shape == target and mask.dtype == np.uint8 and confidence.dtype == np.float32
    assert_same_mask(mask, scores, tie=1e-5)
    assert_same_mask(dense_mask.numpy(), scores, tie=1e-5)
    np.testing.assert_allclose(confidence, dense_confidence.numpy(), rtol=0, atol=1e-5)
    without_confidence, none = upsample_argmax(logits, target)  # corner-wise softmax path
    assert none is None
    assert_same_mask(without_confidence, scores, tie=1e-5)


def test_a_batch_is_one_forward_pass_with_masks_at_each_frame_size(engine, tiny_weights):
    frames = [scene(40, 60, seed=1), scene(97, 131, seed=2), scene(40, 60, seed=3)]
    alone = [engine.segment(frame, want_confidence=True) for frame in frames]
    results = engine.segment_batch(frames, want_confidence=True)
    assert [r.tag for r in results] == [0, 1, 2] and engine.pending() == 0
    for result, single, frame in zip(results, alone, frames):
        assert result.batch_size == 3 and single.batch_size == 1
        assert result.class_mask.shape == frame.shape[:2]
        assert_same_mask(result.class_mask, protocol_scores(tiny_weights, frame))
        assert np.abs(result.confidence - single.confidence).max() < 1e-2
        assert set(result.timings_ms) == set(STAGES)
    assert len({r.timings_ms["inference"] for r in results}) == 1  # one forward pass

    # A frame that cannot be decoded is left out, with the reason; the others go on.
    refusals = engine.submit_batch([frames[0], np.zeros((8, 8), np.uint8), frames[1]], tags="abc")
    assert refusals[0] is None and refusals[2] is None and refusals[1].reason == "unknown_encoding"
    assert engine.pending() == 2
    first, second = engine.collect(), engine.collect()
    assert (first.tag, second.tag, first.batch_size) == ("a", "c", 2) and engine.pending() == 0
    np.testing.assert_array_equal(second.class_mask, results[1].class_mask)


def test_score_resize_at_submit_or_on_its_thread_gives_the_same_masks(engine, tiny_weights):
    frames = [scene(48, 96, seed=s) for s in range(3)]
    with SegmentationEngine(tiny_weights, device="cpu", postprocess_thread=False) as inline:
        for frame in frames:
            inline.submit(frame, want_confidence=True)
            assert inline.pending() == 1 and inline.collect(timeout=0) is not None  # done at submit
        for frame in frames:
            ours, theirs = engine.segment(frame, want_confidence=True), inline.segment(frame, want_confidence=True)
            np.testing.assert_array_equal(ours.class_mask, theirs.class_mask)
            np.testing.assert_array_equal(ours.confidence, theirs.confidence)


class _FailingUpsampler(ScoreUpsampler):
    """The real score resize, except that it raises ``error`` for frames of one width."""

    def __init__(self, width: int, error: Exception) -> None:
        super().__init__()
        self.width, self.error = width, error

    def __call__(self, logits, size, want_confidence=False):
        if size[1] == self.width:
            raise self.error
        return super().__call__(logits, size, want_confidence)


@pytest.mark.parametrize("error", [ValueError("bad cell table"), RuntimeError("kernel failed")])
def test_a_failed_post_processing_leaves_the_pipeline(tiny_weights, error):
    """Whatever the post-processing thread raises, collect drops that job (EngineError) and
    the next frames go through: a failed job never sticks at the head of the pipeline."""
    with SegmentationEngine(tiny_weights, device="cpu", pipeline_depth=1) as engine:
        engine._upsample = _FailingUpsampler(77, error)
        engine.submit(scene(40, 77), tag="bad")
        with pytest.raises(EngineError, match="inference failed on cpu"):
            engine.collect()
        assert engine.pending() == 0
        engine.submit(scene(40, 60), tag="good")  # would block forever behind a stuck job
        assert engine.collect().tag == "good"
        assert engine.collect() is None


def test_the_engine_runs_a_bn_folded_network(tiny_weights):
    with SegmentationEngine(tiny_weights, device="cpu", precision="bf16") as engine:
        assert not [m for m in engine.model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
        assert {p.dtype for p in engine.model.parameters()} == {torch.bfloat16}
        model, _ = load_model(tiny_weights)
        assert any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())


def test_slot_buffers_follow_shapes_not_positions():
    """A camera missing from a batch shifts positions; buffers keyed by shape are still found,
    so changing batch compositions allocate nothing once each has been seen, however long
    a shape goes unused; only more distinct shapes than ``max_keys`` release the oldest."""
    slot = SlotBuffers(torch.device("cpu"), max_keys=3)
    compositions = [[(4, 6), (8, 10), (4, 6)], [(8, 10), (4, 6)], [(4, 6)], [(4, 6), (8, 10), (4, 6)]]

    def submit(shapes):
        slot.begin()
        buffers = [slot.on_device("in", shape) for shape in shapes]
        assert len({b.data_ptr() for b in buffers}) == len(buffers)  # distinct within a submission
        return buffers

    for shapes in compositions:
        submit(shapes)
    allocated = slot.allocations
    assert allocated == 3  # two of 4x6, one of 8x10
    for _ in range(3):
        for shapes in compositions:
            assert [tuple(b.shape) for b in submit(shapes)] == shapes
    assert slot.allocations == allocated
    for _ in range(20):  # a shape unused for many submissions is kept
        submit([(4, 6)])
    submit([(8, 10)])
    assert slot.allocations == allocated
    for shape in ((1, 1), (2, 2), (3, 3)):  # a fourth, fifth and sixth shape: the oldest go
        submit([shape])
    assert slot.keys() == 4  # three kept, the one in use
    submit([(4, 6)])
    assert slot.allocations == allocated + 4


def test_warmup_frames_are_staged_as_live_frames_of_their_encoding():
    """On CUDA live raw frames are staged as their rows (rows x step): the warm-up's frames of
    an encoding have the same shape, so the first live frames find their buffers; other
    inputs (compressed, Bayer: None or an encoding the GPU does not convert) as HxWx3 RGB."""
    rgb = smooth_scene(48, 64, seed=1)
    for encoding in sorted(DEVICE_ENCODINGS):
        warm = SegmentationEngine._warmup_frame(48, 64, encoding)
        assert raw_rows(warm).shape == raw_rows(encode(rgb, encoding, padding=0)).shape, encoding
    for encoding in (None, "bayer_rggb8"):
        assert SegmentationEngine._warmup_frame(48, 64, encoding).shape == (48, 64, 3)


def test_the_onnxruntime_backend_gives_the_masks_of_the_torch_network(engine, tiny_weights):
    """Same folded network, exported: the same masks alone and in batches (up to near ties)."""
    frames = [scene(65, 129, seed=7), scene(48, 96, seed=8), scene(90, 160, seed=9)]
    with SegmentationEngine(tiny_weights, device="cpu", cpu_backend="onnxruntime") as ort:
        for frame in frames:
            assert_same_mask(ort.segment(frame).class_mask, protocol_scores(tiny_weights, frame))
        for result, frame in zip(ort.segment_batch(frames, want_confidence=True), frames):
            reference = engine.segment(frame, want_confidence=True)
            assert (result.class_mask == reference.class_mask).mean() >= 0.999
            assert np.abs(result.confidence - reference.confidence).max() < 1e-2  # logits to 6e4: see assert_same_mask
    for options, message in (({"precision": "bf16"}, "fp32 on the CPU only"), ({"cpu_backend": "tvm"}, "one of")):
        with pytest.raises(ValueError, match=message):
            SegmentationEngine(tiny_weights, device="cpu", **{"cpu_backend": "onnxruntime", **options})


def test_the_exported_network_is_cached_and_a_damaged_file_is_replaced(tiny_weights, tmp_path, monkeypatch):
    monkeypatch.setenv("ICNET_ROS_CACHE", str(tmp_path))
    frame = scene(65, 129, seed=4)
    with SegmentationEngine(tiny_weights, device="cpu", cpu_backend="onnxruntime") as first:
        expected = first.segment(frame).class_mask
    [exported] = (tmp_path / "onnx").glob("icnet_*.onnx")
    stamp = exported.stat().st_mtime_ns
    with SegmentationEngine(tiny_weights, device="cpu", cpu_backend="onnxruntime") as second:
        np.testing.assert_array_equal(second.segment(frame).class_mask, expected)
    assert exported.stat().st_mtime_ns == stamp  # loaded, not exported again
    exported.write_bytes(b"not an onnx file")
    with SegmentationEngine(tiny_weights, device="cpu", cpu_backend="onnxruntime") as third:
        np.testing.assert_array_equal(third.segment(frame).class_mask, expected)
    assert exported.stat().st_size > 1000
