"""The instruments run in this process set its environment for themselves and their children
(``icnet_bench.node_session.isolate``: a private ROS_DOMAIN_ID, the shipped Fast DDS profile).
Each test module here leaves ``os.environ`` as it found it: a pytest-xdist worker goes on to
other folders' tests, whose nodes would otherwise start in the instrument's domain, away from
their session's client."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(scope="module", autouse=True)
def environment_restored():
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)
