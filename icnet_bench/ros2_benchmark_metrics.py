"""The figures of one run and of repeated runs, as NVIDIA ros2_benchmark defines them (see
:mod:`icnet_bench.ros2_benchmark_form` for each metric's definition)."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from typing import Any

from icnet_bench.summaries import stats

MISSED_LIMIT = 0.05  # ros2_benchmark's acceptable frame loss
PUBLISHER_TOLERANCE = 0.95  # a trial's publisher must reach this share of its rate
THEIR_METRICS = ("NUM_FRAMES_SENT", "NUM_MISSED_FRAMES", "MEAN_PLAYBACK_FRAME_RATE", "MEAN_FRAME_RATE",
                 "RECEIVED_DURATION", "FIRST_SENT_RECEIVED_LATENCY", "LAST_SENT_RECEIVED_LATENCY",
                 "MAX_JITTER", "MIN_JITTER", "MEAN_JITTER", "STD_DEV_JITTER", "MEAN_OVERALL_CPU_UTILIZATION")
OUR_METRICS = ("missed_fraction", "node_cpu_percent", "node_rss_mib")
LATENCY_KEYS = ("p50", "p90", "p99", "max", "mean")



def trimmed_mean(values: Sequence[float | None]) -> float | None:
    """Mean with the best and the worst dropped (from three values on), as ros2_benchmark combines runs."""
    kept = sorted(v for v in values if v is not None and not math.isnan(v))
    if len(kept) >= 3:
        kept = kept[1:-1]
    return statistics.fmean(kept) if kept else None


def _rate(times: Sequence[float]) -> float:
    return (len(times) - 1) / (times[-1] - times[0]) if len(times) >= 2 and times[-1] > times[0] else 0.0


def run_metrics(sent: Sequence[tuple[int, float]], arrivals: Sequence[tuple[int, float]],
                origin: float) -> dict[str, Any]:
    """One run's figures from the (stamp, monotonic s) of every send and every answer; ``frames``
    lists each sent frame's (send, answer or None) in ms after ``origin``."""
    sent_at = dict(sent)
    answered: dict[int, float] = {}
    for stamp, at in arrivals:
        if stamp in sent_at:
            answered.setdefault(stamp, at)
    received = sorted(answered.values())
    send_times = [at for _, at in sent]
    intervals = [b - a for a, b in zip(received, received[1:])]
    jitter_ms = [abs(b - a) * 1e3 for a, b in zip(intervals, intervals[1:])]
    missed = len(sent) - len(answered)
    return {
        "NUM_FRAMES_SENT": len(sent), "NUM_MISSED_FRAMES": missed,
        "MEAN_PLAYBACK_FRAME_RATE": _rate(send_times), "MEAN_FRAME_RATE": _rate(received),
        "RECEIVED_DURATION": (received[-1] - received[0]) * 1e3 if received else None,
        "FIRST_SENT_RECEIVED_LATENCY": (received[0] - send_times[0]) * 1e3 if received else None,
        "LAST_SENT_RECEIVED_LATENCY": (received[-1] - send_times[-1]) * 1e3 if received else None,
        "MAX_JITTER": max(jitter_ms, default=None), "MIN_JITTER": min(jitter_ms, default=None),
        "MEAN_JITTER": statistics.fmean(jitter_ms) if jitter_ms else None,
        "STD_DEV_JITTER": statistics.pstdev(jitter_ms) if jitter_ms else None,
        "missed_fraction": missed / len(sent) if sent else None,
        "latency_ms": stats([(at - sent_at[stamp]) * 1e3 for stamp, at in answered.items()]),
        "frames": [[round((at - origin) * 1e3, 3),
                    None if stamp not in answered else round((answered[stamp] - origin) * 1e3, 3)]
                   for stamp, at in sent],
    }


def combine(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Every scalar figure and latency percentile of ``runs`` as their trimmed mean."""
    combined: dict[str, Any] = {key: trimmed_mean([run.get(key) for run in runs])
                                for key in THEIR_METRICS + OUR_METRICS}
    combined["latency_ms"] = {key: trimmed_mean([(run["latency_ms"] or {}).get(key) for run in runs])
                              for key in LATENCY_KEYS}
    combined["runs"] = len(runs)
    return combined


def sustained(metrics: dict[str, Any], rate: float) -> bool:
    """At most 5 % missed, and the publisher reached the rate."""
    return (metrics["missed_fraction"] is not None and metrics["missed_fraction"] <= MISSED_LIMIT
            and publisher_kept_up(metrics, rate))


def publisher_kept_up(metrics: dict[str, Any], rate: float) -> bool:
    return metrics["NUM_FRAMES_SENT"] < 2 or metrics["MEAN_PLAYBACK_FRAME_RATE"] >= PUBLISHER_TOLERANCE * rate
