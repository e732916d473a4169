"""A ROS 2 workspace with this package colcon-built from a copy of its sources, as a clone
in ``<ws>/src`` would be; commands run in it with ``install/setup.bash`` sourced."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BUILD_TIMEOUT_S = 300


def colcon_executable() -> str:
    """The venv's colcon, else the system's; a skip with the reason where there is none."""
    found = Path(sys.executable).with_name("colcon")
    if found.exists():
        return str(found)
    which = shutil.which("colcon")
    if which is None:
        pytest.skip("colcon is not installed (pip install colcon-common-extensions)")
    return which


def copy_sources(root: Path) -> Path:
    """The tracked (and untracked, not ignored) sources copied to ``<root>/src/icnet_ros``, as a
    clone there would be."""
    source = root / "src" / "icnet_ros"
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO, check=True,
                           capture_output=True, text=True).stdout.split()
    for name in files:
        if (REPO / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, source / name)
    return source


class ColconWorkspace:
    """``<root>/src/icnet_ros`` built into ``<root>/install``. Its commands run in ``base``
    (an environment; default: this process's, with the venv's executables first)."""

    def __init__(self, root: Path, base: dict[str, str] | None = None) -> None:
        self.root = root
        self.install = root / "install"
        self.prefix = self.install / "icnet_ros"
        self.base = base

    @classmethod
    def build(cls, root: Path) -> ColconWorkspace:
        """Copy the sources and ``colcon build`` them with this venv's colcon."""
        copy_sources(root)
        result = subprocess.run(
            [colcon_executable(), "build", "--base-paths", "src", "--build-base", "build",
             "--install-base", "install"],
            cwd=root, capture_output=True, text=True, timeout=BUILD_TIMEOUT_S,
            env={**os.environ, "COLCON_HOME": str(root / ".colcon")})
        assert result.returncode == 0, result.stdout + result.stderr
        return cls(root)

    def command(self, args: list[str]) -> list[str]:
        """``args`` run by bash after ``source install/setup.bash``; bash execs them, so the
        process started is the command itself (signals reach it)."""
        return ["bash", "-c", 'source "$0" && exec "$@"', str(self.install / "setup.bash"), *args]

    def environment(self, home: Path) -> dict[str, str]:
        """The base environment (default: this process's with the venv's executables first:
        ``ros2``), and ``ROS_HOME`` (logs) and ``TMPDIR`` (launch_ros's parameter files) under
        ``home``."""
        for name in ("ros", "tmp"):
            (home / name).mkdir(parents=True, exist_ok=True)
        base = self.base
        if base is None:
            base = {**os.environ, "PATH": os.pathsep.join([str(Path(sys.executable).parent),
                                                           os.environ.get("PATH", "")])}
        return {**base, "ROS_HOME": str(home / "ros"), "TMPDIR": str(home / "tmp"), "PYTHONUNBUFFERED": "1"}
