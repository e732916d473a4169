"""Ground truth for bag frames from a folder of Cityscapes-style label PNGs.

Label PNGs are single-channel 8-bit images of Cityscapes ``labelIds`` (the
``*_gtFine_labelIds.png`` files, mapped to trainIds with the official table; classes
not evaluated become 255) or of ``trainIds`` (0..18, 255 ignored). They are matched to
the frames of one image topic

- by stamp: the file name (without the extension and a Cityscapes suffix such as
  ``_gtFine_labelIds``) is the frame's header stamp, as integer nanoseconds
  (``1700000000100000000.png``, the names ``icnet-eval --save-masks`` writes), as
  ``<sec>_<nanosec>`` or as decimal seconds ``<sec>.<fraction>``;
- by name: the files in name order are the frames in recording order (the N-th file
  is the ground truth of the N-th frame; the counts must be equal).
"""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

import cv2
import numpy as np

from icnet_ros.weights.labels import IGNORE_LABEL

LABEL_FORMATS = ("trainIds", "labelIds")
MATCHES = ("auto", "stamp", "name")
SUFFIXES = ("_gtFine_labelTrainIds", "_gtFine_labelIds", "_labelTrainIds", "_labelIds", "_trainIds")
# The official Cityscapes table (cityscapesscripts.helpers.labels): trainId -> labelId.
TRAIN_ID_TO_LABEL_ID = (7, 8, 11, 12, 13, 17, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 31, 32, 33)


class GroundTruthError(ValueError):
    """Ground truth that cannot be used (unreadable, unmatched, of the wrong size), with the reason."""


def label_id_to_train_id() -> np.ndarray:
    """256-entry table Cityscapes labelId -> trainId; ids not evaluated map to 255."""
    table = np.full(256, IGNORE_LABEL, np.uint8)
    table[list(TRAIN_ID_TO_LABEL_ID)] = np.arange(len(TRAIN_ID_TO_LABEL_ID), dtype=np.uint8)
    return table


def train_id_to_label_id() -> np.ndarray:
    """256-entry table trainId -> Cityscapes labelId; 255 (and unknown ids) map to 0, unlabeled."""
    table = np.zeros(256, np.uint8)
    table[: len(TRAIN_ID_TO_LABEL_ID)] = TRAIN_ID_TO_LABEL_ID
    return table


def read_label_png(path: Path, label_format: str = "trainIds") -> np.ndarray:
    """HxW uint8 trainIds of a single-channel 8-bit label PNG."""
    label = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if label is None:
        raise GroundTruthError(f"cannot read label image {path}")
    if label.ndim != 2 or label.dtype != np.uint8:
        raise GroundTruthError(f"label image {path} is {label.dtype} with shape {label.shape}; labels are "
                               "single-channel 8-bit PNGs of class ids (not colour images)")
    return label_id_to_train_id()[label] if label_format == "labelIds" else label


def stamp_from_name(name: str) -> int | None:
    """The header stamp (ns) a label file name gives, or None."""
    stem = name[: -len(Path(name).suffix)] if Path(name).suffix else name
    for suffix in SUFFIXES:
        if stem.endswith(suffix):
            stem = stem[: -len(suffix)]
            break
    if re.fullmatch(r"\d+", stem):
        return int(stem)
    match = re.fullmatch(r"(\d+)_(\d{1,9})", stem)
    if match:
        return int(match[1]) * 1_000_000_000 + int(match[2])
    if re.fullmatch(r"\d+\.\d+", stem):
        return int(Decimal(stem) * 1_000_000_000)
    return None


class LabelFolder:
    """Label PNGs of one image topic, matched by stamp or by name (see the module docstring)."""

    def __init__(self, folder: str | Path, label_format: str = "trainIds", match: str = "auto") -> None:
        self.folder = Path(folder)
        if label_format not in LABEL_FORMATS:
            raise GroundTruthError(f"label format must be one of {', '.join(LABEL_FORMATS)}, got {label_format!r}")
        if match not in MATCHES:
            raise GroundTruthError(f"label matching must be one of {', '.join(MATCHES)}, got {match!r}")
        if not self.folder.is_dir():
            raise GroundTruthError(f"label folder {self.folder} does not exist")
        self.label_format = label_format
        self.files = sorted(p for p in self.folder.iterdir() if p.suffix.lower() == ".png")
        if not self.files:
            raise GroundTruthError(f"label folder {self.folder} holds no .png files")
        stamps = {p: stamp_from_name(p.name) for p in self.files}
        if match == "auto":
            match = "stamp" if all(s is not None for s in stamps.values()) else "name"
        if match == "stamp":
            unnamed = [p.name for p, s in stamps.items() if s is None]
            if unnamed:
                raise GroundTruthError(f"label files whose names are no stamps: {', '.join(unnamed[:5])}")
            self._by_stamp = {s: p for p, s in stamps.items()}
        self.match = match

    def check_count(self, frames: int) -> None:
        """Matching by name needs one file per frame."""
        if self.match == "name" and len(self.files) != frames:
            raise GroundTruthError(f"{len(self.files)} label files in {self.folder} for {frames} frames: "
                                   "matching by name needs one per frame (or name the files by stamp)")

    def label_for(self, index: int, stamp_ns: int) -> np.ndarray | None:
        """The trainIds of frame ``index`` (recording order) with header stamp ``stamp_ns``, or None."""
        if self.match == "name":
            path = self.files[index] if index < len(self.files) else None
        else:
            path = self._by_stamp.get(stamp_ns)
        return None if path is None else read_label_png(path, self.label_format)
