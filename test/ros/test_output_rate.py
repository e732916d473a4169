"""Quiet defaults: the output rate is judged against the input rate, not a fixed 5 Hz; a
node answering fewer than ``min_output_fraction`` of the frames that arrive warns."""

from __future__ import annotations

import time

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticStatus
from ros_harness import image_message, rgb_message, values_of

from icnet_ros.ros.diagnostics import ACTUAL_FREQUENCY, MIN_ACCEPTABLE_FREQUENCY, TARGET_FREQUENCY

pytestmark = pytest.mark.ros

PERIOD_S = 0.25   # diagnostics period; the window is the default 5 periods


@pytest.fixture(scope="module")
def node(start_segmenter, tiny_weights):
    # Reliable input with room for a round of frames: every frame sent reaches the node's
    # callback (best effort with depth 1 lets DDS keep only the newest on a loaded machine).
    return start_segmenter(tiny_weights, namespace="rated", name="rated",
                           parameters={"diagnostics_period_s": PERIOD_S, "input_qos_reliability": "reliable",
                                       "input_qos_depth": 10})


def output_statuses(node, since: float) -> list:
    """The output statuses of the reports received after ``since`` (client clock, ns)."""
    name = f"{node.prefix}: output"
    return [s for m in node.diagnostics.messages
            if m.header.stamp.sec * 10**9 + m.header.stamp.nanosec >= since
            for s in m.status if s.name == name]


def test_a_slow_camera_answered_in_full_is_not_a_warning(node):
    """2 Hz, every frame answered: below the old fixed 5 Hz, and OK with the defaults."""
    node.status("output")   # a fresh start of the collected reports
    since = node.client.now().nanoseconds + int(5 * PERIOD_S * 1e9)   # after one full window
    for index in range(10):
        header = node.header(f"slow_{index}")
        node.send(rgb_message(header, np.zeros((30, 40, 3), np.uint8)))
        node.answer(header)
        time.sleep(0.5)
    statuses = output_statuses(node, since)
    rates = [float(values_of(s)[ACTUAL_FREQUENCY]) for s in statuses]
    assert statuses and 0 < max(rates) < 5.0, rates
    assert [s.message for s in statuses if s.level != DiagnosticStatus.OK] == []


def test_answering_fewer_than_the_fraction_of_arriving_frames_warns(node):
    """One good frame in eight (the others malformed: refused or replaced): 12.5 % answered < 50 %,
    a warning even when a loaded machine fits only one round in the statistics window."""
    bad = ("rgb8", 4, 4, 8, bytes(48))   # step too small
    deadline = time.monotonic() + 60.0
    warned = None
    while warned is None and time.monotonic() < deadline:
        for _ in range(7):
            node.send(image_message(node.header("bad"), *bad))
        header = node.header("one_in_eight")   # last: it replaces any bad frame still in the slot
        node.send(rgb_message(header, np.zeros((30, 40, 3), np.uint8)))
        node.answer(header)
        time.sleep(0.1)
        warned = next((s for s in output_statuses(node, 0)
                       if s.level == DiagnosticStatus.WARN and "min_output_fraction" in s.message), None)
    assert warned is not None, [s.message for s in output_statuses(node, 0)]
    values = values_of(warned)
    assert float(values[MIN_ACCEPTABLE_FREQUENCY]) == pytest.approx(
        0.5 * float(values[TARGET_FREQUENCY]), rel=1e-3)
    assert float(values[ACTUAL_FREQUENCY]) < float(values[MIN_ACCEPTABLE_FREQUENCY])
