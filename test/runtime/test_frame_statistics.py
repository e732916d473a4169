"""Windowed rates, delays and percentiles used by the node's diagnostics."""

import threading

import numpy as np
import pytest

from icnet_ros.runtime.frame_statistics import DelayTracker, EventCounter, ReasonCounter, SampleWindow, StageTimings


def test_event_counter_rate_over_the_last_periods():
    counter = EventCounter(now=0.0, window_size=3)
    for second in range(1, 6):
        counter.add(10 * second)          # 10, 20, 30, 40, 50 events in periods 1..5
        report = counter.sample(now=float(second))
    # window = the last 3 periods: events of periods 3, 4, 5 over 3 seconds
    assert report.total == 150
    assert report.in_window == 30 + 40 + 50
    assert report.window_s == pytest.approx(3.0)
    assert report.rate_hz == pytest.approx(40.0)


def test_event_counter_first_report_and_empty_window():
    counter = EventCounter(now=10.0)
    assert counter.sample(10.0).rate_hz == 0.0
    counter.add()
    counter.add()
    report = counter.sample(12.0)
    assert (report.in_window, report.total, report.window_s, report.rate_hz) == (2, 2, 2.0, 1.0)
    with pytest.raises(ValueError):
        EventCounter(0.0, window_size=0)


def test_event_counter_counts_from_many_threads():
    counter = EventCounter(now=0.0)
    threads = [threading.Thread(target=lambda: [counter.add() for _ in range(1000)]) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert counter.total == 4000


def test_reason_counter_keeps_reasons_and_windows_their_sum():
    refused = ReasonCounter(now=0.0, window_size=2)
    for reason in ("step_too_small", "unknown_encoding", "step_too_small"):
        refused.add(reason)
    assert refused.by_reason() == {"step_too_small": 2, "unknown_encoding": 1}
    assert list(refused.by_reason()) == sorted(refused.by_reason())
    assert refused.sample(1.0).in_window == 3
    assert refused.sample(2.0).in_window == 3        # still inside the two-period window
    assert refused.sample(3.0).in_window == 0        # aged out
    assert refused.total == 3


def test_delay_tracker_reports_range_since_last_sample():
    delays = DelayTracker()
    assert delays.sample() is None
    for delay in (0.2, 0.05, 0.4):
        delays.add(delay)
    report = delays.sample()
    assert (report.count, report.earliest_s, report.latest_s) == (3, 0.05, 0.4)
    assert delays.sample() is None


def test_delay_tracker_counts_stamps_it_cannot_age_and_flags_early_and_late():
    """TimeStampStatus's rules: a zero stamp or a clock that has not started gives no
    delay; a delay below the earliest acceptable is early, above the latest late."""
    delays = DelayTracker(earliest_s=-1.0, latest_s=0.5)
    second = 1_000_000_000
    assert delays.add_stamp(0, 100 * second) is None                  # sender set no stamp
    assert delays.add_stamp(99 * second, 0) is None                   # use_sim_time, no /clock yet
    assert delays.add_stamp(160 * second, 100 * second) == -60.0      # a minute in the future
    assert delays.add_stamp(98 * second, 100 * second) == 2.0         # late
    assert delays.add_stamp(100 * second - second // 10, 100 * second) == 0.1
    report = delays.sample()
    assert (report.count, report.early, report.late, report.earliest_s, report.latest_s) == (3, 1, 1, -60.0, 2.0)
    counts = delays.counts()
    assert (counts.zero, counts.no_clock, counts.early, counts.late) == (1, 1, 1, 1)
    assert delays.sample() is None and delays.counts() == counts      # totals stay, the range restarts


def test_sample_window_percentiles_and_ageing():
    window = SampleWindow(window_s=5.0)
    values = np.arange(1, 101, dtype=float)
    for value in values:
        window.add(now=1.0, value=value)
    summary = window.summary(now=2.0)
    assert summary.count == 100
    assert summary.p50 == pytest.approx(np.percentile(values, 50))
    assert summary.p95 == pytest.approx(np.percentile(values, 95))
    assert summary.max == 100.0
    window.add(now=6.5, value=7.0)
    assert window.summary(now=6.5).count == 1          # the samples at t=1 are older than 5 s
    assert window.summary(now=20.0) is None


def test_sample_window_is_bounded():
    window = SampleWindow(window_s=100.0, max_samples=10)
    for value in range(50):
        window.add(0.0, float(value))
    summary = window.summary(0.0)
    assert summary.count == 10 and summary.max == 49.0


def test_stage_timings_per_stage():
    stages = StageTimings(("decode", "inference"), window_s=10.0)
    stages.add(0.0, {"decode": 2.0, "inference": 30.0})
    stages.add(0.0, {"decode": 4.0})
    summary = stages.summary(1.0)
    assert summary["decode"].count == 2 and summary["decode"].max == 4.0
    assert summary["inference"].count == 1 and summary["inference"].p50 == 30.0
    assert StageTimings(("publish",), 1.0).summary(0.0) == {"publish": None}
