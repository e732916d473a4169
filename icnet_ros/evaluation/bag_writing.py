"""Writing rosbag2 bags of images without ROS (the ``rosbags`` package).

A :class:`BagWriter` writes ``sensor_msgs/Image`` and ``sensor_msgs/CompressedImage``
messages, serialised to CDR exactly as a ROS 2 recorder stores them, into a rosbag2
directory (``metadata.yaml`` plus one ``.mcap`` or ``.db3`` file) that ``ros2 bag
play``, rviz2 and Foxglove read. Messages are logged at their header stamp.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from rosbags.rosbag2 import StoragePlugin, Writer, WriterError
from rosbags.typesys import Stores, get_typestore

IMAGE = "sensor_msgs/msg/Image"
COMPRESSED_IMAGE = "sensor_msgs/msg/CompressedImage"
STORAGES = {"mcap": StoragePlugin.MCAP, "sqlite3": StoragePlugin.SQLITE3}
TYPESTORE = get_typestore(Stores.ROS2_KILTED)
_ENCODINGS = {1: "mono8", 3: "rgb8"}


class BagWriteError(ValueError):
    """A bag that cannot be written, with the reason."""


def header(stamp_ns: int, frame_id: str):
    """A rosbags ``std_msgs/Header`` at ``stamp_ns`` nanoseconds."""
    types = TYPESTORE.types
    stamp = types["builtin_interfaces/msg/Time"](sec=stamp_ns // 1_000_000_000, nanosec=stamp_ns % 1_000_000_000)
    return types["std_msgs/msg/Header"](stamp=stamp, frame_id=frame_id)


def image_message(image: np.ndarray, stamp_ns: int, frame_id: str, encoding: str | None = None):
    """A ``sensor_msgs/Image``: HxW uint8 -> mono8, HxWx3 uint8 RGB -> rgb8 (or ``bgr8``, converted)."""
    channels = 1 if image.ndim == 2 else image.shape[2]
    if image.dtype != np.uint8 or channels not in _ENCODINGS:
        raise BagWriteError(f"cannot store a {image.dtype} image with {channels} channels (uint8 mono or RGB)")
    encoding = encoding or _ENCODINGS[channels]
    if encoding == "bgr8" and channels == 3:
        image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    elif encoding != _ENCODINGS[channels]:
        raise BagWriteError(f"encoding {encoding!r} does not fit a {channels}-channel image")
    image = np.ascontiguousarray(image)
    height, width = image.shape[:2]
    return TYPESTORE.types[IMAGE](header=header(stamp_ns, frame_id), height=height, width=width,
                                  encoding=encoding, is_bigendian=0, step=width * channels,
                                  data=image.reshape(-1))


def compressed_message(rgb: np.ndarray, stamp_ns: int, frame_id: str, codec: str = "jpeg",
                       quality: int = 90):
    """A ``sensor_msgs/CompressedImage`` of an HxWx3 RGB image (``jpeg`` or ``png``)."""
    if codec not in ("jpeg", "png"):
        raise BagWriteError(f"codec must be jpeg or png, got {codec!r}")
    params = [cv2.IMWRITE_JPEG_QUALITY, quality] if codec == "jpeg" else []
    ok, data = cv2.imencode(".jpg" if codec == "jpeg" else ".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), params)
    if not ok:
        raise BagWriteError(f"{codec} encoding failed")
    return TYPESTORE.types[COMPRESSED_IMAGE](header=header(stamp_ns, frame_id), format=f"rgb8; {codec} compressed bgr8",
                                             data=data.reshape(-1))


class BagWriter:
    """A rosbag2 directory being written; use as a context manager.

    ``storage`` is ``mcap`` or ``sqlite3``. ``path`` must not exist yet (rosbag2 creates
    the directory). Topics are added on first use with their message type.
    """

    def __init__(self, path: str | Path, storage: str = "mcap") -> None:
        if storage not in STORAGES:
            raise BagWriteError(f"storage must be one of {', '.join(STORAGES)}, got {storage!r}")
        self.path = Path(path)
        if self.path.exists():
            raise BagWriteError(f"{self.path} already exists (a bag is written into a new directory)")
        self.storage = storage
        self._writer = Writer(self.path, version=9, storage_plugin=STORAGES[storage])
        self._connections: dict[str, object] = {}

    def __enter__(self) -> BagWriter:
        try:
            self._writer.open()
        except (WriterError, OSError) as error:
            raise BagWriteError(f"cannot write a bag at {self.path}: {error}") from None
        return self

    def __exit__(self, *exc) -> None:
        self._writer.close()

    def write(self, topic: str, message, log_time_ns: int | None = None) -> None:
        """Store ``message`` (a rosbags Image or CompressedImage) on ``topic``, logged at its stamp."""
        msgtype = message.__msgtype__
        connection = self._connections.get(topic)
        if connection is None:
            connection = self._writer.add_connection(topic, msgtype, typestore=TYPESTORE)
            self._connections[topic] = connection
        elif connection.msgtype != msgtype:
            raise BagWriteError(f"topic {topic} holds {connection.msgtype}, not {msgtype}")
        stamp = message.header.stamp
        when = stamp.sec * 1_000_000_000 + stamp.nanosec if log_time_ns is None else log_time_ns
        self._writer.write(connection, when, TYPESTORE.serialize_cdr(message, msgtype))
