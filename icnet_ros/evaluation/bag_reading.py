"""Reading camera images and ground-truth labels from rosbag2 bags, without ROS.

:class:`Bag` opens a rosbag2 directory, a bare ``.mcap`` file or a bare ``.db3`` file
with the ``rosbags`` package (message types from the bag, else ROS 2 Kilted's), lists
its topics, hashes its storage files, and yields the frames of image topics
(``sensor_msgs/Image`` or ``sensor_msgs/CompressedImage``) in recording order.

Labels on a label topic (``mono8`` trainIds) are matched to the images of their image
topic by header stamp: a first pass reads the label stamps (from the CDR bytes, no
decoding), so that an image whose label is recorded later waits for it, and an image
without one is yielded at once. Every read error of the storage layer (a truncated
file, a corrupt chunk, a broken database) becomes a :class:`BagError` naming the bag.
"""

from __future__ import annotations

import hashlib
import struct
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rosbags.highlevel import AnyReader

from icnet_ros.evaluation.bag_writing import COMPRESSED_IMAGE, IMAGE, TYPESTORE
from icnet_ros.runtime.image_decoding import MAX_PIXELS, CompressedFrame, RawFrame, decode_compressed, to_rgb

IMAGE_TYPES = {IMAGE: "raw", COMPRESSED_IMAGE: "compressed"}
STORAGE_SUFFIXES = {".mcap": "mcap", ".db3": "sqlite3"}
LABEL_ENCODINGS = ("mono8", "8UC1")


class BagError(ValueError):
    """A bag, or a topic in it, that cannot be used, with the reason."""


@dataclass(frozen=True)
class TopicInfo:
    """One topic of a bag: its message type and message count."""

    msgtype: str
    count: int


def cdr_stamp(rawdata: bytes | memoryview) -> int:
    """Header stamp (ns) of a CDR-serialised message that starts with a ``std_msgs/Header``."""
    if len(rawdata) < 12:
        raise BagError(f"a message of {len(rawdata)} bytes is too short to hold a header")
    endian = "<" if rawdata[1] & 1 else ">"  # CDR encapsulation: 0x0001 little-, 0x0000 big-endian
    sec, nanosec = struct.unpack_from(endian + "iI", rawdata, 4)
    return sec * 1_000_000_000 + nanosec


def stamp_text(stamp_ns: int) -> str:
    """A stamp as fixed-width nanoseconds (sorts like the stamps), used in file names."""
    return f"{stamp_ns:019d}"


@dataclass
class BagImage:
    """One image message of a bag, with its ground truth when there is one.

    ``rawdata`` is the message as recorded (CDR), ``message`` the decoded rosbags message.
    """

    topic: str
    index: int  # position among the messages of its topic
    stamp_ns: int  # header stamp
    log_time_ns: int  # when the recorder received it
    kind: str  # "raw" (Image) or "compressed" (CompressedImage)
    rawdata: bytes
    message: object
    label: np.ndarray | None = None

    @property
    def frame_id(self) -> str:
        return self.message.header.frame_id

    def frame(self, max_pixels: int = MAX_PIXELS):
        """The engine's input: a ``RawFrame`` or a ``CompressedFrame``; raises ``ImageRejected``."""
        msg = self.message
        if self.kind == "raw":
            return RawFrame.validated(msg.encoding, msg.height, msg.width, msg.step, msg.data,
                                      msg.is_bigendian, max_pixels)
        return CompressedFrame(msg.format, msg.data)

    def rgb(self, max_pixels: int = MAX_PIXELS) -> np.ndarray:
        """The image as HxWx3 uint8 RGB; raises ``ImageRejected``."""
        if self.kind == "raw":
            return to_rgb(self.frame(max_pixels))
        return decode_compressed(self.message.format, self.message.data, max_pixels)


def label_array(message, topic: str) -> np.ndarray:
    """The HxW uint8 trainIds of a mono8 label message (row padding honoured)."""
    if message.__msgtype__ != IMAGE or message.encoding not in LABEL_ENCODINGS:
        kind = message.__msgtype__ if message.__msgtype__ != IMAGE else f"Image {message.encoding}"
        raise BagError(f"label topic {topic} holds {kind}; ground-truth labels are mono8 "
                       "sensor_msgs/Image trainIds")
    height, width, step = int(message.height), int(message.width), int(message.step)
    data = np.asarray(message.data, np.uint8).reshape(-1)
    if step < width or data.size < step * height:
        raise BagError(f"label message on {topic} has {data.size} bytes for {width}x{height} "
                       f"(step {step})")
    return data[: step * height].reshape(height, step)[:, :width]


class Bag:
    """A rosbag2 bag opened for reading (a context manager)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise BagError(f"bag not found: {self.path}")
        self.files = self._storage_files()
        try:
            self._reader = AnyReader([self.path], default_typestore=TYPESTORE)
            self._reader.open()
        except Exception as error:  # noqa: BLE001 - every storage-layer failure means the same to a user
            raise BagError(f"{self.path} is not a readable rosbag2 bag (unreadable or truncated): "
                           f"{_reason(error)}") from None

    def _storage_files(self) -> list[Path]:
        if self.path.is_dir():
            files = sorted(p for p in self.path.iterdir() if p.suffix in STORAGE_SUFFIXES)
            if not files:
                raise BagError(f"{self.path} holds no .mcap or .db3 file (not a rosbag2 bag)")
            return files
        if self.path.suffix not in STORAGE_SUFFIXES:
            raise BagError(f"{self.path}: a bag is a rosbag2 directory, a .mcap or a .db3 file")
        return [self.path]

    def __enter__(self) -> Bag:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self._reader.stack:
            self._reader.close()

    @property
    def storage(self) -> str:
        return STORAGE_SUFFIXES[self.files[0].suffix]

    @property
    def topics(self) -> dict[str, TopicInfo]:
        return {name: TopicInfo(info.msgtype or "", int(info.msgcount))
                for name, info in sorted(self._reader.topics.items())}

    @property
    def start_ns(self) -> int:
        return int(self._reader.start_time)

    @property
    def duration_s(self) -> float:
        return max(0, int(self._reader.end_time) - int(self._reader.start_time)) / 1e9

    def sha256(self) -> str:
        """SHA-256 of the storage files' bytes, in name order (``metadata.yaml`` left out)."""
        digest = hashlib.sha256()
        for path in self.files:
            with open(path, "rb") as stream:
                for chunk in iter(lambda: stream.read(1 << 20), b""):
                    digest.update(chunk)
        return digest.hexdigest()

    def describe_topics(self) -> str:
        topics = self.topics
        if not topics:
            return "the bag has no topics"
        return "its topics: " + ", ".join(f"{name} ({info.msgtype}, {info.count})" for name, info in topics.items())

    def require(self, topic: str, types: Sequence[str], role: str) -> TopicInfo:
        """The topic's info; a :class:`BagError` listing the bag's topics when absent or of another type."""
        info = self.topics.get(topic)
        if info is None:
            raise BagError(f"{role} topic {topic} is not in {self.path}; {self.describe_topics()}")
        if info.msgtype not in types:
            raise BagError(f"{role} topic {topic} holds {info.msgtype}, not {' or '.join(types)}")
        return info

    def _messages(self, topics: set[str]) -> Iterator[tuple[str, int, bytes]]:
        connections = [c for c in self._reader.connections if c.topic in topics]
        iterator = self._reader.messages(connections=connections)
        while True:
            try:
                connection, log_time, rawdata = next(iterator)
            except StopIteration:
                return
            except Exception as error:  # noqa: BLE001 - a truncated or corrupt storage file
                raise BagError(f"{self.path} cannot be read to the end (truncated or corrupt): "
                               f"{_reason(error)}") from None
            yield connection.topic, int(log_time), bytes(rawdata)

    def _deserialize(self, rawdata: bytes, msgtype: str, topic: str):
        try:
            return self._reader.deserialize(rawdata, msgtype)
        except Exception as error:  # noqa: BLE001 - a corrupt message
            raise BagError(f"a message on {topic} in {self.path} cannot be decoded: {_reason(error)}") from None

    def label_stamps(self, topic: str) -> set[int]:
        """Header stamps of the messages on a label topic (read from the CDR bytes only)."""
        return {cdr_stamp(rawdata) for _, _, rawdata in self._messages({topic})}

    def frames(self, image_topics: Sequence[str], label_topics: dict[str, str] | None = None
               ) -> Iterator[BagImage]:
        """The images of ``image_topics`` in recording order, with labels from ``label_topics``.

        ``label_topics`` maps an image topic to its label topic; an image gets the label
        with the same header stamp. Call :meth:`require` for every topic first.
        """
        label_topics = dict(label_topics or {})
        expected = {image: self.label_stamps(label) for image, label in label_topics.items()}
        images_of: dict[str, list[str]] = {}
        for image, label in label_topics.items():
            images_of.setdefault(label, []).append(image)
        msgtypes = self.topics
        counts = dict.fromkeys(image_topics, 0)
        early: dict[tuple[str, int], np.ndarray] = {}  # labels recorded before their image
        awaiting: dict[tuple[str, int], BagImage] = {}  # images whose label comes later
        pending: deque[BagImage] = deque()
        for topic, log_time, rawdata in self._messages(set(image_topics) | set(images_of)):
            msgtype = msgtypes[topic].msgtype
            if topic in counts:
                image = BagImage(topic, counts[topic], cdr_stamp(rawdata), log_time, IMAGE_TYPES[msgtype],
                                 rawdata, self._deserialize(rawdata, msgtype, topic))
                counts[topic] += 1
                key = (topic, image.stamp_ns)
                if key in early:
                    image.label = early.pop(key)
                elif image.stamp_ns in expected.get(topic, ()) and key not in awaiting:
                    awaiting[key] = image
                pending.append(image)
            if topic in images_of:
                label = label_array(self._deserialize(rawdata, msgtype, topic), topic)
                stamp = cdr_stamp(rawdata)
                for image_topic in images_of[topic]:
                    waiting = awaiting.pop((image_topic, stamp), None)
                    if waiting is not None:
                        waiting.label = label
                    else:
                        early[(image_topic, stamp)] = label
            while pending and awaiting.get((pending[0].topic, pending[0].stamp_ns)) is not pending[0]:
                yield pending.popleft()
        yield from pending


def _reason(error: BaseException) -> str:
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
