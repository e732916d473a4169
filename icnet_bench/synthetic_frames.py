"""Frames for device checks and tests, made with NumPy and torch only: no OpenCV, so that
they also come about on a GPU machine that carries none (scripts/gpu_check.sh)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from icnet_ros.runtime.image_decoding import LAYOUTS, RawFrame

# BT.601 video range, RGB -> Y'CbCr (approximate is enough: tests compare with the decoded RGB).
_YUV = np.array([[0.257, 0.504, 0.098], [-0.148, -0.291, 0.439], [0.439, -0.368, -0.071]])
_PACKED_ORDER = {"yuv422": "UYVY", "uyvy": "UYVY", "yuv422_yuy2": "YUYV", "yuyv": "YUYV"}


def smooth_scene(height: int, width: int, seed: int = 0, cell: int = 32) -> np.ndarray:
    """HxWx3 uint8 RGB: random colours on a ``cell``-pixel grid, resized bicubically (large
    regions, so that a network's classes form regions too)."""
    generator = torch.Generator().manual_seed(seed)
    coarse = torch.randint(0, 256, (1, 3, max(2, height // cell), max(2, width // cell)), generator=generator)
    image = F.interpolate(coarse.float(), size=(height, width), mode="bicubic", align_corners=False)
    return image[0].permute(1, 2, 0).clamp(0, 255).round().to(torch.uint8).numpy().copy()


def _yuv(rgb: np.ndarray) -> np.ndarray:
    return np.clip(rgb.astype(np.float64) @ _YUV.T + (16, 128, 128), 0, 255).round().astype(np.uint8)


def _pixels(rgb: np.ndarray, encoding: str) -> np.ndarray:
    """The message's pixel values (rows x values per row, uint8 or uint16) for ``rgb``."""
    height, width = rgb.shape[:2]
    base = encoding.rstrip("0123456789")
    if base in ("rgb", "bgr", "rgba", "bgra", "mono"):
        pixels = rgb[..., 1:2] if base == "mono" else rgb[..., ::-1] if base.startswith("bgr") else rgb
        if base.endswith("a"):
            pixels = np.dstack([pixels, np.full_like(rgb[..., :1], 200)])
        values = pixels.reshape(height, -1)
        return values.astype(np.uint16) * 257 if encoding.endswith("16") else values
    y, u, v = np.moveaxis(_yuv(rgb), -1, 0)
    if encoding in _PACKED_ORDER:
        planes = {"Y0": y[:, 0::2], "Y1": y[:, 1::2], "U": u[:, 0::2], "V": v[:, 0::2]}
        order = ("U", "Y0", "V", "Y1") if _PACKED_ORDER[encoding] == "UYVY" else ("Y0", "U", "Y1", "V")
        return np.stack([planes[name] for name in order], -1).reshape(height, -1)
    u, v = u[0::2, 0::2], v[0::2, 0::2]
    chroma = np.stack([v, u] if encoding == "nv21" else [u, v], -1).reshape(height // 2, width)
    return np.concatenate([y, chroma])


def encode(rgb: np.ndarray, encoding: str, padding: int = 8) -> RawFrame:
    """``rgb`` as a ``sensor_msgs/Image`` of ``encoding`` (little-endian), rows padded."""
    values = _pixels(rgb, encoding)
    rows = values.astype("<u2").view(np.uint8) if values.dtype == np.uint16 else values
    assert rows.shape[1] == rgb.shape[1] * LAYOUTS[encoding].channels * LAYOUTS[encoding].depth
    buffer = np.full((rows.shape[0], rows.shape[1] + padding), 0xAB, np.uint8)
    buffer[:, : rows.shape[1]] = rows
    return RawFrame.validated(encoding, *rgb.shape[:2], buffer.shape[1], buffer.tobytes())
