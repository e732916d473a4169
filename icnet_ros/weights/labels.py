"""Label sets: class names and their display colours."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from icnet_ros.weights.mapping_files import read_mapping_file

# Cityscapes trainIds 0..18 with the official colours (cityscapesScripts labels.py).
CITYSCAPES_CLASSES: tuple[tuple[str, tuple[int, int, int]], ...] = (
    ("road", (128, 64, 128)), ("sidewalk", (244, 35, 232)), ("building", (70, 70, 70)),
    ("wall", (102, 102, 156)), ("fence", (190, 153, 153)), ("pole", (153, 153, 153)),
    ("traffic light", (250, 170, 30)), ("traffic sign", (220, 220, 0)),
    ("vegetation", (107, 142, 35)), ("terrain", (152, 251, 152)), ("sky", (70, 130, 180)),
    ("person", (220, 20, 60)), ("rider", (255, 0, 0)), ("car", (0, 0, 142)),
    ("truck", (0, 0, 70)), ("bus", (0, 60, 100)), ("train", (0, 80, 100)),
    ("motorcycle", (0, 0, 230)), ("bicycle", (119, 11, 32)),
)
IGNORE_LABEL = 255


class LabelSetError(ValueError):
    """A label-set file or value that cannot be used."""


@dataclass(frozen=True)
class LabelSet:
    """Class names and RGB colours, indexed by class id."""

    name: str
    names: tuple[str, ...]
    colors: tuple[tuple[int, int, int], ...]

    def __post_init__(self) -> None:
        if not self.names:
            raise LabelSetError("a label set needs at least one class")
        if len(self.names) != len(self.colors):
            raise LabelSetError(f"{len(self.names)} names but {len(self.colors)} colours")
        if len(self.names) > 255:
            raise LabelSetError(f"at most 255 classes fit a mono8 mask, got {len(self.names)}")
        for color in self.colors:
            if len(color) != 3 or not all(isinstance(c, int) and 0 <= c <= 255 for c in color):
                raise LabelSetError(f"colour {color!r} is not three integers 0..255")

    @property
    def num_classes(self) -> int:
        return len(self.names)

    def palette(self) -> np.ndarray:
        """256x3 uint8 lookup table: class id -> colour; ids outside the set are black."""
        table = np.zeros((256, 3), np.uint8)
        table[: self.num_classes] = np.asarray(self.colors, np.uint8)
        return table

    def to_dict(self) -> dict:
        return {"name": self.name, "names": list(self.names), "colors": [list(c) for c in self.colors]}

    @classmethod
    def from_dict(cls, data: dict) -> LabelSet:
        try:
            return cls(str(data.get("name", "custom")), tuple(str(n) for n in data["names"]),
                       tuple(tuple(c) for c in data["colors"]))
        except (KeyError, TypeError) as error:
            raise LabelSetError(f"a label set needs 'names' and 'colors' lists ({error})") from None

    @classmethod
    def from_file(cls, path: str | Path) -> LabelSet:
        """Read a JSON or YAML file: ``{name, names: [...], colors: [[r, g, b], ...]}``."""
        try:
            data = read_mapping_file(path, "label file")
        except ValueError as error:
            raise LabelSetError(str(error)) from None
        try:
            return cls.from_dict(data)
        except LabelSetError as error:
            raise LabelSetError(f"label file {path}: {error}") from None


CITYSCAPES = LabelSet("cityscapes", tuple(n for n, _ in CITYSCAPES_CLASSES),
                      tuple(c for _, c in CITYSCAPES_CLASSES))
