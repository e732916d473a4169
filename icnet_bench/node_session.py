"""A live ``segmentation_node`` for the reliability tools (``fuzz_node``, ``soak``).

:class:`NodeUnderTest` starts the installed executable as users start it (the shipped
parameter file, the weights, a namespace; :class:`icnet_ros.ros.node_process.NodeProcess`)
and reads its resident memory. :class:`Client` is an rclpy node in this process: per
node a :class:`Link` publishes on its input (reliable, so nothing is lost on this side),
records the class masks and timings it answers (keyed by header stamp) and keeps its
``/diagnostics`` reports, so a tool can wait for the first report made after a given
moment and read the node's counters from it.

:func:`isolate` gives the tools a private ROS domain (random ``ROS_DOMAIN_ID``,
discovery on this host only) and the shipped Fast DDS shared-memory profile: a tool
that floods a node with malformed frames must never reach a vehicle's real stack.
"""

from __future__ import annotations

import os
import random
import signal
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CompressedImage, Image

from icnet_bench.random_weights import random_weights
from icnet_ros.ros.background_node import BackgroundNode
from icnet_ros.ros.cameras import output_topic
from icnet_ros.ros.diagnostics import (
    FRAMES_DROPPED,
    FRAMES_IN_FLIGHT,
    FRAMES_PROCESSED,
    FRAMES_RECEIVED,
    FRAMES_REFUSED,
    INFERENCE_FAILURES,
    refused_by_reason,
)
from icnet_ros.ros.distributions import publisher_count
from icnet_ros.ros.fastdds_profile import PROFILE_VARIABLES
from icnet_ros.ros.node_process import NodeProcess, shipped_file, use_shipped_profile

MIB = 1024 * 1024
SEND_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=100, reliability=ReliabilityPolicy.RELIABLE)
RECEIVE_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=100, reliability=ReliabilityPolicy.RELIABLE)
START_TIMEOUT_S = 120.0


def private_domain_id() -> int:
    """A random ROS domain for a run of its own: from ``ICNET_DOMAIN_IDS`` ("FIRST-LAST", which
    the test suite sets so that its workers and fixtures never share one) or else 1..200."""
    first, last = (int(n) for n in os.environ.get("ICNET_DOMAIN_IDS", "1-200").split("-"))
    return random.SystemRandom().randint(first, last)


def isolate(domain_id: int | None = None) -> dict[str, str]:
    """A private ROS domain on this host and the shipped SHM profile, for this process and its
    children; returns the environment that matters to the node (with any ``MALLOC_*``)."""
    os.environ["ROS_DOMAIN_ID"] = str(domain_id if domain_id is not None else private_domain_id())
    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    use_shipped_profile()
    # The allocator's settings change the node's resident memory: a report names them.
    return {key: os.environ.get(key, "") for key in os.environ if key.startswith("MALLOC_")
            or key in ("ROS_DOMAIN_ID", "ROS_AUTOMATIC_DISCOVERY_RANGE", *PROFILE_VARIABLES)}


def weights_or_random(weights: Path | None) -> tuple[Path, str]:
    """The given weight file, or random small weights in a temporary folder; and a description."""
    if weights is not None:
        return weights, str(weights)
    folder = Path(tempfile.mkdtemp(prefix="icnet_reliability_"))
    path = random_weights(folder / "random_w0.125_65x129.safetensors", source="random initialisation (reliability tools)")
    return path, "random weights, width 0.125, network input 65x129"


class NodeUnderTest(NodeProcess):
    """``segmentation_node`` in namespace ``namespace`` (the shipped parameter file), logging to ``log_path``."""

    def __init__(self, namespace: str, weights: Path, log_path: Path, parameters: dict[str, Any],
                 transport: str = "raw") -> None:
        self.namespace = "/" + namespace.strip("/")
        self.transport = transport
        self.prefix = f"{self.namespace.strip('/')}/icnet_segmenter"
        super().__init__(log_path, params_file=shipped_file("config/icnet.yaml"), namespace=self.namespace,
                         parameters={"weights": str(Path(weights).resolve()), "input_transport": transport,
                                     **parameters})
        self._psutil = psutil.Process(self.pid)

    @property
    def input_topic(self) -> str:
        return f"{self.namespace}/image" + ("/compressed" if self.transport == "compressed" else "")

    def topic(self, name: str) -> str:
        """Where the node publishes the output ``name``."""
        return output_topic(self.namespace, name)

    def rss_bytes(self) -> int:
        """The node process's resident set size."""
        return self._psutil.memory_info().rss

    def shutdown(self, signum: int = signal.SIGINT, timeout: float = 10.0) -> dict[str, Any]:
        """Send ``signum`` and wait: the exit status and how long the node took to stop."""
        if not self.alive():
            code, seconds, was_running = self.returncode, 0.0, False
        else:
            code, seconds = self.exit_after(signum, timeout)
            was_running = True
        self.stop()    # kills what is left, closes the log
        return {"signal": signal.Signals(signum).name, "returncode": code, "seconds": round(seconds, 3),
                "was_running": was_running}


@dataclass(frozen=True)
class Answer:
    """A class mask as it arrived: when (monotonic), its size and encoding."""

    arrived: float
    height: int
    width: int
    encoding: str


@dataclass(frozen=True)
class Report:
    """One /diagnostics report of a node: its stamp and every status's level, message and values."""

    stamp_ns: int
    statuses: dict[str, dict[str, Any]]

    def values(self, task: str) -> dict[str, str]:
        return self.statuses[task]["values"]

    def counters(self) -> dict[str, Any]:
        """The pipeline's frame counters as numbers, refusals per reason under ``refused_by_reason``."""
        values = self.values("pipeline")
        return {"received": int(values[FRAMES_RECEIVED]), "processed": int(values[FRAMES_PROCESSED]),
                "dropped": int(values[FRAMES_DROPPED]), "refused": int(values[FRAMES_REFUSED]),
                "refused_by_reason": refused_by_reason(values), "failures": int(values[INFERENCE_FAILURES]),
                "in_flight": int(values[FRAMES_IN_FLIGHT])}


def stamp_ns(stamp: Time) -> int:
    return stamp.sec * 1_000_000_000 + stamp.nanosec


@dataclass
class Link:
    """The client's end of one node: its input publisher and what the node answered."""

    node: NodeUnderTest
    publisher: Any = None
    mask_subscription: Any = None
    answers: dict[int, Answer] = field(default_factory=dict)
    timings: dict[int, dict[str, float]] = field(default_factory=dict)
    reports: deque = field(default_factory=lambda: deque(maxlen=100))
    condition: threading.Condition = field(default_factory=threading.Condition)

    def publish(self, msg: Image | CompressedImage | bytes) -> None:
        self.publisher.publish(msg)

    def on_mask(self, msg: Image) -> None:
        with self.condition:
            self.answers[stamp_ns(msg.header.stamp)] = Answer(time.monotonic(), msg.height, msg.width, msg.encoding)
            self.condition.notify_all()

    def on_timing(self, msg: DiagnosticArray) -> None:
        values = {kv.key: float(kv.value) for status in msg.status for kv in status.values}
        with self.condition:
            self.timings[stamp_ns(msg.header.stamp)] = values

    def on_report(self, stamp: int, statuses: dict[str, dict[str, Any]]) -> None:
        with self.condition:
            self.reports.append(Report(stamp, statuses))
            self.condition.notify_all()

    def _wait(self, predicate: Callable[[], Any], timeout: float) -> Any:
        deadline = time.monotonic() + timeout
        with self.condition:
            while True:
                value = predicate()
                remaining = deadline - time.monotonic()
                if value or remaining <= 0:
                    return value
                self.condition.wait(min(remaining, 0.5))

    def wait_answer(self, stamp: int, timeout: float) -> Answer | None:
        """The class mask stamped ``stamp`` (removed from the record), or None after ``timeout``."""
        answer = self._wait(lambda: self.answers.get(stamp), timeout)
        if answer is not None:
            with self.condition:
                self.answers.pop(stamp, None)
        return answer

    def take_timing(self, stamp: int) -> dict[str, float] | None:
        with self.condition:
            return self.timings.pop(stamp, None)

    def report_after(self, stamp: int, timeout: float) -> Report | None:
        """The first report stamped at or after ``stamp`` (ns, system clock), or None after ``timeout``."""
        return self._wait(lambda: next((r for r in self.reports if r.stamp_ns >= stamp), None), timeout)


class Client(BackgroundNode):
    """An rclpy node in this process, spun by a background thread, talking to nodes under test."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.links: list[Link] = []
        self._last_stamp = 0
        self.in_executor(lambda: self.node.create_subscription(DiagnosticArray, "/diagnostics",
                                                               self._on_diagnostics, RECEIVE_QOS))

    def link(self, node: NodeUnderTest, timing: bool = False) -> Link:
        """Publish to ``node`` and record its class masks (and ``timing`` messages)."""
        link = Link(node)
        msg_type = CompressedImage if node.transport == "compressed" else Image

        def create() -> None:
            link.publisher = self.node.create_publisher(msg_type, node.input_topic, SEND_QOS)
            link.mask_subscription = self.node.create_subscription(
                Image, node.topic("class_mask"), link.on_mask, RECEIVE_QOS)
            if timing:
                self.node.create_subscription(DiagnosticArray, node.topic("timing"), link.on_timing, RECEIVE_QOS)
        self.in_executor(create)
        self.links.append(link)
        return link

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        grouped: dict[str, dict[str, dict[str, Any]]] = {}
        for status in msg.status:
            prefix, _, task = status.name.rpartition(": ")
            grouped.setdefault(prefix, {})[task] = {
                "level": ord(status.level) if isinstance(status.level, bytes) else int(status.level),
                "message": status.message, "values": {kv.key: kv.value for kv in status.values}}
        stamp = stamp_ns(msg.header.stamp)
        for link in self.links:
            statuses = grouped.get(link.node.prefix)
            if statuses and "pipeline" in statuses:
                link.on_report(stamp, statuses)

    def next_stamp(self) -> Time:
        """A header stamp (system time, ns) never handed out before."""
        self._last_stamp = max(time.time_ns(), self._last_stamp + 1)
        return Time(sec=self._last_stamp // 1_000_000_000, nanosec=self._last_stamp % 1_000_000_000)


def wait_serving(link: Link, probe: Callable[[Time], Image | CompressedImage], client: Client,
                 timeout: float = START_TIMEOUT_S) -> None:
    """Until ``link``'s node answers a probe frame; RuntimeError naming the log if it died or never did.

    The node's input matching this client's publisher is not enough: a best-effort frame
    sent before the node has matched the publisher in turn is lost, so probes are re-sent.
    """
    deadline = time.monotonic() + timeout
    node = link.node
    while time.monotonic() < deadline:
        if not node.alive():
            raise RuntimeError(f"segmentation_node exited with {node.returncode}: {node.last_line()} "
                               f"(log: {node.log_path})")
        if link.publisher.get_subscription_count() and publisher_count(client.node, link.mask_subscription):
            stamp = client.next_stamp()
            link.publish(probe(stamp))
            if link.wait_answer(stamp_ns(stamp), 1.0) is not None:
                return
        else:
            time.sleep(0.05)
    raise RuntimeError(f"segmentation_node in {node.namespace} did not answer within {timeout:.0f} s "
                       f"(log: {node.log_path})")


def rss_summary(samples: list[tuple[float, int]], warmup_fraction: float = 0.1) -> dict[str, float]:
    """Memory over a run from (progress, rss bytes) samples: the median of the samples just
    after warm-up (the first ``warmup_fraction`` of the progress) against the median of the
    last tenth; growth in MiB and percent, and the range after warm-up."""
    import numpy as np

    if len(samples) < 4:
        return {"samples": len(samples)}
    progress = np.array([p for p, _ in samples], float)
    rss = np.array([r for _, r in samples], float) / MIB
    end = progress[-1]
    after = progress >= progress[0] + (end - progress[0]) * warmup_fraction
    if after.sum() < 4:
        after[:] = True
    steady = rss[after]
    tenth = max(1, len(steady) // 10)
    start_mib, end_mib = float(np.median(steady[:tenth])), float(np.median(steady[-tenth:]))
    return {"samples": len(samples), "first_mib": round(float(rss[0]), 1),
            "after_warmup_mib": round(start_mib, 1), "end_mib": round(end_mib, 1),
            "growth_mib": round(end_mib - start_mib, 2),
            "growth_percent": round(100.0 * (end_mib - start_mib) / start_mib, 3),
            "min_after_warmup_mib": round(float(steady.min()), 1),
            "max_after_warmup_mib": round(float(steady.max()), 1)}
