"""Scoring bag frames: what happened to every frame, accuracy, and the optional outputs.

An :class:`Evaluation` receives each frame's fate from a replay (offline through the
engine, or live through the node): answered with a class mask and a latency, or lost
(``dropped`` by the node, ``rejected`` as undecodable, ``failed`` in inference). It
scores answered frames that have ground truth into a confusion matrix (the official
definition, :mod:`metrics`), and optionally writes each mask as a PNG named by stamp,
the masks and overlays into an output bag, and an image strip of one frame.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from icnet_ros.evaluation.bag_reading import BagImage, stamp_text
from icnet_ros.evaluation.bag_writing import BagWriter, image_message
from icnet_ros.evaluation.ground_truth import GroundTruthError, LabelFolder
from icnet_ros.evaluation.metrics import ConfusionMatrix
from icnet_ros.runtime.image_decoding import ImageRejected
from icnet_ros.runtime.visualization import blend, colorize
from icnet_ros.weights.labels import LabelSet

STATUSES = ("answered", "dropped", "rejected", "failed")
STRIP_PANEL_WIDTH = 384  # pixels per panel of the image strip


@dataclass
class FrameRecord:
    """The fate of one bag frame."""

    topic: str
    index: int
    stamp_ns: int  # the header stamp in the bag
    status: str  # one of STATUSES
    latency_ms: float | None = None
    sent_stamp_ns: int | None = None  # live: the stamp it was published with
    scored: bool = False
    reason: str | None = None
    timings_ms: dict[str, float] | None = None

    def to_dict(self) -> dict:
        return {"topic": self.topic, "index": self.index, "stamp_ns": self.stamp_ns,
                "sent_stamp_ns": self.sent_stamp_ns, "status": self.status,
                "latency_ms": self.latency_ms, "scored": self.scored, "reason": self.reason,
                "timings_ms": self.timings_ms}


def output_topic_base(topic: str) -> str:
    """``/cam/image_raw/compressed`` -> ``/cam/image_raw``: where a topic's outputs go."""
    return topic[: -len("/compressed")] if topic.endswith("/compressed") else topic


def image_strip(rgb: np.ndarray, mask: np.ndarray, palette: np.ndarray, alpha: float = 0.5,
                panel_width: int = STRIP_PANEL_WIDTH) -> np.ndarray:
    """Input | colour mask | overlay side by side (HxWx3 RGB), each panel ``panel_width`` wide."""
    color = colorize(mask, palette)
    panels = (rgb, color, blend(rgb, color, alpha))
    height = max(1, round(rgb.shape[0] * panel_width / rgb.shape[1]))
    return np.hstack([cv2.resize(p, (panel_width, height), interpolation=cv2.INTER_AREA
                                 if p is not color else cv2.INTER_NEAREST) for p in panels])


def write_png(path: Path, image: np.ndarray, compression: int = 1) -> None:
    """Write an HxW (ids) or HxWx3 (RGB) uint8 image as PNG (zlib ``compression`` 0..9)."""
    bgr = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    if not cv2.imwrite(str(path), bgr, [cv2.IMWRITE_PNG_COMPRESSION, compression]):
        raise OSError(f"cannot write {path}")


@dataclass
class Evaluation:
    """Collects frame fates and scores; see the module docstring.

    ``label_folder`` gives ground truth to frames of ``label_folder_topic`` that carry
    none from a label topic. ``masks_dir``: one PNG of trainIds per answered frame,
    ``<masks_dir>/<stamp ns, 19 digits>.png`` (a sub-folder per topic when there are
    several). ``output_bag``: ``<topic>/class_mask`` (mono8) and ``<topic>/overlay``
    (rgb8) at the frames' original stamps. ``strip``: (path, topic, index) of the frame
    drawn as an image strip.
    """

    labels: LabelSet
    topics: list[str]
    label_folder: LabelFolder | None = None
    label_folder_topic: str | None = None
    masks_dir: Path | None = None
    output_bag: BagWriter | None = None
    overlay_alpha: float = 0.5
    strip: tuple[Path, str, int] | None = None
    records: list[FrameRecord] = field(default_factory=list)
    started: float | None = None  # perf_counter of the first frame sent
    finished: float | None = None  # perf_counter of the last answer

    def __post_init__(self) -> None:
        self.confusion = ConfusionMatrix(self.labels.num_classes)
        self.topic_confusion = {topic: ConfusionMatrix(self.labels.num_classes) for topic in self.topics}
        self.palette = self.labels.palette()
        self.strip_written: Path | None = None
        if self.masks_dir is not None:
            for folder in self._mask_folders().values():
                folder.mkdir(parents=True, exist_ok=True)

    def _mask_folders(self) -> dict[str, Path]:
        if len(self.topics) == 1:
            return {self.topics[0]: self.masks_dir}
        return {t: self.masks_dir / output_topic_base(t).strip("/").replace("/", "_") for t in self.topics}

    @property
    def wants_rgb(self) -> bool:
        """Whether :meth:`answered` needs the decoded input (overlays)."""
        return self.output_bag is not None or self.strip is not None

    def mark_started(self) -> None:
        if self.started is None:
            self.started = time.perf_counter()

    def ground_truth(self, frame: BagImage) -> np.ndarray | None:
        if frame.label is not None:
            return frame.label
        if self.label_folder is not None and frame.topic == self.label_folder_topic:
            return self.label_folder.label_for(frame.index, frame.stamp_ns)
        return None

    def answered(self, frame: BagImage, mask: np.ndarray, latency_ms: float, *,
                 sent_stamp_ns: int | None = None, timings_ms: dict[str, float] | None = None,
                 rgb: np.ndarray | None = None) -> FrameRecord:
        """Record, score and write out one answered frame; raises GroundTruthError on a bad label."""
        self.finished = time.perf_counter()
        record = FrameRecord(frame.topic, frame.index, frame.stamp_ns, "answered", float(latency_ms),
                             sent_stamp_ns, timings_ms=timings_ms)
        label = self.ground_truth(frame)
        if label is not None:
            self._score(frame, mask, label)
            record.scored = True
        if self.masks_dir is not None:
            write_png(self._mask_folders()[frame.topic] / f"{stamp_text(frame.stamp_ns)}.png", mask)
        if self.wants_rgb:
            self._write_outputs(frame, mask, rgb)
        self.records.append(record)
        return record

    def lost(self, frame: BagImage, status: str, reason: str | None = None,
             sent_stamp_ns: int | None = None) -> FrameRecord:
        """Record a frame that got no mask (``dropped``, ``rejected`` or ``failed``)."""
        if status not in STATUSES[1:]:
            raise ValueError(f"status must be one of {', '.join(STATUSES[1:])}, got {status!r}")
        record = FrameRecord(frame.topic, frame.index, frame.stamp_ns, status, sent_stamp_ns=sent_stamp_ns,
                             reason=reason)
        self.records.append(record)
        return record

    def _score(self, frame: BagImage, mask: np.ndarray, label: np.ndarray) -> None:
        if label.shape != mask.shape:
            raise GroundTruthError(
                f"the label of frame {frame.index} on {frame.topic} (stamp {frame.stamp_ns}) is "
                f"{label.shape[1]}x{label.shape[0]}, its image {mask.shape[1]}x{mask.shape[0]}: "
                "image and label sizes must match")
        try:
            self.confusion.update(mask, label)
        except ValueError as error:
            raise GroundTruthError(f"cannot score frame {frame.index} on {frame.topic} (stamp {frame.stamp_ns}): "
                                   f"{error} (labelIds read as trainIds? see --label-format)") from None
        self.topic_confusion[frame.topic].update(mask, label)

    def _write_outputs(self, frame: BagImage, mask: np.ndarray, rgb: np.ndarray | None) -> None:
        if rgb is None:
            rgb = frame.rgb()
        if self.output_bag is not None:
            base = output_topic_base(frame.topic)
            overlay = blend(rgb, colorize(mask, self.palette), self.overlay_alpha)
            self.output_bag.write(f"{base}/class_mask", image_message(mask, frame.stamp_ns, frame.frame_id))
            self.output_bag.write(f"{base}/overlay", image_message(overlay, frame.stamp_ns, frame.frame_id))
        if self.strip is not None and (frame.topic, frame.index) == self.strip[1:]:
            self.strip[0].parent.mkdir(parents=True, exist_ok=True)
            write_png(self.strip[0], image_strip(rgb, mask, self.palette, self.overlay_alpha), compression=9)
            self.strip_written = self.strip[0]

    @property
    def wall_s(self) -> float:
        """Seconds from the first frame sent to the last answer."""
        if self.started is None or self.finished is None:
            return 0.0
        return self.finished - self.started

    def count(self, status: str, topic: str | None = None) -> int:
        return sum(r.status == status and (topic is None or r.topic == topic) for r in self.records)


def evaluate_offline(engine, frames: Iterable[BagImage], evaluation: Evaluation, progress=None) -> None:
    """Every frame through ``engine`` (a SegmentationEngine) in this process, one at a time.

    The latency of a frame is the wall time of ``engine.segment`` (decode to mask);
    ``progress`` (a tqdm bar) advances by one per frame.
    """
    from icnet_ros.runtime.engine import EngineError

    for frame in frames:
        evaluation.mark_started()
        try:
            image = frame.frame(engine.max_pixels)
            start = time.perf_counter()
            result = engine.segment(image, want_rgb=evaluation.wants_rgb)
            latency_ms = (time.perf_counter() - start) * 1e3
        except ImageRejected as error:
            evaluation.lost(frame, "rejected", f"{error.reason}: {error}")
        except EngineError as error:
            evaluation.lost(frame, "failed", str(error))
        else:
            evaluation.answered(frame, result.class_mask, latency_ms,
                                timings_ms={k: round(v, 3) for k, v in result.timings_ms.items()},
                                rgb=result.rgb)
        if progress is not None:
            progress.update(1)
