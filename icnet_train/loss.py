"""Cascade label guidance (paper section 3.3).

Cross entropy on each cascade output (``sub4`` at 1/16, ``sub24`` at 1/8, ``sub124`` at
1/4 of the input) against the labels downsampled (nearest) to that output's size,
weighted 0.4 / 0.4 / 1.0 by default; label 255 is ignored. Each term is the mean over the
non-ignored pixels of the batch (0, not NaN, when there are none).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from icnet_ros.weights.labels import IGNORE_LABEL

PAPER_WEIGHTS = {"sub4": 0.4, "sub24": 0.4, "sub124": 1.0}


def downsample_labels(target: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(N, H, W) integer labels -> (N, h, w) by nearest neighbour."""
    if tuple(target.shape[-2:]) == tuple(size):
        return target
    return F.interpolate(target[:, None].float(), size=size, mode="nearest")[:, 0].long()


class CascadeLoss(nn.Module):
    """Weighted sum of the cross entropies of the cascade outputs."""

    def __init__(self, weights: Mapping[str, float] = PAPER_WEIGHTS, ignore_index: int = IGNORE_LABEL) -> None:
        super().__init__()
        self.weights = dict(weights)
        self.ignore_index = ignore_index

    def forward(self, outputs: Mapping[str, torch.Tensor],
                target: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Total loss and the (detached) cross entropy of each output."""
        unknown = set(outputs) - set(self.weights)
        if unknown:
            raise ValueError(f"no loss weight for outputs {sorted(unknown)} (weights: {self.weights})")
        total = torch.zeros((), device=target.device)
        terms = {}
        for name, logits in outputs.items():
            labels = downsample_labels(target, tuple(logits.shape[-2:]))
            valid = (labels != self.ignore_index).sum().clamp(min=1)
            loss = F.cross_entropy(logits.float(), labels, ignore_index=self.ignore_index, reduction="sum") / valid
            terms[name] = loss.detach()
            total = total + self.weights[name] * loss
        return total, terms
