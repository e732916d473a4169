"""Small training configurations shared by the training tests."""

from __future__ import annotations

import csv
from pathlib import Path

from icnet_ros.synthetic.street_scenes import sample_scene
from icnet_train.config import TrainConfig

# A tiny network on four 65x129 synthetic frames, fitted without resizing or mirroring.
TINY = dict(dataset="synthetic", synthetic_size=(65, 129), synthetic_train=4, synthetic_val=1, width=0.125,
            input_size=(65, 129), crop_size=(65, 129), scale_range=(1.0, 1.0), mirror=False, batch_size=4,
            workers=0, threads=1, progress=False, tensorboard=False, val_interval=0, log_interval=1)


def tiny_config(output_dir: Path, **changes) -> TrainConfig:
    return TrainConfig(**{**TINY, "output_dir": str(output_dir), **changes})


def losses(output_dir: Path) -> list[float]:
    with open(Path(output_dir) / "train_log.csv", newline="") as stream:
        return [float(row["loss"]) for row in csv.DictReader(stream)]


def first_seed_without_void(count: int) -> int:
    """Start of ``count`` consecutive synthetic scenes without the (void) ego vehicle."""
    flags = [sample_scene(seed).ego_vehicle == 0 for seed in range(200)]
    return next(s for s in range(200 - count) if all(flags[s:s + count]))
