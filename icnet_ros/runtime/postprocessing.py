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


def _uniform_cells(labels: np.ndarray) -> np.ndarray:
    """True where a pixel, its right, lower and lower-right neighbours (edge-clamped) agree."""
    across = np.empty(labels.shape, bool)
    np.equal(labels[:, :-1], labels[:, 1:], out=across[:, :-1])
    across[:, -1] = True
    uniform = across.copy()
    uniform[:-1] &= across[1:]
    uniform[:-1] &= labels[:-1] == labels[1:]
    return uniform


def _softmax_classes(scores: np.ndarray) -> np.ndarray:
    """Softmax over axis 1 of an ``N x C`` array."""
    exp = np.exp(scores - scores.max(1, keepdims=True))
    exp /= exp.sum(1, keepdims=True)
    return exp


class ScoreUpsampler:
    """The cell method on the CPU, with its index tables kept for repeated sizes.

    Returns NumPy arrays: (HxW uint8 mask, HxW float32 confidence or None).
    """

    def __init__(self) -> None:
        self._tables: dict[tuple[int, int], tuple[np.ndarray, ...]] = {}

    def _table(self, in_size: int, out_size: int) -> tuple[np.ndarray, ...]:
        key = (in_size, out_size)
        if key not in self._tables:
            if len(self._tables) > 16:
                self._tables.clear()
            self._tables[key] = tuple(t.numpy() for t in bilinear_source(in_size, out_size, torch.device("cpu")))
        return self._tables[key]

    def __call__(self, logits: torch.Tensor, size: tuple[int, int],
                 want_confidence: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
        logits = logits.detach().float().cpu()
        classes, height, width = logits.shape
        out_h, out_w = size
        y0, y1, hy0, hy1 = self._table(height, out_h)
        x0, x1, wx0, wx1 = self._table(width, out_w)

        labels = logits.max(0).indices.to(torch.uint8).numpy()  # first maximum, as argmax
        # NumPy's take is 3-5x faster than torch's index_select for these gathers.
        mask = labels.take(x0, 1).take(y0, 0)
        flat = np.flatnonzero(~_uniform_cells(labels).take(x0, 1).take(y0, 0))

        # Softmax everywhere once when that is cheaper than at four corners per mixed pixel.
        dense_softmax = want_confidence or 4 * flat.size > height * width
        scores = logits.softmax(0) if dense_softmax else logits
        # Pixel-major (HW x C): one corner of one pixel is one contiguous row to gather.
        table = scores.permute(1, 2, 0).reshape(-1, classes).numpy()
        confidence = None
        if want_confidence:
            best = torch.from_numpy(table.max(1).reshape(1, 1, height, width))
            confidence = F.interpolate(best, size=size, mode="bilinear", align_corners=False)[0, 0].numpy()
        if flat.size:
            rows, cols = np.divmod(flat, out_w)
            r0, r1, c0, c1 = y0[rows] * width, y1[rows] * width, x0[cols], x1[cols]

            def corner(index: np.ndarray) -> torch.Tensor:  # N x C (NumPy's take: 30x torch's here)
                values = table.take(index, axis=0)
                return torch.from_numpy(values if dense_softmax else _softmax_classes(values))

            top, bottom = hy0[rows], hy1[rows]
            left, right = wx0[cols], wx1[cols]
            mixed = corner(r0 + c0).mul_(torch.from_numpy(top * left)[:, None])
            for index, weight in ((r0 + c1, top * right), (r1 + c0, bottom * left), (r1 + c1, bottom * right)):
                mixed.addcmul_(corner(index), torch.from_numpy(weight)[:, None])
            # Argmax over classes, first maximum wins: a loop over the class rows of the
            # transposed scores beats argmax over rows of 19 values.
            mixed = mixed.t().contiguous().numpy()
            best, best_class = mixed[0].copy(), np.zeros(flat.size, np.uint8)
            for index in range(1, classes):
                better = mixed[index] > best
                np.copyto(best, mixed[index], where=better)
                best_class[better] = index
            mask.reshape(-1)[flat] = best_class
            if confidence is not None:
                confidence.reshape(-1)[flat] = best
        return mask, confidence


def upsample_argmax(logits: torch.Tensor, size: tuple[int, int],
                    want_confidence: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
    """The official protocol's mask (and confidence) as NumPy arrays, computed only where classes meet."""
    return ScoreUpsampler()(logits, size, want_confidence)
