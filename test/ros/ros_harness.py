"""Real processes over real DDS: the node as users start it, and an rclpy client that talks to it."""

from __future__ import annotations

import array
import signal
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header

from icnet_ros.ros.background_node import BackgroundNode
from icnet_ros.ros.cameras import output_topic
from icnet_ros.ros.node_process import NodeProcess

REPO = Path(__file__).resolve().parents[2]
PARAMS_FILE = REPO / "config" / "icnet.yaml"
FASTDDS_PROFILE = REPO / "config" / "fastdds_shm.xml"
START_TIMEOUT_S = 90.0     # import torch, load, warm up on a loaded two-core machine
ANSWER_TIMEOUT_S = 20.0
EXIT_WAIT_S = 30.0         # after SIGINT/SIGTERM (about 1-2 s on a quiet machine)

PROBE_PNG = cv2.imencode(".png", np.zeros((8, 8, 3), np.uint8))[1].tobytes()
RELIABLE = QoSProfile(depth=1, history=HistoryPolicy.KEEP_LAST, reliability=ReliabilityPolicy.RELIABLE)
COLLECT = QoSProfile(depth=50, history=HistoryPolicy.KEEP_LAST, reliability=ReliabilityPolicy.RELIABLE)


def wait_until(condition: Callable[[], Any], timeout: float, what: str, interval: float = 0.02) -> Any:
    """Poll ``condition`` until it returns something truthy; fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


class Collector:
    """Keeps the last messages of a topic and lets a test wait for one."""

    def __init__(self, client: RosClient, msg_type, topic: str, qos: QoSProfile = COLLECT,
                 keep: int = 200):
        self._client = client
        self._messages: deque = deque(maxlen=keep)
        self._condition = threading.Condition()
        self.subscription = client.in_executor(
            lambda: client.node.create_subscription(msg_type, topic, self._on_message, qos))

    def _on_message(self, msg) -> None:
        with self._condition:
            self._messages.append(msg)
            self._condition.notify_all()

    @property
    def messages(self) -> list:
        with self._condition:
            return list(self._messages)

    def wait_for(self, predicate: Callable[[Any], bool], timeout: float = ANSWER_TIMEOUT_S,
                 what: str = "a message") -> Any:
        deadline = time.monotonic() + timeout
        with self._condition:
            while True:
                for msg in reversed(self._messages):
                    if predicate(msg):
                        return msg
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"no {what} on {self.subscription.topic_name} "
                                         f"within {timeout:.0f} s")
                self._condition.wait(remaining)

    def clear(self) -> None:
        with self._condition:
            self._messages.clear()

    def close(self) -> None:
        self._client.in_executor(lambda: self._client.node.destroy_subscription(self.subscription))


class RosClient(BackgroundNode):
    """An rclpy node in the test process, spun by a background executor (entities made in its thread)."""

    def __init__(self, name: str = "icnet_test_client") -> None:
        super().__init__(name)

    def now(self):
        return self.node.get_clock().now()

    def collector(self, msg_type, topic: str, qos: QoSProfile = COLLECT) -> Collector:
        return Collector(self, msg_type, topic, qos)

    def diagnostics(self) -> Collector:
        return self.collector(DiagnosticArray, "/diagnostics")

    def call(self, srv_type, name: str, request, timeout: float = 20.0):
        client = self.in_executor(lambda: self.node.create_client(srv_type, name))
        try:
            if not client.wait_for_service(timeout_sec=timeout):
                raise AssertionError(f"service {name} not available within {timeout:.0f} s")
            future = client.call_async(request)
            wait_until(future.done, timeout, f"the answer of {name}")
            return future.result()
        finally:
            self.in_executor(lambda: self.node.destroy_client(client))


class SegmenterProcess(NodeProcess):
    """``segmentation_node`` started as users start it, logging to ``log_dir/<name>.log``."""

    def __init__(self, log_dir: Path, *, weights: Path | str | None, params_file: bool = True,
                 parameters: dict[str, Any] | None = None, namespace: str = "",
                 remaps: dict[str, str] | None = None, name: str = "segmenter",
                 command: list[str] | None = None, environment: dict[str, str | None] | None = None) -> None:
        """``command``: what to run instead of the installed executable (it gets the same
        ``--ros-args``), e.g. the node with a fault injected; ``environment``: variables set
        (None: unset) on top of this process's."""
        values = dict(parameters or {})
        if weights is not None:
            values["weights"] = str(weights)
        super().__init__(log_dir / f"{name}.log", command=command,
                         params_file=PARAMS_FILE if params_file else None, parameters=values,
                         namespace=namespace, remaps=remaps, environment=environment)

    def assert_alive(self) -> None:
        if not self.alive():
            raise AssertionError(f"segmentation_node exited with {self.returncode}:\n{self.log()}")

    def exit_on(self, signum: int) -> float:
        """Send ``signum``; the node must exit with status 0 and no traceback. Returns the
        seconds it took, printed: a bound on them is a figure, not a test (loaded machines)."""
        code, elapsed = self.exit_after(signum, EXIT_WAIT_S)
        if code is None:
            raise AssertionError(f"still running {EXIT_WAIT_S:g} s after {signal.Signals(signum).name}:\n"
                                 f"{self.log()}")
        print(f"\n{signal.Signals(signum).name}: exit {code} in {elapsed:.2f} s")
        assert code == 0, self.log()
        assert "Traceback" not in self.log(), self.log()
        return elapsed


class Segmenter:
    """A running node with the client's publisher on its input and collectors on its outputs."""

    def __init__(self, client: RosClient, process: SegmenterProcess, namespace: str = "",
                 compressed: bool = False, image_topic: str | None = None) -> None:
        """``image_topic``: where the node's input is remapped to (default ``<ns>/image``)."""
        self.client = client
        self.process = process
        self.prefix = f"{namespace.strip('/')}/icnet_segmenter".lstrip("/")
        self.ns = f"/{namespace.strip('/')}" if namespace.strip("/") else ""
        self.compressed = compressed
        image = image_topic or f"{self.ns}/image"
        topic = f"{image}/compressed" if compressed else image
        self.publisher = client.in_executor(lambda: client.node.create_publisher(
            CompressedImage if compressed else Image, topic, RELIABLE))
        self.class_mask = client.collector(Image, self.output("class_mask"))
        self.diagnostics = client.diagnostics()

    def topic(self, name: str) -> str:
        """``name`` in the node's namespace (its inputs: ``image``, ``camera_info``)."""
        return f"{self.ns}/{name}"

    def output(self, name: str) -> str:
        """Where the node publishes the output ``name`` (``<ns>/segmentation/<name>``)."""
        return output_topic(self.ns or "/", name)

    def service(self, name: str) -> str:
        return f"{self.ns}/icnet_segmenter/{name}"

    def wait_active(self, timeout: float = START_TIMEOUT_S) -> None:
        """Wait until the node answers a probe frame.

        Its input subscription (created on activate) matching our publisher is not enough:
        a best-effort frame sent before the node has matched us in turn is lost.
        """
        def ready() -> bool:
            self.process.assert_alive()
            return (self.publisher.get_subscription_count() > 0
                    and self.class_mask.subscription.get_publisher_count() > 0)
        wait_until(ready, timeout, "the node to become active")
        deadline = time.monotonic() + timeout
        while True:
            header = self.header("probe")
            self.send(self.probe(header))
            try:
                self.answer(header, timeout=1.0)
                return
            except AssertionError:
                self.process.assert_alive()
                if time.monotonic() > deadline:
                    raise

    def probe(self, header: Header):
        """A small valid frame for this node's input transport."""
        if self.compressed:
            return compressed_message(header, "png", PROBE_PNG)
        return rgb_message(header, np.zeros((8, 8, 3), np.uint8))

    def header(self, frame_id: str = "camera") -> Header:
        return Header(stamp=self.client.now().to_msg(), frame_id=frame_id)

    def send(self, msg) -> None:
        self.publisher.publish(msg)

    def answer(self, header: Header, timeout: float = ANSWER_TIMEOUT_S) -> Image:
        """The class mask carrying ``header``."""
        return self.class_mask.wait_for(lambda m: same_header(m.header, header), timeout,
                                        f"answer to the frame stamped {header.stamp.sec}."
                                        f"{header.stamp.nanosec:09d}")

    def status(self, task: str, predicate: Callable[[dict], bool] = lambda values: True,
               timeout: float = 15.0, fresh: bool = True):
        """The next diagnostics status ``<node>: task`` whose values satisfy ``predicate``;
        ``fresh``: forget the reports received before this call (and their counts)."""
        name = f"{self.prefix}: {task}"
        if fresh:
            self.diagnostics.clear()

        def match(msg: DiagnosticArray) -> bool:
            return any(s.name == name and predicate(values_of(s)) for s in msg.status)
        msg = self.diagnostics.wait_for(match, timeout, f"diagnostics status {name!r}")
        return next(s for s in msg.status if s.name == name)

    def close(self) -> None:
        self.class_mask.close()
        self.diagnostics.close()
        self.client.in_executor(lambda: self.client.node.destroy_publisher(self.publisher))


def values_of(status) -> dict[str, str]:
    return {kv.key: kv.value for kv in status.values}


def same_header(a: Header, b: Header) -> bool:
    return (a.stamp.sec, a.stamp.nanosec, a.frame_id) == (b.stamp.sec, b.stamp.nanosec, b.frame_id)


def image_message(header: Header, encoding: str, height: int, width: int, step: int,
                  data: bytes | np.ndarray, is_bigendian: int = 0) -> Image:
    """An Image with exactly the given fields (malformed ones included)."""
    buffer = array.array("B")
    buffer.frombytes(data if isinstance(data, bytes) else np.ascontiguousarray(data).tobytes())
    msg = Image(header=header, encoding=encoding, height=height, width=width, step=step,
                is_bigendian=is_bigendian)
    msg.data = buffer
    return msg


def rgb_message(header: Header, rgb: np.ndarray) -> Image:
    height, width = rgb.shape[:2]
    return image_message(header, "rgb8", height, width, width * 3, rgb)


def compressed_message(header: Header, fmt: str, data: bytes) -> CompressedImage:
    buffer = array.array("B")
    buffer.frombytes(data)
    msg = CompressedImage(header=header, format=fmt)
    msg.data = buffer
    return msg
