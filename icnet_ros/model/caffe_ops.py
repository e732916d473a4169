"""Caffe-compatible resize and pooling rules used by the official ICNet.

The official network runs in PSPNet's Caffe fork. Its ``Interp`` layer is bilinear
with corners aligned, and sizes follow shrink/zoom rules; its pyramid pooling uses
fixed kernels chosen for the 33x65 map of a 1025x2049 input. These functions
reproduce both exactly and extend them to any input size.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def shrink_size(size: int, factor: int) -> int:
    """Caffe ``Interp`` with ``shrink_factor``: ``(size - 1) / factor + 1``."""
    return (size - 1) // factor + 1


def zoom_size(size: int, factor: int) -> int:
    """Caffe ``Interp`` with ``zoom_factor``: ``size + (size - 1) * (factor - 1)``."""
    return size + (size - 1) * (factor - 1)


def interp(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Caffe ``Interp``: bilinear resize to ``size`` with ``align_corners=True``."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=size, mode="bilinear", align_corners=True)


# Stride of each official pyramid level as a fraction of (map size - 1). At the
# official 33x65 map these give strides 16x32, 10x20 and 5x10 exactly.
PYRAMID_STRIDE_FRACTIONS: dict[int, float] = {2: 1 / 2, 3: 5 / 16, 6: 5 / 32}


def pyramid_window(size: int, bins: int) -> tuple[int, int] | None:
    """Kernel and stride of one pyramid level along one axis, or None for adaptive.

    Rule: ``stride = round((size - 1) * f_bins)`` with the official fraction
    ``f_bins`` (1/2, 5/16, 5/32 for 2, 3, 6 bins), and ``kernel = size - (bins - 1)
    * stride`` so that the windows tile the map exactly, as they do officially. One bin
    is global pooling. At size 33 (and 65) this gives the official kernels 17/33,
    13/25, 8/15 and strides 16/32, 10/20, 5/10. Maps too small for the rule (stride 0
    or an empty kernel) return None: the caller then uses adaptive pooling.
    """
    if bins == 1:
        return size, size
    stride = math.floor((size - 1) * PYRAMID_STRIDE_FRACTIONS[bins] + 0.5)
    kernel = size - (bins - 1) * stride
    if stride < 1 or kernel < 1:
        return None
    return kernel, stride


def pyramid_pool(x: torch.Tensor, bins: int) -> torch.Tensor:
    """Average-pool ``x`` to ``bins x bins`` with the official fixed windows."""
    height, width = x.shape[-2:]
    rows, cols = pyramid_window(height, bins), pyramid_window(width, bins)
    if rows is None or cols is None:
        return F.adaptive_avg_pool2d(x, bins)
    return F.avg_pool2d(x, kernel_size=(rows[0], cols[0]), stride=(rows[1], cols[1]))
