"""The transport floor of the segmentation node: answers every image with a mask, no model.

``icnet_echo`` subscribes to ``image`` and publishes, on ``segmentation/class_mask``, a ``mono8``
image of the input's size carrying the input header, from the subscription callback:
the same messages the segmentation node receives and sends, without its threads,
decoding or network. ``icnet-bench-node`` runs it beside the segmentation node to
measure what moving the frames costs (``python -m icnet_bench.echo_node --ros-args
-p input_qos_reliability:=reliable``).
"""

from __future__ import annotations

import sys

import numpy as np
import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from sensor_msgs.msg import Image

from icnet_ros.ros.cameras import output_topic
from icnet_ros.ros.image_messages import image_msg
from icnet_ros.ros.qos import qos_profile

NODE_NAME = "icnet_echo"


class EchoNode(Node):
    """Answers each ``image`` with a zero ``class_mask`` of its size."""

    def __init__(self, **kwargs) -> None:
        super().__init__(NODE_NAME, **kwargs)
        reliability = self.declare_parameter("input_qos_reliability", "best_effort").value
        self._masks: dict[tuple[int, int], np.ndarray] = {}
        self._publisher = self.create_publisher(Image, output_topic("", "class_mask"), qos_profile("reliable", 1))
        self.create_subscription(Image, "image", self._on_image, qos_profile(reliability, 1))

    def _on_image(self, msg: Image) -> None:
        size = (msg.height, msg.width)
        if size not in self._masks:
            self._masks[size] = np.zeros(size, np.uint8)
        self._publisher.publish(image_msg(msg.header, self._masks[size]))


def main(args: list[str] | None = None) -> int:
    """Spin until SIGINT/SIGTERM."""
    rclpy.init(args=args)
    node = None
    try:
        node = EchoNode()
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
