"""The project's weight file: safetensors tensors plus JSON metadata.

Metadata (the safetensors header key ``icnet_ros``) records the architecture, the label
set, the pre-processing and the provenance, so that a weight file alone is enough to
build, feed and label the network. ``.pt``/``.pth`` state dicts are also read, only
through ``torch.load(weights_only=True)``, which refuses anything but tensors in plain
containers: no pickled code ever runs. Every consumer loads through :func:`load_model`
(or :func:`read_weights` + :func:`load_state`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import nn

from icnet_ros.model import ICNet, registry
from icnet_ros.weights.errors import WeightsError, listing
from icnet_ros.weights.labels import LabelSet
from icnet_ros.weights.preprocessing import Preprocessing
from icnet_ros.weights.torch_files import load_tensors_only

FORMAT = "icnet_ros.weights"
FORMAT_VERSION = 1
METADATA_KEY = "icnet_ros"
TORCH_SUFFIXES = (".pt", ".pth")
BN_STATISTICS = ("running_mean", "running_var")
ARCHITECTURE_KEYS = ("num_classes", "width", "branches", "aux_classifiers", "batch_norm", "channels")


@dataclass
class WeightsMetadata:
    """What a weight file says about its network."""

    architecture: dict
    labels: LabelSet
    preprocessing: Preprocessing
    provenance: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    storage: dict = field(default_factory=dict)  # how the tensors are stored (see save_weights)

    def to_dict(self) -> dict:
        return {
            "format": FORMAT, "format_version": FORMAT_VERSION,
            "architecture": self.architecture, "labels": self.labels.to_dict(),
            "preprocessing": self.preprocessing.to_dict(),
            "provenance": self.provenance, "metrics": self.metrics, "storage": self.storage,
        }

    @classmethod
    def from_dict(cls, data: dict) -> WeightsMetadata:
        if data.get("format") != FORMAT:
            raise WeightsError(f"metadata format is {data.get('format')!r}, expected {FORMAT!r}")
        if data.get("format_version") != FORMAT_VERSION:
            raise WeightsError(f"unsupported format_version {data.get('format_version')!r}")
        try:
            return cls(dict(data["architecture"]), LabelSet.from_dict(data["labels"]),
                       Preprocessing.from_dict(data["preprocessing"]),
                       dict(data.get("provenance", {})), dict(data.get("metrics", {})),
                       dict(data.get("storage", {})))
        except (KeyError, TypeError, ValueError) as error:
            raise WeightsError(f"invalid metadata: {error}") from None


def architecture_of(model: nn.Module) -> dict:
    """The builder arguments that rebuild ``model`` (ICNet: with its per-layer widths)."""
    if not isinstance(model, ICNet):
        return registry.architecture_of(model)
    arch = {key: model.config[key] for key in ARCHITECTURE_KEYS}
    arch["channels"] = model.layer_channels()
    return {"name": "icnet", **arch}


def build_model(architecture: dict) -> nn.Module:
    """Build the (untrained) network that recorded architecture metadata names
    (:mod:`icnet_ros.model.registry`: ICNet, PIDNet, DDRNet)."""
    name = architecture.get("name", "icnet")
    if name == "icnet":
        unknown = set(architecture) - set(ARCHITECTURE_KEYS) - {"name"}
        if unknown:
            raise WeightsError(f"unknown architecture fields: {sorted(unknown)}")
    elif name not in registry.BUILDERS:
        raise WeightsError(f"unknown architecture {name!r} (known: {', '.join(registry.BUILDERS)})")
    try:
        return registry.build_network(architecture)
    except (TypeError, ValueError) as error:
        raise WeightsError(f"architecture cannot be built: {error}") from None


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _stays_float32(name: str, tensor: torch.Tensor, dtype: torch.dtype) -> bool:
    """Whether ``tensor`` must stay float32 in a file of ``dtype``: BN statistics (folded in
    fp32 at load; trained variances reach 1e6, inf in fp16), and any tensor the dtype
    cannot hold: a value overflows, or the tensor as a whole loses more than 1 % (relative
    L2; values deep in the subnormal range)."""
    if name.endswith(BN_STATISTICS):
        return True
    exact, cast = tensor.double(), tensor.to(dtype).double()
    if not bool(torch.isfinite(cast[torch.isfinite(exact)]).all()):
        return True
    norm = torch.linalg.vector_norm(exact)
    return bool(norm > 0 and torch.linalg.vector_norm(cast - exact) > 1e-2 * norm)


def stored_tensors(model: nn.Module, dtype: torch.dtype | None = None) -> tuple[dict[str, torch.Tensor], dict]:
    """``model``'s state for a file, floating tensors cast to ``dtype`` (None: as they are)
    except those :func:`_stays_float32` keeps; and the ``storage`` metadata saying so."""
    tensors, kept = {}, []
    for name, tensor in model.state_dict().items():
        tensor = tensor.detach().cpu().contiguous()
        if dtype is not None and tensor.is_floating_point():
            if _stays_float32(name, tensor, dtype):
                tensor = tensor.float()
                kept.append(name)
            else:
                tensor = tensor.to(dtype)
        tensors[name] = tensor
    if dtype is None:
        return tensors, {}
    return tensors, {"dtype": str(dtype).removeprefix("torch."), "kept_float32": kept,
                     "why": "BN statistics and tensors the dtype cannot hold (overflow, or over 1 % "
                            "lost) stay float32; BN is folded in float32 at load"}


def save_weights(path: str | Path, model: nn.Module, metadata: WeightsMetadata,
                 dtype: torch.dtype | None = None) -> None:
    """Write ``model``'s state and ``metadata`` to a .safetensors file.

    With ``dtype`` (e.g. float16, half the size) floating tensors are stored in it, except
    what it cannot represent (see :func:`stored_tensors`); ``metadata.storage`` says which.
    """
    if Path(path).suffix.lower() != ".safetensors":
        raise WeightsError(f"{path}: weight files are written as .safetensors")
    if metadata.labels.num_classes != model.config["num_classes"]:
        raise WeightsError(f"label set has {metadata.labels.num_classes} classes, "
                           f"model {model.config['num_classes']}")
    metadata.architecture = architecture_of(model)
    tensors, metadata.storage = stored_tensors(model, dtype)
    save_file(tensors, str(path), metadata={METADATA_KEY: json.dumps(metadata.to_dict())})


def _read_safetensors(path: Path) -> tuple[dict[str, torch.Tensor], dict | None]:
    try:
        with safe_open(str(path), framework="pt") as handle:
            header = handle.metadata() or {}
            tensors = {name: handle.get_tensor(name) for name in handle.keys()}
    except (SafetensorError, OSError, ValueError) as error:
        raise WeightsError(f"{path} is not a readable safetensors file: {error}") from None
    if METADATA_KEY not in header:
        return tensors, None
    try:
        return tensors, json.loads(header[METADATA_KEY])
    except json.JSONDecodeError as error:
        raise WeightsError(f"{path}: metadata is not JSON: {error}") from None


def _read_torch(path: Path) -> tuple[dict[str, torch.Tensor], dict | None]:
    """A ``.pt``/``.pth`` file through :func:`load_tensors_only`: never unpickles code."""
    content = load_tensors_only(path)
    layout = (f"{path}: a .pt/.pth weight file must hold a state dict (name -> tensor) or "
              "{'state_dict': state dict, 'metadata': icnet_ros metadata dict or JSON}")
    if not isinstance(content, dict):
        raise WeightsError(f"{layout}, not a {type(content).__name__}")
    stored = None
    if "state_dict" in content:
        unknown = sorted(set(content) - {"state_dict", "metadata"})
        if unknown:
            raise WeightsError(f"{layout}; unexpected keys: {', '.join(map(str, unknown))}")
        stored = content.get("metadata")
        content = content["state_dict"]
        if isinstance(stored, str):
            try:
                stored = json.loads(stored)
            except json.JSONDecodeError as error:
                raise WeightsError(f"{path}: metadata is not JSON: {error}") from None
        if stored is not None and not isinstance(stored, dict):
            raise WeightsError(f"{layout}; metadata is a {type(stored).__name__}")
    if not isinstance(content, dict):
        raise WeightsError(f"{layout}; state_dict is a {type(content).__name__}")
    not_tensors = sorted(str(k) for k, v in content.items() if not (isinstance(k, str) and torch.is_tensor(v)))
    if not_tensors:
        raise WeightsError(f"{layout}; entries that are not named tensors: {', '.join(not_tensors)}")
    return content, stored


def read_weights(path: str | Path, metadata: WeightsMetadata | None = None
                 ) -> tuple[dict[str, torch.Tensor], WeightsMetadata]:
    """Read tensors and metadata from a weight file, refusing anything else.

    ``.safetensors`` files carry their metadata in the header. ``.pt``/``.pth`` files are
    read with ``torch.load(weights_only=True)`` only and hold a state dict, bare or as
    ``{"state_dict": ..., "metadata": ...}``. ``metadata`` is used for a file that
    carries none (a bare state dict); a file's own metadata always wins.
    """
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"weight file not found: {path}")
    suffix = path.suffix.lower()
    if suffix == ".safetensors":
        tensors, stored = _read_safetensors(path)
    elif suffix in TORCH_SUFFIXES:
        tensors, stored = _read_torch(path)
    else:
        hint = "; convert it with icnet-convert-caffe" if suffix == ".caffemodel" else ""
        raise WeightsError(f"{path}: unsupported weight file type {suffix or '(no suffix)'!r}: weight files are "
                           f".safetensors (or .pt/.pth state dicts){hint}")
    if stored is None:
        if metadata is None:
            raise WeightsError(f"{path} has no {METADATA_KEY!r} metadata (not an icnet_ros weight file): "
                               "it does not say its architecture, labels or pre-processing")
        return tensors, metadata
    return tensors, WeightsMetadata.from_dict(stored)


def load_state(model: nn.Module, tensors: dict[str, torch.Tensor], source: str = "weights") -> None:
    """Copy ``tensors`` into ``model``, naming every missing, unexpected or misshapen one."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    misshapen = sorted(f"{name} {tuple(tensors[name].shape)} != {tuple(expected[name].shape)}"
                       for name in set(expected) & set(tensors)
                       if tensors[name].shape != expected[name].shape)
    problems = [f"{label}: {listing(items)}" for label, items in
                (("missing", missing), ("unexpected", unexpected), ("shape mismatch", misshapen)) if items]
    if problems:
        raise WeightsError(f"{source} do not fit the architecture; " + "; ".join(problems))
    model.load_state_dict({name: tensor.to(expected[name].dtype) for name, tensor in tensors.items()})


def load_model(path: str | Path, device: str | torch.device = "cpu",
               metadata: WeightsMetadata | None = None) -> tuple[nn.Module, WeightsMetadata]:
    """Build the network a weight file describes, load it, and return it in eval mode.

    ``metadata`` serves only files that carry none (see :func:`read_weights`).
    """
    tensors, metadata = read_weights(path, metadata)
    model = build_model(metadata.architecture)
    load_state(model, tensors, source=str(path))
    if metadata.labels.num_classes != model.config["num_classes"]:
        raise WeightsError(f"{path}: label set has {metadata.labels.num_classes} classes, "
                           f"network {model.config['num_classes']}")
    return model.to(device).eval(), metadata
