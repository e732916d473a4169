"""sensor_msgs images to and from arrays, without extra copies."""

from __future__ import annotations

import array
import sys

import numpy as np
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header

from icnet_ros.runtime.image_decoding import CompressedFrame, RawFrame

OUTPUT_ENCODINGS = {
    (np.dtype(np.uint8), 1): "mono8",
    (np.dtype(np.uint8), 3): "rgb8",
    (np.dtype(np.float32), 1): "32FC1",
}


def raw_frame(msg: Image, max_pixels: int) -> RawFrame:
    """The validated frame of ``msg``; its data is the message's buffer (no copy).

    Raises ``ImageRejected`` naming the reason for a malformed message.
    """
    return RawFrame.validated(msg.encoding, msg.height, msg.width, msg.step, msg.data,
                              is_bigendian=msg.is_bigendian, max_pixels=max_pixels)


def compressed_frame(msg: CompressedImage) -> CompressedFrame:
    """The engine's input for a jpeg/png ``msg`` (the engine decodes it; no copy here)."""
    return CompressedFrame(msg.format, msg.data)


def image_msg(header: Header, image: np.ndarray) -> Image:
    """An Image holding ``image`` (HxW uint8 -> mono8, HxWx3 uint8 -> rgb8, HxW float32 -> 32FC1).

    The data is copied once into the message's ``array('B')``; assigning bytes or an
    ndarray to a checked message field would be tens of times slower.
    """
    channels = 1 if image.ndim == 2 else image.shape[2]
    encoding = OUTPUT_ENCODINGS.get((image.dtype, channels))
    if encoding is None:
        raise ValueError(f"no image encoding for {image.dtype} with {channels} channels")
    image = np.ascontiguousarray(image)
    height, width = image.shape[:2]
    data = array.array("B")
    data.frombytes(image.data.cast("B"))
    msg = Image(check_fields=True, header=header, height=height, width=width, encoding=encoding,
                is_bigendian=int(sys.byteorder == "big" and image.dtype.itemsize > 1),
                step=width * channels * image.dtype.itemsize)
    msg.data = data
    return msg


def image_array(msg: Image) -> np.ndarray:
    """A read-only view of a mono8, rgb8 or 32FC1 message (row padding honoured)."""
    dtype = np.dtype(np.float32 if msg.encoding == "32FC1" else np.uint8)
    channels = 3 if msg.encoding == "rgb8" else 1
    rows = np.frombuffer(msg.data, np.uint8)[: msg.step * msg.height].reshape(msg.height, msg.step)
    view = rows[:, : msg.width * channels * dtype.itemsize].view(dtype)
    image = view.reshape(msg.height, msg.width, channels)
    return image[:, :, 0] if channels == 1 else image
