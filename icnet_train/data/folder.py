"""A generic folder of image/label pairs with a class-mapping file.

Images (``.png``, ``.jpg``, ``.jpeg``) in one folder, single-channel label images (``.png``)
with the same stem in another. The class-mapping file (YAML or JSON) names the training
classes and maps the values found in the label images to them::

    names: [road, car, person]           # training classes; the index is the class id
    colors: [[128, 64, 128], [0, 0, 142], [220, 20, 60]]   # optional display colours
    mapping: {7: 0, 26: 1, 24: 2}         # label value -> class id; unlisted values -> 255

Without ``mapping``, values 0..len(names)-1 are the class ids and every other value is
ignored (255).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from icnet_ros.weights.labels import CITYSCAPES, IGNORE_LABEL, LabelSet
from icnet_ros.weights.mapping_files import read_mapping_file

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")


class DatasetError(ValueError):
    """A data set that cannot be read, with the reason."""


def read_rgb(path: Path) -> np.ndarray:
    """An image file as RGB uint8 (H, W, 3)."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise DatasetError(f"cannot read image {path}")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def read_label(path: Path) -> np.ndarray:
    """A single-channel 8-bit label image as uint8 (H, W)."""
    label = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if label is None:
        raise DatasetError(f"cannot read label image {path}")
    if label.ndim != 2 or label.dtype != np.uint8:
        raise DatasetError(f"{path}: label images must be single-channel 8-bit, got shape "
                           f"{label.shape} {label.dtype}")
    return label


class ClassMapping:
    """Training classes and the lookup table from label-image values to class ids."""

    def __init__(self, labels: LabelSet, table: np.ndarray) -> None:
        self.labels, self.table = labels, table

    @classmethod
    def from_file(cls, path: str | Path) -> ClassMapping:
        try:
            data = read_mapping_file(path, "class-mapping file")
        except ValueError as error:
            raise DatasetError(str(error)) from None
        if not isinstance(data, dict) or not isinstance(data.get("names"), list) or not data["names"]:
            raise DatasetError(f"class-mapping file {path} needs a non-empty 'names' list")
        return cls.from_dict(data, source=str(path))

    @classmethod
    def from_dict(cls, data: dict, source: str = "class mapping") -> ClassMapping:
        names = [str(name) for name in data["names"]]
        colors = data.get("colors") or [list(CITYSCAPES.palette()[i % 19]) for i in range(len(names))]
        try:
            labels = LabelSet(str(data.get("name", "custom")), tuple(names),
                              tuple(tuple(int(c) for c in color) for color in colors))
        except (TypeError, ValueError) as error:
            raise DatasetError(f"{source}: {error}") from None
        table = np.full(256, IGNORE_LABEL, np.uint8)
        mapping = data.get("mapping")
        if mapping is None:
            table[: len(names)] = np.arange(len(names))
        else:
            for value, class_id in dict(mapping).items():
                value, class_id = int(value), int(class_id)
                if not 0 <= value < 256 or not (0 <= class_id < len(names) or class_id == IGNORE_LABEL):
                    raise DatasetError(f"{source}: mapping {value} -> {class_id} is outside 0..255 -> "
                                       f"0..{len(names) - 1} or {IGNORE_LABEL}")
                table[value] = class_id
        return cls(labels, table)


class FolderSegmentation:
    """Image/label pairs matched by file stem; items are (RGB uint8, class id uint8)."""

    def __init__(self, images: str | Path, labels: str | Path, mapping: ClassMapping) -> None:
        image_dir, label_dir = Path(images), Path(labels)
        for folder in (image_dir, label_dir):
            if not folder.is_dir():
                raise DatasetError(f"folder not found: {folder}")
        self.images = sorted(p for p in image_dir.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
        if not self.images:
            raise DatasetError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) in {image_dir}")
        self.labels = [label_dir / f"{image.stem}.png" for image in self.images]
        missing = [str(label) for label in self.labels if not label.is_file()]
        if missing:
            raise DatasetError(f"{len(missing)} label files missing, e.g. {missing[0]}")
        self.mapping = mapping

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        image = read_rgb(self.images[index])
        label = cv2.LUT(read_label(self.labels[index]), self.mapping.table)
        if label.shape != image.shape[:2]:
            raise DatasetError(f"{self.labels[index]} is {label.shape}, its image {image.shape[:2]}")
        return image, label
