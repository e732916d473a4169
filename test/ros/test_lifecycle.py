"""The lifecycle as Nav2 and Autoware drive it: deactivate pauses with the model kept
loaded and warm, cleanup releases it, ``release_on_deactivate`` releases on deactivate."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rclpy
from lifecycle_msgs.msg import State, Transition
from lifecycle_msgs.srv import ChangeState, GetState
from rclpy.context import Context
from rclpy.lifecycle import TransitionCallbackReturn
from rclpy.parameter import Parameter
from ros_harness import rgb_message, values_of, wait_until
from sensor_msgs.msg import Image
from std_msgs.msg import Header

from icnet_ros.ros.diagnostics import (
    FRAMES_IN_FLIGHT,
    LIFECYCLE_STATE,
    MODEL_LOADED,
    WEIGHTS,
)
from icnet_ros.ros.image_messages import image_msg
from icnet_ros.ros.segmentation_node import SegmentationNode

pytestmark = [pytest.mark.ros, pytest.mark.jazzy]   # jazzy: also on the Jazzy wheels (make test)

RELEASED_MIB = 5.0


def transition(node, transition_id: int) -> None:
    request = ChangeState.Request(transition=Transition(id=transition_id))
    assert node.client.call(ChangeState, node.service("change_state"), request).success


def state(node) -> int:
    return node.client.call(GetState, node.service("get_state"), GetState.Request()).current_state.id


def pipeline_when(node, lifecycle: str) -> dict[str, str]:
    return values_of(node.status("pipeline", lambda v: v[LIFECYCLE_STATE] == lifecycle))


def inputs(node) -> dict[str, int]:
    """Subscriptions of the node on its image and camera_info topics."""
    graph = node.client.node
    return {topic: len(graph.get_subscriptions_info_by_topic(node.topic(topic)))
            for topic in ("image", "camera_info")}


def assert_serves(node, name: str) -> None:
    header = node.header(name)
    node.send(rgb_message(header, np.zeros((30, 40, 3), np.uint8)))
    node.answer(header)


@pytest.fixture(scope="module")
def node(start_segmenter, tiny_weights):
    return start_segmenter(tiny_weights, namespace="managed", name="managed",
                           parameters={"diagnostics_period_s": 0.25})


def test_deactivate_pauses_and_keeps_the_model_loaded(node):
    assert pipeline_when(node, "active")[MODEL_LOADED] == "True"
    assert inputs(node) == {"image": 1, "camera_info": 1}
    transition(node, Transition.TRANSITION_DEACTIVATE)
    assert state(node) == State.PRIMARY_STATE_INACTIVE
    wait_until(lambda: inputs(node) == {"image": 0, "camera_info": 0}, 10, "the input subscriptions to go")
    values = pipeline_when(node, "inactive")
    assert values[MODEL_LOADED] == "True" and values[FRAMES_IN_FLIGHT] == "0"
    assert values[WEIGHTS] != "-"
    assert "inactive: model kept loaded and warm" in node.process.log()

    transition(node, Transition.TRANSITION_ACTIVATE)
    node.wait_active()
    assert_serves(node, "after_activate")
    assert inputs(node) == {"image": 1, "camera_info": 1}


def test_outputs_deliver_nothing_while_inactive(ros_client, tiny_weights):
    """Deactivate deactivates the output publishers (rclpy's ``LifecycleNode.on_deactivate``).

    A node in this process (a context of its own, real DDS) has its own ``class_mask``
    publisher publish a mask while active, while inactive, and active again; a reliable
    subscriber with room for all three gets the first and the last, never the middle one
    (reliable and in order: had it gone out, it would have come before the last).
    """
    success = TransitionCallbackReturn.SUCCESS
    context = Context()
    rclpy.init(context=context)
    node = SegmentationNode(context=context, namespace="in_process", parameter_overrides=[
        Parameter("weights", value=str(tiny_weights)), Parameter("device", value="cpu"),
        Parameter("cpu_threads", value=1), Parameter("output_qos_depth", value=10)])
    masks = ros_client.collector(Image, "/in_process/segmentation/class_mask")
    try:
        assert node.trigger_configure() == success and node.trigger_activate() == success
        publisher = next(p for p in node.publishers if p.topic_name == "/in_process/segmentation/class_mask")
        wait_until(lambda: publisher.get_subscription_count() > 0, 20, "the subscriber to match")

        def publish(label: str) -> None:
            publisher.publish(image_msg(Header(frame_id=label), np.zeros((4, 6), np.uint8)))

        publish("active")
        masks.wait_for(lambda msg: msg.header.frame_id == "active")
        assert node.trigger_deactivate() == success
        publish("inactive")
        assert node.trigger_activate() == success
        publish("active again")
        masks.wait_for(lambda msg: msg.header.frame_id == "active again")
        assert [msg.header.frame_id for msg in masks.messages] == ["active", "active again"]
    finally:
        masks.close()
        node.release()
        node.destroy_node()
        rclpy.try_shutdown(context=context)


def test_cleanup_releases_the_model_and_configure_loads_it_again(node):
    transition(node, Transition.TRANSITION_DEACTIVATE)
    transition(node, Transition.TRANSITION_CLEANUP)
    assert state(node) == State.PRIMARY_STATE_UNCONFIGURED
    values = pipeline_when(node, "unconfigured")
    assert values[MODEL_LOADED] == "False" and values[WEIGHTS] == "-"
    graph = node.client.node
    wait_until(lambda: not graph.get_publishers_info_by_topic(node.output("class_mask")), 10,
               "the output publishers to go")
    assert not graph.get_publishers_info_by_topic(node.output("camera_info"))

    transition(node, Transition.TRANSITION_CONFIGURE)
    assert pipeline_when(node, "inactive")[MODEL_LOADED] == "True"
    transition(node, Transition.TRANSITION_ACTIVATE)
    node.wait_active()
    assert_serves(node, "after_configure")
    assert [info.topic_type for info in graph.get_publishers_info_by_topic(
        node.output("camera_info"))] == ["sensor_msgs/msg/CameraInfo"]


def pss_mib(pid: int) -> float:
    """The process's proportional set size (MiB), from /proc."""
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no Pss in /proc/{pid}/smaps_rollup")


def test_release_on_deactivate_frees_the_model_and_activate_reloads_it(start_segmenter, tiny_weights):
    """Deactivate releases the model: the node process's memory, measured in /proc (not read
    from its diagnostics), falls by more than RELEASED_MIB (at a 129x257 network input the
    engine holds about 10 MiB, mostly its onnxruntime session and arena: the torch backend
    holds too little to measure); activate reloads it."""
    node = start_segmenter(tiny_weights, namespace="frugal", name="frugal", parameters={
        "diagnostics_period_s": 0.25, "release_on_deactivate": True, "device": "cpu", "cpu_threads": 1,
        "cpu_backend": "onnxruntime", "input_height": 129, "input_width": 257})
    pid = node.process.process.pid
    loaded = pss_mib(pid)
    transition(node, Transition.TRANSITION_DEACTIVATE)
    values = pipeline_when(node, "inactive")
    assert values[MODEL_LOADED] == "False"
    assert "inactive: model released" in node.process.log()

    def fell() -> float | None:
        now = pss_mib(pid)
        return now if loaded - now > RELEASED_MIB else None

    released = wait_until(fell, 30, f"the node's memory to fall by {RELEASED_MIB} MiB from {loaded:.1f} MiB")
    print(f"\nnode PSS: model loaded {loaded:.1f} MiB, released {released:.1f} MiB")
    transition(node, Transition.TRANSITION_ACTIVATE)
    node.wait_active()
    assert_serves(node, "reloaded")
    assert pipeline_when(node, "active")[MODEL_LOADED] == "True"
