"""The segmentation engine: frames in, class masks at the camera's resolution out.

One frame: decode to HxWx3 uint8 RGB (into a pinned staging buffer on CUDA) -> upload
(non-blocking, on the engine's upload stream) -> pre-processing on the device (bilinear
resize to the network input with ``align_corners=False``, channel order and mean/std
from the weights' metadata) -> the network (compute stream) -> softmax, bilinear resize
of the scores to the camera size, argmax -> uint8 mask (and float32 confidence) copied
back into pinned memory. The network is BN-folded in fp32 before its cast to the engine's precision
(:mod:`inference_network`). Frames are submitted and collected in FIFO order, at most
``pipeline_depth`` submissions in flight: on CUDA frame N+1 is decoded and uploaded while frame N
computes, synchronised with events, and stage times come from CUDA events (seven per
pipeline slot, recorded again by each submission). The network runs as a CUDA graph per
slot and batch size (:mod:`cuda_graphs`), pre-processing writing into its static input,
once the warm-up (or a first eager run) has captured it; ``cuda_graphs=False`` runs it
eagerly. Submitting never synchronises with the device nor, once each frame shape, batch
size and option has been seen, allocates (pinned and device buffers are kept per slot,
:mod:`slot_buffers`); a waiting thread blocks (without spinning) on each
submission's last event, and ``collect`` waits for that thread. On the CPU
decoding, pre-processing and inference run at submit time and the score resize and
argmax on a second thread (``postprocess_thread``), where they overlap the next frame's
inference (torch and NumPy release the GIL): faster where a core is free, a little
slower on a saturated CPU; stages are timed with ``perf_counter``, and the score resize
uses the exact cell method of :mod:`postprocessing`, which skips the work wherever one
class wins a whole cell.

Batches (:meth:`SegmentationEngine.submit_batch`, e.g. one frame per camera): every frame
is decoded and pre-processed on its own (any sizes: each is resized to the network
input), the network runs once on the stacked inputs, and each mask comes back at its
own frame's resolution; ``collect`` returns the results one at a time, in order.

Colour conversion: on the CPU every encoding goes through OpenCV (:func:`to_rgb`, the
conversions cv_bridge uses; rgb8 is not even copied). On CUDA the raw rows of every
encoding but Bayer are uploaded and converted on the GPU (:mod:`device_decoding`,
bit-exact with OpenCV); Bayer frames are demosaiced on the CPU with OpenCV first.
"""

from __future__ import annotations

import contextlib
import threading
import time
import warnings
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from icnet_ros.model import registry
from icnet_ros.runtime.cuda_graphs import NetworkGraphs
from icnet_ros.runtime.device import select_device, select_precision, set_tf32
from icnet_ros.runtime.device_decoding import DEVICE_ENCODINGS, raw_rows, to_rgb_tensor
from icnet_ros.runtime.heap import resident_bytes
from icnet_ros.runtime.image_decoding import LAYOUTS, MAX_PIXELS, CompressedFrame, ImageRejected, RawFrame, decode_frame
from icnet_ros.runtime.inference_network import MEMORY_FORMAT, folded_network, network_runner
from icnet_ros.runtime.postprocessing import ScoreUpsampler, upsample_argmax_dense
from icnet_ros.runtime.slot_buffers import SlotBuffers
from icnet_ros.weights.labels import LabelSet
from icnet_ros.weights.weight_file import WeightsMetadata, load_model

# CUDA events of one frame (upload on the upload stream, the rest on the compute stream)
# and the pair that times each stage after decoding.
_EVENTS = ("upload", "uploaded", "preprocess", "inference", "postprocess", "download", "done")
_STAGE_EVENTS = {"upload": ("upload", "uploaded"), "preprocess": ("preprocess", "inference"),
                 "inference": ("inference", "postprocess"), "postprocess": ("postprocess", "download"),
                 "download": ("download", "done")}


class EngineError(RuntimeError):
    """Inference of one frame failed (e.g. out of memory): the frame is skipped, the engine stays usable."""


@dataclass
class SegmentationResult:
    """What the engine returns for one frame."""

    tag: object
    class_mask: np.ndarray  # HxW uint8 class ids at the input's resolution
    confidence: np.ndarray | None  # HxW float32 largest softmax probability, when asked
    rgb: np.ndarray | None  # the decoded HxWx3 uint8 RGB input, when asked
    timings_ms: dict[str, float] = field(default_factory=dict)  # per stage, keys stages.ENGINE_STAGES
    batch_size: int = 1  # frames in the forward pass this one was part of (its stage times are the batch's)
    timeline_ms: dict[str, float] | None = None  # CUDA: its submission's events, upload .. done, in ms since
    # the engine's start on the device clock (timelines across frames)


def _is_out_of_memory(error: BaseException) -> bool:
    text = str(error).lower()
    return (isinstance(error, (MemoryError, torch.cuda.OutOfMemoryError))
            or "out of memory" in text or "can't allocate memory" in text)


@dataclass
class _Staged:
    """One decoded frame, ready for the network."""

    frame: object  # what was submitted (the GPU converts RawFrames of DEVICE_ENCODINGS itself)
    array: np.ndarray  # HxWx3 uint8 RGB, or the raw rows when ``on_device``
    size: tuple[int, int]
    on_device: bool
    decode_ms: float


@dataclass
class _Job:
    """One submission (a frame or a batch): one forward pass, one result per frame."""

    tags: list[object]
    decode_ms: list[float]
    results: deque[SegmentationResult] | None = None  # filled once done
    future: Future | None = None  # the results: from the post-processing (CPU) or waiting (CUDA) thread
    outputs: list[dict[str, torch.Tensor | None]] | None = None  # CUDA: pinned buffers per frame
    events: dict[str, torch.cuda.Event] | None = None  # CUDA: its slot's events

    def remaining(self) -> int:
        return len(self.tags) if self.results is None else len(self.results)


class SegmentationEngine:
    """ICNet inference on the CPU or on CUDA, with a pipeline ``pipeline_depth`` frames deep.

    ``submit`` takes a :class:`RawFrame`, a :class:`CompressedFrame` or an ``HxWx3``
    uint8 RGB array; a frame that cannot be decoded raises ``ImageRejected``, one whose
    inference fails raises :class:`EngineError` (on CUDA possibly from ``collect``).
    ``submit_batch`` runs several frames through one forward pass. One thread submits;
    a submission blocks while ``pipeline_depth`` submissions are not fully collected,
    so a single-threaded caller of ``submit`` collects when ``pending() ==
    pipeline_depth``. ``collect`` returns None when nothing is pending.

    ``cpu_threads`` sets torch's (process-wide) intra-op thread count; None leaves it.
    On a CPU shared with other busy processes one thread can be many times faster than
    two, whose parallel regions wait for each other. ``postprocess_thread`` (CPU): the
    score resize and argmax on a second thread; False runs them at submit time.
    ``cpu_backend``: ``auto`` (onnxruntime where it applies and is installed, else torch),
    ``onnxruntime`` (CPU fp32 only: the same masks, faster; the export is cached,
    :mod:`onnx_network`), ``torch`` (the folded channels_last module, every device and precision).
    ``cuda_graphs`` (CUDA): the network through CUDA graphs (:mod:`cuda_graphs`); False: eagerly.
    """

    def __init__(self, weights: str | Path, *, device: str = "auto", precision: str = "fp32",
                 input_size: tuple[int, int] | None = None, labels: LabelSet | None = None,
                 pipeline_depth: int = 2, max_pixels: int = MAX_PIXELS,
                 cpu_threads: int | None = None, postprocess_thread: bool = True,
                 cpu_backend: str = "auto", cuda_graphs: bool = True) -> None:
        if cpu_threads is not None:
            if cpu_threads < 1:
                raise ValueError(f"cpu_threads must be at least 1, got {cpu_threads}")
            torch.set_num_threads(cpu_threads)  # process-wide, as torch has it
        self.device = select_device(device)
        self.precision = precision
        self.dtype = select_precision(self.device, precision)
        if pipeline_depth < 1:
            raise ValueError(f"pipeline_depth must be at least 1, got {pipeline_depth}")
        model, metadata = load_model(weights, "cpu")
        self.metadata: WeightsMetadata = metadata
        num_classes = model.config["num_classes"]
        self.labels = labels or self.metadata.labels
        if self.labels.num_classes != num_classes:
            raise ValueError(f"label set {self.labels.name!r} has {self.labels.num_classes} classes, "
                             f"the network {num_classes}")
        size = tuple(int(v) for v in (input_size or self.metadata.preprocessing.input_size))
        if len(size) != 2 or min(size) < 1:
            raise ValueError(f"input_size must be two positive integers, got {input_size!r}")
        registry.check_input_size(self.metadata.architecture, size)
        self.input_size: tuple[int, int] = size
        self.pipeline_depth = pipeline_depth
        self.max_pixels = max_pixels
        self._memory_format = MEMORY_FORMAT
        self.model = folded_network(model, self.device, self.dtype)
        self._network = network_runner(self.model, self.precision, cpu_backend, self.input_size)
        prep = self.metadata.preprocessing
        order = [2, 1, 0] if prep.channel_order == "BGR" else [0, 1, 2]
        self._order = torch.tensor(order, device=self.device) if order != [0, 1, 2] else None
        self._mean = torch.tensor([prep.mean[i] for i in order], device=self.device).view(1, 3, 1, 1)
        self._inv_std = None if prep.std is None else 1.0 / torch.tensor(
            [prep.std[i] for i in order], device=self.device).view(1, 3, 1, 1)
        self._upsample = ScoreUpsampler()
        self._jobs: deque[_Job] = deque()
        self._ready = threading.Condition()
        self._cuda = self.device.type == "cuda"
        # CPU: the score resize; CUDA: waiting for each submission's last event.
        self._postprocessor = (ThreadPoolExecutor(1, "icnet-cuda-wait" if self._cuda else "icnet-postprocess")
                               if postprocess_thread or self._cuda else None)
        if self._cuda:
            torch.backends.cudnn.benchmark = True  # fixed network input size: autotune once
            if self.dtype == torch.float32:  # fp32 means fp32 (process-wide flags): CPU and CUDA agree
                set_tf32(False)
            self._upload_stream = torch.cuda.Stream(self.device)
            self._compute_stream = torch.cuda.Stream(self.device)
            # The weights and constants were written on the current stream: order them first.
            self._compute_stream.wait_stream(torch.cuda.current_stream(self.device))
            self._slots = [SlotBuffers(self.device) for _ in range(pipeline_depth)]
            self._slot_events = [{name: torch.cuda.Event(enable_timing=True, blocking=True) for name in _EVENTS}
                                 for _ in range(pipeline_depth)]
            self._origin = torch.cuda.Event(enable_timing=True)  # timelines are in ms since this
            self._origin.record(self._compute_stream)
            self._graphs = NetworkGraphs(self.model, self._compute_stream, (3, *self.input_size), self.dtype,
                                         self._memory_format, enabled=cuda_graphs)
            self._submitted = 0

    # --- public API ----------------------------------------------------------------

    def warmup(self, image_size: tuple[int, int] | None = None, batch_size: int = 1,
               encoding: str | None = "rgb8") -> None:
        """Run a few frames of ``image_size`` (default: the network input), alone and as
        batches up to ``batch_size``, so the first real ones are fast.

        On CUDA every batch size from 1 to ``batch_size`` runs in every pipeline slot,
        with and without confidence and RGB, as raw ``encoding`` frames where the GPU
        converts that encoding (staged as their rows, as live frames are; None: decoded RGB,
        as compressed frames and Bayer are staged), so live frames of
        that size find their buffers; cuDNN autotunes each batch size (hundreds of ms at
        1024x2048: not on live frames); then the CUDA graphs are captured and run once. On
        the CPU batch sizes 1 and ``batch_size`` run (``encoding`` does not matter there).
        """
        height, width = image_size or self.input_size
        if not self._cuda:
            frame = np.zeros((height, width, 3), np.uint8)
            for want_confidence in (False, True):
                self.segment(frame, want_confidence=want_confidence)
                if batch_size > 1:
                    self.segment_batch([frame] * batch_size, want_confidence=want_confidence)
            return
        frame = self._warmup_frame(height, width, encoding)
        sizes = range(1, batch_size + 1)

        def every_slot() -> None:
            for want in (False, True):
                for size in sizes:
                    for _ in range(self.pipeline_depth):
                        self.segment_batch([frame] * size, want_confidence=want, want_rgb=want)

        every_slot()
        for slot in range(self.pipeline_depth):
            for size in sizes:
                self._graphs.capture(slot, size)
        every_slot()  # the graphs' first replays, and the buffers of what follows them

    @property
    def cuda_graphs_status(self) -> str:
        """How the network runs on CUDA (graphs captured, or why eagerly), for the log; '' on the CPU."""
        return self._graphs.status if self._cuda else ""

    @property
    def buffer_allocations(self) -> int:
        """CUDA: pinned and device buffers the pipeline slots allocated so far (0 on the CPU)."""
        return sum(slot.allocations for slot in self._slots) if self._cuda else 0

    def submit(self, frame: RawFrame | CompressedFrame | np.ndarray, *, tag: object = None,
               want_confidence: bool = False, want_rgb: bool = False) -> None:
        """Start one frame. Raises ImageRejected (bad frame) or EngineError (inference failed)."""
        self._wait_for_room()
        self._start([self._stage(frame)], [tag], want_confidence, want_rgb)

    def submit_batch(self, frames: Sequence[RawFrame | CompressedFrame | np.ndarray], *,
                     tags: Sequence[object] | None = None, want_confidence: bool = False,
                     want_rgb: bool = False) -> list[ImageRejected | None]:
        """Start several frames (of any sizes) as one forward pass; ``collect`` then
        returns one result per accepted frame, in order.

        A frame that cannot be decoded is left out of the batch: the returned list holds,
        per frame, None (accepted) or the ``ImageRejected`` saying why. The options apply
        to every frame. Raises EngineError when inference fails (the whole batch is lost).
        """
        tags = [None] * len(frames) if tags is None else list(tags)
        if len(tags) != len(frames):
            raise ValueError(f"{len(frames)} frames but {len(tags)} tags")
        self._wait_for_room()
        staged, accepted, refusals = [], [], []
        for frame, tag in zip(frames, tags):
            try:
                staged.append(self._stage(frame))
            except ImageRejected as error:
                refusals.append(error)
                continue
            accepted.append(tag)
            refusals.append(None)
        if staged:
            self._start(staged, accepted, want_confidence, want_rgb)
        return refusals

    def collect(self, timeout: float | None = None) -> SegmentationResult | None:
        """The oldest submitted frame's result, waiting up to ``timeout`` s (None: until done).

        Returns None when nothing is pending or the oldest frame is not done in time.
        """
        with self._ready:
            if not self._jobs:
                return None
            job = self._jobs[0]
        if job.results is None:
            try:
                job.results = job.future.result(timeout)
            except TimeoutError:
                return None
            except Exception as error:  # whatever failed, the job leaves the pipeline
                self._drop_oldest()
                raise self._failed(error) from error
        with self._ready:
            result = job.results.popleft()
            if not job.results:
                self._jobs.popleft()
                self._ready.notify_all()
        return result

    def segment(self, frame: RawFrame | CompressedFrame | np.ndarray, **options) -> SegmentationResult:
        """Submit one frame and wait for it (the pipeline must be empty)."""
        self._check_empty("segment")
        self.submit(frame, **options)
        return self.collect()

    def segment_batch(self, frames: Sequence[RawFrame | CompressedFrame | np.ndarray],
                      **options) -> list[SegmentationResult]:
        """Several frames through one forward pass, their results in order (the pipeline
        must be empty). Raises ImageRejected, for the first bad frame, before any work."""
        self._check_empty("segment_batch")
        self._wait_for_room()
        staged = [self._stage(frame) for frame in frames]
        self._start(staged, list(range(len(staged))), options.get("want_confidence", False),
                    options.get("want_rgb", False))
        return [self.collect() for _ in staged]

    def pending(self) -> int:
        """Frames submitted and not yet collected."""
        with self._ready:
            return sum(job.remaining() for job in self._jobs)

    def memory_stats(self) -> dict[str, int]:
        """Bytes. CUDA: tensors allocated now and their peak on the engine's device.
        CPU: the process's resident set size now and its peak (the whole process)."""
        if self._cuda:
            return {"allocated": torch.cuda.memory_allocated(self.device),
                    "peak": torch.cuda.max_memory_allocated(self.device)}
        resident, peak = resident_bytes()
        return {"allocated": resident, "peak": peak}

    def close(self) -> None:
        """Drop pending frames and release the model and (GPU) memory. Idempotent."""
        if self._cuda and self.model is not None:
            torch.cuda.synchronize(self.device)
        if self._postprocessor is not None:
            self._postprocessor.shutdown(wait=True, cancel_futures=True)
        with self._ready:
            self._jobs.clear()
            self._ready.notify_all()
        self.model = self._network = None
        self._upsample = ScoreUpsampler()
        if self._cuda:
            for slot in self._slots:
                slot.clear()
            self._graphs.clear()
            torch.cuda.empty_cache()

    def __enter__(self) -> SegmentationEngine:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- shared steps ----------------------------------------------------------------

    def _drop_oldest(self) -> None:
        """Forget the oldest submission (its inference failed)."""
        with self._ready:
            self._jobs.popleft()
            self._ready.notify_all()

    def _check_empty(self, caller: str) -> None:
        if self.pending():
            raise RuntimeError(f"{caller}() needs an empty pipeline; {self.pending()} frame(s) pending")

    def _wait_for_room(self) -> None:
        """Block while ``pipeline_depth`` submissions are in flight."""
        if self.model is None:
            raise RuntimeError("the engine is closed")
        with self._ready:
            while len(self._jobs) >= self.pipeline_depth:
                self._ready.wait()

    def _start(self, staged: list[_Staged], tags: list[object], want_confidence: bool,
               want_rgb: bool) -> None:
        if self._cuda:
            job = self._submit_cuda(staged, tags, want_confidence, want_rgb)
        else:
            job = self._run_cpu(staged, tags, want_confidence, want_rgb)
        with self._ready:
            self._jobs.append(job)
            self._ready.notify_all()

    @staticmethod
    def _warmup_frame(height: int, width: int, encoding: str | None) -> RawFrame | np.ndarray:
        """A black frame as ``encoding`` delivers it: raw rows where the device converts it, else RGB."""
        if encoding is None or encoding not in DEVICE_ENCODINGS:
            return np.zeros((height, width, 3), np.uint8)
        layout = LAYOUTS[encoding]
        step = width * layout.channels * layout.depth
        rows = height * layout.rows_num // layout.rows_den
        return RawFrame.validated(encoding, height, width, step, bytes(rows * step))

    def _stage(self, frame) -> _Staged:
        """Decode ``frame`` (on CUDA, frames the GPU converts stay raw rows)."""
        start = time.perf_counter()
        if self._cuda and isinstance(frame, RawFrame) and frame.encoding in DEVICE_ENCODINGS:
            array, size, on_device = raw_rows(frame), (frame.height, frame.width), True
        else:
            array = decode_frame(frame, self.max_pixels)
            size, on_device = array.shape[:2], False
        return _Staged(frame, array, size, on_device, (time.perf_counter() - start) * 1000.0)

    def _preprocess(self, rgb: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
        """HxWx3 uint8 RGB on the device -> 1x3xhxw network input (resized, ordered, normalised),
        written into ``out`` (1x3xhxw of the engine's dtype) where given."""
        x = rgb.permute(2, 0, 1).unsqueeze(0).float()  # channels-last memory, no copy before the cast
        if tuple(x.shape[-2:]) != self.input_size:
            x = F.interpolate(x, size=self.input_size, mode="bilinear", align_corners=False)
        if self._order is not None:
            x = x.index_select(1, self._order)
        x = x - self._mean
        if self._inv_std is not None:
            x = x * self._inv_std
        if out is not None:
            return out.copy_(x)
        return x.to(self.dtype).contiguous(memory_format=self._memory_format)

    def _stack(self, inputs: list[torch.Tensor]) -> torch.Tensor:
        """The network input of a batch: the 1x3xhxw inputs stacked."""
        if len(inputs) == 1:
            return inputs[0]
        return torch.cat(inputs).contiguous(memory_format=self._memory_format)

    def _failed(self, error: BaseException) -> EngineError:
        if self._cuda:
            with contextlib.suppress(RuntimeError):  # the failure path may synchronise
                torch.cuda.synchronize(self.device)  # the failed work is over before its slot is reused
                torch.cuda.empty_cache()
        kind = "out of memory" if _is_out_of_memory(error) else "inference failed"
        return EngineError(f"{kind} on {self.device}: {error}")

    # --- CPU: inference at submit time, the score resize on a second thread --------------

    def _run_cpu(self, staged: list[_Staged], tags: list[object], want_confidence: bool,
                 want_rgb: bool) -> _Job:
        start = time.perf_counter()
        try:
            with torch.inference_mode(), warnings.catch_warnings():
                # Message buffers may be read-only; the engine never writes to its input.
                warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
                images = [torch.from_numpy(item.array) for item in staged]
                uploaded = time.perf_counter()
                x = self._stack([self._preprocess(image) for image in images])
                preprocessed = time.perf_counter()
                logits = self._network(x)
                inferred = time.perf_counter()
        except (RuntimeError, MemoryError) as error:
            raise self._failed(error) from error
        timings = {"upload": (uploaded - start) * 1e3, "preprocess": (preprocessed - uploaded) * 1e3,
                   "inference": (inferred - preprocessed) * 1e3}
        rgbs = [None] * len(staged)
        if want_rgb:  # a view of the message buffer is copied now: the caller may reuse it
            rgbs = [item.array if item.array.flags.owndata else item.array.copy() for item in staged]
        decode_ms = [item.decode_ms for item in staged]
        if self._postprocessor is None:
            try:
                results = self._postprocess_cpu(staged, tags, rgbs, logits, timings, want_confidence)
            except (RuntimeError, MemoryError) as error:
                raise self._failed(error) from error
            return _Job(tags, decode_ms, results=results)
        future = self._postprocessor.submit(self._postprocess_cpu, staged, tags, rgbs, logits, timings,
                                            want_confidence)
        return _Job(tags, decode_ms, future=future)

    def _postprocess_cpu(self, staged: list[_Staged], tags: list[object], rgbs: list, logits: torch.Tensor,
                         timings: dict[str, float], want_confidence: bool) -> deque[SegmentationResult]:
        """Score resize and argmax of one submission (on the post-processing thread, if any)."""
        start = time.perf_counter()
        with torch.inference_mode():
            outputs = [self._upsample(logits[i], item.size, want_confidence) for i, item in enumerate(staged)]
        # Already NumPy: nothing to download.
        shared = {**timings, "postprocess": (time.perf_counter() - start) * 1e3, "download": 0.0}
        return deque(SegmentationResult(tag, mask, confidence, rgb, {"decode": item.decode_ms, **shared},
                                        len(staged))
                     for item, tag, rgb, (mask, confidence) in zip(staged, tags, rgbs, outputs))

    # --- CUDA: streams, pinned buffers, events ---------------------------------------

    def _submit_cuda(self, staged: list[_Staged], tags: list[object], want_confidence: bool,
                     want_rgb: bool) -> _Job:
        """Queue one submission on the streams; never waits for the device."""
        index = self._submitted % self.pipeline_depth  # the slot's last submission was collected
        slot, events = self._slots[index], self._slot_events[index]
        slot.begin()
        try:
            static = self._graphs.input(index, len(staged))  # captures the graph first where due
            hosts_in, decode_ms = [], []
            for item in staged:
                start = time.perf_counter()
                host_in = slot.host("in", item.array.shape)
                np.copyto(host_in.numpy(), item.array)
                hosts_in.append(host_in)
                decode_ms.append(item.decode_ms + (time.perf_counter() - start) * 1000.0)
            outputs = [{"mask": slot.host("mask", item.size),
                        "confidence": slot.host("confidence", item.size, torch.float32) if want_confidence else None,
                        "rgb": slot.host("rgb", (*item.size, 3)) if want_rgb and item.on_device else None}
                       for item in staged]
            devices_in = [slot.on_device("in", item.array.shape) for item in staged]
            with torch.inference_mode():
                with torch.cuda.stream(self._upload_stream):
                    events["upload"].record()
                    for device_in, host_in in zip(devices_in, hosts_in):
                        device_in.copy_(host_in, non_blocking=True)
                    events["uploaded"].record()
                self._compute_stream.wait_event(events["uploaded"])
                with torch.cuda.stream(self._compute_stream):
                    events["preprocess"].record()
                    rgbs = [to_rgb_tensor(device_in, item.frame) if item.on_device else device_in
                            for device_in, item in zip(devices_in, staged)]
                    if static is None:
                        x = self._stack([self._preprocess(rgb) for rgb in rgbs])
                    else:
                        x = static
                        for i, rgb in enumerate(rgbs):
                            self._preprocess(rgb, x[i: i + 1])
                    events["inference"].record()
                    logits = self._graphs.run(index, x)
                    events["postprocess"].record()
                    upsampled = [upsample_argmax_dense(logits[i], item.size, want_confidence)
                                 for i, item in enumerate(staged)]
                    events["download"].record()
                    for (mask, confidence), rgb, output in zip(upsampled, rgbs, outputs):
                        output["mask"].copy_(mask, non_blocking=True)
                        if output["confidence"] is not None:
                            output["confidence"].copy_(confidence, non_blocking=True)
                        if output["rgb"] is not None:
                            output["rgb"].copy_(rgb, non_blocking=True)
                    events["done"].record()
        except (RuntimeError, MemoryError) as error:
            raise self._failed(error) from error  # synchronises: the slot is free for the next try
        self._submitted += 1
        if want_rgb:  # decoded on the CPU: the staged RGB is the frame's
            for output, host_in in zip(outputs, hosts_in):
                output["rgb"] = output["rgb"] if output["rgb"] is not None else host_in
        job = _Job(tags, decode_ms, outputs=outputs, events=events)
        job.future = self._postprocessor.submit(self._finish_cuda, job)
        return job

    def _finish_cuda(self, job: _Job) -> deque[SegmentationResult]:
        """On the waiting thread: block (no spinning, the GIL released) until the
        submission is done, then copy its results out of the slot's pinned buffers."""
        job.events["done"].synchronize()  # an asynchronous CUDA error surfaces here
        shared = {stage: job.events[begin].elapsed_time(job.events[end])
                  for stage, (begin, end) in _STAGE_EVENTS.items()}
        timeline = {name: self._origin.elapsed_time(event) for name, event in job.events.items()}
        results = deque()
        for tag, decode_ms, outputs in zip(job.tags, job.decode_ms, job.outputs):
            # Copies: the pinned buffers belong to the slot, which the next frames reuse.
            arrays = {name: None if tensor is None else tensor.numpy().copy()
                      for name, tensor in outputs.items()}
            results.append(SegmentationResult(tag, arrays["mask"], arrays["confidence"], arrays["rgb"],
                                              {"decode": decode_ms, **shared}, len(job.tags), dict(timeline)))
        return results
