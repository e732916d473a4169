"""The node runs the network its weights name (a tiny random PIDNet-S here: `weights:=` only, on
onnxruntime), says which in its log, /diagnostics and label_info, and groups classes as
class_groups says."""

from __future__ import annotations

import signal
import subprocess

import numpy as np
import pytest
import yaml
from rcl_interfaces.srv import GetParameters
from ros_harness import SegmenterProcess, rgb_message, values_of

from icnet_bench.random_weights import TINY_ARCHITECTURES, random_weights
from icnet_ros.ros.diagnostics import LABEL_SET, NETWORK
from icnet_ros.ros.image_messages import image_array
from icnet_ros.ros.label_info import QOS, TOPIC
from icnet_ros.runtime.engine import SegmentationEngine
from icnet_ros.weights.class_groups import read_class_groups
from icnet_ros.weights.labels import CITYSCAPES

pytestmark = pytest.mark.ros

GROUPS = {"name": "driving",
          "groups": [{"name": "drivable", "labels": ["road", "sidewalk"]},
                     {"name": "human", "labels": ["person", "rider"]},
                     {"name": "vehicle", "labels": ["car", "truck", "bus", "train"]}]}
GROUP_NAMES = ["drivable", "human", "vehicle", "other"]


@pytest.fixture(scope="module")
def pidnet_weights(tmp_path_factory):
    return random_weights(tmp_path_factory.mktemp("pidnet") / "pidnet_s.safetensors",
                          architecture=TINY_ARCHITECTURES["pidnet-s"], input_size=(64, 128), bn_statistics=True,
                          source="random initialisation for tests")


def test_a_pidnet_from_its_weights_alone_with_class_groups(start_segmenter, pidnet_weights, ros_client, tmp_path):
    groups = tmp_path / "driving.yaml"
    groups.write_text(yaml.safe_dump(GROUPS))
    node = start_segmenter(pidnet_weights, params_file=False, name="pidnet", namespace="pidnet",
                           parameters={"class_groups": str(groups), "cpu_backend": "onnxruntime"})
    assert "configured: PIDNet-S from pidnet_s.safetensors" in node.process.log()
    header = node.header("camera")
    image = np.random.default_rng(3).integers(0, 256, (48, 80, 3), dtype=np.uint8)
    node.send(rgb_message(header, image))
    mask = image_array(node.answer(header))
    with SegmentationEngine(pidnet_weights, device="cpu") as engine:   # the classes, grouped here
        expected = read_class_groups(groups, CITYSCAPES).apply(engine.segment(image).class_mask)
    assert mask.shape == (48, 80) and (mask == expected).mean() >= 0.999
    values = values_of(node.status("pipeline"))
    assert values[NETWORK] == "PIDNet-S"
    assert values[LABEL_SET] == "cityscapes (19 classes) in 4 groups (driving)"
    (class_names,) = node.client.call(GetParameters, node.service("get_parameters"),
                                      GetParameters.Request(names=["class_names"])).values
    assert list(class_names.string_array_value) == GROUP_NAMES
    try:
        from vision_msgs.msg import LabelInfo
    except ImportError:
        LabelInfo = None
    if LabelInfo is not None:
        collector = ros_client.collector(LabelInfo, node.output(TOPIC), QOS)
        try:
            info = collector.wait_for(lambda m: True, what="the latched label_info")
        finally:
            collector.close()
        assert [(c.class_id, c.class_name) for c in info.class_map] == list(enumerate(GROUP_NAMES))
        assert info.header.frame_id == "PIDNet-S"
    node.process.exit_on(signal.SIGINT)


def test_unknown_class_names_in_the_groups_are_refused_at_configure(tmp_path, pidnet_weights, ros_environment):
    groups = tmp_path / "typo.yaml"
    groups.write_text(yaml.safe_dump({"groups": [{"name": "drivable", "labels": ["road", "sidewalks"]},
                                                 {"name": "human", "labels": ["pedestrian"]}]}))
    process = SegmenterProcess(tmp_path, weights=pidnet_weights, parameters={"class_groups": str(groups)})
    try:
        assert process.process.wait(timeout=120) == 1
    except subprocess.TimeoutExpired:
        raise AssertionError(f"the node kept running:\n{process.log()}") from None
    finally:
        process.stop()
    log = process.log()
    assert "unknown class names" in log and "'sidewalks', 'pedestrian'" in log, log
    assert "Traceback" not in log
