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

from icnet_ros.runtime.stages import NODE_STAGES
from icnet_ros.runtime.frame_statistics import (DelayTracker, EventCounter, ReasonCounter,
                                                SampleWindow, StageTimings, WindowedCount)

# Per-frame stages (icnet_ros.runtime.stages); 'age' is the frame's age at publish (now - header stamp).
STAGES = NODE_STAGES
TIMING_KEYS = tuple(f"{stage}_ms" for stage in STAGES) + ("age_ms", "batch_size")
MIB = 1024 * 1024


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

    def describe(self) -> str:
        return (f"{self.weights} on {self.device} ({self.precision}), network input "
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
    return [("Events in window", count.in_window), ("Events since startup", count.total),
            ("Duration of window (s)", count.window_s), ("Actual frequency (Hz)", count.rate_hz)]


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
                          _frequency(received) + [("Seconds since last frame", idle_s)])

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
        ("Target frequency (Hz)", received.rate_hz),
        ("Minimum acceptable frequency (Hz)",
         max(thresholds.min_output_hz, thresholds.min_output_fraction * received.rate_hz)),
        ("Maximum acceptable frequency (Hz)", math.inf),
        ("Earliest timestamp delay:", earliest), ("Latest timestamp delay:", latest),
        ("Earliest acceptable timestamp delay:", -1.0),
        ("Latest acceptable timestamp delay:",
         thresholds.max_output_delay_s if thresholds.max_output_delay_s > 0 else math.inf),
        ("Frames with a zero stamp", stamps.zero), ("Frames before the clock started", stamps.no_clock),
        ("Frames stamped in the future", stamps.early), ("Frames stamped too far in the past", stamps.late),
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
        ("Lifecycle state", node.lifecycle), ("Model loaded", node.model_loaded),
        ("Device", model.device if model else "-"),
        ("Precision", model.precision if model else "-"),
        ("Network input size", "x".join(map(str, model.input_size)) if model else "-"),
        ("Weights", model.weights if model else "-"), ("Label set", model.labels if model else "-"),
        ("Frames received", received.total), ("Frames processed", processed.total),
        ("Frames dropped", dropped.total), ("Frames refused", refused.total),
    ]
    pairs += [(f"Frames refused ({reason})", count) for reason, count in by_reason.items()]
    pairs += [("Frames without camera_info", counters.without_camera_info.sample(now).total),
              ("Inference failures", failures.total), ("Frames in flight", node.in_flight)]
    pairs += [("Failures survived", sum(node.faults.values()))]
    pairs += [(f"Failures survived ({kind})", count) for kind, count in node.faults.items()]
    batch = counters.batch_sizes.summary(now)
    pairs += [("Batch size p50", batch.p50 if batch else math.nan),
              ("Batch size max", batch.max if batch else math.nan)]
    for stage, summary in counters.stages.summary(now).items():
        for label in ("p50", "p95", "max"):
            pairs.append((f"{stage} {label} (ms)", getattr(summary, label) if summary else math.nan))
    pairs += _memory(model, node.memory or {})
    pipeline_status = status(f"{prefix}: {task}pipeline", level, message, hardware_id, pairs)

    return DiagnosticArray(header=Header(stamp=stamp),
                           status=[input_status, output_status, pipeline_status])


def _memory(model: ModelInfo | None, memory: dict) -> list[tuple[str, object]]:
    """GPU memory on CUDA (torch's allocated tensors); on the CPU the engine reports the
    process's resident memory instead, and the GPU keys say 0."""
    allocated, peak = (memory.get("allocated") or 0) / MIB, (memory.get("peak") or 0) / MIB
    if model is not None and model.device.startswith("cuda"):
        return [("GPU memory in use (MiB)", allocated), ("GPU memory peak (MiB)", peak)]
    return [("GPU memory in use (MiB)", 0.0), ("GPU memory peak (MiB)", 0.0),
            ("Process memory (MiB)", allocated), ("Process memory peak (MiB)", peak)]


def timing(prefix: str, header: Header, timings_ms: dict[str, float], age_ms: float,
           batch_size: int = 1) -> DiagnosticArray:
    """One frame's stage times in milliseconds (the engine's are its batch's), and the
    frames in its forward pass, stamped with the frame's header."""
    pairs = [(f"{stage}_ms", float(timings_ms.get(stage, 0.0))) for stage in STAGES]
    pairs += [("age_ms", age_ms), ("batch_size", batch_size)]
    return DiagnosticArray(header=header, status=[
        status(f"{prefix}: timing", DiagnosticStatus.OK, "milliseconds per stage", "", pairs)])
