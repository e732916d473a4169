"""Isolation and processes for the ROS tests: fixtures that each folder's conftest imports.

Every test module of ROS tests (``test/ros``, ``test/reliability``) gets a ROS_DOMAIN_ID of
its own (test/domain_ids.py) with discovery limited to this host, checks message field types
(ROS_PYTHON_CHECK_FIELDS=1), and runs both sides with the shipped Fast DDS shared-memory
profile, as the README tells users to. A module's client and nodes end with the module: a
pytest-xdist worker runs modules in any order, and a node left from another module would
answer for the same name (``/icnet_segmenter``) in the same domain.
"""

from __future__ import annotations

import importlib.util
import os

import pytest
from domain_ids import fresh_domain_id
from ros_harness import FASTDDS_PROFILE, RosClient, Segmenter, SegmenterProcess

from icnet_ros.ros.fastdds_profile import profile_environment

ROS_ENVIRONMENT = {
    "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST",
    "ROS_PYTHON_CHECK_FIELDS": "1",
    **profile_environment(FASTDDS_PROFILE),   # both variables: Fast DDS 2 (Jazzy) reads the second
    "RCUTILS_COLORIZED_OUTPUT": "0",
}


@pytest.fixture(scope="module")
def ros_environment():
    """The isolated environment, for this process (set before rclpy.init) and its children."""
    environment = {"ROS_DOMAIN_ID": fresh_domain_id(), **ROS_ENVIRONMENT}
    saved = {key: os.environ.get(key) for key in environment}
    os.environ.update(environment)
    yield environment
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="module")
def ros_client(ros_environment):
    """An rclpy node in the test process that publishes frames and collects outputs."""
    client = RosClient()
    yield client
    client.close()


@pytest.fixture(scope="module")
def start_segmenter(ros_client, tmp_path_factory):
    """Start ``segmentation_node`` (the installed executable) and wait until it is active."""
    started: list[Segmenter] = []
    log_dir = tmp_path_factory.mktemp("segmenter_logs")

    def start(weights, *, parameters=None, namespace="", params_file=True, name="segmenter",
              command=None, environment=None) -> Segmenter:
        process = SegmenterProcess(log_dir, weights=weights, params_file=params_file, parameters=parameters,
                                   namespace=namespace, name=name, command=command, environment=environment)
        compressed = (parameters or {}).get("input_transport") == "compressed"
        segmenter = Segmenter(ros_client, process, namespace, compressed)
        started.append(segmenter)
        try:
            segmenter.wait_active()
        except BaseException:
            process.stop()   # a node left running would answer the next test's frames
            raise
        return segmenter

    yield start
    for segmenter in started:
        segmenter.process.stop()
        segmenter.close()


@pytest.fixture(scope="module")
def workspace_command(request, ros_environment, tmp_path_factory):
    """Start a command (``ros2 launch ...``) in the colcon-built workspace (launch_harness.RosCommand),
    each with its own ROS_HOME and TMPDIR; a skip with the reason where ``ros2 launch`` is absent."""
    if importlib.util.find_spec("ros2launch") is None:
        pytest.skip("ros2 launch is not installed: ../shared/ros2-launch/install.sh (make setup "
                    "does it where present) or a ROS 2 installation provides it")
    from launch_harness import RosCommand

    colcon_workspace = request.getfixturevalue("colcon_workspace")
    started: list[RosCommand] = []

    def start(args: list[str], name: str, env: dict[str, str] | None = None) -> RosCommand:
        command = RosCommand(colcon_workspace, args, tmp_path_factory.mktemp(name), name, env)
        started.append(command)
        return command

    yield start
    for command in started:
        command.close()
