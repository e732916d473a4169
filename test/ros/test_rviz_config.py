"""config/icnet.rviz and the copy the launch file writes for rviz:=true: the node's topics,
resolved in the launched namespace (so rviz2's Camera display finds the calibration by
image_transport's rule), the fixed frame given, and display QoS that receives the outputs
whatever ``output_qos_reliability``. rviz2 itself cannot be installed here; the copy
against a launched node is in test_cli_tools.py."""

from __future__ import annotations

import copy

import pytest
import yaml
from rclpy.qos import (
    DurabilityPolicy,
    HistoryPolicy,
    LivelinessPolicy,
    QoSCompatibility,
    QoSProfile,
    ReliabilityPolicy,
    qos_check_compatible,
    qos_profile_sensor_data,
)
from ros_harness import REPO

from icnet_ros.ros.camera_info import camera_info_topic
from icnet_ros.ros.cameras import Camera
from icnet_ros.ros.parameters import SPECS
from icnet_ros.ros.qos import RELIABILITY, qos_profile
from icnet_ros.ros.rviz_config import displays, rviz_config

TEMPLATE = (REPO / "config" / "icnet.rviz").read_text()
IMAGE, CAMERA = "rviz_default_plugins/Image", "rviz_default_plugins/Camera"
POLICIES = {"Best Effort": ReliabilityPolicy.BEST_EFFORT, "Reliable": ReliabilityPolicy.RELIABLE,
            "Volatile": DurabilityPolicy.VOLATILE, "Transient Local": DurabilityPolicy.TRANSIENT_LOCAL,
            "Keep Last": HistoryPolicy.KEEP_LAST}


def display_qos(display: dict) -> QoSProfile:
    """The subscription QoS rviz2 makes from a display's Topic properties."""
    topic = display["Topic"]
    return QoSProfile(depth=topic["Depth"], history=POLICIES[topic["History Policy"]],
                      reliability=POLICIES[topic["Reliability Policy"]],
                      durability=POLICIES[topic["Durability Policy"]])


def compatible(publisher: QoSProfile, subscription: QoSProfile) -> bool:
    """rmw's QoS compatibility check, liveliness as the rmw resolves its default (automatic)."""
    publisher, subscription = copy.copy(publisher), copy.copy(subscription)
    publisher.liveliness = subscription.liveliness = LivelinessPolicy.AUTOMATIC
    return qos_check_compatible(publisher, subscription)[0] == QoSCompatibility.OK


def test_the_template_shows_the_nodes_input_and_outputs():
    node = Camera("", "image", "", "image")   # the single camera, as the node names its outputs
    shown = [(d["Class"], d["Topic"]["Value"]) for d in displays(yaml.safe_load(TEMPLATE))]
    assert shown == [(IMAGE, "image"), (IMAGE, node.topic("overlay")), (IMAGE, node.topic("color_mask")),
                     (CAMERA, node.topic("color_mask"))]


def test_every_display_receives_the_outputs_whatever_output_qos_reliability():
    assert sorted(SPECS["output_qos_reliability"].choices) == sorted(RELIABILITY)
    depth = SPECS["output_qos_depth"].default
    for display in displays(yaml.safe_load(TEMPLATE)):
        for reliability in RELIABILITY:
            assert compatible(qos_profile(reliability, depth), display_qos(display)), (display["Name"], reliability)
    # The Camera display's calibration subscription is rviz2's own: SensorDataQoS.
    assert all(compatible(qos_profile(r, depth), qos_profile_sensor_data) for r in RELIABILITY)


@pytest.mark.parametrize("namespace,image,topics", [
    ("", "image", ["/image", "/segmentation/overlay", "/segmentation/color_mask"]),
    ("front", "/cam/image_raw", ["/cam/image_raw", "/front/segmentation/overlay", "/front/segmentation/color_mask"]),
    ("/cams/left/", "image_raw", ["/cams/left/image_raw", "/cams/left/segmentation/overlay",
                                  "/cams/left/segmentation/color_mask"]),
])
def test_the_launch_copy_has_every_topic_resolved_and_the_fixed_frame(namespace, image, topics):
    template = yaml.safe_load(TEMPLATE)
    config = yaml.safe_load(rviz_config(TEMPLATE, namespace=namespace, image=image, fixed_frame="left_optical"))
    input_topic, overlay, color_mask = topics
    assert [d["Topic"]["Value"] for d in displays(config)] == [input_topic, overlay, color_mask, color_mask]
    # The Camera display finds the calibration beside the colour mask, where the node publishes it.
    assert camera_info_topic(color_mask) == color_mask.rsplit("/", 1)[0] + "/camera_info"
    assert config["Visualization Manager"]["Global Options"]["Fixed Frame"] == "left_optical"
    for display in displays(template):
        display["Topic"]["Value"] = None
    for display in displays(config):
        display["Topic"]["Value"] = None
    template["Visualization Manager"]["Global Options"]["Fixed Frame"] = "left_optical"
    assert config == template   # nothing else changed
