"""The ROS tests' fixtures (``ros_fixtures.py``: isolation, a client node, the segmenter)."""

from ros_fixtures import ros_client, ros_environment, start_segmenter  # noqa: F401 - fixtures of this folder
