"""The tests' ROS domains: disjoint between xdist workers, and between fixtures and instruments."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

PROBE = """
import json, domain_ids
first, last = (int(n) for n in domain_ids.instrument_range().split("-"))
print(json.dumps({"fixtures": sorted({int(domain_ids.fresh_domain_id()) for _ in range(300)}),
                  "instruments": list(range(first, last + 1))}))
"""


def _ranges(worker: str, count: str) -> dict[str, list[int]]:
    environment = {**os.environ, "PYTEST_XDIST_WORKER": worker, "PYTEST_XDIST_WORKER_COUNT": count}
    done = subprocess.run([sys.executable, "-c", PROBE], env=environment, capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parents[1], check=True, timeout=60)
    return json.loads(done.stdout)


def test_workers_fixtures_and_instruments_never_share_a_domain():
    ranges = [_ranges(f"gw{k}", "2") for k in range(2)]
    sets = [set(r[kind]) for r in ranges for kind in ("fixtures", "instruments")]
    assert all(sets) and sum(map(len, sets)) == len(set().union(*sets)), "overlapping domains"
    assert set().union(*sets) <= set(range(1, 201))
    alone = _ranges("gw0", "1")
    assert len(alone["fixtures"]) == len(alone["instruments"]) == 100
