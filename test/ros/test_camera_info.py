"""camera_info beside the masks, where image_transport's rule finds it: the calibration of
the frame's own stamp, never another's, and frames without one counted; the rule on its own."""

from __future__ import annotations

import time

import numpy as np
import pytest
from builtin_interfaces.msg import Time
from ros_harness import RELIABLE, rgb_message, same_header, values_of, wait_until
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header

from icnet_ros.ros.camera_info import CalibrationsByStamp, camera_info_topic
from icnet_ros.ros.diagnostics import FRAMES_PROCESSED, FRAMES_WITHOUT_CAMERA_INFO

pytestmark = pytest.mark.ros


def calibration(header: Header, focal: float) -> CameraInfo:
    return CameraInfo(header=header, height=30, width=40, distortion_model="plumb_bob",
                      d=[0.1, 0.0, 0.0, 0.0, 0.0], k=[focal, 0.0, 20.0, 0.0, focal, 15.0, 0.0, 0.0, 1.0])


# image_transport's getCameraInfoTopic (ros-perception/image_common,
# image_transport/src/camera_common.cpp): the names but the last (empty ones dropped),
# then camera_info, always absolute. rviz2's Camera display and CameraSubscriber use it.
@pytest.mark.parametrize("image,info", [("image", "/camera_info"), ("/image", "/camera_info"),
                                        ("/cam/color_mask", "/cam/camera_info"),
                                        ("front/image_raw", "/front/camera_info"),
                                        ("/cams/left/image_rect", "/cams/left/camera_info"),
                                        ("/cam//seg/overlay", "/cam/seg/camera_info"),
                                        ("/cam/seg/", "/cam/seg/camera_info")])
def test_calibration_topics_follow_image_transports_rule(image, info):
    assert camera_info_topic(image) == info


def test_calibrations_are_found_by_exact_stamp_and_the_oldest_are_forgotten():
    calibrations = CalibrationsByStamp(keep=3)
    headers = [Header(stamp=Time(sec=10, nanosec=n), frame_id="optical") for n in range(5)]
    for index, header in enumerate(headers):
        calibrations.put(calibration(header, 100.0 + index))
    assert calibrations.matching(headers[0]) is None and calibrations.matching(headers[1]) is None
    mask_header = Header(stamp=Time(sec=10, nanosec=3), frame_id="mask_frame")
    matched = calibrations.matching(mask_header)
    assert matched.k[0] == 103.0 and matched.header == mask_header
    assert calibrations.matching(Header(stamp=Time(sec=11, nanosec=3))) is None


@pytest.fixture(scope="module")
def node(start_segmenter, tiny_weights):
    return start_segmenter(tiny_weights, namespace="calibrated", name="calibrated",
                           parameters={"diagnostics_period_s": 0.25, "publish_confidence": True})


def image_outputs(node) -> list[str]:
    """The node's Image topics, as the ROS graph has them."""
    published = node.client.node.get_publisher_names_and_types_by_node("icnet_segmenter", "/calibrated")
    return sorted(topic for topic, types in published if "sensor_msgs/msg/Image" in types)


def test_each_image_output_finds_the_calibration_of_its_own_stamp_by_image_transports_rule(node):
    """Every image output's camera_info, found as rviz2 and image_transport find it,
    carries the frame's own calibration with the frame's header; never another stamp's."""
    client = node.client
    outputs = wait_until(lambda: len(image_outputs(node)) == 4 and image_outputs(node), 20, "the image outputs")
    assert outputs == [node.output(name) for name in ("class_mask", "color_mask", "confidence", "overlay")]
    beside = {camera_info_topic(topic) for topic in outputs}
    assert beside == {node.output("camera_info")}
    (info_topic,) = beside
    # The input's calibration is another topic: the node never hears its own output.
    subscribed = dict(client.node.get_subscriber_names_and_types_by_node("icnet_segmenter", "/calibrated"))
    assert node.topic("camera_info") in subscribed and info_topic not in subscribed
    info_publisher = client.in_executor(
        lambda: client.node.create_publisher(CameraInfo, node.topic("camera_info"), RELIABLE))
    images = {topic: client.collector(Image, topic) for topic in outputs}   # subscribed: all are published
    infos = client.collector(CameraInfo, info_topic)
    try:
        wait_until(lambda: info_publisher.get_subscription_count() > 0
                   and infos.subscription.get_publisher_count() > 0
                   and all(c.subscription.get_publisher_count() > 0 for c in images.values()), 20,
                   "the camera_info topics to match")
        before = values_of(node.status("pipeline"))
        sent = {}
        for index in range(7):
            header = node.header(f"optical_{index}")
            if index % 3 == 0:      # its calibration
                info_publisher.publish(calibration(header, 500.0 + index))
            elif index % 3 == 1:    # a calibration of another stamp only
                other = Header(stamp=Time(sec=header.stamp.sec, nanosec=(header.stamp.nanosec + 1) % 10**9),
                               frame_id=header.frame_id)
                info_publisher.publish(calibration(other, 900.0 + index))
            time.sleep(0.05)        # the calibration first, as camera drivers send it
            node.send(rgb_message(header, np.zeros((30, 40, 3), np.uint8)))
            node.answer(header)
            sent[index] = header
        for index in (0, 3, 6):     # in order, on one reliable writer: the others came before 6's
            info = infos.wait_for(lambda m: same_header(m.header, sent[index]), what=f"frame {index}'s camera_info")
            assert info.k[0] == 500.0 + index and (info.height, info.width) == (30, 40)
            assert list(info.d) == [0.1, 0.0, 0.0, 0.0, 0.0] and info.distortion_model == "plumb_bob"
            for topic, collector in images.items():   # each image of the frame has the same header
                image = collector.wait_for(lambda m: same_header(m.header, sent[index]), what=f"frame {index} on {topic}")
                assert (image.height, image.width) == (info.height, info.width)
        paired = {(m.header.stamp.sec, m.header.stamp.nanosec) for m in infos.messages}
        for index in (1, 2, 4, 5):
            assert (sent[index].stamp.sec, sent[index].stamp.nanosec) not in paired
        assert all(m.k[0] < 900.0 for m in infos.messages)
        without = int(before[FRAMES_WITHOUT_CAMERA_INFO]) + 4
        values = values_of(node.status("pipeline", lambda v: int(v[FRAMES_PROCESSED])
                                       >= int(before[FRAMES_PROCESSED]) + 7))
        assert int(values[FRAMES_WITHOUT_CAMERA_INFO]) == without
    finally:
        for collector in (infos, *images.values()):
            collector.close()
        client.in_executor(lambda: client.node.destroy_publisher(info_publisher))
