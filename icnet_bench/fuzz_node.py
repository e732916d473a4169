"""Fuzz the running segmentation node with malformed images, interleaved with good ones.

    python -m icnet_bench.fuzz_node --messages 10000 --output fuzz.json

Starts ``segmentation_node`` twice in a private ROS domain (one with raw input, one with
compressed input; ``--transport`` picks one), then sends batches of ``--batch``
malformed messages followed by one good frame, each batch to one of the nodes:

- raw ``sensor_msgs/Image``: unsupported encodings (random names, generic ``8UC3``,
  float images ``32FC1``/``32FC3``/``64FC1`` full of NaN and infinities), zero sizes,
  declared sizes far beyond ``max_image_pixels`` with a few bytes of data, real frames
  just over it, steps smaller than a row, data shorter than ``step * height`` (huge
  steps included), odd sizes for 4:2:2 / 4:2:0 encodings;
- ``sensor_msgs/CompressedImage``: random bytes under random formats, no data, JPEG
  and PNG cut inside their header or body, headers declaring huge or zero sizes,
  compressed depth formats;
- on both: serialized (CDR) messages cut short or with impossible lengths, published
  as raw bytes. The middleware cannot deserialize them, so they never reach the node:
  counted as ``undeliverable``, they check that the node survives them. (Never an empty
  one: Fast DDS then stalls the reliable stream from that publisher for minutes, which
  would only measure Fast DDS; the node's shipped best-effort input is not affected.)

Every malformed message is classified here with the runtime's own checks
(:mod:`icnet_ros.runtime.image_decoding`), which gives the refusal reason the node must
count. Good frames are random valid encodings and sizes (JPEG/PNG for the compressed
node) and must each be answered with a class mask of their size.

Accounting. The node keeps only the newest frame, so a message can be lost in two
ways: overwritten in DDS before the node took it (the node never sees it) or replaced
in the node's one-frame slot (the node counts it as dropped). The nodes therefore
subscribe reliably with a deep queue (``input_qos_reliability:=reliable``,
``input_qos_depth:=100``; ``--best-effort`` keeps the shipped sensor-data QoS) and the
malformed messages are paced (``--gap-ms``, doubled up to 64 ms after each batch that
lost or dropped one). After each batch's good frame is answered, the first
``/diagnostics`` report made after that answer gives the node's counters, and the batch
must add up exactly: ``received = deliverable sent``, ``received = processed + refused
+ dropped + failures``, refusals per reason as classified (a shortfall only where the
node counted drops), ``processed = 1``. A drop is counted, so not silent, but it is
reported apart from the refusals. The resident memory of each node is sampled at every
checkpoint; at the end each node is stopped with SIGINT and must exit 0.

Writes a JSON report (``--output``) and prints a summary; exit status 0 when every
check passed, 1 otherwise, 2 for unusable arguments.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import struct
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

PROG = "python -m icnet_bench.fuzz_node"
SCHEMA = "icnet_ros.reliability.fuzz/1"
UNDELIVERABLE = "undeliverable"
# Unsupported encodings: real ones without colour meaning, near misses and nonsense.
UNSUPPORTED_ENCODINGS = ("32FC1", "32FC2", "32FC3", "32FC4", "64FC1", "64FC3", "8UC1", "8UC3", "8UC4",
                         "8SC1", "16UC1", "16SC3", "32SC1", "jpeg", "png", "RGB8", "rgb8 ", " mono8",
                         "bayer_rggb32", "yuv420", "i420", "", "rgb\u00e98", "\u30ab\u30e1\u30e9")
FLOAT_ENCODINGS = {"32FC1": (1, np.float32), "32FC3": (3, np.float32), "64FC1": (1, np.float64)}
COMPRESSED_FORMATS = ("jpeg", "png", "rgb8; jpeg compressed bgr8", "bgr8; png compressed bgr8", "", "tiff",
                      "webp", "x" * 300)
MEMORY_FLAT_PERCENT = 2.0
MAX_GAP_S = 0.064


# ---------------------------------------------------------------------------- messages

@dataclass
class Fuzzed:
    """One message to send: how it was made and what the node must do with it."""

    category: str
    expected: str               # the refusal reason, UNDELIVERABLE, or "answered" for a good frame
    message: Any                 # Image, CompressedImage or serialized bytes
    size: tuple[int, int] | None = None   # a good frame's height and width


class Generator:
    """Malformed and good messages for one input transport, classified by the runtime's checks."""

    def __init__(self, transport: str, rng: np.random.Generator, max_pixels: int,
                 good_size: tuple[int, int]) -> None:
        from sensor_msgs.msg import CompressedImage, Image

        from icnet_ros.runtime import image_decoding

        self.transport = transport
        self.rng = rng
        self.max_pixels = max_pixels
        self.good_size = good_size
        self._decoding = image_decoding
        self._image_type = Image
        self._compressed_type = CompressedImage
        # Random bytes to slice from: drawing megabytes per message would slow the sender down.
        self._noise = rng.integers(0, 256, 4 * max_pixels * 4 + 4096, dtype=np.uint8).tobytes()
        self.categories: dict[str, Callable[[], Any]] = (
            {"unknown_encoding": self._unknown_encoding, "float_nan_inf": self._float_image,
             "zero_size": self._zero_size, "oversize_declared": self._oversize_declared,
             "oversize_real": self._oversize_real, "step_too_small": self._step_too_small,
             "truncated_data": self._truncated, "odd_size": self._odd_size, "cdr_garbage": self._cdr_garbage}
            if transport == "raw" else
            {"garbage": self._garbage, "empty": self._empty, "truncated_header": self._truncated_header,
             "truncated_body": self._truncated_body, "oversize_declared": self._huge_header,
             "zero_size_declared": self._zero_header, "depth_format": self._depth_format,
             "cdr_garbage": self._cdr_garbage})

    # --- helpers ----------------------------------------------------------------------
    def _bytes(self, count: int) -> bytes:
        count = int(count)
        if count <= 0:
            return b""
        start = int(self.rng.integers(0, max(1, len(self._noise) - count)))
        return self._noise[start:start + count] if count <= len(self._noise) else bytes(count)

    def _dimension(self, low: int, high: int) -> int:
        """Log-uniform in [low, high]: tiny and large sizes alike."""
        return int(np.clip(round(np.exp(self.rng.uniform(np.log(low), np.log(high)))), low, high))

    def image(self, encoding: str, height: int, width: int, step: int, data: bytes,
              is_bigendian: int = 0):
        import array

        buffer = array.array("B")
        buffer.frombytes(data)
        msg = self._image_type(encoding=encoding, height=int(height), width=int(width), step=int(step),
                               is_bigendian=int(is_bigendian))
        msg.data = buffer
        return msg

    def compressed(self, fmt: str, data: bytes):
        import array

        buffer = array.array("B")
        buffer.frombytes(data)
        msg = self._compressed_type(format=fmt)
        msg.data = buffer
        return msg

    def _supported(self) -> tuple[str, Any]:
        encoding = str(self.rng.choice(self._decoding.SUPPORTED_ENCODINGS))
        return encoding, self._decoding.LAYOUTS[encoding]

    @staticmethod
    def _row(layout, width: int) -> int:
        return width * layout.channels * layout.depth

    @staticmethod
    def _rows(layout, height: int) -> int:
        return height * layout.rows_num // layout.rows_den

    def _valid_dims(self, layout, high: tuple[int, int]) -> tuple[int, int]:
        height, width = self._dimension(1, high[0]), self._dimension(1, high[1])
        if layout.even_width:
            width = max(2, width - width % 2)
        if layout.even_height:
            height = max(2, height - height % 2)
        return height, width

    # --- raw ----------------------------------------------------------------------------
    def _unknown_encoding(self):
        encoding = str(self.rng.choice(UNSUPPORTED_ENCODINGS))
        if self.rng.random() < 0.3:   # random printable names, some long
            length = self._dimension(1, 2000)
            encoding = "".join(chr(c) for c in self.rng.integers(32, 127, length))
        height, width = self._dimension(1, 300), self._dimension(1, 300)
        step = width * int(self.rng.integers(1, 9))
        return self.image(encoding, height, width, step, self._bytes(step * height))

    def _float_image(self):
        encoding = str(self.rng.choice(list(FLOAT_ENCODINGS)))
        channels, dtype = FLOAT_ENCODINGS[encoding]
        height, width = self._dimension(1, 200), self._dimension(1, 200)
        values = self.rng.choice(np.array([np.nan, np.inf, -np.inf, 0.0, 1.0, np.finfo(dtype).max], dtype),
                                 size=(height, width, channels))
        data = values.tobytes()
        return self.image(encoding, height, width, width * channels * np.dtype(dtype).itemsize, data)

    def _zero_size(self):
        encoding, layout = self._supported()
        height, width = [(0, self._dimension(1, 5000)), (self._dimension(1, 5000), 0), (0, 0)][self.rng.integers(3)]
        step = self._row(layout, width)
        return self.image(encoding, height, width, step, self._bytes(self.rng.integers(0, 64)))

    def _oversize_declared(self):
        encoding, layout = self._supported()
        height = self._dimension(max(2, int(np.sqrt(self.max_pixels))), 2**32 - 1)
        width = max(1, min(2**32 - 1, self.max_pixels // height + self._dimension(1, 2**32 - 1)))
        step = min(2**32 - 1, self._row(layout, width))
        return self.image(encoding, height, width, step, self._bytes(self.rng.integers(0, 4096)))

    def _oversize_real(self):
        encoding = str(self.rng.choice(["mono8", "rgb8", "bgr8", "bayer_rggb8", "yuv422"]))
        layout = self._decoding.LAYOUTS[encoding]
        width = self._dimension(64, 2048) // 2 * 2
        height = self.max_pixels // width + 1 + int(self.rng.integers(0, 16))
        step = self._row(layout, width)
        return self.image(encoding, height, width, step, self._bytes(step * height))

    def _step_too_small(self):
        encoding, layout = self._supported()
        height, width = self._valid_dims(layout, (300, 300))
        step = int(self.rng.integers(0, self._row(layout, width)))
        data = self._bytes(self._row(layout, width) * self._rows(layout, height))
        return self.image(encoding, height, width, step, data)

    def _truncated(self):
        encoding, layout = self._supported()
        height, width = self._valid_dims(layout, (300, 300))
        row = self._row(layout, width)
        step = row + int(self.rng.integers(0, 64)) if self.rng.random() < 0.9 else 2**32 - 1
        needed = step * self._rows(layout, height)
        return self.image(encoding, height, width, step, self._bytes(self.rng.integers(0, min(needed, 1 << 22))))

    def _odd_size(self):
        encoding = str(self.rng.choice(["yuv422", "uyvy", "yuv422_yuy2", "yuyv", "nv21", "nv12"]))
        layout = self._decoding.LAYOUTS[encoding]
        height, width = self._dimension(1, 300), self._dimension(1, 300) // 2 * 2 + 1
        if layout.even_height and self.rng.random() < 0.5:
            height, width = height // 2 * 2 + 1, width - 1 if width > 1 else 2
        step = self._row(layout, width)
        return self.image(encoding, height, width, step, self._bytes(step * (self._rows(layout, height) + 1)))

    # --- compressed -----------------------------------------------------------------------
    def _garbage(self):
        data = self._bytes(self._dimension(1, 200_000))
        if self.rng.random() < 0.3:   # a JPEG start marker, then noise
            data = b"\xff\xd8" + data
        return self.compressed(str(self.rng.choice(COMPRESSED_FORMATS)), data)

    def _empty(self):
        return self.compressed(str(self.rng.choice(COMPRESSED_FORMATS)), b"")

    def _encoded(self) -> tuple[str, bytes]:
        import cv2

        height, width = self._dimension(8, 200), self._dimension(8, 200)
        image = np.frombuffer(self._bytes(height * width * 3), np.uint8).reshape(height, width, 3)
        kind = str(self.rng.choice(["jpeg", "png"]))
        ok, data = cv2.imencode(".jpg" if kind == "jpeg" else ".png", image)
        assert ok
        return kind, data.tobytes()

    def _truncated_header(self):
        kind, data = self._encoded()
        return self.compressed(kind, data[: int(self.rng.integers(0, 24 if kind == "png" else 160))])

    def _truncated_body(self):
        kind, data = self._encoded()
        return self.compressed(kind, data[: int(self.rng.integers(len(data) // 4, len(data) - 16))])

    def _huge_header(self):
        width = self._dimension(1, 2**31 - 1)
        height = min(2**31 - 1, max(self._dimension(1, 2**31 - 1), self.max_pixels // width + 1))
        if self.rng.random() < 0.5:
            header = b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + struct.pack(">II", width, height)
            return self.compressed("png", header + self._bytes(self.rng.integers(0, 2048)))
        width = min(65535, max(width, self.max_pixels // 65535 + 1))
        height = min(65535, max(height, self.max_pixels // width + 1))
        sof = b"\xff\xc0" + struct.pack(">HBHH", 17, 8, height, width) + self._bytes(11)
        return self.compressed("jpeg", b"\xff\xd8" + sof + self._bytes(self.rng.integers(0, 2048)))

    def _zero_header(self):
        if self.rng.random() < 0.5:
            header = b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + struct.pack(">II", 0, 16)
            return self.compressed("png", header + self._bytes(64))
        sof = b"\xff\xc0" + struct.pack(">HBHH", 17, 8, 0, 16) + self._bytes(11)
        return self.compressed("jpeg", b"\xff\xd8" + sof + self._bytes(64))

    def _depth_format(self):
        kind, data = self._encoded()
        return self.compressed(str(self.rng.choice(["16UC1; compressedDepth png", "32FC1; compressedDepth",
                                                    "depth"])), data)

    # --- both --------------------------------------------------------------------------------
    def _cdr_garbage(self) -> bytes:
        from rclpy.serialization import serialize_message

        good = self.good()
        data = serialize_message(good.message)
        if self.rng.random() < 0.5:   # never empty: see the module docstring
            return data[: int(self.rng.integers(1, len(data) - 8))]
        # A sequence or string length no buffer can hold, at a random 4-byte field.
        position = 4 + 4 * int(self.rng.integers(0, (len(data) - 8) // 4))
        return data[:position] + struct.pack("<I", 0xFFFFFFF0) + data[position + 4:]

    # --- classification -----------------------------------------------------------------------
    def expected(self, message) -> str | None:
        """The node's refusal reason for ``message`` (the runtime's checks), UNDELIVERABLE, or None (valid)."""
        if isinstance(message, bytes):
            from rclpy.serialization import deserialize_message
            try:
                message = deserialize_message(message, self._compressed_type if self.transport == "compressed"
                                              else self._image_type)
            except Exception:  # noqa: BLE001 - any failure means the middleware cannot deliver it
                return UNDELIVERABLE
        try:
            if self.transport == "compressed":
                self._decoding.decode_compressed(message.format, message.data, max_pixels=self.max_pixels)
            else:
                self._decoding.RawFrame.validated(message.encoding, message.height, message.width, message.step,
                                                  message.data, is_bigendian=message.is_bigendian,
                                                  max_pixels=self.max_pixels)
        except self._decoding.ImageRejected as error:
            return error.reason
        return None

    def malformed(self) -> Fuzzed:
        """A random malformed message (one the runtime refuses, or the middleware cannot deliver)."""
        names = list(self.categories)
        while True:
            category = names[int(self.rng.integers(len(names)))]
            message = self.categories[category]()
            reason = self.expected(message)
            if reason is not None:   # e.g. a truncated JPEG that still decodes is no malformed frame
                return Fuzzed(category, reason, message)

    def good(self) -> Fuzzed:
        """A random valid frame: any supported encoding (raw) or JPEG/PNG (compressed), random size."""
        if self.transport == "compressed":
            import cv2

            height, width = self._dimension(1, self.good_size[0]), self._dimension(1, self.good_size[1])
            image = np.frombuffer(self._bytes(height * width * 3), np.uint8).reshape(height, width, 3)
            kind = str(self.rng.choice(["jpeg", "png"]))
            ok, data = cv2.imencode(".jpg" if kind == "jpeg" else ".png", image)
            assert ok
            fmt = str(self.rng.choice([kind, f"rgb8; {kind} compressed bgr8"]))
            return Fuzzed("good", "answered", self.compressed(fmt, data.tobytes()), (height, width))
        encoding, layout = self._supported()
        height, width = self._valid_dims(layout, self.good_size)
        step = self._row(layout, width) + int(self.rng.integers(0, 3)) * int(self.rng.integers(0, 17))
        data = self._bytes(step * self._rows(layout, height))
        msg = self.image(encoding, height, width, step, data, is_bigendian=int(self.rng.integers(0, 2)))
        return Fuzzed("good", "answered", msg, (height, width))


# ---------------------------------------------------------------------------- the run

@dataclass
class Tally:
    """What one node was sent and what it made of it."""

    sent_by_category: Counter
    expected: Counter           # refusal reasons (and UNDELIVERABLE) of the malformed messages sent
    refused: Counter            # refusals the node counted, per reason
    good_sent: int = 0
    good_answered: int = 0
    wrong_size_masks: int = 0
    dropped: int = 0            # replaced in the node's one-frame slot (counted by the node)
    lost_before_node: int = 0   # deliverable but never received (DDS)
    unaccounted: int = 0        # received but neither processed, refused, dropped nor failed
    failures: int = 0
    wrong_refusals: int = 0     # refusals beyond the classification (another reason, a refused good frame)
    extra_processed: int = 0    # frames processed beyond the good frames answered (a malformed one passed)
    unexplained_batches: int = 0  # batches whose refusal shortfall is not the drops and losses counted
    batches: int = 0

    @classmethod
    def empty(cls) -> Tally:
        return cls(Counter(), Counter(), Counter())


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=10_000, help="malformed messages in all (default 10000)")
    parser.add_argument("--batch", type=int, default=10, help="malformed messages per good frame (default 10)")
    parser.add_argument("--transport", choices=("raw", "compressed", "both"), default="both",
                        help="which node(s) to fuzz (default both: 3 of 4 batches to the raw one)")
    parser.add_argument("--weights", type=Path, help="weight file (default: random small weights)")
    parser.add_argument("--device", default="cpu", help="the node's device parameter (default cpu)")
    parser.add_argument("--threads", type=int, default=1, help="the node's cpu_threads (default 1)")
    parser.add_argument("--max-image-pixels", type=int, default=1_000_000,
                        help="the node's max_image_pixels: real oversize frames are just above it (default 1e6)")
    parser.add_argument("--good-size", type=int, nargs=2, default=(240, 320), metavar=("HEIGHT", "WIDTH"),
                        help="largest good frame (default 240 320)")
    parser.add_argument("--gap-ms", type=float, default=5.0,
                        help="initial pause between malformed messages (default 5; doubled after a drop)")
    parser.add_argument("--best-effort", action="store_true",
                        help="keep the shipped best-effort, depth-1 input QoS (DDS may then overwrite messages)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--domain-id", type=int, help="ROS_DOMAIN_ID (default: a random one, this host only)")
    parser.add_argument("--output", type=Path, default=Path("fuzz_report.json"), help="JSON report")
    parser.add_argument("--log-dir", type=Path, help="node logs (default: a temporary folder)")
    parser.add_argument("--answer-timeout", type=float, default=20.0, help="seconds a good frame may take")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    return parser


def _check_arguments(args: argparse.Namespace) -> None:
    problems = []
    if args.messages < 1 or args.batch < 1:
        problems.append("--messages and --batch must be at least 1")
    if args.max_image_pixels < 64 * 64:
        problems.append("--max-image-pixels must be at least 4096")
    if min(args.good_size) < 1 or args.good_size[0] * args.good_size[1] > args.max_image_pixels:
        problems.append("--good-size must be positive and within --max-image-pixels")
    if args.weights is not None and not args.weights.is_file():
        problems.append(f"--weights {args.weights} is not a file")
    if problems:
        raise ValueError("; ".join(problems))


class Fuzzer:
    """Drives the nodes; ``run`` returns the report."""

    def __init__(self, args: argparse.Namespace) -> None:
        from icnet_bench.node_session import Client, NodeUnderTest, isolate, weights_or_random

        self.args = args
        self.environment = isolate(args.domain_id)
        self.weights, self.weights_description = weights_or_random(args.weights)
        self.log_dir = args.log_dir or Path(tempfile.mkdtemp(prefix="icnet_fuzz_logs_"))
        self.log_dir.mkdir(parents=True, exist_ok=True)
        transports = ["raw", "compressed"] if args.transport == "both" else [args.transport]
        parameters = {"device": args.device, "cpu_threads": args.threads, "diagnostics_period_s": 0.1,
                      "max_image_pixels": args.max_image_pixels}
        if not args.best_effort:
            parameters.update(input_qos_reliability="reliable", input_qos_depth=100)
        self.parameters = parameters
        self.nodes = {t: NodeUnderTest(f"/fuzz/{t}", self.weights, self.log_dir / f"{t}.log", parameters, t)
                      for t in transports}
        self.client = Client("icnet_fuzz")
        self.links = {t: self.client.link(node) for t, node in self.nodes.items()}
        rng = np.random.default_rng(args.seed)
        self.rng = rng
        self.generators = {t: Generator(t, np.random.default_rng([args.seed, i]), args.max_image_pixels,
                                        tuple(args.good_size)) for i, t in enumerate(transports)}
        self.tallies = {t: Tally.empty() for t in transports}
        self.memory: dict[str, list[tuple[float, int]]] = {t: [] for t in transports}
        self.gap_s = args.gap_ms / 1000.0
        self.gap_max_s = self.gap_s
        self.gap_raises = 0
        self.baseline: dict[str, dict] = {}
        self.anomalies: list[dict] = []

    def close(self) -> None:
        self.client.close()
        for node in self.nodes.values():
            if node.alive():
                node.stop()

    def _log(self, text: str) -> None:
        if not self.args.quiet:
            print(text, file=sys.stderr, flush=True)

    def start(self) -> None:
        from icnet_bench.node_session import wait_serving

        for transport, link in self.links.items():
            frame = self.generators[transport].good().message   # one draw, however many probes it takes

            def probe(stamp, frame=frame):
                frame.header.stamp = stamp
                return frame
            wait_serving(link, probe, self.client)
        for transport in self.links:
            self.baseline[transport] = self._checkpoint(transport).counters()

    def _checkpoint(self, transport: str):
        link = self.links[transport]
        report = link.report_after(time.time_ns(), 10.0)
        if report is None:
            raise RuntimeError(f"no /diagnostics report from {link.node.prefix} within 10 s "
                               f"(alive: {link.node.alive()}, log: {link.node.log_path})")
        return report

    def _send(self, transport: str, fuzzed: Fuzzed) -> int | None:
        """Publish; the stamp (ns) of an Image/CompressedImage, None for serialized bytes."""
        if isinstance(fuzzed.message, bytes):
            self.links[transport].publish(fuzzed.message)
            return None
        stamp = self.client.next_stamp()
        fuzzed.message.header.stamp = stamp
        fuzzed.message.header.frame_id = f"fuzz_{fuzzed.category}"
        self.links[transport].publish(fuzzed.message)
        return stamp.sec * 1_000_000_000 + stamp.nanosec

    def batch(self, transport: str, count: int) -> None:
        """``count`` malformed messages then a good frame; check the node's counters add up."""
        generator, link, tally = self.generators[transport], self.links[transport], self.tallies[transport]
        before = self.baseline[transport]
        expected = Counter()
        categories = []
        for _ in range(count):
            fuzzed = generator.malformed()
            tally.sent_by_category[fuzzed.category] += 1
            categories.append(f"{fuzzed.category}:{fuzzed.expected}")
            expected[fuzzed.expected] += 1
            self._send(transport, fuzzed)
            time.sleep(self.gap_s)
        good = generator.good()
        tally.good_sent += 1
        stamp = self._send(transport, good)
        answer = link.wait_answer(stamp, self.args.answer_timeout)
        if answer is not None:
            tally.good_answered += 1
            if (answer.height, answer.width, answer.encoding) != (*good.size, "mono8"):
                tally.wrong_size_masks += 1
        report = self._checkpoint(transport)
        after = report.counters()
        self.baseline[transport] = after
        self.memory[transport].append((sum(tally.expected.values()) + count, link.node.rss_bytes()))
        tally.expected.update(expected)
        tally.batches += 1

        delta = {key: after[key] - before[key] for key in ("received", "processed", "dropped", "refused", "failures")}
        refused = +Counter({r: n - before["refused_by_reason"].get(r, 0)
                            for r, n in after["refused_by_reason"].items()})
        tally.refused.update(refused)
        deliverable = count - expected[UNDELIVERABLE] + 1
        lost = max(0, deliverable - delta["received"])
        wrong = sum((refused - expected).values())
        shortfall = sum((+Counter({r: n for r, n in expected.items() if r != UNDELIVERABLE}) - refused).values())
        tally.lost_before_node += lost
        tally.dropped += delta["dropped"]
        tally.failures += delta["failures"]
        tally.unaccounted += (delta["received"] - delta["processed"] - delta["refused"] - delta["dropped"]
                              - delta["failures"])
        tally.wrong_refusals += wrong
        tally.extra_processed += max(0, delta["processed"] - (answer is not None))
        unexplained = shortfall != delta["dropped"] + lost - (answer is None) or wrong > 0
        tally.unexplained_batches += unexplained
        if lost or delta["dropped"] or wrong or unexplained or answer is None or delta["failures"]:
            self.anomalies.append({
                "transport": transport, "batch": tally.batches, "sent": categories,
                "good": f"{getattr(good.message, 'encoding', None) or getattr(good.message, 'format', '')} "
                        f"{good.size[0]}x{good.size[1]}", "answered": answer is not None,
                "delta": delta, "refused": dict(refused), "lost_before_node": lost})
        if lost or delta["dropped"]:
            self.gap_s = min(self.gap_s * 2, MAX_GAP_S)
            self.gap_max_s = max(self.gap_max_s, self.gap_s)
            self.gap_raises += 1

    def run(self) -> dict:
        args = self.args
        start = time.monotonic()
        self.start()
        self._log(f"{PROG}: nodes serving after {time.monotonic() - start:.1f} s; sending {args.messages} "
                  f"malformed messages in batches of {args.batch}")
        fuzz_start = time.monotonic()
        transports = list(self.nodes)
        weights = [0.75, 0.25] if len(transports) == 2 else [1.0]
        sent = 0
        next_progress = 0
        while sent < args.messages:
            transport = transports[int(self.rng.choice(len(transports), p=weights))]
            count = min(args.batch, args.messages - sent)
            self.batch(transport, count)
            sent += count
            dead = [t for t, node in self.nodes.items() if not node.alive()]
            if dead:
                self._log(f"{PROG}: node {dead[0]} exited: {self.nodes[dead[0]].last_line()}")
                break
            if sent >= next_progress:
                next_progress += max(args.batch, args.messages // 20)
                self._log(f"  {sent}/{args.messages} malformed sent, {time.monotonic() - fuzz_start:.0f} s, "
                          f"gap {self.gap_s * 1e3:.0f} ms, " + ", ".join(
                              f"{t}: {self.nodes[t].rss_bytes() / 2**20:.0f} MiB" for t in transports))
        fuzz_s = time.monotonic() - fuzz_start
        alive = {t: node.alive() for t, node in self.nodes.items()}
        final = {t: self.baseline[t] for t in transports}
        shutdown = {t: node.shutdown() for t, node in self.nodes.items()}
        return self._report(sent, fuzz_s, alive, final, shutdown)

    def _report(self, sent: int, fuzz_s: float, alive: dict, final: dict, shutdown: dict) -> dict:
        from icnet_bench.node_session import rss_summary

        nodes = {}
        for transport, tally in self.tallies.items():
            malformed = sum(tally.expected.values())
            deliverable_malformed = malformed - tally.expected[UNDELIVERABLE]
            expected = {r: n for r, n in sorted(tally.expected.items()) if r != UNDELIVERABLE}
            memory = rss_summary(self.memory[transport])
            nodes[transport] = {
                "malformed_sent": malformed, "undeliverable_sent": tally.expected[UNDELIVERABLE],
                "sent_by_category": dict(sorted(tally.sent_by_category.items())),
                "expected_refusals_by_reason": expected,
                "refused_by_reason": dict(sorted(tally.refused.items())),
                "refused": sum(tally.refused.values()),
                "dropped_counted": tally.dropped, "lost_before_node": tally.lost_before_node,
                "unaccounted": tally.unaccounted, "wrong_refusals": tally.wrong_refusals,
                "extra_processed": tally.extra_processed, "unexplained_batches": tally.unexplained_batches,
                "inference_failures": tally.failures,
                "good_sent": tally.good_sent, "good_answered": tally.good_answered,
                "wrong_size_masks": tally.wrong_size_masks, "batches": tally.batches,
                "node_counters_at_end": final[transport],
                "alive_at_end": alive[transport], "shutdown": shutdown[transport],
                "memory": memory, "memory_samples": [[int(p), round(r / 2**20, 2)] for p, r in self.memory[transport]],
                "log": str(self.nodes[transport].log_path),
            }
            nodes[transport]["checks"] = {
                "alive": alive[transport],
                # Each malformed message the node received was refused for the reason classified,
                # or replaced in its one-frame slot and counted as dropped; nothing else.
                "every_malformed_refused_or_counted_dropped":
                    nodes[transport]["refused"] + tally.dropped == deliverable_malformed
                    and tally.wrong_refusals == 0 and tally.extra_processed == 0
                    and tally.unexplained_batches == 0,
                "none_silently_lost": tally.lost_before_node == 0 and tally.unaccounted == 0,
                "every_good_frame_answered": tally.good_answered == tally.good_sent and tally.wrong_size_masks == 0,
                "no_inference_failures": tally.failures == 0,
                "memory_flat": abs(memory.get("growth_percent", 0.0)) < MEMORY_FLAT_PERCENT,
                "clean_exit_on_sigint": shutdown[transport]["returncode"] == 0,
            }
        passed = all(all(node["checks"].values()) for node in nodes.values())
        totals = {key: sum(node[key] for node in nodes.values()) for key in
                  ("malformed_sent", "undeliverable_sent", "refused", "dropped_counted", "lost_before_node",
                   "unaccounted", "good_sent", "good_answered", "inference_failures")}
        return {
            "schema": SCHEMA, "tool": PROG, "created_utc": datetime.datetime.now(datetime.timezone.utc)
            .isoformat(timespec="seconds"),
            "host": {"platform": platform.platform(), "python": platform.python_version(),
                     "cpus": os.cpu_count()},
            "settings": {"messages": self.args.messages, "batch": self.args.batch, "seed": self.args.seed,
                         "transport": self.args.transport, "weights": self.weights_description,
                         "node_parameters": self.parameters, "initial_gap_ms": self.args.gap_ms,
                         "good_size_max": list(self.args.good_size), "environment": self.environment},
            "pacing": {"gap_ms_final": round(self.gap_s * 1e3, 1), "gap_ms_max": round(self.gap_max_s * 1e3, 1),
                       "gap_raises": self.gap_raises},
            "duration_s": round(fuzz_s, 1), "totals": totals, "nodes": nodes,
            "anomalies": self.anomalies, "passed": passed,
        }


def summary(report: dict) -> str:
    """A few lines for the terminal (and the README)."""
    totals = report["totals"]
    lines = [f"fuzz: {totals['malformed_sent']} malformed messages ({totals['undeliverable_sent']} undeliverable "
             f"CDR) and {totals['good_sent']} good frames in {report['duration_s']} s"]
    for transport, node in report["nodes"].items():
        memory = node["memory"]
        lines.append(
            f"  {transport}: refused {node['refused']}/{node['malformed_sent'] - node['undeliverable_sent']} "
            f"deliverable as classified {node['refused_by_reason']}; dropped {node['dropped_counted']} (counted), "
            f"lost before the node {node['lost_before_node']}, unaccounted {node['unaccounted']}, wrong reason "
            f"{node['wrong_refusals']}; good answered "
            f"{node['good_answered']}/{node['good_sent']}; RSS {memory.get('after_warmup_mib')} -> "
            f"{memory.get('end_mib')} MiB ({memory.get('growth_percent')} %); alive {node['alive_at_end']}, "
            f"SIGINT exit {node['shutdown']['returncode']} in {node['shutdown']['seconds']} s")
        failed = [name for name, ok in node["checks"].items() if not ok]
        if failed:
            lines.append(f"  {transport}: FAILED checks: {', '.join(failed)}")
    lines.append("passed" if report["passed"] else "FAILED")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> dict:
    fuzzer = Fuzzer(args)
    try:
        report = fuzzer.run()
    finally:
        fuzzer.close()
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=1) + "\n")
    return report


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        _check_arguments(args)
    except ValueError as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 2
    try:
        report = run(args)
    except (RuntimeError, OSError) as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    print(summary(report))
    print(f"report: {args.output}")
    return 0 if report["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
