"""Windowed frame statistics: event rates, delays, per-stage percentiles (no ROS).

The window follows diagnostic_updater's FrequencyStatus: every report (``sample``) closes
one period, and a window spans the last ``window_size`` periods. All classes are
thread-safe: frames are counted from the subscription callback and the worker threads
while the diagnostics timer samples them. Times are seconds on any monotonic clock the
caller chooses (``time.monotonic()`` in the node), passed in explicitly so that tests
need no sleeping.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class WindowedCount:
    """Events counted over a window of reports."""

    in_window: int
    total: int
    window_s: float

    @property
    def rate_hz(self) -> float:
        """Events per second over the window (0 for an empty window)."""
        return self.in_window / self.window_s if self.window_s > 0 else 0.0


class EventCounter:
    """A monotonically increasing count, reported over the last ``window_size`` periods."""

    def __init__(self, now: float, window_size: int = 5) -> None:
        if window_size < 1:
            raise ValueError(f"window_size must be at least 1, got {window_size}")
        self._lock = threading.Lock()
        self._total = 0
        self._history: deque[tuple[float, int]] = deque([(now, 0)], maxlen=window_size)

    def add(self, count: int = 1) -> None:
        with self._lock:
            self._total += count

    @property
    def total(self) -> int:
        with self._lock:
            return self._total

    def sample(self, now: float) -> WindowedCount:
        """Close a period: events since the oldest period start kept in the window."""
        with self._lock:
            start_time, start_total = self._history[0]
            report = WindowedCount(self._total - start_total, self._total, max(0.0, now - start_time))
            self._history.append((now, self._total))
            return report


class ReasonCounter:
    """Counts per reason (e.g. why a frame was refused), with a window on their sum."""

    def __init__(self, now: float, window_size: int = 5) -> None:
        self._lock = threading.Lock()
        self._by_reason: dict[str, int] = {}
        self._all = EventCounter(now, window_size)

    def add(self, reason: str) -> None:
        with self._lock:
            self._by_reason[reason] = self._by_reason.get(reason, 0) + 1
        self._all.add()

    def by_reason(self) -> dict[str, int]:
        """Totals since start, sorted by reason."""
        with self._lock:
            return dict(sorted(self._by_reason.items()))

    @property
    def total(self) -> int:
        return self._all.total

    def sample(self, now: float) -> WindowedCount:
        return self._all.sample(now)


@dataclass(frozen=True)
class DelayRange:
    """Earliest and latest delay seen during one period, and the stamps outside the
    acceptable range (TimeStampStatus): ``early`` (in the future), ``late``."""

    count: int
    earliest_s: float
    latest_s: float
    early: int = 0
    late: int = 0


@dataclass(frozen=True)
class StampCounts:
    """Stamps since start that had no usable delay or were out of range."""

    zero: int        # header stamp 0: the sender set none
    no_clock: int    # our clock had not started (use_sim_time before the first /clock)
    early: int
    late: int


class DelayTracker:
    """``now - stamp`` delays: their range since the last report (frames with a usable
    stamp) and, since start, the stamps counted instead of measured.

    Like diagnostic_updater's TimeStampStatus: a delay below ``earliest_s`` (a stamp in the
    future) counts as early, one above ``latest_s`` as late; both still enter the range.
    """

    def __init__(self, earliest_s: float = -1.0, latest_s: float = math.inf) -> None:
        self._lock = threading.Lock()
        self.earliest_s, self.latest_s = earliest_s, latest_s
        self._zero = self._no_clock = self._early_total = self._late_total = 0
        self._reset()

    def _reset(self) -> None:
        self._count = self._early = self._late = 0
        self._earliest = math.inf
        self._latest = -math.inf

    def add(self, delay_s: float) -> None:
        with self._lock:
            self._count += 1
            self._earliest = min(self._earliest, delay_s)
            self._latest = max(self._latest, delay_s)
            if delay_s < self.earliest_s:
                self._early += 1
                self._early_total += 1
            elif delay_s > self.latest_s:
                self._late += 1
                self._late_total += 1

    def add_stamp(self, stamp_ns: int, now_ns: int) -> float | None:
        """Record a frame by its header stamp and the clock's time (ns); its delay in
        seconds, None for a zero stamp or a clock that has not started (counted)."""
        if stamp_ns == 0 or now_ns == 0:
            with self._lock:
                if stamp_ns == 0:
                    self._zero += 1
                else:
                    self._no_clock += 1
            return None
        delay_s = (now_ns - stamp_ns) / 1e9
        self.add(delay_s)
        return delay_s

    def set_range(self, earliest_s: float, latest_s: float) -> None:
        with self._lock:
            self.earliest_s, self.latest_s = earliest_s, latest_s

    def counts(self) -> StampCounts:
        with self._lock:
            return StampCounts(self._zero, self._no_clock, self._early_total, self._late_total)

    def sample(self) -> DelayRange | None:
        """The range since the previous call (None if nothing arrived), then start afresh."""
        with self._lock:
            report = (DelayRange(self._count, self._earliest, self._latest, self._early, self._late)
                      if self._count else None)
            self._reset()
            return report


@dataclass(frozen=True)
class Summary:
    """Percentiles of the samples in a window."""

    count: int
    p50: float
    p95: float
    max: float


class SampleWindow:
    """Values kept for ``window_s`` seconds (at most ``max_samples``), summarised on demand."""

    def __init__(self, window_s: float, max_samples: int = 4096) -> None:
        if window_s <= 0 or max_samples < 1:
            raise ValueError("window_s must be positive and max_samples at least 1")
        self.window_s = window_s
        self._lock = threading.Lock()
        self._samples: deque[tuple[float, float]] = deque(maxlen=max_samples)

    def add(self, now: float, value: float) -> None:
        with self._lock:
            self._samples.append((now, value))

    def summary(self, now: float) -> Summary | None:
        """p50, p95 and max of the samples younger than the window, None if there are none."""
        with self._lock:
            while self._samples and self._samples[0][0] < now - self.window_s:
                self._samples.popleft()
            if not self._samples:
                return None
            values = np.fromiter((v for _, v in self._samples), np.float64, len(self._samples))
        p50, p95 = np.percentile(values, (50, 95))
        return Summary(len(values), float(p50), float(p95), float(values.max()))


class StageTimings:
    """One :class:`SampleWindow` per named stage, filled a frame at a time."""

    def __init__(self, stages: tuple[str, ...], window_s: float, max_samples: int = 4096) -> None:
        self.stages = stages
        self._windows = {stage: SampleWindow(window_s, max_samples) for stage in stages}

    def add(self, now: float, timings: dict[str, float]) -> None:
        """Record one frame; stages missing from ``timings`` are not recorded."""
        for stage, window in self._windows.items():
            if stage in timings:
                window.add(now, float(timings[stage]))

    def summary(self, now: float) -> dict[str, Summary | None]:
        return {stage: window.summary(now) for stage, window in self._windows.items()}
