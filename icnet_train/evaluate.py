"""Evaluation by the official protocol.

Each whole image is resized (bilinear) to the network input size and normalised as the
run's Preprocessing says; one forward pass; softmax; the scores are resized back to the
label size (bilinear, half-pixel centres like MATLAB's imresize of the official scripts and
the node's engine) and the arg-max is the prediction. A confusion
matrix accumulates over the whole set (over all processes when distributed), and
mIoU, per-class IoU and pixel accuracy come from it (icnet_ros.evaluation.metrics).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset, Subset
from tqdm import tqdm

from icnet_ros.evaluation.metrics import ConfusionMatrix
from icnet_ros.model import ICNet
from icnet_ros.weights.preprocessing import Preprocessing
from icnet_train.data.transforms import preprocess
from icnet_train.distributed import Context, all_reduce_sum


@torch.no_grad()
def predict(model: ICNet, images: torch.Tensor, preprocessing: Preprocessing) -> torch.Tensor:
    """RGB uint8 (N, H, W, 3) -> class ids (N, H, W); ``model`` must be in eval mode."""
    scores = torch.softmax(model(preprocess(images, preprocessing)).float(), dim=1)
    if tuple(scores.shape[-2:]) != tuple(images.shape[1:3]):
        scores = F.interpolate(scores, size=tuple(images.shape[1:3]), mode="bilinear", align_corners=False)
    return scores.argmax(dim=1)


def _as_tensors(batch: list[tuple[np.ndarray, np.ndarray]]) -> tuple[torch.Tensor, torch.Tensor]:
    (image, label), = batch
    return torch.from_numpy(np.ascontiguousarray(image))[None], torch.from_numpy(np.ascontiguousarray(label))[None]


@torch.no_grad()
def evaluate(model: ICNet, dataset: Dataset, preprocessing: Preprocessing, context: Context,
             workers: int = 0, limit: int = 0, progress: bool = False) -> ConfusionMatrix:
    """Confusion matrix of ``model`` over ``dataset`` (the first ``limit`` images if > 0)."""
    was_training = model.training
    model.eval()
    count = min(len(dataset), limit) if limit > 0 else len(dataset)
    share = Subset(dataset, range(context.rank, count, context.world_size))
    loader = DataLoader(share, batch_size=1, num_workers=workers, collate_fn=_as_tensors)
    matrix = ConfusionMatrix(model.config["num_classes"])
    for images, labels in tqdm(loader, desc="evaluate", disable=not (progress and context.is_main),
                               leave=False, dynamic_ncols=True):
        device = context.device
        prediction = predict(model, images.to(device, non_blocking=True), preprocessing)
        matrix.update(prediction, labels.to(device, non_blocking=True))
    if context.distributed:
        counts = torch.from_numpy(matrix.matrix).to(context.device)
        matrix.matrix = all_reduce_sum(counts, context).cpu().numpy()
    model.train(was_training)
    return matrix
