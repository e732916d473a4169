"""Data sets (items are RGB uint8 (H, W, 3) and class-id uint8 (H, W) numpy arrays, 255 = ignore)."""

from __future__ import annotations

from icnet_ros.synthetic.street_scenes import SyntheticScenes, generate_scene, generate_sequence, sample_scene
from icnet_ros.weights.labels import CITYSCAPES, LabelSet
from icnet_train.config import ConfigError, TrainConfig
from icnet_train.data.cityscapes import CityscapesSegmentation
from icnet_train.data.folder import ClassMapping, DatasetError, FolderSegmentation

VALIDATION_SEED_OFFSET = 1_000_000  # synthetic validation frames use seeds disjoint from training

__all__ = ["CityscapesSegmentation", "ClassMapping", "DatasetError", "FolderSegmentation", "SyntheticScenes",
           "build_datasets", "generate_scene", "generate_sequence", "sample_scene"]


def build_datasets(config: TrainConfig, train: bool = True):
    """(training set or None, validation set, label set) that ``config`` names."""
    if config.dataset == "synthetic":
        height, width = config.synthetic_size
        val = SyntheticScenes(config.synthetic_val, height, width, config.synthetic_seed + VALIDATION_SEED_OFFSET)
        training = SyntheticScenes(config.synthetic_train, height, width, config.synthetic_seed) if train else None
        return training, val, CITYSCAPES
    if config.dataset == "cityscapes":
        if not config.data_root:
            raise ConfigError("dataset cityscapes needs --data-root (the folder holding leftImg8bit/ and gtFine/)")
        val = CityscapesSegmentation(config.data_root, config.val_split)
        training = CityscapesSegmentation(config.data_root, config.train_split) if train else None
        return training, val, CITYSCAPES
    if not (config.class_map and config.val_images and config.val_labels):
        raise ConfigError("dataset folder needs --class-map, --val-images and --val-labels "
                          "(and --train-images, --train-labels to train)")
    mapping = ClassMapping.from_file(config.class_map)
    labels: LabelSet = mapping.labels
    val = FolderSegmentation(config.val_images, config.val_labels, mapping)
    training = None
    if train:
        if not (config.train_images and config.train_labels):
            raise ConfigError("dataset folder needs --train-images and --train-labels to train")
        training = FolderSegmentation(config.train_images, config.train_labels, mapping)
    return training, val, labels
