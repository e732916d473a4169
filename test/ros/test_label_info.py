"""label_info: the masks' class names as a latched vision_msgs/LabelInfo, one per camera,
from a real node over real DDS; and a node without vision_msgs that says so and serves."""

from __future__ import annotations

import numpy as np
import pytest
import yaml
from ros_harness import RELIABLE, SegmenterProcess, rgb_message, same_header, wait_until
from sensor_msgs.msg import Image
from std_msgs.msg import Header

from icnet_ros.ros.image_messages import image_array
from icnet_ros.ros.label_info import QOS, TOPIC, label_info
from icnet_ros.weights.labels import CITYSCAPES

pytestmark = pytest.mark.ros

CAMERAS = ("front", "rear")
NAMES = [f"custom class {i}" for i in range(CITYSCAPES.num_classes)]


def vision_msgs():
    """vision_msgs.msg, or a skip naming why it is not here (../shared/ros2-msgs/install.sh)."""
    try:
        import vision_msgs.msg
    except ImportError as error:
        pytest.skip(f"vision_msgs is not importable here ({error}); "
                    "install it with ../shared/ros2-msgs/install.sh")
    return vision_msgs.msg


@pytest.fixture(scope="module")
def labelled(ros_client, ros_environment, tiny_weights, tmp_path_factory):
    """A node serving /labelled/front/image and /labelled/rear/image with a custom label set,
    answering; the label_info subscriptions are only made afterwards, by the tests."""
    vision_msgs()
    folder = tmp_path_factory.mktemp("labelled")
    labels = folder / "labels.yaml"
    labels.write_text(yaml.safe_dump({"name": "custom", "names": NAMES,
                                      "colors": [[i, 2 * i, 3 * i] for i in range(len(NAMES))]}))
    process = SegmenterProcess(folder, weights=tiny_weights, namespace="labelled", name="labelled",
                               parameters={"image_topics": [f"{c}/image" for c in CAMERAS],
                                           "labels_file": str(labels)})
    publisher = ros_client.in_executor(
        lambda: ros_client.node.create_publisher(Image, "/labelled/front/image", RELIABLE))
    masks = ros_client.collector(Image, "/labelled/front/segmentation/class_mask")
    try:
        def answered() -> Image | None:
            process.assert_alive()
            header = Header(stamp=ros_client.now().to_msg(), frame_id="probe")
            image = np.random.default_rng(0).integers(0, 256, (40, 64, 3), dtype=np.uint8)
            publisher.publish(rgb_message(header, image))
            try:
                return masks.wait_for(lambda m: same_header(m.header, header), 1.5)
            except AssertionError:
                return None
        mask = wait_until(answered, 120, "an answer from the node", interval=0)
        yield process, mask
    finally:
        process.stop()
        masks.close()
        ros_client.in_executor(lambda: ros_client.node.destroy_publisher(publisher))


def late_label_info(client, topic: str):
    """Subscribe now (long after the node published) and wait for the latched message."""
    collector = client.collector(vision_msgs().LabelInfo, topic, QOS)
    try:
        return collector.wait_for(lambda m: True, what="the latched label_info")
    finally:
        collector.close()


def test_the_message_maps_every_class_id_to_its_name():
    vision_msgs()
    msg = label_info(CITYSCAPES, Header(frame_id="camera"))
    assert [(c.class_id, c.class_name) for c in msg.class_map] == list(enumerate(CITYSCAPES.names))
    assert msg.threshold == 0.0 and msg.header.frame_id == "camera"


def test_a_subscriber_that_starts_after_the_node_gets_each_cameras_label_info(ros_client, labelled):
    for camera in CAMERAS:
        msg = late_label_info(ros_client, f"/labelled/{camera}/segmentation/{TOPIC}")
        assert [c.class_name for c in msg.class_map] == NAMES


def test_class_ids_are_the_mask_values_and_names_follow_the_labels_file(ros_client, labelled):
    _, mask = labelled
    msg = late_label_info(ros_client, f"/labelled/front/segmentation/{TOPIC}")
    ids = {c.class_id: c.class_name for c in msg.class_map}
    assert ids == dict(enumerate(NAMES))
    assert msg.threshold == 0.0   # argmax masks: no pixel is left out for low confidence
    values = set(np.unique(image_array(mask)).tolist())
    assert values and values <= set(ids)


def test_the_qos_is_reliable_and_transient_local(ros_client, labelled):
    from rclpy.qos import DurabilityPolicy, ReliabilityPolicy
    vision_msgs()
    (info,) = wait_until(lambda: ros_client.node.get_publishers_info_by_topic(f"/labelled/rear/segmentation/{TOPIC}"),
                         20, "the label_info publisher")
    assert info.qos_profile.durability == DurabilityPolicy.TRANSIENT_LOCAL
    assert info.qos_profile.reliability == ReliabilityPolicy.RELIABLE


def test_without_vision_msgs_the_node_says_so_once_and_serves(start_segmenter, tiny_weights,
                                                             tmp_path, monkeypatch):
    """vision_msgs made unimportable for the node process only (a package that raises
    ImportError first on its path): one log line, and the masks still come."""
    hidden = tmp_path / "hide" / "vision_msgs"
    hidden.mkdir(parents=True)
    (hidden / "__init__.py").write_text("raise ImportError('hidden for this test')\n")
    monkeypatch.setenv("PYTHONPATH", str(hidden.parent))
    node = start_segmenter(tiny_weights, namespace="unlabelled", name="unlabelled")
    header = node.header("camera")
    node.send(rgb_message(header, np.zeros((30, 40, 3), np.uint8)))
    node.answer(header)
    log = node.process.log()
    assert log.count("vision_msgs is not importable") == 1, log
    assert "hidden for this test" in log
    assert not node.client.node.get_publishers_info_by_topic(f"/unlabelled/segmentation/{TOPIC}")
