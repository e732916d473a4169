"""Read a ``.caffemodel`` (a serialised Caffe ``NetParameter``) without Caffe.

Only the parts that carry weights are decoded, by their field numbers in caffe.proto:

- ``NetParameter``: ``name`` 1, legacy ``layers`` 2 (``V1LayerParameter``), ``layer`` 100.
- ``LayerParameter``: ``name`` 1, ``type`` 2 (a string), ``blobs`` 7.
- ``V1LayerParameter``: ``name`` 4, ``type`` 5 (an enum), ``blobs`` 6.
- ``BlobProto``: ``shape`` 7 (``BlobShape``: ``dim`` 1, int64, packed or not), legacy
  ``num``/``channels``/``height``/``width`` 1..4, ``data`` 5 (float, packed or not),
  ``double_data`` 8.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from icnet_ros.weights.caffe.wire import (
    FIXED32,
    FIXED64,
    LENGTH_DELIMITED,
    VARINT,
    Field,
    WireError,
    fields,
    packed_varints,
    signed64,
)
from icnet_ros.weights.weight_file import WeightsError

# V1LayerParameter.LayerType values and the type names Caffe upgrades them to.
V1_LAYER_TYPES: dict[int, str] = {
    0: "", 1: "Accuracy", 2: "BNLL", 3: "Concat", 4: "Convolution", 5: "Data", 6: "Dropout",
    7: "EuclideanLoss", 8: "Flatten", 9: "HDF5Data", 10: "HDF5Output", 11: "Im2col",
    12: "ImageData", 13: "InfogainLoss", 14: "InnerProduct", 15: "LRN",
    16: "MultinomialLogisticLoss", 17: "Pooling", 18: "ReLU", 19: "Sigmoid", 20: "Softmax",
    21: "SoftmaxWithLoss", 22: "Split", 23: "TanH", 24: "WindowData", 25: "Eltwise", 26: "Power",
    27: "SigmoidCrossEntropyLoss", 28: "HingeLoss", 29: "MemoryData", 30: "ArgMax",
    31: "Threshold", 32: "DummyData", 33: "Slice", 34: "MVN", 35: "AbsVal", 36: "Silence",
    37: "ContrastiveLoss", 38: "Exp", 39: "Deconvolution",
}


class CaffeError(WeightsError):
    """A Caffe model that cannot be read or converted, with the reason."""


@dataclass
class CaffeLayer:
    """One layer of a Caffe model: its name, type and parameter blobs (float32)."""

    name: str
    type: str
    blobs: list[np.ndarray] = field(default_factory=list)


@dataclass
class CaffeNet:
    """The layers of a ``.caffemodel`` in file order; ``legacy`` for V1 ``layers``."""

    name: str
    layers: list[CaffeLayer]
    legacy: bool = False


def _expect(item: Field, wire_type: int, what: str) -> None:
    if item.wire_type != wire_type:
        raise WireError(f"{what} (field {item.number}) has wire type {item.wire_type}, expected {wire_type}")


def _text(item: Field, what: str) -> str:
    _expect(item, LENGTH_DELIMITED, what)
    try:
        return bytes(item.value).decode("utf-8")
    except UnicodeDecodeError:
        raise WireError(f"{what} is not UTF-8 text") from None


def _blob_shape(data: memoryview) -> tuple[int, ...]:
    dims: list[int] = []
    for item in fields(data):
        if item.number != 1:
            continue
        if item.wire_type == LENGTH_DELIMITED:
            dims.extend(signed64(v) for v in packed_varints(item.value))
        else:
            _expect(item, VARINT, "BlobShape.dim")
            dims.append(signed64(item.value))
    return tuple(dims)


def parse_blob(data: bytes | memoryview) -> np.ndarray:
    """A ``BlobProto`` as a float32 array of its recorded shape."""
    shape: tuple[int, ...] | None = None
    legacy: dict[int, int] = {}
    floats: list[np.ndarray] = []
    doubles: list[np.ndarray] = []
    for item in fields(data):
        if item.number == 7:
            _expect(item, LENGTH_DELIMITED, "BlobProto.shape")
            shape = _blob_shape(item.value)
        elif item.number in (1, 2, 3, 4):
            _expect(item, VARINT, "BlobProto legacy dimension")
            legacy[item.number] = signed64(item.value)
        elif item.number in (5, 8):
            wire_type = FIXED32 if item.number == 5 else FIXED64
            if item.wire_type not in (wire_type, LENGTH_DELIMITED):
                _expect(item, wire_type, "BlobProto.data" if item.number == 5 else "BlobProto.double_data")
            size = 4 if item.number == 5 else 8
            if len(item.value) % size:
                raise WireError(f"packed blob data of {len(item.value)} bytes is not a multiple of {size}")
            (floats if size == 4 else doubles).append(np.frombuffer(item.value, f"<f{size}"))
    if floats and doubles:
        raise WireError("blob holds both float and double data")
    values = np.concatenate(floats or doubles).astype(np.float32) if floats or doubles else np.zeros(0, np.float32)
    if shape is None:
        shape = tuple(legacy.get(n, 0) for n in (1, 2, 3, 4)) if legacy else (values.size,)
    if any(d < 0 for d in shape):
        raise WireError(f"blob has a negative dimension {shape}")
    if int(np.prod(shape, dtype=np.int64)) != values.size:
        raise WireError(f"blob of shape {shape} holds {values.size} values")
    return values.reshape(shape)


def parse_layer(data: bytes | memoryview, legacy: bool = False) -> CaffeLayer:
    """A ``LayerParameter``, or with ``legacy`` a ``V1LayerParameter``."""
    name_field, type_field, blob_field = (4, 5, 6) if legacy else (1, 2, 7)
    layer = CaffeLayer("", "")
    for item in fields(data):
        if item.number == name_field:
            layer.name = _text(item, "layer name")
        elif item.number == type_field:
            if legacy:
                _expect(item, VARINT, "V1 layer type")
                layer.type = V1_LAYER_TYPES.get(item.value, f"V1 type {item.value}")
            else:
                layer.type = _text(item, "layer type")
        elif item.number == blob_field:
            _expect(item, LENGTH_DELIMITED, "layer blobs")
            layer.blobs.append(parse_blob(item.value))
        elif legacy and item.number == 1:
            raise WireError("V0 layers (Caffe before 2014) are not supported; upgrade the model with Caffe")
    return layer


def parse_net(data: bytes | memoryview) -> CaffeNet:
    """A ``NetParameter`` (the content of a ``.caffemodel``)."""
    name, layers, legacy_layers = "", [], []
    for item in fields(data):
        if item.number == 1:
            name = _text(item, "net name")
        elif item.number == 100:
            _expect(item, LENGTH_DELIMITED, "layer")
            layers.append(parse_layer(item.value))
        elif item.number == 2:
            _expect(item, LENGTH_DELIMITED, "layers")
            legacy_layers.append(parse_layer(item.value, legacy=True))
    if layers and legacy_layers:
        raise WireError("the net has both 'layer' and legacy 'layers' entries")
    return CaffeNet(name, layers or legacy_layers, legacy=bool(legacy_layers))


def read_caffemodel(path: str | Path) -> CaffeNet:
    """Read a ``.caffemodel`` file, refusing anything that is not one."""
    path = Path(path)
    if not path.is_file():
        raise CaffeError(f"Caffe model not found: {path}")
    try:
        net = parse_net(path.read_bytes())
    except WireError as error:
        raise CaffeError(f"{path} is not a readable Caffe model: {error}") from None
    except OSError as error:
        raise CaffeError(f"cannot read {path}: {error.strerror}") from None
    if not net.layers:
        raise CaffeError(f"{path} is not a Caffe model: it holds no layers")
    return net
