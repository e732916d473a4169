"""The ROS tests' fixtures (``ros_fixtures.py``: isolation, a client node, the segmenter, workspace commands)."""

from ros_fixtures import (  # noqa: F401 - fixtures of this folder
    ros_client,
    ros_environment,
    start_segmenter,
    workspace_command,
)
