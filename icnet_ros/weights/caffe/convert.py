"""Map the official ICNet Caffe layers onto :func:`icnet_ros.model.icnet`.

Official names are the model's module names, so the mapping is by rule:

- ``Convolution`` ``X`` -> ``X.conv.weight`` (and ``X.conv.bias`` in the BN-merged form);
  the classifiers ``conv6_cls``, ``conv6_sub4``, ``conv6_sub2`` -> ``X.weight``, ``X.bias``.
- ``BN`` ``X/bn`` (blobs: scale, shift, running mean, running variance; each 1xCx1x1 or
  C) -> ``X.bn.weight``, ``X.bn.bias``, ``X.bn.running_mean``, ``X.bn.running_var``.
  Caffe's BN layer of the PSPNet fork uses eps 1e-5, as the model does.
- ``data_sub1``, the ``Scale`` on the input (no parameters in the deploy file, so the
  identity), may carry a per-channel scale: it is folded into the input channels of
  the two convolutions that read the input, ``conv1_sub1`` and (through a linear
  resize) ``conv1_1_3x3_s2``, which is exact. A non-zero shift has no exact place.

The file decides the form: BN layers with blobs mean the ``_bnnomerge`` (as trained)
form, none the BN-merged one; ``conv6_sub4``/``conv6_sub2`` mean auxiliary classifiers.
Every layer with blobs must be consumed and every tensor of the network filled; a
refusal names a few of the layers that do not fit, counts the rest, and says what the
form was read from (:func:`form_evidence`).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch

from icnet_ros.model import ICNet, icnet
from icnet_ros.weights.caffe.caffemodel import CaffeError, CaffeLayer, CaffeNet, read_caffemodel
from icnet_ros.weights.caffe.releases import OFFICIAL_RELEASES
from icnet_ros.weights.errors import listing
from icnet_ros.weights.labels import CITYSCAPES
from icnet_ros.weights.preprocessing import OFFICIAL
from icnet_ros.weights.weight_file import WeightsMetadata, architecture_of, file_sha256, load_state

CLASSIFIERS = ("conv6_cls", "conv6_sub4", "conv6_sub2")
AUX_CLASSIFIERS = ("conv6_sub4", "conv6_sub2")
BN_SUFFIX = "/bn"
INPUT_SCALE = "data_sub1"
INPUT_CONVOLUTIONS = ("conv1_sub1.conv.weight", "conv1_1_3x3_s2.conv.weight")
BN_BLOBS = ("weight", "bias", "running_mean", "running_var")
PROBLEMS_LISTED = 4  # sentences about blobs that do not fit, before the rest is counted


def detect_form(net: CaffeNet) -> tuple[bool, bool]:
    """``(batch_norm, aux_classifiers)``: whether the file has BN layers and aux classifiers."""
    with_blobs = [layer for layer in net.layers if layer.blobs]
    batch_norm = any(layer.type == "BN" for layer in with_blobs)
    aux = any(layer.name in AUX_CLASSIFIERS for layer in with_blobs)
    return batch_norm, aux


def form_evidence(net: CaffeNet) -> str:
    """What :func:`detect_form` went by, and what else points at a form, in a few words."""
    with_blobs = [layer for layer in net.layers if layer.blobs]
    batch_norm = [layer for layer in with_blobs if layer.type == "BN"]
    convolutions = [layer for layer in with_blobs if layer.type == "Convolution" and layer.name not in CLASSIFIERS]
    biased = sum(len(layer.blobs) > 1 for layer in convolutions)
    like = (", as in the BN-merged form" if biased == len(convolutions) else
            ", as in the bnnomerge form" if biased == 0 else "") if convolutions else ""
    evidence = [f"{len(batch_norm)} layers of type BN carry blobs" if batch_norm
                else "no layer of type BN carries blobs",
                f"{biased} of {len(convolutions)} convolutions carry a bias{like}"]
    named_bn = [layer for layer in with_blobs if layer.name.endswith(BN_SUFFIX) and layer.type != "BN"]
    if named_bn:
        kinds = sorted({repr(layer.type or "untyped") for layer in named_bn})
        evidence.append(f"{len(named_bn)} layers named '*{BN_SUFFIX}' carry blobs but are of type {', '.join(kinds)}, "
                        "not BN")
    aux = [layer.name for layer in with_blobs if layer.name in AUX_CLASSIFIERS]
    evidence.append(f"auxiliary classifiers with blobs: {', '.join(aux) or 'none'}")
    return "; ".join(evidence)


def _targets(layer: CaffeLayer, expected: dict[str, torch.Tensor], batch_norm: bool) -> list[str] | None:
    """The model tensors a layer's blobs fill, in blob order; None if it has no place."""
    name = layer.name
    if layer.type == "Convolution":
        if f"{name}.conv.weight" in expected:
            return [f"{name}.conv.weight"] + ([] if batch_norm else [f"{name}.conv.bias"])
        if name in CLASSIFIERS and f"{name}.weight" in expected:
            return [f"{name}.weight", f"{name}.bias"]
    elif layer.type == "BN" and name.endswith(BN_SUFFIX):
        prefix = name[: -len(BN_SUFFIX)]
        if f"{prefix}.bn.weight" in expected:
            return [f"{prefix}.bn.{blob}" for blob in BN_BLOBS]
    return None


def _caffe_layer_of(key: str) -> str:
    """The official layer that fills model tensor ``key``."""
    module, _, _ = key.rpartition(".")
    owner, _, child = module.rpartition(".")
    if child == "bn":
        return owner + BN_SUFFIX
    return owner if child == "conv" else module


def _fit(blob: np.ndarray, shape: tuple[int, ...]) -> np.ndarray | None:
    """``blob`` in ``shape`` if they differ at most by dimensions of size 1."""
    if blob.shape == shape:
        return blob
    same = [d for d in blob.shape if d != 1] == [d for d in shape if d != 1]
    return blob.reshape(shape) if same else None


def _input_scale(layer: CaffeLayer) -> np.ndarray | str:
    """The per-channel scale of ``data_sub1``, or why it cannot be folded."""
    scale, *shift = layer.blobs
    if len(shift) > 1 or scale.size != 3:
        shapes = [blob.shape for blob in layer.blobs]
        return f"{layer.name} (Scale) has blobs of shapes {shapes}, not a scale of 3 channels"
    if shift and np.any(shift[0] != 0):
        return f"{layer.name} (Scale) shifts the input, which the network cannot hold exactly"
    return scale.reshape(3)


def icnet_from_caffe(net: CaffeNet, source: str = "Caffe model") -> ICNet:
    """Build the ICNet the official layers of ``net`` describe and fill it (eval mode)."""
    batch_norm, aux = detect_form(net)
    model = icnet(batch_norm=batch_norm, aux_classifiers=aux)
    expected = model.state_dict()
    form = "bnnomerge (BN)" if batch_norm else "BN-merged"
    tensors: dict[str, torch.Tensor] = {}
    extra: list[str] = []
    problems: list[str] = []
    seen: set[str] = set()
    misfit: set[str] = set()
    input_scale = None
    for layer in net.layers:
        if not layer.blobs:
            continue
        if layer.name in seen:
            problems.append(f"layer {layer.name!r} appears twice")
            continue
        seen.add(layer.name)
        if layer.type == "Scale" and layer.name == INPUT_SCALE:
            input_scale = _input_scale(layer)
            if isinstance(input_scale, str):
                problems.append(input_scale)
            continue
        targets = _targets(layer, expected, batch_norm)
        if targets is None:
            extra.append(f"{layer.name} ({layer.type or 'untyped'})")
            continue
        if len(layer.blobs) != len(targets):
            misfit.add(layer.name)
            problems.append(f"{layer.name} has {len(layer.blobs)} blobs, the {form} network needs "
                            f"{len(targets)} ({', '.join(targets)})")
            continue
        for index, (key, blob) in enumerate(zip(targets, layer.blobs)):
            shape = tuple(expected[key].shape)
            fitted = _fit(blob, shape)
            if fitted is None:
                misfit.add(layer.name)
                problems.append(f"{layer.name} blob {index} has shape {blob.shape}, {key} needs {shape}")
            else:
                tensors[key] = torch.from_numpy(np.ascontiguousarray(fitted, np.float32))
    if isinstance(input_scale, np.ndarray):
        for key in INPUT_CONVOLUTIONS:
            if key in tensors:
                tensors[key] = tensors[key] * torch.from_numpy(input_scale).reshape(1, 3, 1, 1)
    for key, tensor in expected.items():
        if key.endswith("num_batches_tracked"):
            tensors[key] = torch.zeros_like(tensor)
    missing = dict.fromkeys(_caffe_layer_of(key) for key in expected if key not in tensors)
    missing = [name for name in missing if name not in misfit]
    report = [f"{label}: {listing(items)}" for label, items in
              (("missing layers", missing), ("extra layers", extra)) if items]
    if problems:
        report.append(listing(problems, PROBLEMS_LISTED, separator="; "))
    if report:
        raise CaffeError(f"{source} does not match the official ICNet, read as {form}"
                         f"{' with auxiliary classifiers' if aux else ''} ({form_evidence(net)}): "
                         + "; ".join(report))
    load_state(model, tensors, source)
    return model.eval()


def convert_caffemodel(path: str | Path) -> tuple[ICNet, WeightsMetadata]:
    """Read an official ``.caffemodel`` and return the filled network and its metadata.

    The metadata records the official pre-processing, the Cityscapes labels and the
    provenance (source file name, SHA-256 and MD5, form, recognised official release).
    """
    path = Path(path)
    net = read_caffemodel(path)
    model = icnet_from_caffe(net, source=str(path))
    md5 = hashlib.md5(path.read_bytes(), usedforsecurity=False).hexdigest()
    release = OFFICIAL_RELEASES.get(md5)
    provenance = {
        "source": "converted from Caffe",
        "source_file": path.name,
        "source_sha256": file_sha256(path),
        "source_md5": md5,
        "caffe_form": "bnnomerge" if model.config["batch_norm"] else "merged",
        "caffe_layer_format": "V1 layers" if net.legacy else "layer",
        "official_release": release.name if release else None,
    }
    metrics = {"reported": release.reported} if release else {}
    metadata = WeightsMetadata(architecture_of(model), CITYSCAPES, OFFICIAL, provenance, metrics)
    return model, metadata
