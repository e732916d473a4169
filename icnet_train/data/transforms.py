"""Augmentation as in the paper and the network's input convention.

Training samples are augmented on numpy arrays (cheap in DataLoader workers) with a
random generator passed in, so that a sample's augmentation depends only on its seed:
runs resume exactly and give the same batches whatever the number of workers.
Normalisation follows the :class:`~icnet_ros.weights.preprocessing.Preprocessing` of the
run, which is what the exported weight file records and the node's engine feeds: by
default the official BGR order with the mean subtracted on the 0..255 scale.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from icnet_ros.weights.labels import IGNORE_LABEL
from icnet_ros.weights.preprocessing import Preprocessing


def channel_stats(preprocessing: Preprocessing) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std in the network's channel order (std 1 where none is given)."""
    mean = np.asarray(preprocessing.mean, np.float32)
    std = np.ones(3, np.float32) if preprocessing.std is None else np.asarray(preprocessing.std, np.float32)
    if preprocessing.channel_order == "BGR":
        mean, std = mean[::-1].copy(), std[::-1].copy()
    return mean, std


def normalize(image: np.ndarray, preprocessing: Preprocessing) -> torch.Tensor:
    """RGB uint8 (H, W, 3) -> float32 (3, H, W) in the network's order and scale."""
    mean, std = channel_stats(preprocessing)
    if preprocessing.channel_order == "BGR":
        image = image[..., ::-1]
    return torch.from_numpy(((image.astype(np.float32) - mean) / std).transpose(2, 0, 1).copy())


def preprocess(images: torch.Tensor, preprocessing: Preprocessing) -> torch.Tensor:
    """RGB uint8 (N, H, W, 3) on any device -> network input (N, 3, h, w) at ``input_size``.

    The whole image is resized bilinearly (official protocol), then normalised.
    """
    x = images.permute(0, 3, 1, 2).float()
    if preprocessing.channel_order == "BGR":
        x = x.flip(1)
    if tuple(x.shape[-2:]) != tuple(preprocessing.input_size):
        x = F.interpolate(x, size=tuple(preprocessing.input_size), mode="bilinear", align_corners=False)
    mean, std = (torch.as_tensor(v, device=x.device).view(1, 3, 1, 1) for v in channel_stats(preprocessing))
    return (x - mean) / std


def photometric_jitter(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Random brightness, contrast, and saturation with hue (each with probability 1/2)."""
    x = image.astype(np.float32)
    if rng.random() < 0.5:
        x += rng.uniform(-32, 32)
    if rng.random() < 0.5:
        x *= rng.uniform(0.5, 1.5)
    x = np.clip(x, 0, 255).astype(np.uint8)
    if rng.random() < 0.5:
        hsv = cv2.cvtColor(x, cv2.COLOR_RGB2HSV).astype(np.int16)
        hsv[..., 1] = np.clip(hsv[..., 1] * rng.uniform(0.5, 1.5), 0, 255)
        hsv[..., 0] = (hsv[..., 0] + int(rng.integers(-9, 10))) % 180  # OpenCV hue is 0..179
        x = cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2RGB)
    return x


@dataclass(frozen=True)
class TrainTransform:
    """Random resize, mirror, crop (labels padded with 255), optional colour jitter, normalise."""

    crop_size: tuple[int, int]
    preprocessing: Preprocessing
    scale_range: tuple[float, float] = (0.5, 2.0)
    mirror: bool = True
    photometric: bool = False

    def __call__(self, image: np.ndarray, label: np.ndarray,
                 rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        scale = rng.uniform(*self.scale_range)
        height, width = (max(1, round(s * scale)) for s in label.shape)
        if (height, width) != label.shape:
            image = cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR)
            label = cv2.resize(label, (width, height), interpolation=cv2.INTER_NEAREST)
        if self.mirror and rng.random() < 0.5:
            image, label = image[:, ::-1], label[:, ::-1]
        # Random crop; where the image is smaller, pad at the bottom/right: image with the
        # mean (0 after normalising), labels with the ignore label.
        crop_h, crop_w = self.crop_size
        top = int(rng.integers(0, max(height - crop_h, 0) + 1))
        left = int(rng.integers(0, max(width - crop_w, 0) + 1))
        image = image[top:top + crop_h, left:left + crop_w]
        label = label[top:top + crop_h, left:left + crop_w]
        if self.photometric:
            image = photometric_jitter(np.ascontiguousarray(image), rng)
        x = torch.zeros(3, crop_h, crop_w)
        y = torch.full((crop_h, crop_w), IGNORE_LABEL, dtype=torch.int64)
        x[:, :label.shape[0], :label.shape[1]] = normalize(image, self.preprocessing)
        y[:label.shape[0], :label.shape[1]] = torch.from_numpy(label.astype(np.int64))
        return x, y
