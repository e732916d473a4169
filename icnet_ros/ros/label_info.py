"""The mask's class names as ``vision_msgs/LabelInfo`` on the sibling ``label_info`` topic.

vision_msgs' convention for segmentation: beside the mask, a latched ``LabelInfo`` whose
``class_map`` maps every mask value (class id) to its name, so a subscriber that starts
late (a mapper, an rviz plugin, a recorder) still learns what the values mean. The node's
masks are the argmax over all classes, so no pixel is left out for low confidence:
``threshold`` is 0. LabelInfo has no field for the model: the header's ``frame_id``, which a
class map does not use, names the network (e.g. ``PIDNet-S``). vision_msgs is optional: without it the class names stay in the
read-only ``class_names`` parameter only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from std_msgs.msg import Header

from icnet_ros.weights.labels import LabelSet

try:
    from vision_msgs.msg import LabelInfo, VisionClass
except ImportError as error:   # not installed: the node runs without label_info
    LabelInfo = VisionClass = None
    MISSING_REASON = f"vision_msgs is not importable ({error})"
else:
    MISSING_REASON = ""

TOPIC = "label_info"
# Reliable and transient local with depth 1: the one message stays with the publisher for
# every subscriber that joins later (rclcpp's and rclpy's "latched" topics).
QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1, reliability=ReliabilityPolicy.RELIABLE,
                 durability=DurabilityPolicy.TRANSIENT_LOCAL)
ARGMAX_THRESHOLD = 0.0


def available() -> bool:
    """Whether vision_msgs imports (else ``MISSING_REASON`` says why not)."""
    return LabelInfo is not None


def label_info(labels: LabelSet, header: Header) -> Any:
    """The LabelInfo of ``labels``: class id (the mask value) -> class name (or group name)."""
    if LabelInfo is None:
        raise RuntimeError(MISSING_REASON)
    return LabelInfo(header=header, threshold=ARGMAX_THRESHOLD, class_map=[
        VisionClass(class_id=class_id, class_name=name) for class_id, name in enumerate(labels.names)])


class LabelInfoPublishers:
    """One latched ``label_info`` per camera, published on configure and removed on cleanup.

    Without vision_msgs the node says so once, when it is created, and publishes nothing.
    """

    def __init__(self, node: Node, topics: Sequence[str]) -> None:
        self._node = node
        self._topics = list(topics)
        self._publishers: list = []
        if not available():
            node.get_logger().warning(f"{MISSING_REASON}: not publishing {', '.join(self._topics)} "
                                      "(the class names are in the class_names parameter)")

    def publish(self, labels: LabelSet, network: str = "") -> None:
        """Latch ``labels`` (the mask values' names); ``network`` goes in the header's frame_id."""
        if not available():
            return
        self.destroy()
        msg = label_info(labels, Header(stamp=self._node.get_clock().now().to_msg(), frame_id=network))
        self._publishers = [self._node.create_publisher(LabelInfo, topic, QOS) for topic in self._topics]
        for publisher in self._publishers:
            publisher.publish(msg)

    def destroy(self) -> None:
        for publisher in self._publishers:
            self._node.destroy_publisher(publisher)
        self._publishers = []
