"""The package's own metadata is enough to run the node.

A fresh venv gets only the ROS 2 wheels (requirements-ros.txt) and then
``pip install -c constraints.txt torch .``: the torch the user picks (setup.py declares
none) and what setup.py declares, nothing from requirements*.txt. Its ``segmentation_node``
then segments frames streamed for 10 s without a traceback, and exits 0 on SIGINT. pip's
cache and the machine's wheel directories serve the downloads. Slow (minutes): ``-m slow`` selects it.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from ros_harness import Segmenter, SegmenterProcess, rgb_message, same_header

pytestmark = [pytest.mark.ros, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
STREAM_S = 10.0


def _pip(venv: Path, *args: str) -> None:
    done = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", *args],
                          capture_output=True, text=True, timeout=1500, cwd=venv.parent)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The venv with the ROS wheels and this package installed from its metadata."""
    venv = tmp_path_factory.mktemp("metadata") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    _pip(venv, "-c", str(REPO / "constraints.txt"), "-r", str(REPO / "requirements-ros.txt"))
    _pip(venv, "-c", str(REPO / "constraints.txt"), "torch", str(REPO))
    return venv


def test_the_installed_package_needs_nothing_it_does_not_declare(installed: Path):
    python = str(installed / "bin" / "python")
    probe = ("import importlib.util, torch; "
             "print(torch.__version__, importlib.util.find_spec('psutil') is None, "
             "importlib.util.find_spec('icnet_ros').origin)")
    version, no_psutil, origin = subprocess.run([python, "-c", probe], capture_output=True, text=True,
                                                check=True, cwd=installed, timeout=300).stdout.split()
    assert version.split("+")[0] == "2.13.0"         # the constraints' torch, no other
    assert no_psutil == "True"                        # the node does not need it
    assert str(installed) in origin                   # the installed copy, not this checkout


def test_the_installed_node_segments_a_10_s_stream(installed: Path, ros_client, tiny_weights, tmp_path):
    executable = installed / "bin" / "segmentation_node"
    assert executable.is_file(), sorted(p.name for p in (installed / "bin").iterdir())
    process = SegmenterProcess(tmp_path, weights=tiny_weights, name="metadata_install",
                               parameters={"diagnostics_period_s": 0.2}, command=[str(executable)])
    node = Segmenter(ros_client, process)
    try:
        node.wait_active()
        answered, sent = 0, 0
        end = time.monotonic() + STREAM_S
        rng = np.random.default_rng(0)
        while time.monotonic() < end:
            header = node.header(f"stream_{sent}")
            node.send(rgb_message(header, rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)))
            sent += 1
            assert same_header(node.answer(header).header, header)
            answered += 1
        print(f"\n{answered} of {sent} frames answered in {STREAM_S:g} s by the metadata-installed node")
        node.process.send_signal(signal.SIGINT)
        assert node.process.process.wait(timeout=30) == 0
        assert "Traceback" not in node.process.log(), node.process.log()
    finally:
        node.process.stop()
        node.close()
