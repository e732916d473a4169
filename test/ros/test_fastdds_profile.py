"""The shipped Fast DDS profile takes effect whichever Fast DDS the distribution has.

Fast DDS 3 (Kilted) reads FASTDDS_DEFAULT_PROFILES_FILE, Fast DDS 2 (Jazzy, Humble) only
FASTRTPS_DEFAULT_PROFILES_FILE (:mod:`icnet_ros.ros.fastdds_profile`). A process without
the profile keeps Fast DDS's default transports (a 512 KiB shared-memory segment): larger
samples go in pieces, and a best-effort reader loses a sample when one piece is dropped.
So the node here is given the profile only in the variable that its Fast DDS does not read
(each in turn where the version is unknown), as a user who followed another distribution's
instructions, and must still answer full-size frames of 8 encodings sent one at a time, on
a best-effort mask subscription (the issue's client); the test client names the profile
in both. The test runs on the Jazzy wheels too (``-m jazzy``).
"""

from __future__ import annotations

import importlib.metadata as metadata

import numpy as np
import pytest
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from ros_harness import FASTDDS_PROFILE, image_message, same_header, wait_until
from sensor_msgs.msg import Image
from test_segmentation_node import LAYOUT, ROWS

from icnet_ros.ros.fastdds_profile import PROFILE_VARIABLES

pytestmark = [pytest.mark.ros, pytest.mark.slow, pytest.mark.jazzy]

SIZE = (1024, 2048)   # a 2 MB class mask, 2-16 MB frames: four times the default segment and more
ENCODINGS = ["rgb8", "bgr8", "rgba8", "mono8", "mono16", "rgb16", "bayer_rggb8", "yuv422"]
PARAMETERS = {"input_height": 65, "input_width": 129, "warmup_height": SIZE[0], "warmup_width": SIZE[1],
              "publish_color_mask": False, "publish_overlay": False}
BEST_EFFORT = QoSProfile(depth=10, history=HistoryPolicy.KEEP_LAST, reliability=ReliabilityPolicy.BEST_EFFORT)
ANSWER_TIMEOUT_S = 20.0


def unread_variables() -> list[str]:
    """The profile variable this Fast DDS ignores (by its wheel's version); both if unknown."""
    for distribution, reads in (("ros-fastdds", PROFILE_VARIABLES[0]), ("ros-fastrtps", PROFILE_VARIABLES[1])):
        try:
            metadata.version(distribution)
        except metadata.PackageNotFoundError:
            continue
        return [variable for variable in PROFILE_VARIABLES if variable != reads]
    return list(PROFILE_VARIABLES)


@pytest.fixture(scope="module", params=unread_variables())
def node(request, start_segmenter, tiny_weights):
    """A node whose environment names the profile in ``request.param`` only (in its own namespace)."""
    environment = {variable: str(FASTDDS_PROFILE) if variable == request.param else None
                   for variable in PROFILE_VARIABLES}
    segmenter = start_segmenter(tiny_weights, parameters=PARAMETERS, name=f"profile_{request.param}",
                                namespace=request.param.split("_")[0].lower(), environment=environment)
    yield segmenter
    segmenter.process.stop()   # its 64 MiB segment is not needed by the next one


def frame(encoding: str, rng: np.random.Generator) -> tuple[int, bytes]:
    height, width = SIZE
    step = width * LAYOUT[encoding]
    return step, rng.integers(0, 256, int(step * height * ROWS.get(encoding, 1)), dtype=np.uint8).tobytes()


def test_full_size_frames_sent_one_at_a_time_are_all_answered(node):
    # Only a best-effort reader: with a reliable one beside it, the pieces lost in transit
    # would be sent again to this process, and the best-effort reader would see them too.
    node.class_mask.close()
    masks = node.client.collector(Image, node.output("class_mask"), BEST_EFFORT)
    try:
        wait_until(lambda: masks.subscription.get_publisher_count() > 0, 20, "the class_mask publisher")
        for attempt in range(40):   # until the node's writer matched this reader in turn
            header = node.header(f"probe_{attempt}")
            node.send(node.probe(header))
            try:
                masks.wait_for(lambda m, h=header: same_header(m.header, h), 1.0)
                break
            except AssertionError:
                node.process.assert_alive()
        rng = np.random.default_rng(7)
        unanswered = []
        for encoding in ENCODINGS:
            step, data = frame(encoding, rng)
            header = node.header(f"single_{encoding}")
            node.send(image_message(header, encoding, *SIZE, step, data))
            try:
                mask = masks.wait_for(lambda m, h=header: same_header(m.header, h), ANSWER_TIMEOUT_S)
                assert (mask.height, mask.width) == SIZE
            except AssertionError:
                unanswered.append(encoding)
    finally:
        masks.close()
    assert not unanswered, (f"{len(unanswered)} of {len(ENCODINGS)} frames got no mask: {unanswered}\n"
                            f"{node.process.log()}")
