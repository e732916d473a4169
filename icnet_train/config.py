"""The configuration of a training run: defaults from the paper, a YAML file, flags.

Every field is a command-line flag (``--crop-size 769 769``) and a YAML key
(``crop_size: [769, 769]``); flags override the file, which overrides the defaults.
The whole configuration is stored in every checkpoint.
"""

from __future__ import annotations

import hashlib
import json
import typing
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path

from icnet_ros.model import BRANCHES
from icnet_ros.weights.preprocessing import OFFICIAL, Preprocessing

DATASETS = ("cityscapes", "folder", "synthetic")


class ConfigError(ValueError):
    """A configuration that cannot be used, with the reason."""


def _option(default, help: str, **kwargs):  # noqa: A002 - argparse's name
    return field(default=default, metadata={"help": help, **kwargs})


@dataclass
class TrainConfig:
    """Everything a training run depends on (paper defaults)."""

    # Data.
    dataset: str = _option("cityscapes", "training data: " + ", ".join(DATASETS), choices=DATASETS)
    data_root: str = _option("", "Cityscapes root (holding leftImg8bit/ and gtFine/)")
    train_split: str = _option("train", "Cityscapes split to train on")
    val_split: str = _option("val", "Cityscapes split to validate on")
    train_images: str = _option("", "folder data set: training images")
    train_labels: str = _option("", "folder data set: training label images")
    val_images: str = _option("", "folder data set: validation images")
    val_labels: str = _option("", "folder data set: validation label images")
    class_map: str = _option("", "folder data set: class-mapping file (YAML/JSON: names, colors, mapping)")
    synthetic_size: tuple[int, int] = _option((512, 1024), "synthetic frames: height width")
    synthetic_train: int = _option(3000, "synthetic frames to train on (seeds synthetic_seed + i)")
    synthetic_val: int = _option(100, "synthetic validation frames (seeds synthetic_seed + 1000000 + i)")
    synthetic_seed: int = _option(0, "first seed of the synthetic frames")
    # Network.
    width: float = _option(0.5, "channel multiplier (0.5: the released ICNet, 1.0: PSPNet50 widths)")
    branches: str = _option("sub124", "cascade branches: " + ", ".join(BRANCHES), choices=BRANCHES)
    init: str = _option("", "start from these weights: a checkpoint (.pth) or a weight file "
                            "(.safetensors, e.g. converted official weights) for fine-tuning")
    # Input.
    input_size: tuple[int, int] = _option((1025, 2049), "network input (height width) for validation and export")
    crop_size: tuple[int, int] = _option((769, 769), "training crop (height width)")
    scale_range: tuple[float, float] = _option((0.5, 2.0), "random resize range")
    mirror: bool = _option(True, "random horizontal mirror")
    photometric: bool = _option(False, "random brightness, contrast, saturation, hue")
    channel_order: str = _option(OFFICIAL.channel_order, "channel order the network reads", choices=("RGB", "BGR"))
    mean: tuple[float, float, float] = _option(OFFICIAL.mean, "mean in R G B order (0..255)")
    std: tuple[float, float, float] | None = _option(None, "std in R G B order (0..255); none: no division")
    # Optimisation.
    iterations: int = _option(30000, "training iterations (optimizer steps)")
    batch_size: int = _option(16, "images per iteration, over all processes and accumulation steps")
    accumulation: int = _option(1, "micro-batches per iteration, for less memory: the same samples and "
                                   "steps as one batch, but not the same gradient with batch norm in training "
                                   "mode (it normalises each micro-batch alone) nor when micro-batches hold "
                                   "different numbers of labelled pixels (each loss is a micro-batch mean); "
                                   "use --freeze-bn for an exact match")
    lr: float = _option(0.01, "base learning rate (poly decay)")
    poly_power: float = _option(0.9, "power of the poly learning-rate decay")
    momentum: float = _option(0.9, "SGD momentum")
    weight_decay: float = _option(1e-4, "SGD weight decay")
    loss_weights: tuple[float, float, float] = _option((0.4, 0.4, 1.0), "loss weights of sub4 sub24 sub124")
    amp: bool = _option(True, "mixed precision (CUDA only)")
    sync_bn: bool = _option(False, "synchronised batch norm across processes (CUDA only)")
    freeze_bn: bool = _option(False, "keep batch-norm statistics fixed (small batches, fine-tuning)")
    # Pruning (icnet-train prune).
    keep_rates: tuple[float, ...] = _option((0.75, 0.5), "progressive filter keep rates, "
                                                         "each followed by `iterations` of fine-tuning")
    # Run.
    output_dir: str = _option("runs/icnet", "checkpoints, logs and TensorBoard events")
    device: str = _option("auto", "auto, cpu, cuda or cuda:N")
    workers: int = _option(4, "DataLoader worker processes per training process")
    threads: int = _option(0, "CPU threads for torch per process (0: torch's default)")
    seed: int = _option(0, "seed of the initialisation, data order and augmentation")
    val_interval: int = _option(1000, "validate every N iterations (0: only at the end)")
    val_limit: int = _option(0, "validate on the first N images only (0: all)")
    log_interval: int = _option(20, "log losses every N iterations")
    checkpoint_interval: int = _option(1000, "write checkpoint.pth every N iterations")
    stop_at: int = _option(0, "stop (with a checkpoint) at this iteration, e.g. at the end of a job "
                              "slot; continue with --resume (0: run to the end)")
    resume: str = _option("", "checkpoint to resume exactly (model, optimizer, schedule, RNG, iteration)")
    progress: bool = _option(True, "show a progress bar")
    tensorboard: bool = _option(True, "write TensorBoard events to output_dir/tensorboard")

    def __post_init__(self) -> None:
        for f in fields(self):  # YAML and checkpoints give lists; keep tuples
            value = getattr(self, f.name)
            if isinstance(value, list):
                setattr(self, f.name, tuple(value))
        choices = {f.name: f.metadata.get("choices") for f in fields(self) if f.metadata.get("choices")}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ConfigError(f"{name} must be one of {', '.join(allowed)}, got {getattr(self, name)!r}")
        for name in ("iterations", "batch_size", "accumulation", "log_interval", "checkpoint_interval"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.batch_size % self.accumulation:
            raise ConfigError(f"batch_size {self.batch_size} is not divisible by accumulation {self.accumulation}")
        if min(*self.crop_size, *self.input_size, *self.synthetic_size) < 33:
            raise ConfigError("crop_size, input_size and synthetic_size must be at least 33 pixels")
        if not 0 < self.scale_range[0] <= self.scale_range[1]:
            raise ConfigError(f"scale_range must be 0 < min <= max, got {self.scale_range}")
        if not all(0 < rate <= 1 for rate in self.keep_rates):
            raise ConfigError(f"keep_rates must lie in (0, 1], got {self.keep_rates}")
        if self.lr <= 0 or min(self.workers, self.threads, self.val_interval, self.stop_at, self.val_limit) < 0:
            raise ConfigError("lr must be positive; workers, threads, val_interval, val_limit and stop_at "
                              "not negative")
        self.preprocessing()  # validates channel order, mean and std

    def preprocessing(self) -> Preprocessing:
        """What the network is fed: recorded in exported weight files."""
        try:
            return Preprocessing(tuple(self.input_size), self.channel_order, tuple(self.mean),
                                 None if self.std is None else tuple(self.std))
        except ValueError as error:
            raise ConfigError(str(error)) from None

    def loss_weight_map(self) -> dict[str, float]:
        return dict(zip(("sub4", "sub24", "sub124"), self.loss_weights))

    def to_dict(self) -> dict:
        return asdict(self)

    def digest(self) -> str:
        """Short SHA-256 of the configuration (recorded as provenance of exported weights)."""
        text = json.dumps(self.to_dict(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    @classmethod
    def from_dict(cls, data: dict) -> TrainConfig:
        unknown = sorted(set(data) - {f.name for f in fields(cls)})
        if unknown:
            raise ConfigError(f"unknown configuration keys: {', '.join(unknown)}")
        try:
            return cls(**data)
        except TypeError as error:
            raise ConfigError(str(error)) from None


def field_types() -> dict[str, object]:
    """Resolved type of every configuration field."""
    return typing.get_type_hints(TrainConfig)


def defaults() -> dict:
    return {f.name: f.default for f in fields(TrainConfig) if f.default is not MISSING}


def load_yaml(path: str | Path) -> dict:
    """A YAML configuration file as a dict of known keys."""
    import yaml

    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError as error:
        raise ConfigError(f"cannot read configuration {path}: {error.strerror}") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"configuration {path} is not valid YAML: {error}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"configuration {path} must be a mapping of options")
    unknown = sorted(set(data) - set(defaults()))
    if unknown:
        raise ConfigError(f"{path}: unknown configuration keys: {', '.join(unknown)}")
    return data
