"""The rviz2 view of one launched node: ``config/icnet.rviz`` with its topics fully
qualified and its Fixed Frame set, written by the launch file for ``rviz:=true``.

The shipped file names its topics relative to the node (``image``,
``segmentation/overlay``...). rviz2 resolves an Image display's relative topic in its own
namespace, but its Camera display finds the calibration with image_transport's
``getCameraInfoTopic``, which makes every topic absolute (``segmentation/color_mask`` ->
``/segmentation/camera_info``): in a namespace the display would wait on the wrong
topic. So the launch writes a copy whose every topic is resolved as the node resolves
it (``image`` as the node's remapped input), and whose Fixed Frame is the launch's.
"""

from __future__ import annotations

from typing import Any

import yaml
from rclpy.expand_topic_name import expand_topic_name

INPUT = "image"
NODE_NAME = "icnet_segmenter"
# Best effort matches reliable and best-effort publishers, volatile matches volatile and
# transient-local ones: the displays receive the outputs whatever output_qos_reliability.
DISPLAY_QOS = {"Depth": 1, "Durability Policy": "Volatile", "History Policy": "Keep Last",
               "Reliability Policy": "Best Effort"}


def displays(config: dict[str, Any]) -> list[dict[str, Any]]:
    return config["Visualization Manager"]["Displays"]


def resolve(topic: str, namespace: str) -> str:
    """``topic`` as a node named ``icnet_segmenter`` in ``namespace`` resolves it."""
    return expand_topic_name(topic, NODE_NAME, "/" + namespace.strip("/"))


def rviz_config(template: str, *, namespace: str, image: str, fixed_frame: str) -> str:
    """``template`` (the text of config/icnet.rviz) for the node in ``namespace`` whose input
    ``image`` is remapped to ``image``, with rviz2's Fixed Frame ``fixed_frame``."""
    config = yaml.safe_load(template)
    for display in displays(config):
        topic = display["Topic"]["Value"]
        display["Topic"]["Value"] = resolve(image if topic == INPUT else topic, namespace)
    config["Visualization Manager"]["Global Options"]["Fixed Frame"] = fixed_frame
    return yaml.safe_dump(config, sort_keys=False)
