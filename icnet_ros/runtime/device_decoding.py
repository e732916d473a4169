"""Colour conversion on the device: raw message rows in, HxWx3 uint8 RGB out, bit-exact
with :func:`image_decoding.to_rgb` (that is, with OpenCV and cv_bridge).

On CUDA the engine uploads the raw rows of these encodings and converts them here, on
the GPU. Channel reordering and 16 -> 8 bit scaling (``(v + 128) // 257``) are exact
by construction; YUV uses OpenCV's fixed-point BT.601 arithmetic (20-bit coefficients,
rounding offset, arithmetic shift, saturation), which the tests compare with
``cv2.cvtColor`` on every Y, U, V combination. Bayer demosaicing is left to OpenCV on the
CPU: its edge-aware interpolation is not worth re-deriving bit for bit.
"""

from __future__ import annotations

import numpy as np
import torch

from icnet_ros.runtime.image_decoding import RawFrame

_ORDER = {"rgb": (0, 1, 2), "bgr": (2, 1, 0), "rgba": (0, 1, 2), "bgra": (2, 1, 0), "mono": (0, 0, 0)}
_PACKED = {"yuv422": (1, 3, 0, 2), "uyvy": (1, 3, 0, 2), "yuv422_yuy2": (0, 2, 1, 3), "yuyv": (0, 2, 1, 3)}
_SEMI_PLANAR = {"nv21": (1, 0), "nv12": (0, 1)}  # (U, V) positions in the interleaved chroma plane

DEVICE_ENCODINGS: frozenset[str] = frozenset(
    [f"{name}{bits}" for name in _ORDER for bits in (8, 16)] + list(_PACKED) + list(_SEMI_PLANAR))
"""Encodings converted on the device; the others (Bayer) go through :func:`to_rgb` first."""

# OpenCV's ITU-R BT.601 video-range YUV -> RGB in 20-bit fixed point (color_yuv.simd.hpp).
_SHIFT, _CY, _CUB, _CUG, _CVG, _CVR = 20, 1220542, 2116026, -409993, -852492, 1673527


def raw_rows(frame: RawFrame) -> np.ndarray:
    """The bytes of ``frame`` to upload: ``rows x step`` uint8 (a view, padding included)."""
    layout = frame.layout
    rows = frame.height * layout.rows_num // layout.rows_den
    return frame.data[: rows * frame.step].reshape(rows, frame.step)


def _yuv_to_rgb(y: torch.Tensor, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """OpenCV's fixed-point conversion of broadcastable uint8 Y, U, V -> ...x3 uint8 RGB."""
    y = (y.to(torch.int32) - 16).clamp_(min=0) * _CY + (1 << (_SHIFT - 1))
    u, v = u.to(torch.int32) - 128, v.to(torch.int32) - 128
    rgb = torch.stack(torch.broadcast_tensors(y + _CVR * v, y + _CVG * v + _CUG * u, y + _CUB * u), -1)
    return (rgb >> _SHIFT).clamp_(0, 255).to(torch.uint8)


def to_rgb_tensor(raw: torch.Tensor, frame: RawFrame) -> torch.Tensor:
    """Convert ``raw`` (the ``rows x step`` bytes of ``frame``, on any device) to HxWx3 RGB."""
    encoding, height, width = frame.encoding, frame.height, frame.width
    layout = frame.layout
    grid = raw[:, : width * layout.channels * layout.depth]
    if encoding in _PACKED:
        y0, y1, u, v = (grid.view(height, width // 2, 4)[:, :, i] for i in _PACKED[encoding])
        return _yuv_to_rgb(torch.stack((y0, y1), -1), u[..., None], v[..., None]).view(height, width, 3)
    if encoding in _SEMI_PLANAR:
        luma = grid[:height].view(height // 2, 2, width // 2, 2)
        chroma = grid[height:].view(height // 2, 1, width // 2, 2)
        u, v = (chroma[..., i: i + 1] for i in _SEMI_PLANAR[encoding])
        return _yuv_to_rgb(luma, u, v).view(height, width, 3)
    if layout.depth == 2:
        pairs = grid.view(grid.shape[0], -1, 2).to(torch.int32)
        high, low = (pairs[..., 0], pairs[..., 1]) if frame.is_bigendian else (pairs[..., 1], pairs[..., 0])
        grid = torch.div(high * 256 + low + 128, 257, rounding_mode="floor").to(torch.uint8)
    pixels = grid.reshape(height, width, layout.channels)
    return _reorder(pixels, _ORDER[encoding.rstrip("0123456789")])


def _reorder(pixels: torch.Tensor, order: tuple[int, int, int]) -> torch.Tensor:
    """HxWxC -> HxWx3 in ``order`` with views, flips and expands only: indexing with a
    Python list would upload an index tensor, a blocking host-to-device copy per frame."""
    if order == (0, 0, 0):
        return pixels[:, :, :1].expand(-1, -1, 3)
    rgb = pixels[:, :, :3]
    return rgb.flip(2) if order == (2, 1, 0) else rgb
