"""Test-side Caffe tools, independent of icnet_ros: a prototxt reader, a protobuf writer
for ``.caffemodel`` files, random official weights, and a layer-by-layer forward pass
of a prototxt with torch.nn.functional only.
"""

from __future__ import annotations

import math
import re
import struct
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

BN_EPS = 1e-5
_TOKEN = re.compile(r'#[^\n]*|"[^"]*"|[{}:]|[^\s{}:"#]+')


# ---- prototxt (protobuf text format) -------------------------------------------------

def _scalar(token: str):
    if token.startswith('"'):
        return token[1:-1]
    for kind in (int, float):
        try:
            return kind(token)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(token, token)


def parse_prototxt(text: str) -> dict:
    """Text format as nested dicts; every field maps to the list of its values."""
    tokens = [t for t in _TOKEN.findall(text) if not t.startswith("#")]
    stack: list[dict] = [{}]
    pos = 0
    while pos < len(tokens):
        token = tokens[pos]
        if token == "}":
            stack.pop()
            pos += 1
            continue
        name, pos = token, pos + 1
        if tokens[pos] == ":":
            pos += 1
        if tokens[pos] == "{":
            child: dict = {}
            stack[-1].setdefault(name, []).append(child)
            stack.append(child)
        else:
            stack[-1].setdefault(name, []).append(_scalar(tokens[pos]))
        pos += 1
    return stack[0]


def official_layers(path: Path) -> list[dict]:
    """The ``layer`` entries of a deploy prototxt."""
    return parse_prototxt(Path(path).read_text())["layer"]


def param(layer: dict, group: str, key: str, default=None):
    """One scalar of ``layer``'s ``group`` (e.g. convolution_param), or ``default``."""
    values = layer.get(group, [{}])[0].get(key)
    return values[0] if values else default


def aux_classifier_layers(num_classes: int = 19) -> list[dict]:
    """The training-only classifiers the released weights hold (ICNET.md)."""
    def conv(name: str, bottom: str) -> dict:
        return {"name": [name], "type": ["Convolution"], "bottom": [bottom], "top": [name],
                "convolution_param": [{"num_output": [num_classes], "kernel_size": [1]}]}
    return [conv("conv6_sub4", "conv5_4_interp"), conv("conv6_sub2", "sub24_sum_interp")]


# ---- protobuf wire format (writer) ---------------------------------------------------

def _varint(value: int) -> bytes:
    value &= (1 << 64) - 1
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _tag(number: int, wire_type: int) -> bytes:
    return _varint(number << 3 | wire_type)


def _bytes_field(number: int, payload: bytes) -> bytes:
    return _tag(number, 2) + _varint(len(payload)) + payload


def _int_field(number: int, value: int) -> bytes:
    return _tag(number, 0) + _varint(value)


def blob_proto(array: np.ndarray, *, legacy_shape: bool = False, packed_dims: bool = True,
               double: bool = False, packed_data: bool = True, shape: tuple[int, ...] | None = None) -> bytes:
    """A BlobProto: shape (``array``'s unless given) as BlobShape (7) or legacy num/channels/height/width."""
    shape = array.shape if shape is None else shape
    out = b""
    if legacy_shape:
        dims = (1,) * (4 - len(shape)) + tuple(shape)
        out += b"".join(_int_field(number, dim) for number, dim in zip((1, 2, 3, 4), dims))
    elif packed_dims:
        out += _bytes_field(7, _bytes_field(1, b"".join(_varint(d) for d in shape)))
    else:
        out += _bytes_field(7, b"".join(_int_field(1, d) for d in shape))
    flat = array.ravel()
    if double:
        out += _bytes_field(8, flat.astype("<f8").tobytes())
    elif packed_data:
        out += _bytes_field(5, flat.astype("<f4").tobytes())
    else:
        out += b"".join(_tag(5, 5) + struct.pack("<f", v) for v in flat.tolist())
    return out


def layer_proto(name: str, kind: str, blobs: list[bytes], bottoms=(), tops=()) -> bytes:
    """A LayerParameter: name 1, type 2, bottom 3, top 4, blobs 7."""
    return (_bytes_field(1, name.encode()) + _bytes_field(2, kind.encode())
            + b"".join(_bytes_field(3, b.encode()) for b in bottoms)
            + b"".join(_bytes_field(4, t.encode()) for t in tops)
            + b"".join(_bytes_field(7, blob) for blob in blobs))


V1_CONVOLUTION, V1_RELU = 4, 18


def v1_layer_proto(name: str, kind: int, blobs: list[bytes]) -> bytes:
    """A V1LayerParameter: name 4, type enum 5, blobs 6."""
    return _bytes_field(4, name.encode()) + _int_field(5, kind) + b"".join(_bytes_field(6, b) for b in blobs)


def net_proto(layers: list[bytes], *, legacy: bool = False, name: str = "ICNet") -> bytes:
    """A NetParameter: name 1, then ``layer`` (100) or legacy ``layers`` (2) entries."""
    return _bytes_field(1, name.encode()) + b"".join(_bytes_field(2 if legacy else 100, layer) for layer in layers)


# ---- random official weights ---------------------------------------------------------

def random_blobs(layers: list[dict], seed: int = 0) -> dict[str, list[np.ndarray]]:
    """Random blobs for every parametered layer, shaped by following channels through the net.

    Convolutions: weight (+ bias when ``bias_term``); BN: scale, shift, mean, variance,
    alternately shaped 1xCx1x1 and C.
    """
    rng = np.random.default_rng(seed)
    channels = {"data": 3}
    blobs: dict[str, list[np.ndarray]] = {}
    for layer in layers:
        name, kind = layer["name"][0], layer["type"][0]
        c = channels[layer["bottom"][0]]
        if kind == "Convolution":
            out = param(layer, "convolution_param", "num_output")
            k = param(layer, "convolution_param", "kernel_size")
            gain = 0.5 if name.endswith("_increase") or name.endswith("_proj") else 1.0
            weight = rng.normal(0, gain * math.sqrt(2 / (c * k * k)), (out, c, k, k))
            blobs[name] = [weight] + ([rng.uniform(-0.1, 0.1, out)]
                                      if param(layer, "convolution_param", "bias_term", True) else [])
            c = out
        elif kind == "BN":
            shape = (1, c, 1, 1) if len(blobs) % 2 else (c,)
            blobs[name] = [rng.uniform(0.5, 1.5, shape), rng.uniform(-0.1, 0.1, shape),
                           rng.uniform(-0.1, 0.1, shape), rng.uniform(0.5, 1.5, shape)]
        channels[layer["top"][0]] = c
    return {name: [b.astype(np.float32) for b in values] for name, values in blobs.items()}


# ---- layer-by-layer forward pass ---------------------------------------------------

def _interp_size(layer: dict, height: int, width: int) -> tuple[int, int]:
    shrink, zoom = param(layer, "interp_param", "shrink_factor"), param(layer, "interp_param", "zoom_factor")
    if shrink:
        return (height - 1) // shrink + 1, (width - 1) // shrink + 1
    if zoom:
        return height + (height - 1) * (zoom - 1), width + (width - 1) * (zoom - 1)
    return param(layer, "interp_param", "height"), param(layer, "interp_param", "width")


def _pool(layer: dict, x: torch.Tensor) -> torch.Tensor:
    def get(key: str, fallback: str):
        return param(layer, "pooling_param", key, param(layer, "pooling_param", fallback))

    kernel = (get("kernel_h", "kernel_size"), get("kernel_w", "kernel_size"))
    stride = (get("stride_h", "stride") or 1, get("stride_w", "stride") or 1)
    pad = param(layer, "pooling_param", "pad", 0)
    if param(layer, "pooling_param", "pool") == "MAX":
        return F.max_pool2d(x, kernel, stride, pad, ceil_mode=True)
    return F.avg_pool2d(x, kernel, stride, pad, ceil_mode=True, count_include_pad=True)


def forward(layers: list[dict], blobs: dict[str, list[np.ndarray]], data: torch.Tensor,
            outputs: tuple[str, ...]) -> dict[str, torch.Tensor]:
    """Run ``layers`` on ``data`` as Caffe would and return the ``outputs`` tops."""
    last_use = {b: i for i, layer in enumerate(layers) for b in layer.get("bottom", [])}
    tops = {"data": data}
    for index, layer in enumerate(layers):
        name, kind = layer["name"][0], layer["type"][0]
        inputs = [tops[b] for b in layer["bottom"]]
        x = inputs[0]
        weights = [torch.from_numpy(b) for b in blobs.get(name, [])]
        if kind == "Convolution":
            p = lambda key, default: param(layer, "convolution_param", key, default)  # noqa: E731
            y = F.conv2d(x, weights[0], weights[1] if len(weights) > 1 else None,
                         p("stride", 1), p("pad", 0), p("dilation", 1))
        elif kind == "BN":
            scale, shift, mean, var = (w.reshape(-1) for w in weights)
            y = F.batch_norm(x, mean, var, scale, shift, training=False, eps=BN_EPS)
        elif kind == "ReLU":
            y = F.relu(x)
        elif kind == "Pooling":
            y = _pool(layer, x)
        elif kind == "Interp":
            y = F.interpolate(x, size=_interp_size(layer, *x.shape[-2:]), mode="bilinear", align_corners=True)
        elif kind == "Eltwise":
            assert param(layer, "eltwise_param", "operation", "SUM") == "SUM"
            y = sum(inputs[1:], inputs[0])
        elif kind == "Scale":
            y = x * weights[0].reshape(1, -1, 1, 1) if weights else x
        else:
            raise ValueError(f"layer {name}: type {kind} is not handled by the reference")
        tops[layer["top"][0]] = y
        for bottom in set(layer["bottom"]):
            if last_use.get(bottom) == index and bottom not in outputs and bottom != layer["top"][0]:
                del tops[bottom]
    return {name: tops[name] for name in outputs}
