"""Segmentation metrics by the official Cityscapes definition.

A :class:`ConfusionMatrix` accumulates ``matrix[ground_truth, prediction]`` pixel counts
over a whole set; pixels whose ground truth is the ignore label (255) are left out.
From the totals, for every class ``c``:

    IoU_c = TP_c / (TP_c + FP_c + FN_c)

with the counts summed over the whole set (not averaged per image). A class with
``TP + FP + FN == 0`` (absent from both the predictions and the ground truth) has IoU
NaN and is excluded from the mean IoU; a class only predicted (a false alarm) counts
with IoU 0. Pixel accuracy is the fraction of non-ignored pixels predicted right.
This is what ``cityscapesscripts`` (evalPixelLevelSemanticLabeling) computes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from icnet_ros.weights.labels import IGNORE_LABEL

ArrayLike = np.ndarray | torch.Tensor


def confusion_matrix(prediction: ArrayLike, target: ArrayLike, num_classes: int,
                     ignore_index: int = IGNORE_LABEL) -> np.ndarray:
    """``num_classes`` x ``num_classes`` int64 counts, rows ground truth, columns prediction.

    ``prediction`` and ``target`` are integer arrays (numpy or torch, any device) of the
    same shape. Target pixels equal to ``ignore_index`` are skipped; any other value
    outside ``0..num_classes-1`` (in either array) is an error.
    """
    if tuple(prediction.shape) != tuple(target.shape):
        raise ValueError(f"prediction shape {tuple(prediction.shape)} != target shape {tuple(target.shape)}")
    if isinstance(prediction, torch.Tensor) or isinstance(target, torch.Tensor):
        device = prediction.device if isinstance(prediction, torch.Tensor) else target.device
        prediction = torch.as_tensor(prediction, device=device).reshape(-1).long()
        target = torch.as_tensor(target, device=device).reshape(-1).long()
        valid = target != ignore_index
        prediction, target = prediction[valid], target[valid]
        _check_range(prediction, target, num_classes)
        counts = torch.bincount(target * num_classes + prediction, minlength=num_classes ** 2).cpu().numpy()
    else:
        prediction = np.asarray(prediction).reshape(-1).astype(np.int64)
        target = np.asarray(target).reshape(-1).astype(np.int64)
        valid = target != ignore_index
        prediction, target = prediction[valid], target[valid]
        _check_range(prediction, target, num_classes)
        counts = np.bincount(target * num_classes + prediction, minlength=num_classes ** 2)
    return counts.reshape(num_classes, num_classes).astype(np.int64)


def _check_range(prediction: ArrayLike, target: ArrayLike, num_classes: int) -> None:
    for what, values in (("target", target), ("prediction", prediction)):
        if len(values) and (int(values.min()) < 0 or int(values.max()) >= num_classes):
            raise ValueError(f"{what} holds class ids {int(values.min())}..{int(values.max())}, "
                             f"outside 0..{num_classes - 1} (and not the ignore label)")


def per_class_iou(matrix: np.ndarray) -> np.ndarray:
    """IoU of every class from a confusion matrix; NaN where TP + FP + FN is 0."""
    matrix = np.asarray(matrix, dtype=np.float64)
    tp = np.diag(matrix)
    union = matrix.sum(axis=0) + matrix.sum(axis=1) - tp
    return np.divide(tp, union, out=np.full_like(tp, np.nan), where=union > 0)


def mean_iou(matrix: np.ndarray) -> float:
    """Mean of the per-class IoUs that are defined (NaN classes excluded); NaN if none."""
    ious = per_class_iou(matrix)
    defined = ious[~np.isnan(ious)]
    return float(defined.mean()) if defined.size else math.nan


def pixel_accuracy(matrix: np.ndarray) -> float:
    """Correct non-ignored pixels / non-ignored pixels; NaN for an empty matrix."""
    matrix = np.asarray(matrix)
    total = matrix.sum()
    return float(np.trace(matrix) / total) if total else math.nan


def format_table(matrix: np.ndarray, names: Sequence[str]) -> str:
    """Per-class IoU table (with ground-truth pixel counts), then mIoU and pixel accuracy."""
    matrix = np.asarray(matrix)
    if matrix.shape != (len(names), len(names)):
        raise ValueError(f"{len(names)} names for a {matrix.shape} confusion matrix")
    ious = per_class_iou(matrix)
    width = max(12, *(len(name) for name in names))
    lines = [f"{'class':<{width}}  {'IoU':>6}  {'gt pixels':>12}", "-" * (width + 22)]
    for name, iou, count in zip(names, ious, matrix.sum(axis=1)):
        value = "   n/a" if math.isnan(iou) else f"{100 * iou:6.2f}"
        lines.append(f"{name:<{width}}  {value}  {int(count):>12d}")
    lines.append("-" * (width + 22))
    lines.append(f"{'mIoU':<{width}}  {100 * mean_iou(matrix):6.2f}")
    lines.append(f"{'pixel acc.':<{width}}  {100 * pixel_accuracy(matrix):6.2f}")
    return "\n".join(lines)


class ConfusionMatrix:
    """A confusion matrix accumulated over a set of images (see the module docstring)."""

    def __init__(self, num_classes: int, ignore_index: int = IGNORE_LABEL) -> None:
        if num_classes < 1:
            raise ValueError(f"num_classes must be positive, got {num_classes}")
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.matrix = np.zeros((num_classes, num_classes), np.int64)

    def update(self, prediction: ArrayLike, target: ArrayLike) -> ConfusionMatrix:
        """Add one image (or a batch) of predicted and ground-truth class ids."""
        self.matrix += confusion_matrix(prediction, target, self.num_classes, self.ignore_index)
        return self

    def merge(self, other: ConfusionMatrix | np.ndarray) -> ConfusionMatrix:
        """Add the counts of another matrix (e.g. from another process)."""
        counts = other.matrix if isinstance(other, ConfusionMatrix) else np.asarray(other)
        if counts.shape != self.matrix.shape:
            raise ValueError(f"cannot merge a {counts.shape} matrix into a {self.matrix.shape} one")
        self.matrix += counts.astype(np.int64)
        return self

    def reset(self) -> None:
        self.matrix[:] = 0

    def iou(self) -> np.ndarray:
        return per_class_iou(self.matrix)

    def mean_iou(self) -> float:
        return mean_iou(self.matrix)

    def pixel_accuracy(self) -> float:
        return pixel_accuracy(self.matrix)

    def table(self, names: Sequence[str]) -> str:
        return format_table(self.matrix, names)

    def summary(self, names: Sequence[str]) -> dict:
        """JSON-ready results: mIoU, pixel accuracy, per-class IoU (None where undefined)."""
        if len(names) != self.num_classes:
            raise ValueError(f"{len(names)} names for {self.num_classes} classes")
        return {
            "miou": self.mean_iou(), "pixel_accuracy": self.pixel_accuracy(),
            "iou": {name: (None if math.isnan(v) else float(v)) for name, v in zip(names, self.iou())},
        }
