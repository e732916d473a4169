"""One camera's outputs: the mask images, the calibration beside them, the timing message."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.lifecycle import LifecycleNode
from rclpy.qos import QoSProfile
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header

from icnet_ros.ros.camera_info import TOPIC as CAMERA_INFO_TOPIC
from icnet_ros.ros.cameras import Camera
from icnet_ros.ros.image_messages import image_msg
from icnet_ros.runtime.visualization import blend, colorize

IMAGE_TOPICS = ("class_mask", "color_mask", "overlay", "confidence")


class CameraOutputs:
    """The lifecycle publishers of one camera, created one by one so that a failure midway
    leaves every publisher created so far in ``publishers`` (to be destroyed)."""

    def __init__(self) -> None:
        self.publishers: dict[str, object] = {}

    def create(self, node: LifecycleNode, camera: Camera, qos: QoSProfile) -> None:
        for topic in IMAGE_TOPICS:
            self.publishers[topic] = node.create_lifecycle_publisher(Image, camera.topic(topic), qos)
        self.publishers["timing"] = node.create_lifecycle_publisher(DiagnosticArray, camera.topic("timing"), qos)
        self.publishers[CAMERA_INFO_TOPIC] = node.create_lifecycle_publisher(
            CameraInfo, camera.topic(CAMERA_INFO_TOPIC), qos)

    def __iter__(self) -> Iterator[object]:
        return iter(list(self.publishers.values()))

    def subscribed(self, topic: str) -> bool:
        return self.publishers[topic].get_subscription_count() > 0

    def publish_images(self, header: Header, images: dict[str, np.ndarray], calibration: CameraInfo | None) -> None:
        """Every image with ``header``, then ``calibration`` (the same header) on the
        ``camera_info`` beside them, which serves them all."""
        for topic, image in images.items():
            self.publishers[topic].publish(image_msg(header, image))
        if calibration is not None:
            self.publishers[CAMERA_INFO_TOPIC].publish(calibration)

    def publish_timing(self, msg: DiagnosticArray) -> None:
        self.publishers["timing"].publish(msg)


def render(class_mask: np.ndarray, palette: np.ndarray, *, color_mask: bool, overlay: bool,
           rgb: np.ndarray | None, alpha: float, confidence: np.ndarray | None) -> dict[str, np.ndarray]:
    """The images to publish: the class mask, and the colour mask, overlay and confidence asked for."""
    images = {"class_mask": class_mask}
    if color_mask or overlay:
        color = colorize(class_mask, palette)
        if color_mask:
            images["color_mask"] = color
        if overlay and rgb is not None:
            images["overlay"] = blend(rgb, color, alpha)
    if confidence is not None:
        images["confidence"] = confidence
    return images
