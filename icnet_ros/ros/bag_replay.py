"""Live replay of a bag through the segmentation node over DDS (``icnet-eval --mode live``).

The replayer publishes every image of the bag on the node's input topic, as recorded
(the stored CDR bytes, published as they are), at the recorded rate (``rate`` times
faster) or, with ``rate`` 0, one frame at a time (the next as soon as the node answered
the previous one, or it timed out). It subscribes to the node's ``segmentation/class_mask``
(and ``timing``) and matches each answer to the frame it sent by header stamp.

Clock semantics: each frame is **re-stamped at publish** with the current system time
(ROS time, as a driver stamps a live camera), the bag's own stamps being in the past;
the node copies the stamp into its outputs, so a class mask names the frame it answers.
Before the replay, each node is sent its topic's first frame as a probe until it answers
one (not counted), so that discovery cannot swallow the first frames.
The replayer keeps the map sent stamp -> original bag stamp, which is what ground
truth, saved masks and output bags use. Latency is measured on this host's monotonic
clock, from just before ``publish`` to the arrival of the class mask in the replayer's
callback (end to end: DDS both ways, decoding, inference, post-processing). A frame with
no answer within ``timeout_s`` of its publication counts as dropped (the node's
latest-frame slot replaces frames it cannot keep up with). Stamps are strictly
increasing, so two frames never share one.

The node is either started here (the installed ``segmentation_node`` executable with
the shipped parameter file, the weights and one namespace per image topic) or already
running (``namespaces`` name it). Both sides use the shipped Fast DDS shared-memory
profile unless a profile is set already (in both Fast DDS variables: :mod:`fastdds_profile`).
"""

from __future__ import annotations

import queue
import struct
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from diagnostic_msgs.msg import DiagnosticArray
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CompressedImage, Image

from icnet_ros.evaluation.bag_reading import BagImage
from icnet_ros.evaluation.scoring import Evaluation
from icnet_ros.ros.background_node import BackgroundNode
from icnet_ros.ros.cameras import output_topic
from icnet_ros.ros.distributions import publisher_count
from icnet_ros.ros.image_messages import image_array
from icnet_ros.ros.node_process import NodeProcess

SEND_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=10, reliability=ReliabilityPolicy.RELIABLE,
                      durability=DurabilityPolicy.VOLATILE)
RECEIVE_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=100, reliability=ReliabilityPolicy.RELIABLE,
                         durability=DurabilityPolicy.VOLATILE)


class ReplayError(RuntimeError):
    """The live replay cannot run (node missing or dead, topics not connected), with the reason."""


def restamp(rawdata: bytes, stamp_ns: int) -> bytes:
    """A copy of a CDR message that starts with a ``std_msgs/Header``, with another stamp."""
    view = memoryview(rawdata)
    endian = "<" if view[1] & 1 else ">"
    stamp = struct.pack(endian + "iI", stamp_ns // 1_000_000_000, stamp_ns % 1_000_000_000)
    return b"".join((view[:4], stamp, view[12:]))   # one copy of the frame, not two


@dataclass(frozen=True)
class ReplayTarget:
    """One image topic of the bag and the node (namespace) that segments it."""

    topic: str
    kind: str  # raw | compressed
    namespace: str

    @property
    def input_topic(self) -> str:
        return f"{self.namespace.rstrip('/')}/image" + ("/compressed" if self.kind == "compressed" else "")

    def output_topic(self, name: str) -> str:
        return output_topic(self.namespace, name)


def replay_node(target: ReplayTarget, weights: Path, log_path: Path, *, params_file: Path | None,
                parameters: dict[str, object]) -> NodeProcess:
    """``segmentation_node`` started as users start it (parameter file, weights, namespace) for ``target``."""
    return NodeProcess(log_path, params_file=params_file, namespace=target.namespace,
                       parameters={"weights": str(Path(weights).resolve()), "input_transport": target.kind,
                                   **parameters})


def _stamp(msg) -> int:
    return msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec


@dataclass
class _Sent:
    frame: BagImage
    stamp_ns: int
    sent: float  # monotonic


@dataclass
class ReplayStats:
    """What the replay saw beyond the per-frame records."""

    late_answers: int = 0  # masks that came after their frame had timed out
    unknown_answers: int = 0  # masks with a stamp this replay never sent
    publish_lag_ms: list[float] = field(default_factory=list)  # behind the recorded schedule at publish


class Replayer:
    """An rclpy node in this process that publishes bag frames and collects the node's answers."""

    def __init__(self, targets: list[ReplayTarget]) -> None:
        self.targets = targets
        self._by_topic = {target.topic: index for index, target in enumerate(targets)}
        self.client = BackgroundNode("icnet_eval_replay")
        self._answers: queue.Queue = queue.Queue()
        self._timings: dict[tuple[int, int], dict[str, float]] = {}
        self._timing_lock = threading.Lock()
        self.publishers, self.subscriptions = self.client.in_executor(self._create_entities)
        self._last_stamp = 0
        self._timed_out: set[tuple[int, int]] = set()
        self._probes: set[tuple[int, int]] = set()
        self._answered: dict[tuple[int, int], object] = {}
        self.timeout_s = 5.0
        self.stats = ReplayStats()

    def _create_entities(self) -> tuple[list, list]:
        """Per target its input publisher and class_mask subscription (and a timing subscription)."""
        node = self.client.node
        publishers, subscriptions = [], []
        for index, target in enumerate(self.targets):
            msg_type = CompressedImage if target.kind == "compressed" else Image
            publishers.append(node.create_publisher(msg_type, target.input_topic, SEND_QOS))
            subscriptions.append(node.create_subscription(
                Image, target.output_topic("class_mask"),
                lambda msg, index=index: self._answers.put((index, time.monotonic(), msg)), RECEIVE_QOS))
            node.create_subscription(DiagnosticArray, target.output_topic("timing"),
                                     lambda msg, index=index: self._on_timing(index, msg), RECEIVE_QOS)
        return publishers, subscriptions

    def _on_timing(self, index: int, msg: DiagnosticArray) -> None:
        stamp = _stamp(msg)
        values = {kv.key.removesuffix("_ms"): float(kv.value) for status in msg.status for kv in status.values}
        with self._timing_lock:
            self._timings[(index, stamp)] = values

    def close(self) -> None:
        self.client.close()

    def wait_connected(self, timeout_s: float, processes: list[NodeProcess] = ()) -> None:
        """Until every input has a subscriber and every class_mask a publisher (or a node died)."""
        deadline = time.monotonic() + timeout_s
        while True:
            for process in processes:
                if not process.alive():
                    raise ReplayError(f"segmentation_node exited with code {process.returncode} before it "
                                      f"was ready: {process.last_line()} (log: {process.log_path})")
            missing = [t.input_topic for t, p in zip(self.targets, self.publishers) if p.get_subscription_count() == 0]
            missing += [t.output_topic("class_mask") for t, s in zip(self.targets, self.subscriptions)
                        if publisher_count(self.client.node, s) == 0]
            if not missing:
                return
            if time.monotonic() > deadline:
                hint = (f"; see {processes[0].log_path}" if processes else
                        " (is segmentation_node running in that namespace, on this ROS_DOMAIN_ID?)")
                raise ReplayError(f"no segmentation node on {', '.join(missing)} within {timeout_s:.0f} s{hint}")
            time.sleep(0.05)

    def handshake(self, probes: list[BagImage], timeout_s: float, processes: list[NodeProcess] = ()) -> None:
        """Send each node ``probes[i]`` (its topic's first frame) every 0.5 s until it answers one.

        Matched endpoints on this side do not mean the node has matched this publisher yet
        (discovery is asymmetric): without the handshake the first frames of a replay may
        be lost. Probe answers are not counted.
        """
        deadline = time.monotonic() + timeout_s
        waiting = set(range(len(self.targets)))
        resend = 0.0
        while waiting:
            now = time.monotonic()
            for process in processes:
                if not process.alive():
                    raise ReplayError(f"segmentation_node exited with code {process.returncode}: "
                                      f"{process.last_line()} (log: {process.log_path})")
            if now > deadline:
                topics = ", ".join(self.targets[i].output_topic("class_mask") for i in sorted(waiting))
                raise ReplayError(f"no class mask on {topics} within {timeout_s:.0f} s of sending a probe frame")
            if now >= resend:
                for index in waiting:
                    stamp = self._next_stamp()
                    self._probes.add((index, stamp))
                    self.publishers[index].publish(restamp(probes[index].rawdata, stamp))
                resend = now + 0.5
            try:
                index, _, msg = self._answers.get(timeout=0.05)
            except queue.Empty:
                continue
            if (index, _stamp(msg)) in self._probes:
                waiting.discard(index)

    def _next_stamp(self) -> int:
        self._last_stamp = max(time.time_ns(), self._last_stamp + 1)
        return self._last_stamp

    def replay(self, frames, evaluation: Evaluation, *, rate: float, timeout_s: float, progress=None) -> None:
        """Publish every frame (see the module docstring) and record each one's fate in ``evaluation``.

        The node's stage times (its ``timing`` topic) are attached to the answered frames at the end.
        """
        self.timeout_s = timeout_s
        pending: dict[tuple[int, int], _Sent] = {}
        first_log = start = None
        for frame in frames:
            index = self._by_topic[frame.topic]
            if rate > 0:
                if first_log is None:
                    first_log, start = frame.log_time_ns, time.monotonic()
                due = start + (frame.log_time_ns - first_log) / 1e9 / rate
                self._serve(pending, evaluation, until=due, progress=progress)
                self.stats.publish_lag_ms.append(max(0.0, time.monotonic() - due) * 1e3)
            stamp = self._next_stamp()
            data = restamp(frame.rawdata, stamp)
            evaluation.mark_started()
            pending[(index, stamp)] = _Sent(frame, stamp, time.monotonic())
            self.publishers[index].publish(data)
            if rate == 0:
                self._serve(pending, evaluation, until=None, progress=progress)
        self._serve(pending, evaluation, until=None, progress=progress)
        time.sleep(0.2)  # the node publishes a frame's timing just after its class mask
        with self._timing_lock:
            for key, record in self._answered.items():
                record.timings_ms = self._timings.get(key)

    def _serve(self, pending: dict, evaluation: Evaluation, *, until: float | None, progress) -> None:
        """Handle answers and timeouts until ``until`` (monotonic), or (None) until nothing is pending."""
        while True:
            now = time.monotonic()
            for key in [k for k, sent in pending.items() if now - sent.sent > self.timeout_s]:
                sent = pending.pop(key)
                self._timed_out.add(key)
                evaluation.lost(sent.frame, "dropped", f"no class mask within {self.timeout_s:g} s",
                                sent_stamp_ns=sent.stamp_ns)
                self._advance(progress, evaluation)
            if until is None and not pending:
                return
            if until is not None and now >= until:
                return
            wait = 0.05 if until is None else min(0.05, max(0.0, until - now))
            try:
                index, received, msg = self._answers.get(timeout=wait)
            except queue.Empty:
                continue
            self._answer(pending, evaluation, index, received, msg)
            self._advance(progress, evaluation)

    def _answer(self, pending: dict, evaluation: Evaluation, index: int, received: float, msg: Image) -> None:
        stamp = _stamp(msg)
        sent = pending.pop((index, stamp), None)
        if sent is None:
            if (index, stamp) in self._probes:
                return
            if (index, stamp) in self._timed_out:
                self.stats.late_answers += 1
            else:
                self.stats.unknown_answers += 1
            return
        self._answered[(index, stamp)] = evaluation.answered(
            sent.frame, image_array(msg).copy(), (received - sent.sent) * 1e3, sent_stamp_ns=stamp)

    @staticmethod
    def _advance(progress, evaluation: Evaluation) -> None:
        if progress is not None:
            progress.update(1)
            progress.set_postfix(answered=evaluation.count("answered"), dropped=evaluation.count("dropped"),
                                 refresh=False)
