"""ICNET_REQUIRE_CUDA=1 (test/conftest.py): a CUDA test cannot pass by skipping."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[2]


def test_a_skipped_cuda_test_fails_when_cuda_is_required():
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "addopts=",
               "test/runtime/test_engine_devices.py", "-k", "warmup and cuda"]
    results = {}
    for required in ("", "1"):
        environment = {**os.environ, "ICNET_REQUIRE_CUDA": required}
        results[required] = subprocess.run(command, cwd=REPO, env=environment, capture_output=True, text=True,
                                           timeout=300)
    if torch.cuda.is_available():  # the test runs, whatever the variable says
        assert results[""].returncode == 0 and results["1"].returncode == 0, results["1"].stdout
        return
    assert results[""].returncode == 0 and "1 skipped" in results[""].stdout, results[""].stdout
    assert results["1"].returncode != 0, results["1"].stdout
    assert "ICNET_REQUIRE_CUDA=1 and this CUDA test was skipped: no CUDA device" in results["1"].stdout
