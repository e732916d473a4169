"""The reliability tests run real node processes through the harness of ``test/ros``.

Its fixtures (``ros_environment``: a random ROS_DOMAIN_ID on this host with the shipped
Fast DDS shared-memory profile; ``ros_client``; ``start_segmenter``) are loaded from
``test/ros/conftest.py`` rather than copied.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

ROS_TESTS = Path(__file__).resolve().parents[1] / "ros"
sys.path.insert(0, str(ROS_TESTS))

_spec = importlib.util.spec_from_file_location("ros_test_fixtures", ROS_TESTS / "conftest.py")
_fixtures = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_fixtures)

ros_environment = _fixtures.ros_environment
ros_client = _fixtures.ros_client
start_segmenter = _fixtures.start_segmenter
