"""Colour masks and overlays for people looking at segmentations."""

from __future__ import annotations

import cv2
import numpy as np


def colorize(class_mask: np.ndarray, palette: np.ndarray) -> np.ndarray:
    """``HxWx3`` uint8: ``palette[class_mask]`` (``palette`` is 256x3 uint8, see LabelSet.palette)."""
    if class_mask.dtype != np.uint8 or class_mask.ndim != 2:
        raise ValueError(f"class_mask must be HxW uint8, got {class_mask.dtype} {class_mask.shape}")
    if palette.shape != (256, 3) or palette.dtype != np.uint8:
        raise ValueError(f"palette must be 256x3 uint8, got {palette.dtype} {palette.shape}")
    # cv2.LUT looks channel c of its input up in channel c of the table: 6x faster than palette[mask].
    return cv2.LUT(cv2.merge((class_mask, class_mask, class_mask)), palette.reshape(256, 1, 3))


def blend(rgb: np.ndarray, color_mask: np.ndarray, alpha: float) -> np.ndarray:
    """``(1 - alpha) * rgb + alpha * color_mask``, rounded and saturated to uint8."""
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    if rgb.shape != color_mask.shape or rgb.dtype != np.uint8 or color_mask.dtype != np.uint8:
        raise ValueError(f"rgb {rgb.dtype} {rgb.shape} and colour mask {color_mask.dtype} "
                         f"{color_mask.shape} must be uint8 of one shape")
    return cv2.addWeighted(rgb, 1.0 - alpha, color_mask, alpha, 0.0)
