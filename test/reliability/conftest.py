"""The reliability tests run real node processes through the harness of ``test/ros``.

Its fixtures (``ros_environment``: a random ROS_DOMAIN_ID on this host with the shipped
Fast DDS shared-memory profile; ``ros_client``; ``start_segmenter``) come from
``test/ros/ros_fixtures.py``, importable through ``pythonpath`` in ``pytest.ini``.
"""

from ros_fixtures import ros_client, ros_environment, start_segmenter  # noqa: F401 - fixtures of this folder
