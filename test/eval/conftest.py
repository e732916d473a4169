"""Sample bags and an isolated ROS environment for the evaluation tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from domain_ids import fresh_domain_id
from eval_support import FRAMES, RATE, REPO, SIZE

from icnet_ros.ros.fastdds_profile import profile_environment
from icnet_ros.tools.make_sample_bag import write_sample_bag


@pytest.fixture(scope="session")
def sample_bags(tmp_path_factory) -> dict[str, Path]:
    """The same 6 synthetic frames (64x128, 10 Hz, labels) as mcap (raw rgb8) and sqlite3 (png)."""
    root = tmp_path_factory.mktemp("bags")
    return {
        "mcap": write_sample_bag(root / "sample_mcap", frames=FRAMES, rate=RATE, size=SIZE, seed=3, storage="mcap"),
        "sqlite3": write_sample_bag(root / "sample_sqlite3", frames=FRAMES, rate=RATE, size=SIZE, seed=3,
                                    storage="sqlite3", image_format="png"),
    }


@pytest.fixture
def ros_isolation(monkeypatch) -> dict[str, str]:
    """A random ROS_DOMAIN_ID, discovery on this host only, the shipped Fast DDS SHM profile."""
    environment = {"ROS_DOMAIN_ID": fresh_domain_id(),
                   "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST",
                   **profile_environment(REPO / "config" / "fastdds_shm.xml"),
                   "RCUTILS_COLORIZED_OUTPUT": "0"}
    for key, value in environment.items():
        monkeypatch.setenv(key, value)
    return environment
