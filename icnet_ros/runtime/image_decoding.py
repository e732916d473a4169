"""sensor_msgs images in ROS-free form, decoded to RGB the way cv_bridge does it.

A :class:`RawFrame` carries the fields of a ``sensor_msgs/Image`` and checks them on
construction; :func:`to_rgb` turns it into an ``HxWx3`` uint8 RGB array with the OpenCV
conversions ``cv_bridge.toCvCopy(msg, "rgb8")`` uses (the mapping of its
``getConversionCodes``):

- ``bayer_rggb`` -> ``COLOR_BayerBG2RGB``, ``bayer_bggr`` -> ``COLOR_BayerRG2RGB``,
  ``bayer_gbrg`` -> ``COLOR_BayerGR2RGB``, ``bayer_grbg`` -> ``COLOR_BayerGB2RGB``
  (OpenCV names a Bayer pattern after its second row);
- ``yuv422``/``uyvy`` -> ``COLOR_YUV2RGB_UYVY``, ``yuv422_yuy2``/``yuyv`` ->
  ``COLOR_YUV2RGB_YUY2``, ``nv21`` -> ``COLOR_YUV2RGB_NV21``, ``nv12`` ->
  ``COLOR_YUV2RGB_NV12`` (4:2:0: ``height * 3 / 2`` rows of ``step`` bytes);
- 16-bit data to 8 bits like cv_bridge's ``convertTo(CV_8U, 255. / 65535.)``: a
  rounded ``v * 255 / 65535``, which is exactly ``(v + 128) // 257`` (no ties exist);
  Bayer 16 is demosaiced at 16 bits first, as cv_bridge does; big-endian data is
  byte-swapped first.

Rows may be padded: ``step`` is always honoured. Compressed images (jpeg, png) are
decoded by :func:`decode_compressed` after their header has been checked, so an
oversize image is refused before anything is allocated for it.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass, field

try:
    import cv2
except ImportError:  # on CUDA the engine converts raw rows on the device, without OpenCV
    cv2 = None
import numpy as np

MAX_PIXELS = 8192 * 8192
"""Default largest ``height * width`` accepted (a 67 Mpx frame; 1024x2048 is 2 Mpx)."""


class ImageRejected(ValueError):
    """A frame that cannot be decoded. ``reason`` is a short code, the message says why."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason



@dataclass(frozen=True)
class CompressedFrame:
    """One ``sensor_msgs/CompressedImage`` without ROS: ``format`` (jpeg/png) and the bytes."""

    format: str
    data: bytes | memoryview | np.ndarray


@dataclass(frozen=True)
class _Layout:
    """How one encoding lies in memory and how it becomes RGB."""

    channels: int  # interleaved values per pixel of a row (2 for packed 4:2:2)
    depth: int  # bytes per value: 1 or 2
    code: str | None  # OpenCV conversion to RGB (cv2.COLOR_<code>), None when already RGB
    rows_num: int = 1  # the buffer holds height * rows_num / rows_den rows (4:2:0: 3/2)
    rows_den: int = 1
    even_width: bool = False
    even_height: bool = False
    bayer: bool = False  # demosaiced before any 16 -> 8 bit scaling, as cv_bridge does


_BAYER = {"rggb": "BayerBG2RGB", "bggr": "BayerRG2RGB",
          "gbrg": "BayerGR2RGB", "grbg": "BayerGB2RGB"}
_UYVY = _Layout(2, 1, "YUV2RGB_UYVY", even_width=True)
_YUYV = _Layout(2, 1, "YUV2RGB_YUY2", even_width=True)

LAYOUTS: dict[str, _Layout] = {
    "rgb8": _Layout(3, 1, None), "bgr8": _Layout(3, 1, "BGR2RGB"),
    "rgba8": _Layout(4, 1, "RGBA2RGB"), "bgra8": _Layout(4, 1, "BGRA2RGB"),
    "mono8": _Layout(1, 1, "GRAY2RGB"), "mono16": _Layout(1, 2, "GRAY2RGB"),
    "rgb16": _Layout(3, 2, None), "bgr16": _Layout(3, 2, "BGR2RGB"),
    "rgba16": _Layout(4, 2, "RGBA2RGB"), "bgra16": _Layout(4, 2, "BGRA2RGB"),
    **{f"bayer_{p}8": _Layout(1, 1, code, bayer=True) for p, code in _BAYER.items()},
    **{f"bayer_{p}16": _Layout(1, 2, code, bayer=True) for p, code in _BAYER.items()},
    "yuv422": _UYVY, "uyvy": _UYVY, "yuv422_yuy2": _YUYV, "yuyv": _YUYV,
    "nv21": _Layout(1, 1, "YUV2RGB_NV21", 3, 2, True, True),
    "nv12": _Layout(1, 1, "YUV2RGB_NV12", 3, 2, True, True),
}
SUPPORTED_ENCODINGS: tuple[str, ...] = tuple(LAYOUTS)
"""Every ``sensor_msgs/Image`` encoding :func:`to_rgb` accepts. Float and generic
``8UC3``-style encodings carry no colour meaning (cv_bridge refuses them too)."""


def _as_bytes(data) -> np.ndarray:
    """A flat uint8 view of ``data`` (bytes, bytearray, memoryview, array.array, ndarray)."""
    if isinstance(data, np.ndarray):
        return np.ascontiguousarray(data).reshape(-1).view(np.uint8)
    try:
        return np.frombuffer(data, np.uint8)
    except (TypeError, ValueError) as error:
        raise ImageRejected("undecodable", f"image data is not a byte buffer: {error}") from None


@dataclass(frozen=True, eq=False)
class RawFrame:
    """One ``sensor_msgs/Image`` without ROS: checked on construction.

    ``data`` is kept as a flat uint8 view of the buffer given (no copy).
    """

    encoding: str
    height: int
    width: int
    step: int
    data: memoryview | bytes | np.ndarray
    is_bigendian: int = 0
    max_pixels: int = field(default=MAX_PIXELS, repr=False, compare=False)

    def __post_init__(self) -> None:
        layout = LAYOUTS.get(self.encoding)
        if layout is None:
            raise ImageRejected("unknown_encoding", f"unsupported encoding {self.encoding!r} "
                                f"(supported: {', '.join(SUPPORTED_ENCODINGS)})")
        height, width, step = int(self.height), int(self.width), int(self.step)
        if height <= 0 or width <= 0:
            raise ImageRejected("zero_size", f"image is {width}x{height}: no pixels")
        if height * width > self.max_pixels:
            raise ImageRejected("oversize", f"image is {width}x{height} = {height * width} pixels, "
                                f"more than the {self.max_pixels} allowed")
        if (layout.even_width and width % 2) or (layout.even_height and height % 2):
            need = "width and height" if layout.even_height else "width"
            raise ImageRejected("odd_size", f"{self.encoding} needs an even {need}, got {width}x{height}")
        row = width * layout.channels * layout.depth
        if step < row:
            raise ImageRejected("step_too_small", f"step {step} is smaller than a row of {width} "
                                f"{self.encoding} pixels ({row} bytes)")
        data = _as_bytes(self.data)
        rows = height * layout.rows_num // layout.rows_den
        if data.size < step * rows:
            raise ImageRejected("data_too_short", f"{data.size} bytes of data, {step * rows} needed "
                                f"({rows} rows of step {step})")
        object.__setattr__(self, "height", height)
        object.__setattr__(self, "width", width)
        object.__setattr__(self, "step", step)
        object.__setattr__(self, "data", data)

    @classmethod
    def validated(cls, encoding: str, height: int, width: int, step: int, data,
                  is_bigendian: int = 0, max_pixels: int = MAX_PIXELS) -> RawFrame:
        """Build a frame from message fields; raises :class:`ImageRejected` with the reason."""
        return cls(encoding, height, width, step, data, int(bool(is_bigendian)), max_pixels)

    @property
    def layout(self) -> _Layout:
        return LAYOUTS[self.encoding]

    def pixels(self) -> np.ndarray:
        """The image as ``rows x width x channels`` (uint8 or native uint16), a strided view."""
        layout = self.layout
        rows = self.height * layout.rows_num // layout.rows_den
        row_bytes = self.width * layout.channels * layout.depth
        grid = self.data[: self.step * rows].reshape(rows, self.step)[:, :row_bytes]
        if layout.depth == 2:
            grid = grid.view(">u2" if self.is_bigendian else "<u2")
            if not grid.dtype.isnative:
                grid = grid.astype(np.uint16)
        return grid.reshape(rows, self.width, layout.channels)


def _opencv():
    """The cv2 module, or ImportError saying what needs it."""
    if cv2 is None:
        raise ImportError("OpenCV (pip install opencv-python-headless) is needed to convert images on the CPU")
    return cv2


def _convert(pixels: np.ndarray, code: str) -> np.ndarray:
    """``cv2.cvtColor`` with ``cv2.COLOR_<code>``."""
    opencv = _opencv()
    return opencv.cvtColor(pixels, getattr(opencv, f"COLOR_{code}"))


def scale_16_to_8(values: np.ndarray) -> np.ndarray:
    """cv_bridge's 16 -> 8 bit ``convertTo(CV_8U, 255. / 65535.)``: rounded ``v / 257``, which
    is ``(v + 128) // 257`` (no ties exist). OpenCV's SIMD version: 20x NumPy's here."""
    return _opencv().convertScaleAbs(values, alpha=255.0 / 65535.0).reshape(values.shape)


def to_rgb(frame: RawFrame) -> np.ndarray:
    """``HxWx3`` uint8 RGB; a view of the message data where no conversion is needed."""
    layout = frame.layout
    pixels = frame.pixels()
    if layout.depth == 2:
        if layout.bayer:
            return scale_16_to_8(_convert(pixels[:, :, 0], layout.code))
        pixels = scale_16_to_8(pixels)
    if layout.code is None:
        return pixels
    source = pixels[:, :, 0] if layout.channels == 1 else pixels
    return _convert(source, layout.code)


# --- compressed images -------------------------------------------------------------------

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_JPEG_SOF = set(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def _compressed_size(data: np.ndarray) -> tuple[str, int, int] | None:
    """(kind, width, height) read from a PNG or JPEG header, None when not found."""
    raw = data[:1 << 20].tobytes() if data.size > 1 << 20 else data.tobytes()
    if raw.startswith(_PNG_SIGNATURE) and len(raw) >= 24 and raw[12:16] == b"IHDR":
        width, height = struct.unpack(">II", raw[16:24])
        return "png", width, height
    if raw.startswith(b"\xff\xd8"):
        position = 2
        while position + 9 <= len(raw):
            if raw[position] != 0xFF:
                return None
            marker = raw[position + 1]
            if marker == 0xFF:  # fill byte
                position += 1
                continue
            length = struct.unpack(">H", raw[position + 2:position + 4])[0]
            if marker in _JPEG_SOF:
                height, width = struct.unpack(">HH", raw[position + 5:position + 9])
                return "jpeg", width, height
            position += 2 + length
    return None


def decode_compressed(format: str, data, max_pixels: int = MAX_PIXELS) -> np.ndarray:  # noqa: A002
    """Decode a ``sensor_msgs/CompressedImage`` (jpeg or png) to ``HxWx3`` uint8 RGB.

    ``format`` is the message field (``jpeg``, ``png``, ``rgb8; jpeg compressed bgr8``);
    the data itself decides the codec. Refuses depth formats, data that is not a JPEG or
    PNG, images over ``max_pixels`` (from the header, before decoding) and undecodable data.
    """
    if "compressedDepth" in format or "depth" in format.lower():
        raise ImageRejected("unknown_encoding", f"compressed format {format!r} is a depth image, not colour")
    buffer = _as_bytes(data)
    if buffer.size == 0:
        raise ImageRejected("undecodable", "compressed image has no data")
    header = _compressed_size(buffer)
    if header is None:
        declared = re.findall(r"jpeg|jpg|png", format.lower())
        raise ImageRejected("undecodable", f"compressed data ({buffer.size} bytes, format {format!r}"
                            f"{'' if declared else ', not jpeg/png'}) has no readable JPEG or PNG header")
    kind, width, height = header
    if width == 0 or height == 0:
        raise ImageRejected("zero_size", f"{kind} image is {width}x{height}: no pixels")
    if width * height > max_pixels:
        raise ImageRejected("oversize", f"{kind} image is {width}x{height} = {width * height} pixels, "
                            f"more than the {max_pixels} allowed")
    opencv = _opencv()
    bgr = opencv.imdecode(buffer, opencv.IMREAD_COLOR)
    if bgr is None:
        raise ImageRejected("undecodable", f"{kind} data ({buffer.size} bytes) could not be decoded")
    return _convert(bgr, "BGR2RGB")


def decode_frame(frame: RawFrame | CompressedFrame | np.ndarray, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """HxWx3 uint8 RGB of any frame the engine accepts (an array must already be that)."""
    if isinstance(frame, RawFrame):
        return to_rgb(frame)
    if isinstance(frame, CompressedFrame):
        return decode_compressed(frame.format, frame.data, max_pixels)
    if not isinstance(frame, np.ndarray):
        raise TypeError(f"cannot segment a {type(frame).__name__}")
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
        raise ImageRejected("unknown_encoding", f"an array frame must be HxWx3 uint8 RGB, got {frame.dtype} {frame.shape}")
    if frame.shape[0] == 0 or frame.shape[1] == 0:
        raise ImageRejected("zero_size", f"image is {frame.shape[1]}x{frame.shape[0]}: no pixels")
    if frame.shape[0] * frame.shape[1] > max_pixels:
        raise ImageRejected("oversize", f"image is {frame.shape[1]}x{frame.shape[0]}, "
                            f"more than the {max_pixels} pixels allowed")
    return frame
