"""The cameras one node serves, and where each one's outputs go.

Every output of a camera lives in the sub-namespace ``segmentation/`` of the camera's
namespace: the images (``class_mask``, ``color_mask``, ``overlay``, ``confidence``), their
``camera_info`` (image_transport puts an image's calibration beside it, and the input's
``camera_info`` already sits beside the input), ``label_info`` and ``timing``.
Without ``image_topics`` the node serves one camera: input ``image`` (or
``image/compressed``), outputs ``segmentation/class_mask``... in the node's namespace.
With ``image_topics`` every entry is one camera and its outputs go in its namespace
(``front/image`` -> ``front/segmentation/class_mask``, ``/cams/left/image_raw`` ->
``/cams/left/segmentation/class_mask``); with compressed input the node subscribes to
``<entry>/compressed``. The camera's name in diagnostics is that namespace (``front``,
``cams/left``). Two entries in the same namespace would publish to the same outputs and
are refused.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rclpy.exceptions import InvalidTopicNameException
from rclpy.validate_topic_name import validate_topic_name

from icnet_ros.ros.parameters import ConfigurationError

DEFAULT_IMAGE_TOPIC = "image"
OUTPUT_NAMESPACE = "segmentation"


def output_topic(namespace: str, output: str) -> str:
    """Where the camera in ``namespace`` (``''``, ``/front``) publishes ``output``."""
    return f"{namespace.rstrip('/')}/{OUTPUT_NAMESPACE}/{output}" if namespace else f"{OUTPUT_NAMESPACE}/{output}"


@dataclass(frozen=True)
class Camera:
    """One input and the namespace of its outputs."""

    name: str  # '' for the single default camera
    input_topic: str
    output_namespace: str  # '' or e.g. 'front/': the camera's namespace, relative to the node's
    image_topic: str = ""  # the image's base topic (input_topic without '/compressed')

    def topic(self, output: str) -> str:
        """The topic of ``output`` (``segmentation/class_mask``, ``front/segmentation/timing``)."""
        return output_topic(self.output_namespace, output)


def cameras(image_topics: Sequence[str] | None, compressed: bool) -> list[Camera]:
    """The cameras named by the ``image_topics`` parameter (None or [] = the single ``image``)."""
    if image_topics is None or len(image_topics) == 0:
        image_topics, single = [DEFAULT_IMAGE_TOPIC], True
    else:
        single = False
        if isinstance(image_topics, str) or not all(isinstance(t, str) for t in image_topics):
            raise ConfigurationError(f"image_topics must be a list of topic names, got {image_topics!r}")
    result: list[Camera] = []
    seen: dict[str, str] = {}
    for topic in image_topics:
        topic = topic.strip()
        try:
            validate_topic_name(topic)
        except InvalidTopicNameException as error:
            raise ConfigurationError(f"image_topics: {topic!r} is not a valid topic name ({error})") from None
        namespace = topic.rsplit("/", 1)[0] + "/" if "/" in topic else ""
        if namespace in seen:
            raise ConfigurationError(f"image_topics: {seen[namespace]!r} and {topic!r} are in the same "
                                     f"namespace, so their outputs would share topics; give every "
                                     f"camera its own namespace (front/image, rear/image)")
        seen[namespace] = topic
        name = "" if single else namespace.strip("/")
        result.append(Camera(name, topic + "/compressed" if compressed else topic, namespace, topic))
    return result
