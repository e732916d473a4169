"""ROS_DOMAIN_IDs for the tests: never shared by two fixtures, two instrument runs or two
pytest-xdist workers of one test session.

Worker k of n owns the k-th n-th of 1..200. The lower half of it goes to the tests' own
fixtures, one id each, in turn from a random start (so that two sessions on one host rarely
meet); the upper half to the instruments the tests run (``icnet_bench``'s private domains,
drawn from ``ICNET_DOMAIN_IDS``, which :func:`instrument_range` gives).
"""

from __future__ import annotations

import itertools
import os
import random

FIRST, LAST = 1, 200   # Fast DDS maps a domain to ports: 232 is the highest usable id


def _worker_range() -> range:
    index = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw"))
    size = (LAST - FIRST + 1) // int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    return range(FIRST + index * size, FIRST + (index + 1) * size)


_WORKER = _worker_range()
_FIXTURES = _WORKER[: len(_WORKER) // 2]
_IDS = itertools.islice(itertools.cycle(_FIXTURES), random.SystemRandom().randrange(len(_FIXTURES)), None)


def fresh_domain_id() -> str:
    """A ROS_DOMAIN_ID (as the environment variable's text) that no other caller in this worker has."""
    return str(next(_IDS))


def instrument_range() -> str:
    """``ICNET_DOMAIN_IDS`` for the instruments this worker runs: "FIRST-LAST"."""
    return f"{_WORKER[len(_WORKER) // 2]}-{_WORKER[-1]}"
