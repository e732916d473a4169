"""Training checkpoints: everything needed to resume exactly, loadable with weights_only.

A checkpoint is a dict of tensors, dicts, lists, numbers and strings only (RNG states
are stored as tensors), written with ``torch.save`` and read with
``torch.load(weights_only=True)`` (:func:`icnet_ros.weights.torch_files.load_tensors_only`):
loading one never unpickles arbitrary objects.

Keys: ``format``, ``iteration``, ``config`` (the TrainConfig as a dict), ``architecture``
(the builder arguments with per-layer widths, so pruned networks rebuild), ``labels``,
``model``, ``optimizer``, ``scheduler``, ``scaler``, ``rng`` and ``metrics`` (latest
validation) with ``best_miou``. An initialisation checkpoint (``icnet-train prune``)
holds only format, architecture, labels and model.
"""

from __future__ import annotations

import math
import os
import random
from pathlib import Path

import numpy as np
import torch

from icnet_ros.model import ICNet
from icnet_ros.weights.torch_files import load_tensors_only
from icnet_ros.weights.weight_file import WeightsError, architecture_of, build_model

FORMAT = "icnet_train.checkpoint"


class CheckpointError(ValueError):
    """A checkpoint that cannot be used, with the reason."""


def rng_state() -> dict:
    """The Python, NumPy, torch and CUDA generator states, as tensors and numbers."""
    version, state, gauss = random.getstate()
    _, keys, position, has_gauss, cached = np.random.get_state()
    return {
        "python": {"version": version, "state": torch.tensor(state, dtype=torch.int64), "gauss": gauss},
        "numpy": {"keys": torch.from_numpy(keys.astype(np.int64)), "position": int(position),
                  "has_gauss": int(has_gauss), "cached": float(cached)},
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def set_rng_state(state: dict) -> None:
    python = state["python"]
    random.setstate((python["version"], tuple(python["state"].tolist()), python["gauss"]))
    numpy = state["numpy"]
    np.random.set_state(("MT19937", numpy["keys"].numpy().astype(np.uint32), numpy["position"],
                         numpy["has_gauss"], numpy["cached"]))
    torch.set_rng_state(state["torch"])
    if torch.cuda.is_available() and state["cuda"]:
        torch.cuda.set_rng_state_all(state["cuda"])


def save(path: str | Path, content: dict) -> None:
    """Write atomically (a crash mid-write leaves the previous file)."""
    path = Path(path)
    partial = path.with_suffix(path.suffix + ".partial")
    torch.save({"format": FORMAT, **content}, partial)
    os.replace(partial, path)


def load(path: str | Path) -> dict:
    """Read a checkpoint with ``weights_only=True``, checking its format."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        content = load_tensors_only(path, what="checkpoint")
    except WeightsError as error:
        raise CheckpointError(str(error)) from None
    if not isinstance(content, dict) or content.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not an icnet_train checkpoint")
    return content


def model_from(content: dict, source: str = "checkpoint") -> ICNet:
    """The network a checkpoint holds, weights loaded (training mode)."""
    try:
        model = build_model(dict(content["architecture"]))
        model.load_state_dict(content["model"])
    except (KeyError, RuntimeError, WeightsError) as error:
        raise CheckpointError(f"{source}: cannot rebuild the network: {error}") from None
    return model


def initialisation(model: ICNet, labels: dict) -> dict:
    """A checkpoint holding only a network (to start a run from, e.g. after pruning)."""
    return {"architecture": architecture_of(model), "labels": labels,
            "model": {k: v.detach().cpu() for k, v in model.state_dict().items()}, "iteration": 0,
            "best_miou": math.nan}
