"""Python 3.10 and Humble's rclpy upward: the sources checked by vermin, the rest refused with one line."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SOURCES = ["icnet_ros", "icnet_bench", "icnet_train", "launch", "test"]


def test_the_sources_need_nothing_newer_than_python_3_10():
    """vermin finds the newest Python each syntax, module, function and member needs
    (``datetime.UTC`` is 3.11), annotations included."""
    vermin = shutil.which("vermin", path=str(Path(sys.executable).parent)) or shutil.which("vermin")
    if vermin is None:
        pytest.skip("vermin is not installed (pip install vermin: the test requirements have it)")
    result = subprocess.run([vermin, "--target=3.10-", "--violations", "--no-tips", "--eval-annotations",
                             "--no-parse-comments", "-q", *SOURCES], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, f"needs a Python newer than 3.10:\n{result.stdout}{result.stderr}"


def run_python(code: str, **environment: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120,
                          env={**os.environ, **environment})


def test_a_python_older_than_3_10_is_refused_with_one_line():
    result = run_python("import sys; sys.version_info = (3, 9, 18, 'final', 0); import icnet_ros")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "icnet_ros needs Python 3.10 or newer (ROS 2 Humble, Jazzy, Kilted); this is Python 3.9"]


def test_an_rclpy_older_than_humbles_is_refused_with_one_line():
    """Foxy and Galactic have no rclpy.lifecycle (made unimportable here); the node's
    executable stops before anything starts, naming what is supported."""
    result = run_python("import sys; sys.modules['rclpy.lifecycle'] = None\n"
                        "from icnet_ros.ros.node_main import main; main()", ROS_DISTRO="foxy")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "icnet_ros needs ROS 2 Humble, Jazzy or Kilted (rclpy 3.3 or newer) with Python 3.10 or newer; "
        "ROS_DISTRO=foxy without rclpy.lifecycle (Foxy, Galactic or older) is not supported"]
