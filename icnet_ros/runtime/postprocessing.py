"""From network scores to a class mask at the camera's resolution (the official protocol).

The protocol: softmax, resize the scores bilinearly to the camera size, argmax. Resizing
19 score maps to 1024x2048 costs hundreds of milliseconds on a CPU, so
:func:`upsample_argmax` computes the same mask exactly with far less work:

- a bilinear output pixel is a convex combination of its four source pixels (a *cell*);
- where one class is the argmax at all four corners it stays the argmax of any convex
  combination (strictly ahead of lower class ids, at least level with higher ones, which
  is also how argmax breaks ties), so the mask there is that class;
- only pixels of the other cells (class boundaries) are interpolated over every class.

Its confidence (the largest interpolated probability) on uniform cells is the bilinear
interpolation of the per-pixel largest probability, because that is the uniform class's
probability at every corner. Results equal :func:`upsample_argmax_dense` up to rounding
(a pixel can differ only where two classes tie to within float precision).
:func:`upsample_argmax_dense` is the direct form; the engine uses it on CUDA, where it
is cheap and needs no synchronisation.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def bilinear_source(in_size: int, out_size: int, device: torch.device) -> tuple[torch.Tensor, ...]:
    """Source indices and weights of PyTorch's bilinear resize (``align_corners=False``).

    Returns ``(i0, i1, w0, w1)``: output position ``o`` reads ``w0[o] * x[i0[o]] +
    w1[o] * x[i1[o]]``, computed in float32 as ``F.interpolate`` does.
    """
    scale = torch.tensor(in_size / out_size, dtype=torch.float32)
    source = ((torch.arange(out_size, dtype=torch.float32) + 0.5) * scale - 0.5).clamp_(min=0)
    i0 = source.to(torch.int64)
    i1 = torch.where(i0 < in_size - 1, i0 + 1, i0)
    w1 = source - i0
    return i0.to(device), i1.to(device), (1 - w1).to(device), w1.to(device)


def upsample_argmax_dense(logits: torch.Tensor, size: tuple[int, int],
                          want_confidence: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Softmax of ``logits`` (CxHxW), bilinear resize to ``size``, argmax: (uint8 mask, confidence)."""
    scores = F.interpolate(logits.float().softmax(0)[None], size=size, mode="bilinear", align_corners=False)[0]
    if want_confidence:
        confidence, mask = scores.max(0)
        return mask.to(torch.uint8), confidence
    return scores.argmax(0).to(torch.uint8), None


def _uniform_cells(labels: torch.Tensor) -> torch.Tensor:
    """True where a pixel, its right, lower and lower-right neighbours (edge-clamped) agree."""
    right = torch.cat((labels[:, 1:], labels[:, -1:]), 1)
    across = labels == right
    down = torch.cat((labels[1:], labels[-1:]), 0)
    across_below = torch.cat((across[1:], across[-1:]), 0)
    return across & across_below & (labels == down)


class ScoreUpsampler:
    """:func:`upsample_argmax` with its index tables kept for repeated sizes."""

    def __init__(self) -> None:
        self._tables: dict[tuple, tuple[torch.Tensor, ...]] = {}

    def _table(self, in_size: int, out_size: int, device: torch.device) -> tuple[torch.Tensor, ...]:
        key = (in_size, out_size, str(device))
        if key not in self._tables:
            if len(self._tables) > 16:
                self._tables.clear()
            self._tables[key] = bilinear_source(in_size, out_size, device)
        return self._tables[key]

    def __call__(self, logits: torch.Tensor, size: tuple[int, int],
                 want_confidence: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Same contract as :func:`upsample_argmax_dense`: (HxW uint8 mask, HxW confidence or None)."""
        logits = logits.float()
        classes, height, width = logits.shape
        out_h, out_w = size
        y0, y1, hy0, hy1 = self._table(height, out_h, logits.device)
        x0, x1, wx0, wx1 = self._table(width, out_w, logits.device)

        labels = logits.max(0).indices.to(torch.uint8)  # first maximum, as argmax; faster on CPU
        # Columns first: the row gather then copies whole rows (8x faster on a CPU).
        mask = labels.index_select(1, x0).index_select(0, y0)
        mixed = (~_uniform_cells(labels)).index_select(1, x0).index_select(0, y0)
        if mixed.device.type == "cpu":  # NumPy's flatnonzero is 3x faster than torch's nonzero here
            flat = torch.from_numpy(np.flatnonzero(mixed.numpy()))
        else:
            flat = mixed.view(-1).nonzero().squeeze(1)

        probs = logits.softmax(0) if want_confidence or 4 * flat.numel() > height * width else None
        confidence = None
        if want_confidence:
            confidence = F.interpolate(probs.amax(0)[None, None], size=size, mode="bilinear",
                                       align_corners=False)[0, 0]
        if flat.numel():
            rows, cols = flat // out_w, flat % out_w
            r0, r1, c0, c1 = y0[rows] * width, y1[rows] * width, x0[cols], x1[cols]
            # Pixel-major scores so that one corner of one pixel is one contiguous row.
            table = (probs if probs is not None else logits).permute(1, 2, 0).reshape(-1, classes)

            def corner(index: torch.Tensor) -> torch.Tensor:
                values = table.index_select(0, index)
                return values if probs is not None else values.softmax(1)

            a, b = wx0[cols, None], wx1[cols, None]
            scores = (hy0[rows, None] * (a * corner(r0 + c0) + b * corner(r0 + c1))
                      + hy1[rows, None] * (a * corner(r1 + c0) + b * corner(r1 + c1)))
            best, best_class = scores.max(1)
            mask.view(-1)[flat] = best_class.to(torch.uint8)
            if confidence is not None:
                confidence.view(-1)[flat] = best
        return mask, confidence


def upsample_argmax(logits: torch.Tensor, size: tuple[int, int],
                    want_confidence: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The official protocol's mask (and confidence), computed only where classes meet."""
    return ScoreUpsampler()(logits, size, want_confidence)
