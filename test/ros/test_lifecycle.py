"""The lifecycle as Nav2 and Autoware drive it: deactivate pauses with the model kept
loaded and warm, cleanup releases it, ``release_on_deactivate`` releases on deactivate."""

from __future__ import annotations

import numpy as np
import pytest
from lifecycle_msgs.msg import State, Transition
from lifecycle_msgs.srv import ChangeState, GetState
from ros_harness import rgb_message, values_of, wait_until

from icnet_ros.ros.diagnostics import (
    FRAMES_IN_FLIGHT,
    FRAMES_PROCESSED,
    LIFECYCLE_STATE,
    MODEL_LOADED,
    PROCESS_MEMORY,
    WEIGHTS,
)

pytestmark = [pytest.mark.ros, pytest.mark.jazzy]   # jazzy: also on the Jazzy wheels (make test)


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
    # Nothing is published while inactive: the outputs' publishers are deactivated.
    processed = int(values[FRAMES_PROCESSED])
    node.send(rgb_message(node.header("while_inactive"), np.zeros((30, 40, 3), np.uint8)))
    assert int(pipeline_when(node, "inactive")[FRAMES_PROCESSED]) == processed
    assert "inactive: model kept loaded and warm" in node.process.log()

    transition(node, Transition.TRANSITION_ACTIVATE)
    node.wait_active()
    assert_serves(node, "after_activate")
    assert inputs(node) == {"image": 1, "camera_info": 1}


def test_cleanup_releases_the_model_and_configure_loads_it_again(node):
    transition(node, Transition.TRANSITION_DEACTIVATE)
    transition(node, Transition.TRANSITION_CLEANUP)
    assert state(node) == State.PRIMARY_STATE_UNCONFIGURED
    values = pipeline_when(node, "unconfigured")
    assert values[MODEL_LOADED] == "False" and values[WEIGHTS] == "-"
    graph = node.client.node
    wait_until(lambda: not graph.get_publishers_info_by_topic(node.topic("class_mask")), 10,
               "the output publishers to go")
    assert not graph.get_publishers_info_by_topic(node.topic("class_mask/camera_info"))

    transition(node, Transition.TRANSITION_CONFIGURE)
    assert pipeline_when(node, "inactive")[MODEL_LOADED] == "True"
    transition(node, Transition.TRANSITION_ACTIVATE)
    node.wait_active()
    assert_serves(node, "after_configure")
    assert [info.topic_type for info in graph.get_publishers_info_by_topic(
        node.topic("class_mask/camera_info"))] == ["sensor_msgs/msg/CameraInfo"]


def test_release_on_deactivate_frees_the_model_and_activate_reloads_it(start_segmenter, tiny_weights):
    node = start_segmenter(tiny_weights, namespace="frugal", name="frugal",
                           parameters={"diagnostics_period_s": 0.25, "release_on_deactivate": True})
    transition(node, Transition.TRANSITION_DEACTIVATE)
    values = pipeline_when(node, "inactive")
    assert values[MODEL_LOADED] == "False" and values[PROCESS_MEMORY] == "0"
    assert "inactive: model released" in node.process.log()
    transition(node, Transition.TRANSITION_ACTIVATE)
    node.wait_active()
    assert_serves(node, "reloaded")
    assert pipeline_when(node, "active")[MODEL_LOADED] == "True"
