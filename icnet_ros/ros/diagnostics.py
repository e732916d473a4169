"""The node's diagnostics: what it counts, and the diagnostic_msgs it publishes.

Status names follow diagnostic_updater (``'<node>: <task>'``, the node's fully
qualified name without the leading slash, so two namespaced cameras stay apart) and so
do the keys tools already read: FrequencyStatus on the input and output rates,
TimeStampStatus on the output delay. A node serving several cameras reports the three
statuses per camera, named ``'<node>: <camera> <task>'``.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field

from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from std_msgs.msg import Header

from icnet_ros.runtime.frame_statistics import (
    DelayTracker,
    EventCounter,
    ReasonCounter,
    SampleWindow,
    StageTimings,
    WindowedCount,
)
from icnet_ros.runtime.stages import NODE_STAGES

# Per-frame stages (icnet_ros.runtime.stages); 'age' is the frame's age at publish (now - header stamp).
STAGES = NODE_STAGES
TIMING_KEYS = tuple(f"{stage}_ms" for stage in STAGES) + ("age_ms", "batch_size")
MIB = 1024 * 1024

# The keys of the statuses' values, as tools and tests read them. Input and output
# (FrequencyStatus, TimeStampStatus of diagnostic_updater):
EVENTS_IN_WINDOW = "Events in window"
EVENTS_SINCE_STARTUP = "Events since startup"
WINDOW_DURATION = "Duration of window (s)"
ACTUAL_FREQUENCY = "Actual frequency (Hz)"
SECONDS_SINCE_LAST_FRAME = "Seconds since last frame"
TARGET_FREQUENCY = "Target frequency (Hz)"
MIN_ACCEPTABLE_FREQUENCY = "Minimum acceptable frequency (Hz)"
MAX_ACCEPTABLE_FREQUENCY = "Maximum acceptable frequency (Hz)"
EARLIEST_DELAY = "Earliest timestamp delay:"
LATEST_DELAY = "Latest timestamp delay:"
EARLIEST_ACCEPTABLE_DELAY = "Earliest acceptable timestamp delay:"
LATEST_ACCEPTABLE_DELAY = "Latest acceptable timestamp delay:"
ZERO_STAMPS = "Frames with a zero stamp"
STAMPS_BEFORE_CLOCK = "Frames before the clock started"
FUTURE_STAMPS = "Frames stamped in the future"
LATE_STAMPS = "Frames stamped too far in the past"
# Pipeline:
LIFECYCLE_STATE = "Lifecycle state"
MODEL_LOADED = "Model loaded"
DEVICE = "Device"
PRECISION = "Precision"
NETWORK_INPUT_SIZE = "Network input size"
WEIGHTS = "Weights"
NETWORK = "Network"
LABEL_SET = "Label set"
FRAMES_RECEIVED = "Frames received"
FRAMES_PROCESSED = "Frames processed"
FRAMES_DROPPED = "Frames dropped"
FRAMES_REFUSED = "Frames refused"
FRAMES_WITHOUT_CAMERA_INFO = "Frames without camera_info"
INFERENCE_FAILURES = "Inference failures"
FRAMES_IN_FLIGHT = "Frames in flight"
FAILURES_SURVIVED = "Failures survived"
BATCH_SIZE_P50 = "Batch size p50"
BATCH_SIZE_MAX = "Batch size max"
GPU_MEMORY = "GPU memory in use (MiB)"
GPU_MEMORY_PEAK = "GPU memory peak (MiB)"
PROCESS_MEMORY = "Process memory (MiB)"
PROCESS_MEMORY_PEAK = "Process memory peak (MiB)"


def refused_key(reason: str) -> str:
    """The key of the frames refused for ``reason`` (``'Frames refused (undecodable)'``)."""
    return f"{FRAMES_REFUSED} ({reason})"


def survived_key(kind: str) -> str:
    """The key of the failures of ``kind`` survived outside the frame path."""
    return f"{FAILURES_SURVIVED} ({kind})"


def stage_key(stage: str, label: str) -> str:
    """The key of a stage's ``p50``, ``p95`` or ``max`` over the window (``'inference p50 (ms)'``)."""
    return f"{stage} {label} (ms)"


def refused_by_reason(values: dict[str, str]) -> dict[str, int]:
    """The refusal counts per reason in a pipeline status's values (the inverse of :func:`refused_key`)."""
    prefix = f"{FRAMES_REFUSED} ("
    return {key[len(prefix):-1]: int(value) for key, value in values.items()
            if key.startswith(prefix) and key.endswith(")")}


@dataclass(frozen=True)
class Thresholds:
    """When the statuses leave OK."""

    min_output_hz: float
    stale_after_s: float
    max_output_delay_s: float
    min_output_fraction: float = 0.0


@dataclass(frozen=True)
class ModelInfo:
    """The configured model, as the report names it."""

    weights: str
    device: str
    precision: str
    input_size: tuple[int, int]
    labels: str
    network: str = "ICNet"  # e.g. PIDNet-S: what the weights' metadata builds

    def describe(self) -> str:
        return (f"{self.network} from {self.weights} on {self.device} ({self.precision}), network input "
                f"{self.input_size[0]}x{self.input_size[1]}, labels {self.labels}")


@dataclass(frozen=True)
class NodeState:
    """The node's side of the report: lifecycle state, model, engine memory and load, and
    the failures it survived outside the frame path (per kind: ``diagnostics timer``...)."""

    lifecycle: str
    model: ModelInfo | None = None
    memory: dict | None = None
    in_flight: int = 0
    model_loaded: bool = False
    faults: dict[str, int] = field(default_factory=dict)


class FrameCounters:
    """Counts and windows the node fills from its callback and worker threads."""

    def __init__(self, now: float, window_size: int, window_s: float) -> None:
        self.received = EventCounter(now, window_size)
        self.processed = EventCounter(now, window_size)
        self.dropped = EventCounter(now, window_size)
        self.refused = ReasonCounter(now, window_size)
        self.failures = ReasonCounter(now, window_size)
        self.without_camera_info = EventCounter(now, window_size)  # masks published without calibration
        self.stages = StageTimings(STAGES + ("age",), window_s)
        self.batch_sizes = SampleWindow(window_s)  # frames per forward pass
        self.delays = DelayTracker()
        self._lock = threading.Lock()
        self._last_input: float | None = None
        self._last_failure = ""

    def frame_arrived(self, now: float) -> None:
        self.received.add()
        with self._lock:
            self._last_input = now

    def failed(self, kind: str, message: str) -> None:
        self.failures.add(kind)
        with self._lock:
            self._last_failure = message

    def seconds_since_input(self, now: float, since: float) -> float:
        """Time since the last frame, or since ``since`` (activation) if none came yet."""
        with self._lock:
            last = self._last_input if self._last_input is not None else since
        return max(0.0, now - max(last, since))

    @property
    def last_input(self) -> float | None:
        """Monotonic time of the last frame, None before the first."""
        with self._lock:
            return self._last_input

    @property
    def last_failure(self) -> str:
        with self._lock:
            return self._last_failure


def _values(pairs: list[tuple[str, object]]) -> list[KeyValue]:
    return [KeyValue(key=key, value=_text(value)) for key, value in pairs]


def _text(value: object) -> str:
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.6g}"
    return str(value)


def _frequency(count: WindowedCount) -> list[tuple[str, object]]:
    return [(EVENTS_IN_WINDOW, count.in_window), (EVENTS_SINCE_STARTUP, count.total),
            (WINDOW_DURATION, count.window_s), (ACTUAL_FREQUENCY, count.rate_hz)]


def status(name: str, level: bytes, message: str, hardware_id: str,
           pairs: list[tuple[str, object]]) -> DiagnosticStatus:
    return DiagnosticStatus(level=level, name=name, message=message, hardware_id=hardware_id,
                            values=_values(pairs))


def report(prefix: str, stamp: Time, now: float, active_since: float | None,
           counters: FrameCounters, thresholds: Thresholds, node: NodeState,
           camera: str = "", input_hint: str = "") -> DiagnosticArray:
    """The periodic /diagnostics message: input, output and pipeline statuses.

    ``active_since`` is the monotonic time of activation, None while not active (then
    every status is OK with the lifecycle state as message: an inactive node is idle on
    purpose). Sampling closes one statistics period. ``camera``: the statuses of one of
    several cameras (``'<prefix>: <camera> input'``...). ``input_hint``: why frames do
    not arrive although a publisher is matched (:mod:`input_watch`), '' if they do.
    """
    task = f"{camera} " if camera else ""
    model = node.model
    hardware_id = model.device if model else ""
    received = counters.received.sample(now)
    processed = counters.processed.sample(now)
    dropped = counters.dropped.sample(now)
    refused = counters.refused.sample(now)
    failures = counters.failures.sample(now)
    delays = counters.delays.sample()
    active = active_since is not None

    # Input: rate and staleness.
    idle_s = counters.seconds_since_input(now, active_since) if active else 0.0
    level, message = DiagnosticStatus.OK, "receiving frames" if active else node.lifecycle
    if active and idle_s >= thresholds.stale_after_s:
        level, message = DiagnosticStatus.WARN, f"no frame for {idle_s:.1f} s"
        if input_hint:
            message += f" although a publisher is matched: {input_hint}"
    input_status = status(f"{prefix}: {task}input", level, message, hardware_id,
                          _frequency(received) + [(SECONDS_SINCE_LAST_FRAME, idle_s)])

    # Output: rate (target: answer every received frame) and delay at publish.
    earliest = delays.earliest_s if delays else math.nan
    latest = delays.latest_s if delays else math.nan
    stamps = counters.delays.counts()
    level, message = DiagnosticStatus.OK, "publishing" if active else node.lifecycle
    # One frame of slack: the one in the pipeline when the window closes.
    answers_too_few = processed.in_window + 1 < thresholds.min_output_fraction * received.in_window
    if active and delays and delays.early:
        level, message = (DiagnosticStatus.WARN, f"{delays.early} frame(s) stamped more than "
                          f"{-counters.delays.earliest_s:g} s in the future (clocks out of sync?)")
    elif active and processed.rate_hz < thresholds.min_output_hz:
        level, message = (DiagnosticStatus.WARN, f"output rate {processed.rate_hz:.2f} Hz is "
                          f"below min_output_hz {thresholds.min_output_hz:g}")
    elif active and answers_too_few:
        level, message = (DiagnosticStatus.WARN, f"answered {processed.in_window} of "
                          f"{received.in_window} frames in the window, fewer than "
                          f"min_output_fraction {thresholds.min_output_fraction:g}")
    elif active and thresholds.max_output_delay_s > 0 and latest > thresholds.max_output_delay_s:
        level, message = (DiagnosticStatus.WARN, f"output delay {latest:.3f} s exceeds "
                          f"max_output_delay_s {thresholds.max_output_delay_s:g}")
    output_status = status(f"{prefix}: {task}output", level, message, hardware_id, _frequency(processed) + [
        (TARGET_FREQUENCY, received.rate_hz),
        (MIN_ACCEPTABLE_FREQUENCY,
         max(thresholds.min_output_hz, thresholds.min_output_fraction * received.rate_hz)),
        (MAX_ACCEPTABLE_FREQUENCY, math.inf),
        (EARLIEST_DELAY, earliest), (LATEST_DELAY, latest),
        (EARLIEST_ACCEPTABLE_DELAY, -1.0),
        (LATEST_ACCEPTABLE_DELAY,
         thresholds.max_output_delay_s if thresholds.max_output_delay_s > 0 else math.inf),
        (ZERO_STAMPS, stamps.zero), (STAMPS_BEFORE_CLOCK, stamps.no_clock),
        (FUTURE_STAMPS, stamps.early), (LATE_STAMPS, stamps.late),
    ])

    # Pipeline: errors, counters, stage percentiles, the model and its memory.
    level, message = DiagnosticStatus.OK, "ok" if active else node.lifecycle
    by_reason = counters.refused.by_reason()
    if failures.in_window:
        level, message = DiagnosticStatus.ERROR, f"inference failing: {counters.last_failure}"
    elif refused.in_window:
        level, message = (DiagnosticStatus.ERROR, f"refusing frames ({refused.in_window} in "
                          f"window): {', '.join(by_reason)}")
    pairs: list[tuple[str, object]] = [
        (LIFECYCLE_STATE, node.lifecycle), (MODEL_LOADED, node.model_loaded),
        (DEVICE, model.device if model else "-"),
        (PRECISION, model.precision if model else "-"),
        (NETWORK_INPUT_SIZE, "x".join(map(str, model.input_size)) if model else "-"),
        (WEIGHTS, model.weights if model else "-"), (NETWORK, model.network if model else "-"),
        (LABEL_SET, model.labels if model else "-"),
        (FRAMES_RECEIVED, received.total), (FRAMES_PROCESSED, processed.total),
        (FRAMES_DROPPED, dropped.total), (FRAMES_REFUSED, refused.total),
    ]
    pairs += [(refused_key(reason), count) for reason, count in by_reason.items()]
    pairs += [(FRAMES_WITHOUT_CAMERA_INFO, counters.without_camera_info.sample(now).total),
              (INFERENCE_FAILURES, failures.total), (FRAMES_IN_FLIGHT, node.in_flight)]
    pairs += [(FAILURES_SURVIVED, sum(node.faults.values()))]
    pairs += [(survived_key(kind), count) for kind, count in node.faults.items()]
    batch = counters.batch_sizes.summary(now)
    pairs += [(BATCH_SIZE_P50, batch.p50 if batch else math.nan),
              (BATCH_SIZE_MAX, batch.max if batch else math.nan)]
    for stage, summary in counters.stages.summary(now).items():
        for label in ("p50", "p95", "max"):
            pairs.append((stage_key(stage, label), getattr(summary, label) if summary else math.nan))
    pairs += _memory(model, node.memory or {})
    pipeline_status = status(f"{prefix}: {task}pipeline", level, message, hardware_id, pairs)

    return DiagnosticArray(header=Header(stamp=stamp),
                           status=[input_status, output_status, pipeline_status])


def _memory(model: ModelInfo | None, memory: dict) -> list[tuple[str, object]]:
    """GPU memory on CUDA (torch's allocated tensors); on the CPU the engine reports the
    process's resident memory instead, and the GPU keys say 0."""
    allocated, peak = (memory.get("allocated") or 0) / MIB, (memory.get("peak") or 0) / MIB
    if model is not None and model.device.startswith("cuda"):
        return [(GPU_MEMORY, allocated), (GPU_MEMORY_PEAK, peak)]
    return [(GPU_MEMORY, 0.0), (GPU_MEMORY_PEAK, 0.0),
            (PROCESS_MEMORY, allocated), (PROCESS_MEMORY_PEAK, peak)]


def timing(prefix: str, header: Header, timings_ms: dict[str, float], age_ms: float,
           batch_size: int = 1) -> DiagnosticArray:
    """One frame's stage times in milliseconds (the engine's are its batch's), and the
    frames in its forward pass, stamped with the frame's header."""
    pairs = [(f"{stage}_ms", float(timings_ms.get(stage, 0.0))) for stage in STAGES]
    pairs += [("age_ms", age_ms), ("batch_size", batch_size)]
    return DiagnosticArray(header=header, status=[
        status(f"{prefix}: timing", DiagnosticStatus.OK, "milliseconds per stage", "", pairs)])
