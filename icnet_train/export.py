"""Export a trained network to the node's weight file, and optionally to ONNX.

The weight file holds the deploy network: the auxiliary classifiers ``conv6_sub4`` and
``conv6_sub2`` only serve cascade label guidance in training, so they are left out
(as in the official deploy network); batch norm stays unfolded (the engine may fold it).
Its metadata records the label set, the run's pre-processing and the provenance (run
configuration digest, iterations, data set) with the validation metrics, and its
architecture records per-layer widths, so pruned networks load with ``load_model``.

ONNX: the network at a fixed input size (``1x3xHxW`` float, normalised as the
pre-processing says; output ``1xCxHxW`` logits), checked against onnxruntime: the largest
difference may be at most ``ONNX_TOLERANCE`` of the largest logit.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import torch

from icnet_ros.model import ICNet, icnet
from icnet_ros.weights.labels import LabelSet
from icnet_ros.weights.preprocessing import Preprocessing
from icnet_ros.weights.weight_file import WeightsMetadata, save_weights
from icnet_train import checkpoint as ckpt
from icnet_train.config import TrainConfig

ONNX_OPSET = 18
ONNX_TOLERANCE = 1e-4  # largest |onnxruntime - PyTorch| accepted, relative to the largest |PyTorch logit|


def deploy_model(model: ICNet) -> ICNet:
    """A copy of ``model`` without the auxiliary classifiers (the node's network), in eval mode."""
    config = dict(model.config, aux_classifiers=False, channels=model.layer_channels())
    deploy = icnet(**config)
    state = model.state_dict()
    deploy.load_state_dict({name: state[name] for name in deploy.state_dict()})
    parameter = next(model.parameters())
    return deploy.to(device=parameter.device, dtype=parameter.dtype).eval()


def export_weights(model: ICNet, path: str | Path, labels: LabelSet, preprocessing: Preprocessing,
                   provenance: dict | None = None, metrics: dict | None = None) -> Path:
    """Write the deploy form of ``model`` as a weight file for the node."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    metadata = WeightsMetadata({}, labels, preprocessing, dict(provenance or {}), dict(metrics or {}))
    save_weights(path, deploy_model(model).cpu(), metadata)
    return path


def export_checkpoint(checkpoint: str | Path, path: str | Path) -> Path:
    """Export a training checkpoint, with provenance and validation metrics from it."""
    content = ckpt.load(checkpoint)
    model = ckpt.model_from(content, str(checkpoint))
    if "config" not in content:
        raise ckpt.CheckpointError(f"{checkpoint} holds no training configuration (not from a training run)")
    config = TrainConfig.from_dict(dict(content["config"]))
    provenance = {"source": "icnet_train", "checkpoint": Path(checkpoint).name,
                  "config_sha256": config.digest(), "iterations": int(content["iteration"]),
                  "dataset": config.dataset, "init": config.init or None, "width": config.width}
    metrics = {}
    summary = dict(content.get("metrics") or {})
    if summary and not math.isnan(summary.get("miou", math.nan)):
        metrics = {"val_miou": summary["miou"], "val_pixel_accuracy": summary["pixel_accuracy"],
                   "val_iteration": summary["iteration"], "val_iou": summary["iou"],
                   "val_set": config.val_split if config.dataset == "cityscapes" else config.dataset}
    return export_weights(model, path, LabelSet.from_dict(content["labels"]), config.preprocessing(),
                          provenance, metrics)


def export_onnx(model: ICNet, path: str | Path, input_size: tuple[int, int]) -> Path:
    """Write the deploy network at ``input_size`` as ONNX (input ``data``, output ``logits``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    deploy = deploy_model(model).cpu().float()
    example = torch.zeros(1, 3, *input_size)
    with warnings.catch_warnings():  # deprecation notices from inside torch.export
        warnings.simplefilter("ignore", FutureWarning)
        torch.onnx.export(deploy, (example,), str(path), input_names=["data"], output_names=["logits"],
                          opset_version=ONNX_OPSET, dynamo=True, external_data=False, verbose=False)
    return path


def onnx_difference(path: str | Path, model: ICNet, inputs: torch.Tensor) -> tuple[float, float]:
    """Largest absolute difference between onnxruntime and PyTorch logits on ``inputs``, and
    the same relative to the largest absolute PyTorch logit."""
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    with torch.no_grad():
        expected = deploy_model(model).cpu().float()(inputs.float()).numpy()
    actual = session.run(["logits"], {"data": inputs.float().numpy()})[0]
    difference = float(np.abs(actual - expected).max())
    return difference, difference / max(float(np.abs(expected).max()), np.finfo(np.float32).tiny)
