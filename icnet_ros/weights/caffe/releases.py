"""The official ICNet Cityscapes releases (github.com/hszhao/ICNet), known by MD5.

The MD5 sums and scores are those the official README gives for each download.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class OfficialRelease:
    """One released ``.caffemodel`` and the scores reported for it."""

    name: str
    reported: dict = field(default_factory=dict)


_TRAIN_30K = {"dataset": "cityscapes", "split": "val", "miou": 67.7, "pixel_accuracy": 94.5}
_TRAINVAL_90K = {"dataset": "cityscapes", "split": "test", "miou": 69.5}

OFFICIAL_RELEASES: dict[str, OfficialRelease] = {
    "c7038630c4b6c869afaaadd811bdb539": OfficialRelease("icnet_cityscapes_train_30k", _TRAIN_30K),
    "6da59a72a254862106420983a7723624": OfficialRelease("icnet_cityscapes_train_30k_bnnomerge", _TRAIN_30K),
    "4f4dd9eecd465dd8de7e4cf88ba5d5d5": OfficialRelease("icnet_cityscapes_trainval_90k", _TRAINVAL_90K),
    "ba3cf6e24beb07068dacc901a9c7f28b": OfficialRelease("icnet_cityscapes_trainval_90k_bnnomerge", _TRAINVAL_90K),
}
