"""The real rosdep (requirements-dev.txt) pointed at the offline ros/rosdistro snapshot in
../shared/rosdistro: its cache is filled once per session."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ROSDISTRO = REPO.parent / "shared" / "rosdistro"


@pytest.fixture(scope="session")
def rosdep_environment(tmp_path_factory) -> dict[str, str]:
    """This process's environment with ``rosdep`` on PATH reading the snapshot (its
    ``rosdep-env.sh``); a skip with the reason where the snapshot or rosdep is absent."""
    script = ROSDISTRO / "rosdep-env.sh"
    if not script.is_file():
        pytest.skip(f"{ROSDISTRO} (the offline ros/rosdistro snapshot) is not present beside the project")
    environment = {**os.environ, "PYTHON": sys.executable, "TMPDIR": str(tmp_path_factory.mktemp("rosdep")),
                   "ROS_PYTHON_VERSION": "3"}
    done = subprocess.run(["bash", "-c", 'out=$("$0") || exit $?; eval "$out" && exec env -0', str(script)],
                          env=environment, capture_output=True, text=True, timeout=300)
    if done.returncode == 3:
        pytest.skip(f"rosdep cannot run here: {done.stderr.strip()}")
    assert done.returncode == 0, done.stderr
    return dict(line.split("=", 1) for line in done.stdout.split("\0") if "=" in line)


@pytest.fixture(scope="session")
def package_source(tmp_path_factory) -> Path:
    """A workspace ``src`` folder with this package's package.xml, as ``rosdep --from-paths``
    sees a clone there (the project folder itself holds .venv, whose ROS wheels carry theirs)."""
    source = tmp_path_factory.mktemp("rosdep_ws") / "src"
    (source / "icnet_ros").mkdir(parents=True)
    shutil.copy2(REPO / "package.xml", source / "icnet_ros" / "package.xml")
    return source
