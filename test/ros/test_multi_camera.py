"""One node, several cameras (``image_topics``): outputs beside each input, frames that
arrive together in one forward pass, per-camera diagnostics; the default unchanged."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from ros_harness import RELIABLE, SegmenterProcess, rgb_message, same_header, values_of, wait_until
from sensor_msgs.msg import Image
from std_msgs.msg import Header

from icnet_ros.ros.diagnostics import BATCH_SIZE_MAX, BATCH_SIZE_P50, FRAMES_PROCESSED
from icnet_ros.ros.image_messages import image_array
from icnet_ros.runtime.engine import SegmentationEngine

pytestmark = pytest.mark.ros

CAMERAS = {"front": (48, 96), "rear": (120, 160)}  # different sizes
BATCH_WAIT_MS = 500.0  # generous on a loaded machine: frames sent together are surely batched


def scene(height: int, width: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (height // 8, width // 8, 3), dtype=np.uint8)
    return np.repeat(np.repeat(coarse, 8, 0), 8, 1)


class Camera:
    """A publisher on ``<ns>/<camera>/image`` and collectors on the camera's outputs."""

    def __init__(self, client, namespace: str, name: str) -> None:
        self.client, self.name = client, name
        self.topic = f"/{namespace}/{name}"
        self.publisher = client.in_executor(
            lambda: client.node.create_publisher(Image, f"{self.topic}/image", RELIABLE))
        self.class_mask = client.collector(Image, f"{self.topic}/segmentation/class_mask")
        self.timing = client.collector(DiagnosticArray, f"{self.topic}/segmentation/timing")

    def header(self, frame_id: str) -> Header:
        return Header(stamp=self.client.now().to_msg(), frame_id=frame_id)

    def answer(self, header: Header, timeout: float = 20.0):
        mask = self.class_mask.wait_for(lambda m: same_header(m.header, header), timeout, "the mask")
        timing = self.timing.wait_for(lambda m: same_header(m.header, header), timeout, "the timing")
        return mask, values_of(timing.status[0])

    def close(self) -> None:
        self.class_mask.close()
        self.timing.close()
        self.client.in_executor(lambda: self.client.node.destroy_publisher(self.publisher))


@pytest.fixture(scope="module")
def two_cameras(ros_client, ros_environment, tiny_weights, tmp_path_factory):
    """A node serving /multi/front/image and /multi/rear/image, with its cameras."""
    process = SegmenterProcess(tmp_path_factory.mktemp("multi"), weights=tiny_weights, namespace="multi",
                               name="multi", parameters={
                                   "image_topics": [f"{name}/image" for name in CAMERAS],
                                   "batch_wait_ms": BATCH_WAIT_MS, "diagnostics_period_s": 0.5,
                                   "diagnostics_window": 20})
    cameras = {name: Camera(ros_client, "multi", name) for name in CAMERAS}
    diagnostics = ros_client.diagnostics()
    try:
        def matched() -> bool:
            process.assert_alive()
            return all(camera.publisher.get_subscription_count() > 0
                       and camera.class_mask.subscription.get_publisher_count() > 0
                       for camera in cameras.values())
        wait_until(matched, 90, "the node to subscribe and publish")
        # A best-effort frame sent before the node matched us in turn is lost: probe until answered.
        front = cameras["front"]
        wait_until(lambda: _probe(front), 60, "an answer to a probe frame", interval=0)
        yield process, cameras, diagnostics
    finally:
        process.stop()
        diagnostics.close()
        for camera in cameras.values():
            camera.close()


def _probe(camera: Camera) -> bool:
    header = camera.header("probe")
    camera.publisher.publish(rgb_message(header, np.zeros((8, 8, 3), np.uint8)))
    try:
        camera.answer(header, timeout=1.5)
        return True
    except AssertionError:
        return False


def test_frames_sent_together_share_a_forward_pass_and_come_back_per_camera(two_cameras, tiny_weights):
    process, cameras, diagnostics = two_cameras
    frames = {name: scene(*size, seed=i) for i, (name, size) in enumerate(CAMERAS.items())}
    headers = {name: cameras[name].header(f"{name}_optical_frame") for name in CAMERAS}
    for name, camera in cameras.items():
        camera.publisher.publish(rgb_message(headers[name], frames[name]))
    answers = {name: camera.answer(headers[name]) for name, camera in cameras.items()}

    with SegmentationEngine(tiny_weights, device="cpu") as engine:
        for name, (mask, timing) in answers.items():
            assert mask.header.frame_id == f"{name}_optical_frame"
            assert (mask.height, mask.width, mask.encoding) == (*CAMERAS[name], "mono8")
            assert timing["batch_size"] == "2", f"{name} was not batched: {timing}"
            expected = engine.segment(frames[name]).class_mask
            assert (image_array(mask) == expected).mean() > 0.999
        assert answers["front"][1]["inference_ms"] == answers["rear"][1]["inference_ms"]

    # One camera alone is still served, once the others' frames are not coming.
    header = cameras["rear"].header("alone")
    cameras["rear"].publisher.publish(rgb_message(header, frames["rear"]))
    mask, timing = cameras["rear"].answer(header)
    assert timing["batch_size"] == "1" and (mask.height, mask.width) == CAMERAS["rear"]

    # Diagnostics per camera: the frames each one sent, and the batches.
    statuses = {}

    def reported() -> bool:
        for msg in diagnostics.messages:
            statuses.update({s.name: values_of(s) for s in msg.status if s.name.startswith("multi/")})
        return all(f"multi/icnet_segmenter: {name} {task}" in statuses
                   for name in CAMERAS for task in ("input", "output", "pipeline"))
    diagnostics.clear()
    wait_until(reported, 15, "per-camera diagnostics")
    assert "multi/icnet_segmenter: pipeline" not in statuses
    assert statuses["multi/icnet_segmenter: rear pipeline"][FRAMES_PROCESSED] == "2"
    assert statuses["multi/icnet_segmenter: rear pipeline"][BATCH_SIZE_MAX] == "2"
    assert statuses["multi/icnet_segmenter: rear pipeline"][BATCH_SIZE_P50] == "1.5"
    front = statuses["multi/icnet_segmenter: front pipeline"]
    assert int(front[FRAMES_PROCESSED]) >= 2 and front[BATCH_SIZE_MAX] == "2"
    process.assert_alive()


def test_a_single_camera_is_the_default(start_segmenter, tiny_weights):
    node = start_segmenter(tiny_weights, namespace="single", name="single",
                           parameters={"diagnostics_period_s": 0.25})
    timing = node.client.collector(DiagnosticArray, node.output("timing"))
    try:
        wait_until(lambda: timing.subscription.get_publisher_count() > 0, 10, "the timing publisher")
        header = node.header("camera")
        node.send(rgb_message(header, scene(48, 96, seed=5)))
        mask = node.answer(header)
        assert (mask.height, mask.width) == (48, 96)
        values = values_of(timing.wait_for(lambda m: same_header(m.header, header)).status[0])
        assert values["batch_size"] == "1"
        node.diagnostics.clear()
        report = node.diagnostics.wait_for(lambda m: any(s.name.startswith("single/") for s in m.status))
        assert {s.name for s in report.status} == {f"single/icnet_segmenter: {task}"
                                                   for task in ("input", "output", "pipeline")}
    finally:
        timing.close()


@pytest.mark.parametrize("topics, message", [
    (["front/image", "front/image_raw"], "are in the same namespace"),
    (["front/image", "rear image"], "is not a valid topic name"),
], ids=["same-namespace", "invalid-name"])
def test_unusable_image_topics_stop_the_node_with_the_reason(tmp_path, tiny_weights, ros_environment,
                                                             topics, message):
    process = SegmenterProcess(tmp_path, weights=tiny_weights, parameters={"image_topics": topics})
    try:
        assert process.process.wait(timeout=60) == 1
    except subprocess.TimeoutExpired:
        raise AssertionError(f"the node kept running:\n{process.log()}") from None
    finally:
        process.stop()
    assert message in process.log() and "Traceback" not in process.log()
