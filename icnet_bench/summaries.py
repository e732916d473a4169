"""Percentile summaries of measured samples, one definition for every instrument."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence


def stats(values: Sequence[float]) -> dict[str, float] | None:
    """p50, p90, p99, mean, min, max and count of ``values`` (None if empty)."""
    values = [v for v in values if v is not None and not math.isnan(v)]
    if not values:
        return None
    ordered = sorted(values)

    def percentile(q: float) -> float:
        position = (len(ordered) - 1) * q
        low = math.floor(position)
        high = min(low + 1, len(ordered) - 1)
        return ordered[low] + (ordered[high] - ordered[low]) * (position - low)
    return {"p50": percentile(0.5), "p90": percentile(0.9), "p99": percentile(0.99),
            "mean": statistics.fmean(ordered),
            "min": ordered[0], "max": ordered[-1], "n": len(ordered)}
