"""The weight file: safetensors + metadata, .pt/.pth read safely, clear refusals."""

from __future__ import annotations

import argparse
import json
import pickle
import pickletools
import re
import shlex
import subprocess
import sys
import warnings
import zipfile
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from icnet_ros.model import icnet
from icnet_ros.weights.labels import CITYSCAPES
from icnet_ros.weights.preprocessing import Preprocessing
from icnet_ros.weights.weight_file import (
    METADATA_KEY,
    WeightsError,
    WeightsMetadata,
    load_model,
    read_weights,
    save_weights,
)


def _write_raw(path: Path, tensors: dict[str, torch.Tensor], metadata: WeightsMetadata | None) -> Path:
    header = {METADATA_KEY: json.dumps(metadata.to_dict())} if metadata else None
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(path), metadata=header)
    return path


def test_round_trip_keeps_tensors_and_metadata(tiny_weights, tmp_path):
    model, metadata = load_model(tiny_weights)
    assert not model.training
    assert metadata.architecture["width"] == 0.125 and metadata.preprocessing.input_size == (65, 129)
    assert metadata.labels == CITYSCAPES and metadata.provenance["seed"] == 0
    tensors, _ = read_weights(tiny_weights)
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, tensors[name]), name


def test_fp16_file_loads_as_float32_model(tiny_weights, tmp_path):
    model, metadata = load_model(tiny_weights)
    half = tmp_path / "half.safetensors"
    save_weights(half, model, metadata, dtype=torch.float16)
    with safe_open(str(half), framework="pt") as handle:
        assert handle.get_tensor("conv6_cls.weight").dtype == torch.float16
    loaded, _ = load_model(half)
    assert loaded.conv6_cls.weight.dtype == torch.float32
    assert torch.equal(loaded.conv6_cls.weight, model.conv6_cls.weight.half().float())
    image = torch.randn(1, 3, 65, 129)
    with torch.no_grad():
        reference, result = model(image), loaded(image)
    assert (result - reference).abs().max() <= 0.05 * reference.abs().max()


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_a_reduced_precision_file_keeps_what_its_dtype_cannot_hold(tiny_weights, tmp_path, dtype):
    """BN statistics always, an overflowing or vanishing tensor too; the metadata lists them."""
    model, metadata = load_model(tiny_weights)
    with torch.no_grad():
        model.conv6_cls.bias.fill_(1e5)  # beyond fp16 (65504), within bf16
        model.conv1_sub1.conv.weight.mul_(1e-42)  # subnormal in float32 already: lost in both
    path = tmp_path / "reduced.safetensors"
    save_weights(path, model, metadata, dtype=dtype)
    tensors, stored = read_weights(path)
    kept = set(stored.storage["kept_float32"])
    statistics = {name for name in tensors if name.endswith(("running_mean", "running_var"))}
    expected = statistics | {"conv1_sub1.conv.weight"} | ({"conv6_cls.bias"} if dtype == torch.float16 else set())
    assert kept == expected and stored.storage["dtype"] == str(dtype).removeprefix("torch.")
    assert {name for name, t in tensors.items() if t.dtype == torch.float32} == kept
    loaded, _ = load_model(path)
    stored_bias = model.conv6_cls.bias if dtype == torch.float16 else model.conv6_cls.bias.to(dtype).float()
    assert torch.equal(loaded.conv6_cls.bias, stored_bias)
    assert torch.equal(loaded.conv6_cls.weight, model.conv6_cls.weight.to(dtype).float())
    assert torch.equal(loaded.conv1_sub1.bn.running_var, model.conv1_sub1.bn.running_var)
    assert read_weights(tiny_weights)[1].storage == {}  # a float32 file says nothing


def test_missing_file_is_named(tmp_path):
    with pytest.raises(WeightsError, match="weight file not found: .*absent.safetensors"):
        load_model(tmp_path / "absent.safetensors")


@pytest.mark.parametrize("name, message", [
    ("model.caffemodel", "unsupported weight file type '.caffemodel'.*icnet-convert-caffe"),
    ("model.onnx", "unsupported weight file type '.onnx'"),
    ("model", r"unsupported weight file type '\(no suffix\)'"),
])
def test_other_formats_are_refused(tmp_path, name, message):
    path = tmp_path / name
    path.write_bytes(b"\0" * 64)
    with pytest.raises(WeightsError, match=message):
        read_weights(path)


def test_wrong_architecture_is_refused(tiny_weights, tmp_path):
    tensors, metadata = read_weights(tiny_weights)
    metadata.architecture["name"] = "resnet"
    with pytest.raises(WeightsError, match="unknown architecture 'resnet'"):
        load_model(_write_raw(tmp_path / "resnet.safetensors", tensors, metadata))
    metadata.architecture = {**metadata.architecture, "name": "icnet", "width": 0.25, "channels": {}}
    with pytest.raises(WeightsError, match=r"shape mismatch: .*conv1_1_3x3_s2\.conv\.weight \(8, 3, 3, 3\) != "
                                           r"\(16, 3, 3, 3\), .* \(\d+ more\)$"):
        load_model(_write_raw(tmp_path / "wider.safetensors", tensors, metadata))
    metadata.architecture["depth"] = 50
    with pytest.raises(WeightsError, match=r"unknown architecture fields: \['depth'\]"):
        load_model(_write_raw(tmp_path / "depth.safetensors", tensors, metadata))


def test_missing_and_unexpected_tensors_are_listed_by_name(tiny_weights, tmp_path):
    tensors, metadata = read_weights(tiny_weights)
    del tensors["conv5_3_3x3.bn.running_var"], tensors["conv6_cls.bias"]
    tensors["conv7_extra.weight"] = torch.zeros(2, 2)
    with pytest.raises(WeightsError) as error:
        load_model(_write_raw(tmp_path / "edited.safetensors", tensors, metadata))
    text = str(error.value)
    assert "missing: conv5_3_3x3.bn.running_var, conv6_cls.bias" in text
    assert "unexpected: conv7_extra.weight" in text


def test_shape_mismatch_is_named(tiny_weights, tmp_path):
    tensors, metadata = read_weights(tiny_weights)
    tensors["conv6_cls.weight"] = torch.zeros(20, *tensors["conv6_cls.weight"].shape[1:])
    with pytest.raises(WeightsError, match=r"mismatch: conv6_cls\.weight \(20, 32, 1, 1\) != \(19, 32, 1, 1\)"):
        load_model(_write_raw(tmp_path / "classes.safetensors", tensors, metadata))


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty"])
def test_corrupt_safetensors_is_refused(tiny_weights, tmp_path, damage):
    data = tiny_weights.read_bytes()
    data = {"truncated": data[: len(data) // 2], "garbage": b"\x10\0\0\0\0\0\0\0{not json at all",
            "empty": b""}[damage]
    path = tmp_path / f"{damage}.safetensors"
    path.write_bytes(data)
    with pytest.raises(WeightsError, match="is not a readable safetensors file"):
        load_model(path)


def test_file_without_metadata_needs_it_passed(tiny_weights, tmp_path):
    tensors, metadata = read_weights(tiny_weights)
    bare = _write_raw(tmp_path / "bare.safetensors", tensors, None)
    with pytest.raises(WeightsError, match="has no 'icnet_ros' metadata"):
        load_model(bare)
    model, used = load_model(bare, metadata=metadata)
    assert used is metadata and model.config["width"] == 0.125


def test_pth_state_dict_with_metadata_loads(tiny_weights, tmp_path):
    reference, metadata = load_model(tiny_weights)
    path = tmp_path / "checkpoint.pth"
    torch.save({"state_dict": reference.state_dict(), "metadata": metadata.to_dict()}, path)
    model, loaded = load_model(path)
    assert loaded.to_dict() == metadata.to_dict()
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), reference.state_dict().values()))
    bare = tmp_path / "bare.pt"
    torch.save(reference.state_dict(), bare)
    with pytest.raises(WeightsError, match="has no 'icnet_ros' metadata"):
        load_model(bare)
    assert load_model(bare, metadata=metadata)[0].config["width"] == 0.125


@pytest.mark.parametrize("content, message", [
    ([torch.zeros(1)], "must hold a state dict.*not a list"),
    ({"conv.weight": torch.zeros(1), "epoch": 3}, "entries that are not named tensors: epoch"),
    ({"state_dict": {}, "optimizer": {}}, "unexpected keys: optimizer"),
    ({"state_dict": {}, "metadata": "{not json"}, "metadata is not JSON"),
])
def test_pth_with_another_layout_is_refused(tmp_path, content, message):
    path = tmp_path / "other.pt"
    torch.save(content, path)
    with pytest.raises(WeightsError, match=message):
        read_weights(path)


class _Payload:
    """Unpickling this would create ``marker`` (it calls ``open(marker, "w")``)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return open, (str(self.marker), "w")


def _pickled_calls(path: Path) -> list[str]:
    """The globals a pickle (bare or inside a torch zip) would call, read without unpickling."""
    data = path.read_bytes()
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            data = archive.read(next(n for n in archive.namelist() if n.endswith("data.pkl")))
    names, strings = [], []
    for opcode, arg, _ in pickletools.genops(data):
        if opcode.name in ("SHORT_BINUNICODE", "BINUNICODE", "UNICODE"):
            strings.append(arg)
        elif opcode.name == "GLOBAL":
            names.append(arg.replace(" ", "."))
        elif opcode.name == "STACK_GLOBAL":
            names.append(".".join(strings[-2:]))
    return names


@pytest.mark.parametrize("container, found", [
    ("torch.save", "it pickles unsupported GLOBAL io.open"),
    ("raw pickle", "it pickles unsupported GLOBAL io.open"),
    ("raw pickle 4", "it holds pickle opcode FRAME, a raw pickle of protocol 4"),
])
def test_crafted_pickle_in_pth_never_runs_and_the_refusal_says_what_was_found(tmp_path, container, found):
    marker = tmp_path / "marker"
    path = tmp_path / "malicious.pth"
    if container == "torch.save":
        torch.save({"state_dict": {"conv.weight": torch.zeros(1)}, "metadata": _Payload(marker)}, path)
    else:
        path.write_bytes(pickle.dumps({"conv.weight": _Payload(marker)}, protocol=4 if container.endswith("4") else 2))
    assert "io.open" in _pickled_calls(path)  # the payload is really there
    assert not marker.exists()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(WeightsError) as refused:
            load_model(path)
    assert not marker.exists()
    assert not caught, [str(warning.message) for warning in caught]  # no pickle-protocol warning
    message = str(refused.value)
    assert message.startswith(f"{path} refused ({found}); nothing in it was run: "), message
    assert "\n" not in message and "Use a .safetensors file instead" in message
    assert "will likely succeed" not in message and "add_safe_globals" not in message  # torch's advice is gone


def test_the_conversion_command_of_a_refusal_writes_a_loadable_safetensors_file(tmp_path, tiny_weights):
    """A trusted file refused for a non-tensor entry: the command in the message converts it."""
    model, metadata = load_model(tiny_weights)
    path = tmp_path / "trusted.pth"
    torch.save({"state_dict": model.state_dict(), "metadata": argparse.Namespace(note="not a tensor")}, path)
    with pytest.raises(WeightsError, match=r"it pickles unsupported GLOBAL argparse\.Namespace") as refused:
        read_weights(path)
    command = shlex.split(re.search(r"convert it with (python -c \".*\")", str(refused.value)).group(1))
    assert command[:2] == ["python", "-c"]
    subprocess.run([sys.executable, *command[1:]], check=True, cwd=tmp_path, timeout=300)
    converted, _ = load_model(tmp_path / "trusted.safetensors", metadata=metadata)
    assert all(torch.equal(tensor, converted.state_dict()[name]) for name, tensor in model.state_dict().items())


@pytest.mark.parametrize("content, message", [
    (b"not a weight file", "is not a readable weight file: neither a torch.save archive nor a pickle$"),
    (b"", "is not a readable weight file: neither a torch.save archive nor a pickle$"),
    ("truncated", "is not a readable weight file: PytorchStreamReader failed reading zip archive"),
    (b"\x80\x02", "is not a readable weight file: its pickle ends early"),
])
def test_a_pth_that_is_no_torch_file_is_named_so(tmp_path, tiny_weights, content, message):
    path = tmp_path / "broken.pth"
    if content == "truncated":
        torch.save(read_weights(tiny_weights)[0], path)
        content = path.read_bytes()[:200]
    path.write_bytes(content)
    with pytest.raises(WeightsError, match=message) as refused:
        read_weights(path)
    assert "\n" not in str(refused.value) and "safetensors" not in str(refused.value)


def test_save_writes_only_safetensors(tmp_path):
    metadata = WeightsMetadata({}, CITYSCAPES, Preprocessing(input_size=(65, 129)))
    with pytest.raises(WeightsError, match="written as .safetensors"):
        save_weights(tmp_path / "model.pth", icnet(width=0.125), metadata)

