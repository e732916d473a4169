"""A camera driver stand-in for the fault tests: rgb8 frames at a fixed rate, until stopped.

    python camera_process.py TOPIC NAME RATE

Frame ``seq`` carries ``frame_id = NAME_seq`` and the image :func:`frame` (seq), so a
test can tell which process sent a frame and recompute the image an overlay was made
from. Reliable publisher, depth 1, as camera drivers commonly are; stamps are the
system time. It imports ``ros_harness`` (``test/ros``): its parent passes its own
``sys.path``, which holds pytest's ``pythonpath``, as ``PYTHONPATH``.
"""

from __future__ import annotations

import sys
import time

import numpy as np

SIZE = (48, 64)


def frame(seq: int) -> np.ndarray:
    """The image of frame ``seq``: noise with a flat half, so masks are not all noise."""
    image = np.random.default_rng(seq).integers(0, 256, (*SIZE, 3), dtype=np.uint8)
    image[:, : SIZE[1] // 2] = (200, 60, 30)
    return image


def main(topic: str, name: str, rate: float) -> None:
    import rclpy
    from ros_harness import RELIABLE, rgb_message
    from sensor_msgs.msg import Image
    from std_msgs.msg import Header

    rclpy.init()
    node = rclpy.create_node(f"camera_{name}")
    publisher = node.create_publisher(Image, topic, RELIABLE)
    start = time.monotonic()
    seq = 0
    try:
        while True:
            time.sleep(max(0.0, start + seq / rate - time.monotonic()))
            header = Header(stamp=node.get_clock().now().to_msg(), frame_id=f"{name}_{seq}")
            publisher.publish(rgb_message(header, frame(seq)))
            seq += 1
    except KeyboardInterrupt:
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], float(sys.argv[3]))
