"""Percentile summaries of measured samples, one definition for every instrument."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def stats(values: Sequence[float]) -> dict[str, float] | None:
    """p50, p90, p99 (linear interpolation), mean, min, max and count of ``values``, leaving out
    None and NaN; None if nothing is left."""
    kept = np.asarray([v for v in values if v is not None and not math.isnan(v)], np.float64)
    if kept.size == 0:
        return None
    p50, p90, p99 = (float(v) for v in np.percentile(kept, (50, 90, 99)))
    return {"p50": p50, "p90": p90, "p99": p99, "mean": float(kept.mean()),
            "min": float(kept.min()), "max": float(kept.max()), "n": int(kept.size)}
