"""Cityscapes in its standard layout, labelled in the 19 trainIds (255 ignored).

``root/leftImg8bit/<split>/<city>/<name>_leftImg8bit.png`` with its
``root/gtFine/<split>/<city>/<name>_gtFine_labelIds.png``; labelIds are mapped to trainIds
with the official table of ``cityscapesscripts.helpers.labels`` (classes not evaluated,
trainId 255 or -1, become 255).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from icnet_ros.weights.labels import IGNORE_LABEL
from icnet_train.data.folder import DatasetError, read_label, read_rgb

IMAGE_SUFFIX = "_leftImg8bit.png"
LABEL_SUFFIX = "_gtFine_labelIds.png"


def label_id_to_train_id() -> np.ndarray:
    """256-entry lookup table labelId -> trainId from the official Cityscapes label table."""
    from cityscapesscripts.helpers.labels import labels

    table = np.full(256, IGNORE_LABEL, np.uint8)
    for label in labels:
        if 0 <= label.id < 256 and 0 <= label.trainId < IGNORE_LABEL:
            table[label.id] = label.trainId
    return table


class CityscapesSegmentation:
    """Cityscapes images and gtFine labels of one split; items are (RGB uint8, trainId uint8)."""

    def __init__(self, root: str | Path, split: str = "train") -> None:
        self.root = Path(root)
        image_dir, label_dir = self.root / "leftImg8bit" / split, self.root / "gtFine" / split
        for folder in (image_dir, label_dir):
            if not folder.is_dir():
                raise DatasetError(f"Cityscapes folder missing: {folder} (expected the standard "
                                   f"leftImg8bit/ and gtFine/ layout under {self.root})")
        self.images = sorted(image_dir.glob(f"*/*{IMAGE_SUFFIX}"))
        if not self.images:
            raise DatasetError(f"no *{IMAGE_SUFFIX} images under {image_dir}")
        self.labels = [label_dir / image.parent.name / image.name.replace(IMAGE_SUFFIX, LABEL_SUFFIX)
                       for image in self.images]
        missing = [str(label) for label in self.labels if not label.is_file()]
        if missing:
            raise DatasetError(f"{len(missing)} label files missing, e.g. {missing[0]}")
        self.table = label_id_to_train_id()

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        image = read_rgb(self.images[index])
        label = cv2.LUT(read_label(self.labels[index]), self.table)
        if label.shape != image.shape[:2]:
            raise DatasetError(f"{self.labels[index]} is {label.shape}, its image {image.shape[:2]}")
        return image, label
