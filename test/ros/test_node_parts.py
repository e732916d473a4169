"""The node's parts that need no DDS: parameters and their file, QoS, the latest-frame slot,
image messages, diagnostics keys, the node-process command line, and the shipped Fast DDS and rviz2 configurations."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
import xml.etree.ElementTree as ET

import numpy as np
import pytest
import yaml
from rclpy.qos import DurabilityPolicy, HistoryPolicy, ReliabilityPolicy
from ros_harness import FASTDDS_PROFILE, PARAMS_FILE
from std_msgs.msg import Header

from icnet_ros.ros import diagnostics
from icnet_ros.ros.image_messages import image_array, image_msg
from icnet_ros.ros.latest_frame import LatestSlot
from icnet_ros.ros.node_process import NodeProcess, ros_arguments
from icnet_ros.ros.parameters import (
    DEFAULT_WEIGHTS,
    PARAMETERS,
    SPECS,
    ConfigurationError,
    RuntimeSettings,
    check_read_only,
    readable_file,
    weights_path,
)
from icnet_ros.ros.qos import qos_profile

RUNTIME = set(RuntimeSettings.__dataclass_fields__)


def test_parameter_file_holds_every_parameter_with_its_default():
    data = yaml.safe_load(PARAMS_FILE.read_text())
    assert list(data) == ["/**/icnet_segmenter"]
    values = data["/**/icnet_segmenter"]["ros__parameters"]
    assert list(values) == [spec.name for spec in PARAMETERS]
    for spec in PARAMETERS:
        assert values[spec.name] == spec.default and type(values[spec.name]) is type(spec.default), spec.name


def test_descriptors_describe_and_bound_every_parameter():
    for spec in PARAMETERS:
        descriptor = spec.descriptor()
        assert descriptor.description, spec.name
        assert descriptor.read_only == (spec.name not in RUNTIME), spec.name
        if isinstance(spec.default, float):
            assert descriptor.floating_point_range, spec.name
        elif isinstance(spec.default, int) and not isinstance(spec.default, bool):
            assert descriptor.integer_range, spec.name
    alpha = SPECS["overlay_alpha"].descriptor().floating_point_range[0]
    assert (alpha.from_value, alpha.to_value) == (0.0, 1.0)


def test_read_only_values_are_checked_with_the_reason():
    defaults = {spec.name: spec.default for spec in PARAMETERS}
    check_read_only(defaults)
    check_read_only({**defaults, "device": "cuda:1", "input_height": 257, "input_width": 513})
    for change, reason in (({"device": "gpu"}, "device must be"),
                           ({"precision": "int8"}, "precision must be one of"),
                           ({"input_transport": "theora"}, "input_transport must be one of"),
                           ({"input_qos_reliability": "sometimes"}, "input_qos_reliability must be"),
                           ({"warmup_width": 640}, "warmup_height and warmup_width")):
        with pytest.raises(ConfigurationError, match=reason):
            check_read_only({**defaults, **change})


def test_paths_are_checked_before_use(tmp_path):
    assert weights_path("") == DEFAULT_WEIGHTS  # '' = the demo weights shipped in the package
    with pytest.raises(ConfigurationError, match="does not exist"):
        weights_path(str(tmp_path / "missing.safetensors"))
    with pytest.raises(ConfigurationError, match="is not a file"):
        weights_path(str(tmp_path))
    unreadable = tmp_path / "locked.safetensors"
    unreadable.write_bytes(b"x")
    unreadable.chmod(0)
    try:
        if not os.access(unreadable, os.R_OK):       # root reads anything
            with pytest.raises(ConfigurationError, match="not readable"):
                readable_file(str(unreadable), "weights file")
    finally:
        unreadable.chmod(0o600)
    assert readable_file(str(unreadable), "weights file") == unreadable


def test_qos_profiles():
    sensor = qos_profile("best_effort", 1)
    assert (sensor.reliability, sensor.depth, sensor.history, sensor.durability) == (
        ReliabilityPolicy.BEST_EFFORT, 1, HistoryPolicy.KEEP_LAST, DurabilityPolicy.VOLATILE)
    assert qos_profile("reliable", 3).reliability == ReliabilityPolicy.RELIABLE
    with pytest.raises(ValueError):
        qos_profile("eventually", 1)
    with pytest.raises(ValueError):
        qos_profile("reliable", 0)


def test_latest_slot_keeps_only_the_newest_and_counts_replacements():
    slot: LatestSlot[int] = LatestSlot()
    assert slot.put(1) is False
    assert slot.put(2) is True           # 1 was never taken: dropped
    assert slot.take(0) == 2
    assert slot.take(0.01) is None
    results = []
    taker = threading.Thread(target=lambda: results.append(slot.take(5.0)))
    taker.start()
    assert slot.close() is False         # wakes the waiting worker; nothing was waiting
    taker.join(5.0)
    assert results == [None] and slot.put(3) is False and slot.take(0) is None
    slot.reopen()
    slot.put(4)
    assert slot.take(0) == 4
    slot.put(5)
    assert slot.close() is True          # 5 is discarded: the node counts it as dropped
    slot.reopen()
    assert slot.take(0) is None


@pytest.mark.parametrize("image", [
    np.arange(12, dtype=np.uint8).reshape(3, 4),
    np.arange(36, dtype=np.uint8).reshape(3, 4, 3),
    np.linspace(0, 1, 12, dtype=np.float32).reshape(3, 4),
], ids=["mono8", "rgb8", "32FC1"])
def test_image_messages_round_trip(image):
    header = Header(frame_id="camera")
    msg = image_msg(header, image)
    assert msg.header is header
    assert msg.step == image.shape[1] * image.itemsize * (image.shape[2] if image.ndim == 3 else 1)
    np.testing.assert_array_equal(image_array(msg), image)
    with pytest.raises(ValueError):
        image_msg(header, image.astype(np.int64))


def test_fastdds_profile_has_shared_memory_and_udp_only():
    namespace = {"d": "http://www.eprosima.com"}
    root = ET.parse(FASTDDS_PROFILE).getroot()
    descriptors = {d.findtext("d:transport_id", namespaces=namespace): d
                   for d in root.iterfind(".//d:transport_descriptor", namespace)}
    kinds = {d.findtext("d:type", namespaces=namespace): d for d in descriptors.values()}
    assert set(kinds) == {"SHM", "UDPv4"}
    assert int(kinds["SHM"].findtext("d:segment_size", namespaces=namespace)) == 64 * 1024 * 1024
    assert int(kinds["SHM"].findtext("d:maxMessageSize", namespaces=namespace)) == 64 * 1024 * 1024
    participant = root.find(".//d:participant", namespace)
    assert participant.get("is_default_profile") == "true"
    used = [t.text for t in participant.iterfind("d:rtps/d:userTransports/d:transport_id", namespace)]
    assert sorted(used) == sorted(descriptors)
    assert participant.findtext("d:rtps/d:useBuiltinTransports", namespaces=namespace) == "false"


def test_rate_and_delay_keys_are_the_ones_diagnostic_updater_tools_read():
    """FrequencyStatus and TimeStampStatus of diagnostic_updater name their values so (its
    update_functions); rqt_runtime_monitor and aggregators read them by these names."""
    assert (diagnostics.EVENTS_IN_WINDOW, diagnostics.EVENTS_SINCE_STARTUP, diagnostics.WINDOW_DURATION,
            diagnostics.ACTUAL_FREQUENCY, diagnostics.TARGET_FREQUENCY, diagnostics.MIN_ACCEPTABLE_FREQUENCY,
            diagnostics.MAX_ACCEPTABLE_FREQUENCY) == (
        "Events in window", "Events since startup", "Duration of window (s)", "Actual frequency (Hz)",
        "Target frequency (Hz)", "Minimum acceptable frequency (Hz)", "Maximum acceptable frequency (Hz)")
    assert (diagnostics.EARLIEST_DELAY, diagnostics.LATEST_DELAY, diagnostics.EARLIEST_ACCEPTABLE_DELAY,
            diagnostics.LATEST_ACCEPTABLE_DELAY) == (
        "Earliest timestamp delay:", "Latest timestamp delay:", "Earliest acceptable timestamp delay:",
        "Latest acceptable timestamp delay:")


def test_refusals_per_reason_are_read_back_from_a_pipeline_status():
    values = {"Frames refused": "5", "Frames refused (undecodable)": "3", "Frames refused (too large)": "2",
              "Frames received": "9", "Failures survived (take)": "1"}
    assert diagnostics.refused_key("undecodable") == "Frames refused (undecodable)"
    assert diagnostics.refused_by_reason(values) == {"undecodable": 3, "too large": 2}


def test_node_command_line_from_parameters_namespace_and_remaps():
    assert ros_arguments(params_file="config/icnet.yaml", parameters={"weights": "w.safetensors", "autostart": False,
                                                                      "cpu_threads": 1, "labels_file": ""},
                         namespace="cam/", remaps={"image": "/camera/image_raw"}) == [
        "--ros-args", "--params-file", "config/icnet.yaml", "-p", "weights:=w.safetensors", "-p", "autostart:=false",
        "-p", "cpu_threads:=1", "-p", "labels_file:=''", "-r", "__ns:=/cam", "-r", "image:=/camera/image_raw"]
    assert ros_arguments(namespace="/") == ["--ros-args"]


def test_node_process_logs_and_stops_with_sigint(tmp_path):
    """A stand-in node (Python that prints its arguments and sleeps): its log, and SIGINT ending it."""
    script = ("import os, sys, time; print(os.environ['ICNET_TEST_VARIABLE'], flush=True); "
              "print('args', sys.argv[1:], flush=True); time.sleep(120)")
    process = NodeProcess(tmp_path / "logs" / "stand_in.log", command=[sys.executable, "-c", script],
                          parameters={"answer": 42}, environment={"ICNET_TEST_VARIABLE": "set"})
    try:
        deadline = time.monotonic() + 60
        while "args" not in process.log():
            assert process.alive() and time.monotonic() < deadline, process.log()
            time.sleep(0.05)
        assert process.log().splitlines()[0] == "set"
        assert process.last_line() == "args ['--ros-args', '-p', 'answer:=42']"
        assert process.returncode is None
        code, _ = process.exit_after(signal.SIGINT, 60)
        # Python ends an uncaught KeyboardInterrupt by SIGINT itself.
        assert code == -signal.SIGINT and "KeyboardInterrupt" in process.log() and not process.alive()
    finally:
        process.stop()


def test_a_shutdown_signal_whose_exception_is_dropped_still_ends_the_node():
    """The first signal shuts the context down before it raises: Python drops an exception
    raised in a finaliser (where a signal can land), and spin must end all the same."""
    from icnet_ros.ros.shutdown_signals import ShutdownRequested, ShutdownSignals

    calls: list[str] = []
    signals = ShutdownSignals(on_first=lambda: calls.append("shutdown"))
    try:
        signals._handle(signal.SIGINT, None)
    except ShutdownRequested:   # as a __del__ would drop it
        pass
    assert calls == ["shutdown"] and signals.received == signal.SIGINT
    signals._handle(signal.SIGTERM, None)   # noted, nothing more
    assert calls == ["shutdown"] and signals.received == signal.SIGINT
