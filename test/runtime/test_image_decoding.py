"""Image decoding: every encoding against OpenCV's conversions (the ones cv_bridge uses)."""

from __future__ import annotations

import array
import warnings
import zlib

import cv2
import numpy as np
import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from icnet_ros.runtime.device_decoding import DEVICE_ENCODINGS, raw_rows, to_rgb_tensor
from icnet_ros.runtime.image_decoding import SUPPORTED_ENCODINGS, ImageRejected, RawFrame, decode_compressed, to_rgb
from icnet_ros.runtime.visualization import blend, colorize
from icnet_ros.weights.labels import CITYSCAPES

HEIGHT, WIDTH = 6, 10

# cv_bridge's getConversionCodes, written out here independently of the implementation.
BAYER_CODES = {"rggb": cv2.COLOR_BayerBG2RGB, "bggr": cv2.COLOR_BayerRG2RGB,
               "gbrg": cv2.COLOR_BayerGR2RGB, "grbg": cv2.COLOR_BayerGB2RGB}


def pack(pixels: np.ndarray, padding: int, big_endian: bool = False) -> tuple[bytes, int]:
    """Message data and step for ``pixels`` (rows first), each row followed by ``padding`` bytes."""
    if pixels.dtype == np.uint16:
        pixels = pixels.astype(">u2" if big_endian else "<u2")
    rows = pixels.reshape(pixels.shape[0], -1).view(np.uint8)
    step = rows.shape[1] + padding
    buffer = np.full((rows.shape[0], step), 0xAB, np.uint8)
    buffer[:, : rows.shape[1]] = rows
    return buffer.tobytes(), step


def sixteen_to_eight(image16: np.ndarray) -> np.ndarray:
    """cv_bridge's ``convertTo(CV_8U, 255. / 65535.)``, through OpenCV."""
    return cv2.convertScaleAbs(image16, alpha=255.0 / 65535.0)


def case(encoding: str, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(pixels as the message lays them out, the RGB that OpenCV/cv_bridge make of them)."""
    h, w = HEIGHT, WIDTH
    if encoding.endswith("16"):
        if encoding.startswith("bayer_"):
            raw = rng.integers(0, 65536, (h, w), dtype=np.uint16)
            return raw, sixteen_to_eight(cv2.cvtColor(raw, BAYER_CODES[encoding[6:10]]))
        channels = {"mono16": 1, "rgb16": 3, "bgr16": 3, "rgba16": 4, "bgra16": 4}[encoding]
        raw = rng.integers(0, 65536, (h, w, channels), dtype=np.uint16)
        code = {"mono16": cv2.COLOR_GRAY2RGB, "bgr16": cv2.COLOR_BGR2RGB, "rgba16": cv2.COLOR_RGBA2RGB,
                "bgra16": cv2.COLOR_BGRA2RGB}.get(encoding)
        rgb16 = raw if code is None else cv2.cvtColor(raw[:, :, 0] if channels == 1 else raw, code)
        return raw, sixteen_to_eight(rgb16)
    if encoding.startswith("bayer_"):
        raw = rng.integers(0, 256, (h, w), dtype=np.uint8)
        return raw, cv2.cvtColor(raw, BAYER_CODES[encoding[6:10]])
    if encoding in ("yuv422", "uyvy", "yuv422_yuy2", "yuyv"):
        raw = rng.integers(0, 256, (h, w, 2), dtype=np.uint8)
        code = cv2.COLOR_YUV2RGB_UYVY if encoding in ("yuv422", "uyvy") else cv2.COLOR_YUV2RGB_YUY2
        return raw, cv2.cvtColor(raw, code)
    if encoding in ("nv21", "nv12"):
        raw = rng.integers(0, 256, (h * 3 // 2, w), dtype=np.uint8)
        return raw, cv2.cvtColor(raw, cv2.COLOR_YUV2RGB_NV21 if encoding == "nv21" else cv2.COLOR_YUV2RGB_NV12)
    channels = {"rgb8": 3, "bgr8": 3, "rgba8": 4, "bgra8": 4, "mono8": 1}[encoding]
    raw = rng.integers(0, 256, (h, w, channels), dtype=np.uint8)
    code = {"bgr8": cv2.COLOR_BGR2RGB, "rgba8": cv2.COLOR_RGBA2RGB, "bgra8": cv2.COLOR_BGRA2RGB,
            "mono8": cv2.COLOR_GRAY2RGB}.get(encoding)
    return raw, raw if code is None else cv2.cvtColor(raw[:, :, 0] if channels == 1 else raw, code)


@pytest.mark.parametrize("padding", [0, 6])
@pytest.mark.parametrize("encoding", SUPPORTED_ENCODINGS)
def test_every_encoding_matches_opencv(encoding, padding):
    rng = np.random.default_rng(zlib.crc32(f"{encoding}/{padding}".encode()))
    raw, expected = case(encoding, rng)
    data, step = pack(raw, padding)
    rgb = to_rgb(RawFrame.validated(encoding, HEIGHT, WIDTH, step, data))
    assert rgb.shape == (HEIGHT, WIDTH, 3) and rgb.dtype == np.uint8
    np.testing.assert_array_equal(rgb, expected)


@pytest.mark.parametrize("encoding", ["mono16", "rgb16", "bgra16", "bayer_grbg16"])
def test_big_endian_16_bit(encoding):
    raw, expected = case(encoding, np.random.default_rng(7))
    data, step = pack(raw, 4, big_endian=True)
    frame = RawFrame.validated(encoding, HEIGHT, WIDTH, step, data, is_bigendian=1)
    np.testing.assert_array_equal(to_rgb(frame), expected)


def test_16_bit_scaling_is_cv_bridges_rounded_255_over_65535():
    values = np.arange(65536, dtype=np.uint16).reshape(256, 256)
    data, step = pack(values, 0)
    gray = to_rgb(RawFrame.validated("mono16", 256, 256, step, data))[:, :, 0]
    np.testing.assert_array_equal(gray, sixteen_to_eight(values))
    np.testing.assert_array_equal(gray, np.rint(values / 257.0).astype(np.uint8))


@pytest.mark.parametrize("pattern", ["rggb", "bggr", "gbrg", "grbg"])
def test_bayer_patterns_mean_what_their_names_say(pattern):
    """A uniform colour mosaicked in the named pattern demosaics back to that colour."""
    colour = {"r": 200, "g": 100, "b": 40}
    tile = np.array([[colour[pattern[0]], colour[pattern[1]]], [colour[pattern[2]], colour[pattern[3]]]], np.uint8)
    mosaic = np.tile(tile, (4, 4))
    rgb = to_rgb(RawFrame.validated(f"bayer_{pattern}8", 8, 8, 8, mosaic.tobytes()))
    np.testing.assert_array_equal(rgb[2:6, 2:6], np.broadcast_to([200, 100, 40], (4, 4, 3)))


@pytest.mark.parametrize("encoding,order", [("uyvy", "UYVY"), ("yuv422", "UYVY"),
                                            ("yuyv", "YUYV"), ("yuv422_yuy2", "YUYV")])
def test_packed_yuv_byte_order(encoding, order):
    """Pure red in BT.601 video range (Y 81, U 90, V 240) decodes to red."""
    value = {"Y": 81, "U": 90, "V": 240}
    row = np.array([value[c] for c in order] * 4, np.uint8)
    rgb = to_rgb(RawFrame.validated(encoding, 2, 8, 16, np.tile(row, 2).tobytes()))
    assert np.abs(rgb.astype(int) - [255, 0, 0]).max() <= 3


def test_nv21_chroma_order():
    """NV21 stores V before U: V 240, U 90 under Y 81 is red."""
    data = np.concatenate([np.full(4 * 8, 81), np.tile([240, 90], 2 * 4)]).astype(np.uint8)
    rgb = to_rgb(RawFrame.validated("nv21", 4, 8, 8, data.tobytes()))
    assert np.abs(rgb.astype(int) - [255, 0, 0]).max() <= 3


@pytest.mark.parametrize("kind", ["bytes", "bytearray", "memoryview", "array", "ndarray"])
def test_buffer_types_and_rgb8_is_a_view(kind):
    raw = np.random.default_rng(1).integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8)
    data, step = pack(raw, 2)
    buffer = {"bytes": data, "bytearray": bytearray(data), "memoryview": memoryview(data),
              "array": array.array("B", data), "ndarray": np.frombuffer(data, np.uint8)}[kind]
    frame = RawFrame.validated("rgb8", HEIGHT, WIDTH, step, buffer)
    rgb = to_rgb(frame)
    np.testing.assert_array_equal(rgb, raw)
    assert np.shares_memory(rgb, frame.data)  # no copy for rgb8


@pytest.mark.parametrize("fields,reason", [
    (("rgb9", 4, 4, 12, 48), "unknown_encoding"),
    (("32FC1", 4, 4, 16, 64), "unknown_encoding"),
    (("rgb8", 4, 4, 11, 48), "step_too_small"),
    (("mono16", 4, 4, 7, 64), "step_too_small"),
    (("rgb8", 4, 4, 12, 47), "data_too_short"),
    (("rgb8", 4, 4, 14, 54), "data_too_short"),  # padded rows: step * height is needed
    (("nv21", 4, 4, 4, 16), "data_too_short"),  # 4:2:0 needs 1.5 * height rows
    (("rgb8", 0, 4, 12, 0), "zero_size"),
    (("mono8", 4, 0, 0, 0), "zero_size"),
    (("mono8", 100, 100, 100, 10000), "oversize"),
    (("uyvy", 4, 5, 10, 40), "odd_size"),
    (("nv21", 3, 4, 4, 18), "odd_size"),
])
def test_malformed_frames_are_refused_with_the_reason(fields, reason):
    encoding, height, width, step, size = fields
    with pytest.raises(ImageRejected) as refusal:
        RawFrame.validated(encoding, height, width, step, bytes(size), max_pixels=5000)
    assert refusal.value.reason == reason
    assert str(refusal.value)  # a human-readable message


def test_compressed_png_and_jpeg():
    rng = np.random.default_rng(3)
    noise = cv2.GaussianBlur(rng.integers(0, 50, (40, 64, 3), dtype=np.uint8), (7, 7), 0)
    rgb = noise + np.array([180, 100, 20], np.uint8)  # distinct channels: a swap cannot pass
    png = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))[1]
    np.testing.assert_array_equal(decode_compressed("png", png.tobytes()), rgb)
    jpeg = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 98])[1]
    decoded = decode_compressed("rgb8; jpeg compressed bgr8", memoryview(jpeg.tobytes()))
    assert decoded.shape == rgb.shape and np.abs(decoded.astype(int) - rgb).mean() < 4
    np.testing.assert_array_equal(decoded, cv2.imdecode(jpeg, cv2.IMREAD_COLOR)[:, :, ::-1])


def test_compressed_refusals():
    with pytest.raises(ImageRejected) as refusal:
        decode_compressed("jpeg", b"not an image at all")
    assert refusal.value.reason == "undecodable"
    with pytest.raises(ImageRejected) as refusal:
        decode_compressed("jpeg", b"")
    assert refusal.value.reason == "undecodable"
    jpeg = cv2.imencode(".jpg", np.zeros((16, 16, 3), np.uint8))[1].tobytes()
    with pytest.raises(ImageRejected) as refusal:  # header intact, entropy-coded data replaced
        decode_compressed("jpeg", jpeg[:200] + b"\xff\xd9")
    assert refusal.value.reason == "undecodable"
    png = cv2.imencode(".png", np.zeros((300, 200, 3), np.uint8))[1].tobytes()
    with pytest.raises(ImageRejected) as refusal:  # refused from the header, before decoding
        decode_compressed("png", png, max_pixels=300 * 199)
    assert refusal.value.reason == "oversize"
    with pytest.raises(ImageRejected) as refusal:
        decode_compressed("16UC1; compressedDepth png", png)
    assert refusal.value.reason == "unknown_encoding"


def test_colorize_and_blend():
    mask = np.random.default_rng(4).integers(0, 19, (30, 50), dtype=np.uint8)
    mask[0, 0] = 255  # ignore label: black
    palette = CITYSCAPES.palette()
    colours = colorize(mask, palette)
    np.testing.assert_array_equal(colours, palette[mask])
    assert tuple(colours[0, 0]) == (0, 0, 0) and tuple(colours[mask == 0][0]) == CITYSCAPES.colors[0]
    rgb = np.random.default_rng(5).integers(0, 256, (30, 50, 3), dtype=np.uint8)
    mixed = blend(rgb, colours, 0.25)
    expected = 0.75 * rgb + 0.25 * colours.astype(float)
    assert np.abs(mixed - expected).max() <= 0.5 + 1e-3
    np.testing.assert_array_equal(blend(rgb, colours, 0.0), rgb)
    np.testing.assert_array_equal(blend(rgb, colours, 1.0), colours)
    with pytest.raises(ValueError, match="alpha"):
        blend(rgb, colours, 1.5)


def _cv_bridge():
    """A working cv_bridge with sensor_msgs, or a skip naming why there is none."""
    try:
        from cv_bridge import CvBridge
        from sensor_msgs.msg import Image
    except Exception as error:  # noqa: BLE001 - any import failure means "not available here"
        pytest.skip(f"cv_bridge is not importable here ({type(error).__name__}: {error}); "
                    "../shared/cv-bridge/install.sh installs the real one")
    bridge = CvBridge()
    probe = Image(height=1, width=1, encoding="rgb8", step=3, data=bytes(3))
    try:
        bridge.imgmsg_to_cv2(probe, "rgb8")
    except Exception as error:  # noqa: BLE001 - e.g. the PyPI copy calling NumPy's removed tostring
        pytest.skip(f"cv_bridge imports but does not work here: {type(error).__name__}: {error}")
    return bridge, Image


# Where cv_bridge 3.4 (ros-perception/vision_opencv, the ROS 2 one) is wrong or limited, as
# measured against OpenCV (docs/node.md lists them): the node converts these itself.
CV_BRIDGE_UNKNOWN = ("uyvy", "yuyv", "nv21", "nv12")   # "Unrecognized image encoding"
MISREAD_PADDED_ROWS = "misreads rows whose step is not a multiple of the pixel size"
BIG_ENDIAN_ON_NUMPY_2 = "fails on big-endian data under NumPy 2 (ndarray.newbyteorder is gone)"
UNKNOWN_ENCODING = "does not know the encoding"


def bridge_case(encoding: str, padding: int, big_endian: bool = False):
    """(message fields for cv_bridge, the project's frame, OpenCV's RGB, bytes per pixel)."""
    raw, expected = case(encoding, np.random.default_rng(zlib.crc32(f"bridge/{encoding}".encode())))
    data, step = pack(raw, padding, big_endian=big_endian)
    fields = dict(height=HEIGHT, width=WIDTH, encoding=encoding, step=step, data=data,
                  is_bigendian=int(big_endian))
    frame = RawFrame.validated(encoding, HEIGHT, WIDTH, step, data, is_bigendian=int(big_endian))
    return fields, frame, expected, raw.dtype.itemsize * (raw.shape[2] if raw.ndim == 3 else 1)


def cv_bridge_defect(encoding: str, padding: int, big_endian: bool = False) -> str:
    """The known cv_bridge defect for this case, '' where cv_bridge converts it right."""
    _, _, _, pixel_bytes = bridge_case(encoding, padding, big_endian)
    if encoding in CV_BRIDGE_UNKNOWN:
        return UNKNOWN_ENCODING
    if big_endian:
        return BIG_ENDIAN_ON_NUMPY_2
    return MISREAD_PADDED_ROWS if padding % pixel_bytes else ""


BRIDGE_CASES = [(encoding, padding, big_endian) for encoding in SUPPORTED_ENCODINGS for padding in (0, 4, 6)
                for big_endian in ((False, True) if encoding.endswith("16") else (False,))]


def bridge_ids(bridged_cases):
    return [f"{e}-pad{p}" + ("-big_endian" if b else "") for e, p, b in bridged_cases]


AGREED = [c for c in BRIDGE_CASES if not cv_bridge_defect(*c)]


@pytest.mark.parametrize("encoding,padding,big_endian", AGREED, ids=bridge_ids(AGREED))
def test_agrees_with_cv_bridge(encoding, padding, big_endian):
    bridge, Image = _cv_bridge()
    fields, frame, expected, _ = bridge_case(encoding, padding, big_endian)
    converted = bridge.imgmsg_to_cv2(Image(**fields), "rgb8")
    np.testing.assert_array_equal(to_rgb(frame), converted)
    np.testing.assert_array_equal(converted, expected)


def check_against_opencv_where_cv_bridge_is_wrong(bridged, defect: str) -> None:
    """cv_bridge fails or differs from OpenCV (the defect named); the project equals OpenCV."""
    bridge, Image = _cv_bridge()
    encoding, padding, big_endian = bridged
    assert cv_bridge_defect(*bridged) == defect
    fields, frame, expected, _ = bridge_case(encoding, padding, big_endian)
    np.testing.assert_array_equal(to_rgb(frame), expected)
    try:
        wrong = not np.array_equal(bridge.imgmsg_to_cv2(Image(**fields), "rgb8"), expected)
    except Exception:  # noqa: BLE001 - the defect: cv_bridge raises
        wrong = True
    if not wrong:
        warnings.warn(f"this cv_bridge converts {bridge_ids([bridged])[0]} right: it no longer "
                      f"{defect}; docs/node.md's list is out of date", stacklevel=2)


MISREAD = [c for c in BRIDGE_CASES if cv_bridge_defect(*c) == MISREAD_PADDED_ROWS]
BIG_ENDIAN = [c for c in BRIDGE_CASES if cv_bridge_defect(*c) == BIG_ENDIAN_ON_NUMPY_2]
UNKNOWN = [c for c in BRIDGE_CASES if cv_bridge_defect(*c) == UNKNOWN_ENCODING]


@pytest.mark.parametrize("bridged", MISREAD, ids=bridge_ids(MISREAD))
def test_where_cv_bridge_misreads_padded_rows_the_node_agrees_with_opencv(bridged):
    check_against_opencv_where_cv_bridge_is_wrong(bridged, MISREAD_PADDED_ROWS)


@pytest.mark.parametrize("bridged", BIG_ENDIAN, ids=bridge_ids(BIG_ENDIAN))
def test_where_cv_bridge_fails_on_big_endian_under_numpy_2_the_node_agrees_with_opencv(bridged):
    check_against_opencv_where_cv_bridge_is_wrong(bridged, BIG_ENDIAN_ON_NUMPY_2)


@pytest.mark.parametrize("bridged", UNKNOWN, ids=bridge_ids(UNKNOWN))
def test_encodings_cv_bridge_does_not_know_the_node_converts_as_opencv(bridged):
    check_against_opencv_where_cv_bridge_is_wrong(bridged, UNKNOWN_ENCODING)


@pytest.mark.parametrize("fmt,extension", [("png", ".png"), ("jpeg", ".jpg")])
def test_compressed_agrees_with_cv_bridge(fmt, extension):
    bridge, _ = _cv_bridge()
    from sensor_msgs.msg import CompressedImage
    rgb = np.random.default_rng(12).integers(0, 256, (24, 40, 3), dtype=np.uint8)
    data = cv2.imencode(extension, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))[1].tobytes()
    converted = bridge.compressed_imgmsg_to_cv2(CompressedImage(format=fmt, data=data), "rgb8")
    np.testing.assert_array_equal(decode_compressed(fmt, data), converted)


@pytest.mark.parametrize("big_endian", [0, 1])
@pytest.mark.parametrize("padding", [0, 6])
@pytest.mark.parametrize("encoding", sorted(DEVICE_ENCODINGS))
def test_device_conversion_is_bit_exact(encoding, padding, big_endian):
    """The torch conversion the engine runs on the GPU, run here on the CPU, equals to_rgb."""
    rng = np.random.default_rng(zlib.crc32(f"{encoding}/{padding}/{big_endian}".encode()))
    raw, _ = case(encoding, rng)
    data, step = pack(raw, padding, big_endian=bool(big_endian))
    frame = RawFrame.validated(encoding, HEIGHT, WIDTH, step, bytearray(data), is_bigendian=big_endian)
    converted = to_rgb_tensor(torch.from_numpy(raw_rows(frame)), frame)
    assert converted.shape == (HEIGHT, WIDTH, 3) and converted.dtype == torch.uint8
    np.testing.assert_array_equal(converted.numpy(), to_rgb(frame))


class _HostWork(TorchDispatchMode):
    """Records operations that need the host: tensors off the input's device, and advanced
    indexing (an index from a Python sequence is built on the host and copied, below what
    a dispatch mode sees: on the meta device the copy is invisible, the indexing is not)."""

    def __init__(self, device: torch.device) -> None:
        super().__init__()
        self.device, self.found = device, []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        tensors = [t for t in tree_flatten((args, kwargs, out))[0] if isinstance(t, torch.Tensor)]
        if func.overloadpacket in (torch.ops.aten.index, torch.ops.aten.index_put) or any(
                t.device != self.device for t in tensors):
            self.found.append(str(func))
        return out


@pytest.mark.parametrize("encoding", sorted(DEVICE_ENCODINGS))
def test_device_conversion_needs_nothing_from_the_host(encoding):
    """On CUDA host work in the conversion (an index made from a Python list, say) is a
    blocking host-to-device copy per frame. Run on the meta device it must find none."""
    raw, _ = case(encoding, np.random.default_rng(0))
    data, step = pack(raw, 2)
    frame = RawFrame.validated(encoding, HEIGHT, WIDTH, step, bytearray(data))
    rows = torch.from_numpy(raw_rows(frame)).to("meta")
    with _HostWork(rows.device) as mode:
        converted = to_rgb_tensor(rows, frame)
    assert converted.shape == (HEIGHT, WIDTH, 3) and converted.device == rows.device
    assert not mode.found, f"host work: {mode.found}"


@pytest.mark.parametrize("encoding", ["uyvy", "nv21"])
def test_device_yuv_conversion_on_every_y_u_v(encoding):
    """All 2^24 (Y, U, V) combinations: one U, V pair per row (pair of rows for 4:2:0)."""
    u, v = (values.ravel().astype(np.uint8) for values in np.meshgrid(np.arange(256), np.arange(256)))
    y = np.arange(256, dtype=np.uint8)
    if encoding == "uyvy":  # 65536 rows of 128 U Y V Y groups
        pixels = np.empty((65536, 128, 4), np.uint8)
        pixels[..., 0], pixels[..., 1], pixels[..., 2], pixels[..., 3] = u[:, None], y[0::2], v[:, None], y[1::2]
        height, width = 65536, 256
    else:  # 65536 pairs of rows of 128 luma values, then their V U plane
        luma = np.broadcast_to(y.reshape(2, 128), (65536, 2, 128)).reshape(131072, 128)
        chroma = np.empty((65536, 64, 2), np.uint8)
        chroma[..., 0], chroma[..., 1] = v[:, None], u[:, None]
        pixels = np.concatenate([luma, chroma.reshape(65536, 128)])
        height, width = 131072, 128
    frame = RawFrame.validated(encoding, height, width, pixels.nbytes // pixels.shape[0], bytearray(pixels.tobytes()),
                               max_pixels=1 << 25)
    converted = to_rgb_tensor(torch.from_numpy(raw_rows(frame)), frame).numpy()
    np.testing.assert_array_equal(converted, to_rgb(frame))
