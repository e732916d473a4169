"""Nothing kills the node: failures injected into a real node process (``faulty_node.py``)
and real ones on the wire, each survived, counted and followed by answered frames.

Every test checks the node's own accounting at the end: frames received = processed +
dropped + refused + failed.
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticStatus
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState
from rclpy.serialization import serialize_message
from ros_harness import rgb_message, same_header, values_of, wait_until
from sensor_msgs.msg import Image
from std_msgs.msg import Header

from icnet_ros.ros.diagnostics import (
    EARLIEST_DELAY,
    FRAMES_DROPPED,
    FRAMES_IN_FLIGHT,
    FRAMES_PROCESSED,
    FRAMES_RECEIVED,
    FRAMES_REFUSED,
    FUTURE_STAMPS,
    INFERENCE_FAILURES,
    LATEST_DELAY,
    SECONDS_SINCE_LAST_FRAME,
    STAMPS_BEFORE_CLOCK,
    ZERO_STAMPS,
    survived_key,
)

pytestmark = pytest.mark.ros

FAULTY_NODE = [sys.executable, str(Path(__file__).with_name("faulty_node.py"))]
# Reliable input: a test that counts its frames must not lose one to best-effort delivery.
PARAMETERS = {"diagnostics_period_s": 0.1, "stale_after_s": 0.5, "cpu_threads": 1,
              "input_qos_reliability": "reliable"}


@pytest.fixture
def start(start_segmenter):
    """``start_segmenter`` whose nodes end with the test, passed or failed: a node left
    running would answer the next test's frames on the same topics."""
    started = []

    def start_node(*args, **kwargs):
        node = start_segmenter(*args, **kwargs)
        started.append(node)
        return node
    yield start_node
    for node in started:
        node.process.stop()
        node.close()


def faulty(*faults: str) -> list[str]:
    return [*FAULTY_NODE, ",".join(faults)]


def frame(node, frame_id: str) -> Image:
    header = node.header(frame_id)
    return header, rgb_message(header, np.full((24, 32, 3), 80, np.uint8))


def answered(node, frame_id: str = "good") -> None:
    header, msg = frame(node, frame_id)
    node.send(msg)
    assert same_header(node.answer(header).header, header)


def pipeline(node, predicate=lambda values: True) -> dict[str, str]:
    return values_of(node.status("pipeline", predicate, timeout=30))


def takes_seen(node) -> int:
    """Malformed messages the node has taken: failed takes counted, plus those rosidl dropped
    (``sequence size exceeds remaining buffer`` on stderr: no error state is left)."""
    return (int(pipeline(node).get(survived_key("take"), 0))
            + node.process.log().count("sequence size exceeds remaining buffer"))


def balanced(values: dict[str, str]) -> bool:
    """Every received frame is processed, dropped, refused or failed (and in flight: 0)."""
    return (int(values[FRAMES_RECEIVED]) == int(values[FRAMES_PROCESSED]) + int(values[FRAMES_DROPPED])
            + int(values[FRAMES_REFUSED]) + int(values[INFERENCE_FAILURES])
            and values[FRAMES_IN_FLIGHT] == "0")


def change_state(node, transition: int) -> bool:
    request = ChangeState.Request(transition=Transition(id=transition))
    return node.client.call(ChangeState, node.service("change_state"), request, timeout=60).success


def stop(node, signum: int = signal.SIGINT) -> float:
    """Signal the node: exit 0, no traceback, no failed exit step; the seconds it took."""
    elapsed = node.process.exit_on(signum)
    assert "at exit" not in node.process.log(), node.process.log()
    return elapsed


@pytest.mark.jazzy   # also on the Jazzy wheels (make test)
def test_failing_callbacks_publishes_decodes_and_takes_are_survived(start, tiny_weights):
    """The diagnostics report raises every 2nd tick, its publish every 3rd, an output's
    subscription count every 5th call; a frame fails to decode (cv2.error, MemoryError) and
    one to publish; malformed CDR arrives on the input. Frames keep being answered, each
    kind is counted in /diagnostics and the node stops with status 0."""
    node = start(tiny_weights, parameters=PARAMETERS, name="callback_faults",
                           command=faulty("diagnostics_report", "diagnostics_publish", "output_publish",
                                          "decode", "subscription_count"))
    for failures, frame_id in enumerate(("decode_fails", "decode_oom", "publish_fails"), 1):
        node.send(frame(node, frame_id)[1])
        pipeline(node, lambda v: int(v[INFERENCE_FAILURES]) == failures)
        answered(node)
    # Undeliverable messages, each one taken before the next frame is sent: the input keeps
    # the last frame only, so a frame sent at once replaces a malformed one the executor has
    # not taken yet (on a loaded machine, most of them). Cut inside the image data, rosidl's
    # size check drops it with a line on stderr and leaves no error state (older rosidl
    # throws: a failed take); cut inside the header, Fast CDR throws: a failed take.
    good = serialize_message(frame(node, "cdr")[1])
    for cut in (len(good) - 9, len(good) // 2, 9):
        taken = takes_seen(node)
        node.send(good[:cut])
        wait_until(lambda: takes_seen(node) > taken, 30, f"the node to take the message cut at {cut}")
        answered(node)

    def counted(v: dict[str, str]) -> bool:
        return (int(v.get(survived_key("take"), 0)) > 0
                and int(v.get(survived_key("subscription count"), 0)) > 0
                and int(v.get(survived_key("diagnostics timer"), 0)) > 0)

    values = pipeline(node, counted)
    assert values[INFERENCE_FAILURES] == "3"      # the two decodes and the publish
    assert balanced(values), values
    answered(node, "last")
    log = node.process.log()
    for reason in ("decode failed: error: injected", "publish failed: RCLError",
                   "diagnostics timer failed: ",     # one line per kind per 5 s: either fault
                   "take failed: FailedTake: Fast CDR exception deserializing message of type sensor_msgs"):
        assert reason in log, reason
    # The stale take error no longer poses as the cause of an unrelated publish failure.
    assert "Failed to publish: Fast CDR" not in log
    stop(node)


def test_a_failing_engine_close_neither_blocks_the_lifecycle_nor_the_exit(start, tiny_weights):
    """Item 6: engine.close() raises at the first deactivate that releases the model (a sticky
    CUDA error): the transition still succeeds, the engine is dropped, activate loads a new one."""
    node = start(tiny_weights, parameters={**PARAMETERS, "release_on_deactivate": True}, name="close_fails",
                 command=faulty("engine_close"))
    assert change_state(node, Transition.TRANSITION_DEACTIVATE)
    assert "stop failed: RuntimeError: injected: CUDA error" in node.process.log()
    assert change_state(node, Transition.TRANSITION_ACTIVATE)
    node.wait_active()
    answered(node)
    assert change_state(node, Transition.TRANSITION_DEACTIVATE)
    assert change_state(node, Transition.TRANSITION_CLEANUP)
    assert change_state(node, Transition.TRANSITION_CONFIGURE)
    assert change_state(node, Transition.TRANSITION_ACTIVATE)
    node.wait_active()
    answered(node)
    assert balanced(pipeline(node, balanced))
    stop(node)


def test_a_deactivate_whose_join_times_out_keeps_the_next_activation_serving(start, tiny_weights):
    """Item 7: a frame holds the submitter 4 s; deactivate waits 1 s and gives up on it.
    The next activation has its own threads and tokens: more frames than pipeline_depth are
    answered, before and after the old thread ends, and every frame is accounted for."""
    node = start(tiny_weights, parameters={**PARAMETERS, "pipeline_depth": 2}, name="stall",
                           command=faulty("stall"))
    node.send(frame(node, "stall")[1])
    wait_until(lambda: "injected: stalling" in node.process.log(), 30, "the submitter to stall")
    assert change_state(node, Transition.TRANSITION_DEACTIVATE)
    assert "did not stop in 1 s" in node.process.log()
    assert change_state(node, Transition.TRANSITION_ACTIVATE)
    node.wait_active()
    for index in range(6):
        answered(node, f"after_{index}")
    # The first activation's publisher thread ended in the deactivate; its submitter now,
    # after the stall (the second activation's threads run until the node stops).
    wait_until(lambda: node.process.log().count("injected: submitter thread ended") == 1, 30,
               "the stalled thread of the first activation to end")
    assert node.process.log().count("injected: publisher thread ended") == 1
    for index in range(6):
        answered(node, f"later_{index}")
    assert balanced(pipeline(node, balanced))
    stop(node)


def test_a_configure_that_fails_midway_leaves_nothing_behind(ros_client, ros_environment, tiny_weights,
                                                             tmp_path):
    """Item 13: the third output publisher cannot be created. The configure fails with the
    reason, the publishers made before it and the engine are released; the next configure
    succeeds and each output has exactly one publisher."""
    from ros_harness import Segmenter, SegmenterProcess
    process = SegmenterProcess(tmp_path, weights=tiny_weights, parameters={**PARAMETERS, "autostart": False},
                               name="configure_fails", command=faulty("publisher_creation"))
    node = Segmenter(ros_client, process)
    try:
        assert not change_state(node, Transition.TRANSITION_CONFIGURE)
        log = process.log()
        assert "cannot configure: injected: cannot create publisher" in log
        assert "injected: engine closed" in log
        assert change_state(node, Transition.TRANSITION_CONFIGURE)
        assert change_state(node, Transition.TRANSITION_ACTIVATE)
        node.wait_active()
        answered(node)
        client = node.client.node
        for topic in ("class_mask", "color_mask", "overlay"):
            assert client.count_publishers(node.output(topic)) == 1, topic
        stop(node)
    finally:
        process.stop()
        node.close()


def test_one_cameras_failed_batch_leaves_the_other_camera_ok(ros_client, ros_environment, tiny_weights, tmp_path):
    """Item 12: two cameras; a batch with only the left camera's frame fails. The left
    camera counts one failure and reports ERROR, the right one stays OK; both keep being
    answered and each camera's frames add up."""
    from ros_harness import RELIABLE, SegmenterProcess
    process = SegmenterProcess(tmp_path, weights=tiny_weights, namespace="pair", name="pair",
                               parameters={**PARAMETERS, "image_topics": "[left/image, right/image]",
                                           "batch_wait_ms": 0.0}, command=faulty("batch_fails"))
    publishers = {side: ros_client.in_executor(lambda side=side: ros_client.node.create_publisher(
        Image, f"/pair/{side}/image", RELIABLE)) for side in ("left", "right")}
    masks = {side: ros_client.collector(Image, f"/pair/{side}/segmentation/class_mask") for side in publishers}
    diagnostics = ros_client.diagnostics()

    def answer(side: str, frame_id: str, timeout: float = 5.0) -> bool:
        header = Header(stamp=ros_client.now().to_msg(), frame_id=frame_id)
        publishers[side].publish(rgb_message(header, np.zeros((24, 32, 3), np.uint8)))
        try:
            masks[side].wait_for(lambda m: same_header(m.header, header), timeout, "the mask")
            return True
        except AssertionError:
            process.assert_alive()
            return False

    def statuses() -> dict[str, object]:
        msg = diagnostics.wait_for(lambda m: any(s.name == "pair/icnet_segmenter: left pipeline"
                                                 for s in m.status), 30, "the pipelines")
        return {s.name.split(": ")[1]: s for s in msg.status}
    try:
        for side in publishers:
            wait_until(lambda: answer(side, "probe"), 120, f"the {side} camera to be served")
        publishers["left"].publish(rgb_message(Header(stamp=ros_client.now().to_msg(), frame_id="fail"),
                                               np.zeros((24, 32, 3), np.uint8)))
        diagnostics.clear()
        wait_until(lambda: values_of(statuses()["left pipeline"])[INFERENCE_FAILURES] == "1", 30,
                   "the failure to be counted")
        current = statuses()
        assert current["left pipeline"].level == DiagnosticStatus.ERROR
        assert current["right pipeline"].level == DiagnosticStatus.OK, current["right pipeline"].message
        assert values_of(current["right pipeline"])[INFERENCE_FAILURES] == "0"
        assert answer("left", "after") and answer("right", "after")
        diagnostics.clear()
        wait_until(lambda: all(balanced(values_of(statuses()[f"{side} pipeline"])) for side in publishers),
                   30, "every frame to be accounted for")
        process.exit_on(signal.SIGINT)
    finally:
        process.stop()
        for collector in (*masks.values(), diagnostics):
            collector.close()
        for publisher in publishers.values():
            ros_client.in_executor(lambda publisher=publisher: ros_client.node.destroy_publisher(publisher))


def test_sim_time_without_a_clock_keeps_diagnostics_and_counts_unaged_frames(start, tiny_weights):
    """Item 10: use_sim_time and no /clock (a paused bag): /diagnostics still comes (a steady
    timer), frames are answered, their age is not made up (counted as before the clock)."""
    node = start(tiny_weights, parameters={**PARAMETERS, "use_sim_time": True}, name="sim_time")
    answered(node)
    values = pipeline(node, lambda v: int(v[FRAMES_PROCESSED]) >= 2)
    assert int(values[FRAMES_PROCESSED]) >= 2
    output = values_of(node.status("output"))
    assert int(output[STAMPS_BEFORE_CLOCK]) == int(values[FRAMES_PROCESSED])
    assert output[LATEST_DELAY] == "nan"
    stale = node.status("input", lambda v: float(v[SECONDS_SINCE_LAST_FRAME]) >= 0.5)
    assert stale.level == DiagnosticStatus.WARN
    assert balanced(pipeline(node, balanced))
    stop(node)


def test_zero_and_future_stamps_are_counted_not_aged(start, tiny_weights):
    """Item 11, as TimeStampStatus does: a zero stamp has no age; a stamp a minute ahead is
    flagged; neither turns the delay into +-1.8e9 s."""
    node = start(tiny_weights, parameters=PARAMETERS, name="stamps")
    header, msg = frame(node, "zero")
    header.stamp.sec, header.stamp.nanosec = 0, 0
    node.send(rgb_message(header, np.zeros((24, 32, 3), np.uint8)))
    assert same_header(node.answer(header).header, header)
    header, _ = frame(node, "future")
    header.stamp.sec += 60
    diagnostics = node.diagnostics
    diagnostics.clear()
    node.send(rgb_message(header, np.zeros((24, 32, 3), np.uint8)))
    assert same_header(node.answer(header).header, header)
    warned = node.status("output", lambda v: v[FUTURE_STAMPS] == "1", fresh=False)
    output = values_of(warned)
    assert output[ZERO_STAMPS] == "1"
    future = [s for m in diagnostics.messages for s in m.status
              if s.name == warned.name and "in the future" in s.message]
    assert future and future[0].level == DiagnosticStatus.WARN
    assert abs(float(values_of(future[0])[EARLIEST_DELAY]) + 60) < 5
    stop(node, signal.SIGTERM)


@pytest.mark.jazzy   # also on the Jazzy wheels (make test)
def test_a_matched_publisher_that_delivers_nothing_is_explained(start, tiny_weights):
    """Item 4: a second publisher matches the input and sends nothing (what a 1024x2048
    best-effort camera without the shared-memory profile looks like to the node): after
    stale_after_s the node logs the likely causes once, naming the profile file, and the
    input status carries them."""
    node = start(tiny_weights, parameters=PARAMETERS, name="silent_publisher")
    client = node.client
    # The camera starts after the node's last frame (a match noticed within a period of the
    # last frame counts as delivered: the node cannot tell whose frame it was).
    node.status("input", lambda v: float(v[SECONDS_SINCE_LAST_FRAME]) >= 0.5)
    silent = client.in_executor(lambda: client.node.create_publisher(Image, node.topic("image"), 1))
    try:
        wait_until(lambda: silent.get_subscription_count() > 0, 30, "the silent publisher to match")
        wait_until(lambda: "no frame arrived for 0.5 s" in node.process.log(), 30, "the log line")
        status = node.status("input", lambda v: True)
        assert status.level == DiagnosticStatus.WARN
        assert "fastdds_shm.xml" in status.message and "BOTH" in status.message or \
            "the camera driver must use it too" in status.message, status.message
        # Once per silence: ten more reports that still carry the causes (each tick looks
        # at the input again), and still one line.
        for _ in range(10):
            assert "although a publisher is matched" in node.status("input").message
        assert node.process.log().count("no frame arrived for") == 1
    finally:
        client.in_executor(lambda: client.node.destroy_publisher(silent))
    answered(node)
    stop(node)


def _caught_signals(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigCgt:"):
            return int(line.split()[1], 16)
    return 0


@pytest.mark.jazzy   # also on the Jazzy wheels (make test)
@pytest.mark.parametrize("moment", ["starting", "warming_up", "active", "deactivating"])
def test_a_signal_at_any_moment_exits_0(start, tiny_weights, ros_environment, tmp_path, moment):
    """SIGINT/SIGTERM while starting (rclpy.init, loading the weights), while warming up,
    active, and during a deactivate that waits for a stalled frame: exit status 0, no
    traceback; the seconds it took are printed (docs/reliability.md has the figures)."""
    from ros_harness import SegmenterProcess
    faults = {"warming_up": faulty("slow_warmup"), "deactivating": faulty("stall_long")}.get(moment)
    signum = signal.SIGTERM if moment in ("active", "warming_up") else signal.SIGINT
    if moment in ("starting", "warming_up"):
        process = SegmenterProcess(tmp_path, weights=tiny_weights, parameters=PARAMETERS, name=moment,
                                   command=faults)
        try:
            if moment == "starting":   # our handlers are in place (SIGTERM caught): main() runs
                wait_until(lambda: _caught_signals(process.process.pid) & (1 << (signal.SIGTERM - 1)), 60,
                           "the node's signal handlers")
            else:
                wait_until(lambda: "configured:" in process.log(), 90, "the node to configure")
            assert "active:" not in process.log()
            print(f"\n{moment}: ", end="")
            process.exit_on(signum)
            assert "could not start" not in process.log()
        finally:
            process.stop()
        return
    node = start(tiny_weights, parameters=PARAMETERS, name=moment, command=faults)
    if moment != "deactivating":
        print(f"\n{moment}: ", end="")
        stop(node, signum)
        return
    node.send(frame(node, "stall")[1])
    wait_until(lambda: "injected: stalling" in node.process.log(), 30, "the submitter to stall")
    # The deactivate is never answered (the node exits inside it): its client goes with the test.
    client = node.client
    service = client.in_executor(lambda: client.node.create_client(ChangeState, node.service("change_state")))
    try:
        assert service.wait_for_service(timeout_sec=30)
        service.call_async(ChangeState.Request(transition=Transition(id=Transition.TRANSITION_DEACTIVATE)))
        wait_until(lambda: "deactivating:" in node.process.log(), 30, "the deactivate to begin")
        print(f"\n{moment}: ", end="")
        stop(node, signum)
    finally:
        client.in_executor(lambda: client.node.destroy_client(service))
    assert "inactive: model released" not in node.process.log()   # the signal came inside its 10 s wait
