"""Fixtures shared by every layer's tests.

CUDA tests carry ``@pytest.mark.cuda`` and are skipped without a CUDA device. With
``ICNET_REQUIRE_CUDA=1`` (what ``scripts/gpu_check.sh`` sets) every such skip, and any
other skip whose reason names CUDA, is a failure: a GPU run cannot pass by skipping.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
import torch
from domain_ids import instrument_range

from icnet_bench.random_weights import random_weights

REPO = Path(__file__).resolve().parents[1]
SHARED_REFERENCE = REPO.parent / "shared" / "reference"
REQUIRE_CUDA = os.environ.get("ICNET_REQUIRE_CUDA", "") == "1"
NO_CUDA = "no CUDA device on this machine"


def pytest_configure(config) -> None:
    # The tests stop nodes and `ros2 launch` with SIGINT, as a terminal's Ctrl-C. A session
    # started as a background job of a non-interactive shell inherits SIGINT ignored, and an
    # ignored signal stays ignored in every child: give the children the default back.
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    os.environ["ICNET_DOMAIN_IDS"] = instrument_range()   # icnet_bench's private domains (domain_ids.py)
    config.addinivalue_line("markers", "cuda: needs a CUDA device (skipped without one; "
                                       "a failure under ICNET_REQUIRE_CUDA=1)")


def pytest_xdist_auto_num_workers(config) -> int:
    """``-n auto`` (make test): a worker per core, at most 4. Most of a test's time is spent
    waiting on a node process, so two workers on two cores roughly halve the suite's time;
    test files are the unit of distribution (``--dist loadfile``: module fixtures built once)."""
    return max(1, min(os.cpu_count() or 1, 4))


def pytest_collection_modifyitems(config, items) -> None:
    if torch.cuda.is_available():
        return
    for item in items:
        if item.get_closest_marker("cuda"):
            item.add_marker(pytest.mark.skip(reason=NO_CUDA))


def _skip_reason(report) -> str:
    longrepr = report.longrepr
    reason = longrepr[2] if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr)
    return reason.removeprefix("Skipped: ")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if REQUIRE_CUDA and report.skipped and not hasattr(report, "wasxfail"):
        reason = _skip_reason(report)
        if item.get_closest_marker("cuda") or "cuda" in reason.lower():
            report.outcome = "failed"
            report.longrepr = f"ICNET_REQUIRE_CUDA=1 and this CUDA test was skipped: {reason}"


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    """../shared/reference, or a clean skip where it is absent."""
    if not (SHARED_REFERENCE / "icnet_cityscapes_bnnomerge.prototxt").is_file():
        pytest.skip("../shared/reference is not present beside the project")
    return SHARED_REFERENCE


def make_test_weights(path: Path, *, width: float = 0.125, input_size=(65, 129), seed: int = 0,
                      branches: str = "sub124") -> Path:
    """A real weight file of a small random ICNet with non-trivial BN statistics."""
    return random_weights(path, width=width, input_size=tuple(input_size), seed=seed, branches=branches,
                          bn_statistics=True, source="random initialisation for tests")


@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory) -> Path:
    """Small random ICNet weights (width 0.125, 65x129 network input) in the project format."""
    return make_test_weights(tmp_path_factory.mktemp("weights") / "tiny.safetensors")


@pytest.fixture(scope="session")
def install_environments(tmp_path_factory):
    """The install tests' venvs, each built once per session (``environments.py`` says how)."""
    from environments import Environments

    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent   # shared by the workers of one run
    return Environments(base / "environments")


@pytest.fixture(scope="session")
def colcon_workspace(tmp_path_factory):
    """This package colcon-built once per session in a temporary workspace."""
    from colcon_workspace import ColconWorkspace

    return ColconWorkspace.build(tmp_path_factory.mktemp("ws"))
