"""Import of the official PIDNet and DDRNet Cityscapes checkpoints (``.pt``/``.pth``).

The files are read with ``torch.load(weights_only=True)`` only (:func:`load_tensors_only`):
tensors and plain containers, no pickled code. Their layouts, as the official training code
saves them (HRNet-Semantic-Segmentation's ``FullModel`` wrapper):

- the state dict bare, or under ``state_dict`` beside ``epoch``/``best_mIoU``/``optimizer``
  (resumable checkpoints; those entries are not weights and are left);
- keys prefixed ``model.`` (the wrapper), possibly ``module.`` (DataParallel); the wrapper's
  loss modules (``sem_loss.``, ``bd_loss.``, ``loss.``: class weights of the cross entropy)
  are training-only and dropped, and the import says so.

Every other key must be a tensor of the network, of the right shape, and every tensor of
the network must be there (``num_batches_tracked`` counters aside), else the import is
refused with the keys named. A checkpoint without the auxiliary heads (saved from the
inference model) imports without them.

Pre-processing is the official inference code's (PIDNet ``tools/custom.py`` and
``datasets/base_dataset.py``, DDRNet's HRNet code base ``input_transform``): the image read
by OpenCV (BGR) reversed to RGB, /255, minus the ImageNet mean, over its std, at the full
1024x2048 Cityscapes frame. The engine applies it as ``(rgb - 255 * mean) / (255 * std)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from icnet_ros.model import registry
from icnet_ros.weights.errors import WeightsError, listing
from icnet_ros.weights.labels import CITYSCAPES
from icnet_ros.weights.preprocessing import Preprocessing
from icnet_ros.weights.torch_files import load_tensors_only
from icnet_ros.weights.weight_file import WeightsMetadata, file_sha256

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
OFFICIAL_PREPROCESSING = Preprocessing(
    input_size=(1024, 2048), channel_order="RGB",
    mean=tuple(round(255 * v, 6) for v in IMAGENET_MEAN), std=tuple(round(255 * v, 6) for v in IMAGENET_STD))
WRAPPER_PREFIXES = ("module.", "model.")
TRAINING_ONLY_PREFIXES = ("sem_loss.", "bd_loss.", "loss.")
AUX_HEAD_PREFIXES = {"pidnet": ("seghead_p.", "seghead_d."), "ddrnet": ("seghead_extra.",)}
AUX_FLAG = {"pidnet": "aux_heads", "ddrnet": "aux_head"}


@dataclass(frozen=True)
class OfficialNetwork:
    """One official network: what to build, where its checkpoints come from, what its authors report."""

    architecture: dict
    repository: str
    published: dict


PIDNET = "https://github.com/XuJiacong/PIDNet"
DDRNET = "https://github.com/ydhongHIT/DDRNet"
OFFICIAL_NETWORKS: dict[str, OfficialNetwork] = {
    "pidnet-s": OfficialNetwork({"name": "pidnet", "variant": "s"}, PIDNET, {
        "cityscapes_val_miou": 78.8, "cityscapes_test_miou": 78.6, "fps": 93.2,
        "fps_setting": "RTX 3090, 1024x2048, no TensorRT", "source": "PIDNet README and CVPR 2023 paper"}),
    "pidnet-m": OfficialNetwork({"name": "pidnet", "variant": "m"}, PIDNET, {
        "cityscapes_val_miou": 79.9, "cityscapes_test_miou": 79.8, "fps": 42.2,
        "fps_setting": "RTX 3090, 1024x2048, no TensorRT", "source": "PIDNet README and CVPR 2023 paper"}),
    "pidnet-l": OfficialNetwork({"name": "pidnet", "variant": "l"}, PIDNET, {
        "cityscapes_val_miou": 80.9, "cityscapes_test_miou": 80.6, "fps": 31.1,
        "fps_setting": "RTX 3090, 1024x2048, no TensorRT", "source": "PIDNet README and CVPR 2023 paper"}),
    "ddrnet-23-slim": OfficialNetwork({"name": "ddrnet", "variant": "23-slim"}, DDRNET, {
        "cityscapes_val_miou": 77.8, "cityscapes_test_miou": 77.4, "fps": 101.6,
        "fps_setting": "RTX 2080Ti, 1024x2048, no TensorRT", "source": "DDRNet README and paper"}),
    "ddrnet-23": OfficialNetwork({"name": "ddrnet", "variant": "23"}, DDRNET, {
        "cityscapes_val_miou": 79.5, "cityscapes_test_miou": 79.4, "fps": 37.1,
        "fps_setting": "RTX 2080Ti, 1024x2048, no TensorRT", "source": "DDRNet README and paper"}),
}


def checkpoint_state(content: object, source: str) -> tuple[dict[str, torch.Tensor], list[str], list[str]]:
    """The network's tensors in a loaded checkpoint, unwrapped; with the training-only keys
    dropped and the non-weight entries left beside the state dict (both for the record)."""
    left: list[str] = []
    if isinstance(content, dict) and isinstance(content.get("state_dict"), dict):
        left = sorted(str(key) for key in content if key != "state_dict")
        content = content["state_dict"]
    if not isinstance(content, dict) or not content:
        raise WeightsError(f"{source} holds no state dict (name -> tensor)")
    not_tensors = sorted(str(k) for k, v in content.items() if not (isinstance(k, str) and torch.is_tensor(v)))
    if not_tensors:
        raise WeightsError(f"{source}: entries that are not named tensors: {listing(not_tensors)}")
    state, dropped = {}, []
    for key, tensor in content.items():
        name = key
        for prefix in WRAPPER_PREFIXES:
            name = name.removeprefix(prefix)
        if name.startswith(TRAINING_ONLY_PREFIXES):
            dropped.append(key)
        else:
            state[name] = tensor
    return state, sorted(dropped), left


def place_tensors(model: nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """Copy ``state`` into ``model`` by name, refusing unplaceable keys, missing tensors and wrong shapes."""
    expected = model.state_dict()
    unplaced = sorted(set(state) - set(expected))
    missing = sorted(name for name in set(expected) - set(state) if not name.endswith("num_batches_tracked"))
    misshapen = sorted(f"{name} {list(state[name].shape)} != {list(expected[name].shape)}"
                       for name in set(expected) & set(state) if state[name].shape != expected[name].shape)
    problems = [f"{label}: {listing(items)}" for label, items in
                (("keys it cannot place", unplaced), ("missing tensors", missing), ("shape mismatch", misshapen))
                if items]
    if problems:
        raise WeightsError(f"{source} is not the official network it was named as; " + "; ".join(problems))
    model.load_state_dict({**expected, **{name: t.to(expected[name].dtype) for name, t in state.items()}})


def import_checkpoint(network: str, path: str | Path) -> tuple[nn.Module, WeightsMetadata]:
    """Read the official checkpoint ``path`` of ``network`` (a key of :data:`OFFICIAL_NETWORKS`);
    return the filled network (eval mode) and the metadata for its weight file."""
    if network not in OFFICIAL_NETWORKS:
        raise WeightsError(f"unknown network {network!r} (known: {', '.join(OFFICIAL_NETWORKS)})")
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"checkpoint not found: {path}")
    official = OFFICIAL_NETWORKS[network]
    state, dropped, left = checkpoint_state(load_tensors_only(path, "checkpoint"), str(path))
    name = official.architecture["name"]
    has_aux = any(key.startswith(AUX_HEAD_PREFIXES[name]) for key in state)
    model = registry.build_network({**official.architecture, AUX_FLAG[name]: has_aux})
    place_tensors(model, state, str(path))
    provenance = {
        "source": f"imported from the official {registry.display_name(official.architecture)} checkpoint",
        "repository": official.repository, "source_file": path.name, "source_sha256": file_sha256(path),
        "dropped_training_keys": dropped, "checkpoint_entries_left": left,
        "auxiliary_heads": has_aux,
    }
    metadata = WeightsMetadata({}, CITYSCAPES, OFFICIAL_PREPROCESSING, provenance, {"published": official.published})
    return model.eval(), metadata
