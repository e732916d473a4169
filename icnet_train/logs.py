"""Run logs: CSV files (train_log.csv, val_log.csv) and TensorBoard events."""

from __future__ import annotations

import csv
from pathlib import Path


def _truncate(path: Path, last_iteration: int) -> None:
    """Drop rows after ``last_iteration`` (a run resumed from an earlier checkpoint)."""
    if not path.is_file():
        return
    with open(path, newline="") as stream:
        rows = list(csv.reader(stream))
    kept = rows[:1] + [row for row in rows[1:] if row and int(row[0]) <= last_iteration]
    with open(path, "w", newline="") as stream:
        csv.writer(stream).writerows(kept)


class RunLog:
    """Appends rows to the CSV logs and scalars to TensorBoard (main process only)."""

    def __init__(self, output_dir: Path, start_iteration: int, tensorboard: bool = True) -> None:
        self.train_csv, self.val_csv = output_dir / "train_log.csv", output_dir / "val_log.csv"
        for path in (self.train_csv, self.val_csv):
            _truncate(path, start_iteration)
        self.writer = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter
            self.writer = SummaryWriter(str(output_dir / "tensorboard"), purge_step=start_iteration + 1)

    def _append(self, path: Path, row: dict) -> None:
        new = not path.is_file() or path.stat().st_size == 0
        with open(path, "a", newline="") as stream:
            writer = csv.DictWriter(stream, fieldnames=list(row))
            if new:
                writer.writeheader()
            writer.writerow({k: repr(v) if isinstance(v, float) else v for k, v in row.items()})

    def train(self, iteration: int, values: dict[str, float]) -> None:
        self._append(self.train_csv, {"iteration": iteration, **values})
        if self.writer is not None:
            for name, value in values.items():
                self.writer.add_scalar(f"train/{name}", value, iteration)

    def validation(self, iteration: int, summary: dict) -> None:
        row = {"iteration": iteration, "miou": summary["miou"], "pixel_accuracy": summary["pixel_accuracy"]}
        row.update({f"iou_{name}": ("" if iou is None else iou) for name, iou in summary["iou"].items()})
        self._append(self.val_csv, row)
        if self.writer is not None:
            self.writer.add_scalar("val/miou", summary["miou"], iteration)
            self.writer.add_scalar("val/pixel_accuracy", summary["pixel_accuracy"], iteration)
            for name, iou in summary["iou"].items():
                if iou is not None:
                    self.writer.add_scalar(f"val_iou/{name}", iou, iteration)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
