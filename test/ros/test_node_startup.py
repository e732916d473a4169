"""Starting the node: from a weight file alone, with compressed input in a namespace,
refusing unusable settings with the reason, and stopping on SIGTERM."""

from __future__ import annotations

import signal
import subprocess

import cv2
import numpy as np
import pytest
import yaml
from rcl_interfaces.srv import GetParameters
from ros_harness import SegmenterProcess, compressed_message, rgb_message, same_header, values_of

from icnet_ros.ros.diagnostics import FRAMES_REFUSED, LABEL_SET, NETWORK_INPUT_SIZE, WEIGHTS, refused_key
from icnet_ros.ros.image_messages import image_array

pytestmark = [pytest.mark.ros, pytest.mark.jazzy]   # jazzy: also on the Jazzy wheels (make test)


def test_starts_from_a_weight_file_alone(start_segmenter, tiny_weights):
    """No parameter file, no size: input size and pre-processing come from the weights."""
    node = start_segmenter(tiny_weights, params_file=False, name="weights_only")
    header = node.header("camera")
    node.send(rgb_message(header, np.full((48, 80, 3), 90, np.uint8)))
    mask = node.answer(header)
    assert (mask.height, mask.width, mask.encoding) == (48, 80, "mono8")
    values = values_of(node.status("pipeline"))
    assert values[NETWORK_INPUT_SIZE] == "65x129"    # the tiny weights' metadata
    assert values[WEIGHTS] == tiny_weights.name
    node.process.exit_on(signal.SIGINT)


def test_compressed_input_in_a_namespace_with_a_custom_label_set(start_segmenter, tiny_weights, tmp_path):
    names = [f"class {i}" for i in range(19)]
    labels = tmp_path / "labels.yaml"
    labels.write_text(yaml.safe_dump({"name": "custom", "names": names,
                                      "colors": [[i, 2 * i, 3 * i] for i in range(19)]}))
    node = start_segmenter(tiny_weights, namespace="front", name="compressed",
                           parameters={"input_transport": "compressed", "labels_file": str(labels)})
    (class_names,) = node.client.call(GetParameters, node.service("get_parameters"),
                                      GetParameters.Request(names=["class_names"])).values
    assert list(class_names.string_array_value) == names
    rng = np.random.default_rng(4)
    image = rng.integers(0, 256, (60, 90, 3), dtype=np.uint8)
    bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    for fmt, extension in (("jpeg", ".jpg"), ("png", ".png"), ("rgb8; jpeg compressed bgr8", ".jpg")):
        ok, data = cv2.imencode(extension, bgr)
        assert ok
        header = node.header(f"front_{extension[1:]}")
        node.send(compressed_message(header, fmt, data.tobytes()))
        mask = node.answer(header)
        assert mask.header.frame_id == header.frame_id
        assert (mask.height, mask.width) == (60, 90) and image_array(mask).max() < 19

    node.send(compressed_message(node.header("garbage"), "jpeg", b"\xff\xd8 definitely not a jpeg"))
    values = values_of(node.status("pipeline", lambda v: v.get(refused_key("undecodable")) == "1"))
    assert values[FRAMES_REFUSED] == "1" and values[LABEL_SET] == "custom (19 classes)"
    header = node.header("after_garbage")
    _, data = cv2.imencode(".png", bgr)
    node.send(compressed_message(header, "png", data.tobytes()))
    assert same_header(node.answer(header).header, header)

    # SIGTERM (what `docker stop` or a process manager sends) stops it as cleanly as SIGINT.
    node.process.exit_on(signal.SIGTERM)


@pytest.mark.parametrize("weights, parameters, message", [
    ("/nonexistent/icnet.safetensors", {}, "does not exist"),
    (None, {"precision": "fp64"}, "precision must be one of fp32, fp16, bf16"),
    (None, {"input_height": 129}, "input_height and input_width"),
    (None, {"labels_file": "/nonexistent/labels.yaml"}, "labels_file '/nonexistent/labels.yaml' does not exist"),
], ids=["missing-weights", "bad-precision", "half-input-size", "missing-labels"])
def test_unusable_settings_stop_the_node_with_the_reason(tmp_path, tiny_weights, ros_environment,
                                                         weights, parameters, message):
    process = SegmenterProcess(tmp_path, weights=tiny_weights if weights is None else weights,
                               parameters=parameters)
    try:
        assert process.process.wait(timeout=60) == 1
    except subprocess.TimeoutExpired:
        raise AssertionError(f"the node kept running:\n{process.log()}") from None
    finally:
        process.stop()
    log = process.log()
    assert message in log
    assert "Traceback" not in log
