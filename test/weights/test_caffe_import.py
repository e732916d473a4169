"""Official Caffe weights: the wire-format reader, the converter and icnet-convert-caffe.

The main check builds a ``.caffemodel`` with random blobs for every parametered layer of
the official prototxt (written by the test's own protobuf writer), converts it, and
compares the model's logits with a forward pass the test computes layer by layer from
the prototxt (caffe_reference.py, torch.nn.functional only), at the official 1025x2049.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import caffe_reference as ref
import numpy as np
import pytest
import torch
from domain_ids import fresh_domain_id

from icnet_ros.ros.node_process import NodeProcess
from icnet_ros.tools import convert_caffe
from icnet_ros.weights.caffe import CaffeError, CaffeLayer, CaffeNet, icnet_from_caffe, parse_net, read_caffemodel
from icnet_ros.weights.labels import CITYSCAPES
from icnet_ros.weights.preprocessing import OFFICIAL
from icnet_ros.weights.weight_file import WeightsError, file_sha256, load_model

PROTOTXT = {"merged": "icnet_cityscapes.prototxt", "bnnomerge": "icnet_cityscapes_bnnomerge.prototxt"}
AUX = ("conv6_sub4", "conv6_sub2")
# The installed console script: beside this interpreter (a venv) or on PATH (a ROS install).
CLI = shutil.which("icnet-convert-caffe", path=os.pathsep.join([str(Path(sys.executable).parent),
                                                               os.environ.get("PATH", "")]))
TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def official(reference_dir) -> dict[str, tuple[list[dict], dict[str, list[np.ndarray]]]]:
    """Layers and random blobs of each official form; bnnomerge also has the aux classifiers."""
    forms = {}
    for seed, (form, name) in enumerate(PROTOTXT.items()):
        layers = ref.official_layers(reference_dir / name)
        if form == "bnnomerge":
            layers += ref.aux_classifier_layers()
        forms[form] = layers, ref.random_blobs(layers, seed=seed)
    return forms


def _encode(blob: np.ndarray, count: int) -> bytes:
    """Vary the encoding across blobs: BlobShape packed or not, legacy 4-D shape, doubles."""
    if blob.size <= 19:
        return ref.blob_proto(blob, packed_data=False)
    if blob.ndim == 1 and count % 3 == 0:
        return ref.blob_proto(blob, double=True)
    return ref.blob_proto(blob, legacy_shape=count % 4 == 1, packed_dims=count % 4 != 2)


def write_caffemodel(path: Path, layers: list[dict], blobs: dict[str, list[np.ndarray]],
                     legacy: bool = False) -> Path:
    """Every layer in prototxt order; V1 ``layers`` (Convolution and ReLU only) with ``legacy``."""
    protos, count = [], 0
    for layer in layers:
        name, kind = layer["name"][0], layer["type"][0]
        encoded = []
        for blob in blobs.get(name, []):
            encoded.append(_encode(blob, count))
            count += 1
        if not legacy:
            protos.append(ref.layer_proto(name, kind, encoded, layer["bottom"], layer["top"]))
        elif kind in ("Convolution", "ReLU"):
            protos.append(ref.v1_layer_proto(name, ref.V1_CONVOLUTION if encoded else ref.V1_RELU, encoded))
    path.write_bytes(ref.net_proto(protos, legacy=legacy))
    return path


@contextmanager
def _one_thread() -> Iterator[None]:
    """Single-threaded torch: on a shared, busy CPU one thread runs these forwards about
    twice as fast as two (no waiting for a descheduled sibling thread)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _relative_error(got: torch.Tensor, want: torch.Tensor) -> float:
    assert got.shape == want.shape
    return float((got - want).abs().max() / want.abs().max())


@pytest.mark.parametrize("form", ["merged", "bnnomerge"])
def test_official_form_reproduces_the_prototxt_forward(official, tmp_path, form):
    layers, blobs = official[form]
    if form == "bnnomerge":  # a trained input Scale (data_sub1): the converter folds it
        blobs = {**blobs, "data_sub1": [np.array([1.5, 0.5, 2.0], np.float32)]}
    source = write_caffemodel(tmp_path / f"icnet_{form}.caffemodel", layers, blobs)
    output = tmp_path / "converted.safetensors"
    if form == "merged":  # the installed console script, as a user runs it
        assert CLI, "icnet-convert-caffe is not installed (pip install -e .)"
        run = subprocess.run([CLI, str(source), "-o", str(output)], capture_output=True, text=True)
        assert run.returncode == 0, run.stderr
        assert "merged form, without auxiliary classifiers" in run.stdout
    else:
        assert convert_caffe.main([str(source), "-o", str(output)]) == 0

    model, metadata = load_model(output)
    aux = AUX if form == "bnnomerge" else ()
    assert model.config["batch_norm"] == (form == "bnnomerge")
    assert model.config["aux_classifiers"] == bool(aux)
    assert metadata.preprocessing == OFFICIAL and metadata.labels == CITYSCAPES
    assert metadata.provenance["source"] == "converted from Caffe"
    assert metadata.provenance["source_file"] == source.name
    assert metadata.provenance["source_sha256"] == file_sha256(source)
    assert metadata.provenance["caffe_form"] == form and metadata.provenance["official_release"] is None

    captured = {}
    for name in aux:
        getattr(model, name).register_forward_hook(lambda _m, _i, out, name=name: captured.__setitem__(name, out))
    data = 50 * torch.randn(1, 3, *OFFICIAL.input_size, generator=torch.Generator().manual_seed(1))
    with torch.no_grad(), _one_thread():
        logits = model(data)
        want = ref.forward(layers, blobs, data, outputs=("conv6_interp", *aux))
    assert _relative_error(logits, want["conv6_interp"]) < TOLERANCE
    for name in aux:
        assert _relative_error(captured[name], want[name]) < TOLERANCE, name


def test_legacy_v1_layers_convert(official, tmp_path):
    layers, blobs = official["merged"]
    net = read_caffemodel(write_caffemodel(tmp_path / "v1.caffemodel", layers, blobs, legacy=True))
    assert net.legacy and {layer.type for layer in net.layers} == {"Convolution", "ReLU"}
    state = icnet_from_caffe(net).state_dict()
    for name, (weight, bias) in blobs.items():
        prefix = f"{name}.conv" if f"{name}.conv.weight" in state else name
        assert torch.equal(state[f"{prefix}.weight"], torch.from_numpy(weight)), name
        assert torch.equal(state[f"{prefix}.bias"], torch.from_numpy(bias)), name


def test_reader_decodes_every_blob_encoding():
    weight = np.arange(6, dtype=np.float32).reshape(2, 1, 1, 3) - 2.5
    bias = np.array([0.25, -1.5], np.float32)
    layers = [
        ref.v1_layer_proto("conv_a", ref.V1_CONVOLUTION, [ref.blob_proto(weight, legacy_shape=True),
                                                         ref.blob_proto(bias, double=True)]),
        ref.v1_layer_proto("conv_a/relu", ref.V1_RELU, []),
        ref.v1_layer_proto("mystery", 99, [ref.blob_proto(bias, packed_dims=False, packed_data=False)]),
    ]
    net = parse_net(ref.net_proto(layers, legacy=True, name="tiny"))
    assert net.name == "tiny" and net.legacy
    assert [(layer.name, layer.type, len(layer.blobs)) for layer in net.layers] == [
        ("conv_a", "Convolution", 2), ("conv_a/relu", "ReLU", 0), ("mystery", "V1 type 99", 1)]
    assert np.array_equal(net.layers[0].blobs[0], weight) and net.layers[0].blobs[0].dtype == np.float32
    assert np.array_equal(net.layers[0].blobs[1], bias) and np.array_equal(net.layers[2].blobs[0], bias)


@pytest.mark.parametrize("content, message", [
    (None, "Caffe model not found"),
    (b"", "holds no layers"),
    (b"\xff" * 64, "is not a readable Caffe model: .*varint"),
    ("truncated", "is not a readable Caffe model: .*truncated"),
    ("both formats", "both 'layer' and legacy 'layers'"),
    ("bad blob", r"blob of shape \(2, 2\) holds 3 values"),
    ("safetensors", "is not a (readable )?Caffe model"),
])
def test_reader_refuses_what_is_not_a_caffemodel(tmp_path, tiny_weights, content, message):
    conv = ref.layer_proto("conv", "Convolution", [ref.blob_proto(np.ones((4, 4), np.float32))])
    content = {
        "truncated": ref.net_proto([conv])[:-7],
        "both formats": ref.net_proto([conv])
        + ref.net_proto([ref.v1_layer_proto("relu", ref.V1_RELU, [])], legacy=True),
        "bad blob": ref.net_proto([ref.layer_proto("conv", "Convolution", [
            ref.blob_proto(np.ones(3, np.float32), shape=(2, 2))])]),
        "safetensors": tiny_weights.read_bytes(),
    }.get(content, content)
    path = tmp_path / "model.caffemodel"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(CaffeError, match=message) as error:
        read_caffemodel(path)
    assert isinstance(error.value, WeightsError)


def _net(layers: list[dict], blobs: dict[str, list[np.ndarray]]) -> CaffeNet:
    return CaffeNet("ICNet", [CaffeLayer(layer["name"][0], layer["type"][0], list(blobs.get(layer["name"][0], [])))
                              for layer in layers])


def _edit(edit: str, layers: list[dict], blobs: dict[str, list[np.ndarray]]) -> CaffeNet:
    blobs = dict(blobs)
    if edit == "missing BN":
        del blobs["conv5_3_3x3/bn"]
    elif edit == "one aux classifier":
        del blobs["conv6_sub2"]
    elif edit == "extra conv":
        layers = layers + [{"name": ["conv7_extra"], "type": ["Convolution"]}]
        blobs["conv7_extra"] = [np.zeros((19, 19, 1, 1), np.float32)]
    elif edit == "20 classes":
        blobs["conv6_cls"] = [np.zeros((20, 128, 1, 1), np.float32), np.zeros(20, np.float32)]
    elif edit == "bias before BN":
        blobs["conv1_1_3x3_s2"] = blobs["conv1_1_3x3_s2"] + [np.zeros(32, np.float32)]
    elif edit == "shifted input":
        blobs["data_sub1"] = [np.ones(3, np.float32), np.full(3, 2.0, np.float32)]
    elif edit == "other scale":
        layers = layers + [{"name": ["conv5_3/scale"], "type": ["Scale"]}]
        blobs["conv5_3/scale"] = [np.ones(1024, np.float32)]
    elif edit == "twice":
        layers = layers + [next(layer for layer in layers if layer["name"] == ["conv1_1_3x3_s2"])]
    return _net(layers, blobs)


@pytest.mark.parametrize("edit, message", [
    ("missing BN", r"missing layers: conv5_3_3x3/bn$"),
    ("one aux classifier", r"missing layers: conv6_sub2$"),
    ("extra conv", r"extra layers: conv7_extra \(Convolution\)$"),
    ("20 classes", r"conv6_cls blob 0 has shape \(20, 128, 1, 1\), conv6_cls.weight needs \(19, 128, 1, 1\); "
                   r"conv6_cls blob 1 has shape \(20,\)"),
    ("bias before BN", r"conv1_1_3x3_s2 has 2 blobs, the bnnomerge \(BN\) network needs 1 "
                       r"\(conv1_1_3x3_s2.conv.weight\)$"),
    ("shifted input", r"data_sub1 \(Scale\) shifts the input, which the network cannot hold exactly$"),
    ("other scale", r"extra layers: conv5_3/scale \(Scale\)$"),
    ("twice", r"layer 'conv1_1_3x3_s2' appears twice$"),
])
def test_converter_names_what_does_not_fit(official, edit, message):
    layers, blobs = official["bnnomerge"]
    with pytest.raises(CaffeError, match=r"does not match the official ICNet, read as bnnomerge \(BN\) with auxiliary "
                                         r"classifiers \(\d+ layers of type BN carry blobs; [^)]*\): " + message):
        icnet_from_caffe(_edit(edit, layers, blobs))


def test_merged_form_needs_every_bias(official):
    layers, blobs = official["merged"]
    blobs = {**blobs, "conv3_sub1_proj": blobs["conv3_sub1_proj"][:1]}
    with pytest.raises(CaffeError, match=r"read as BN-merged \(no layer of type BN carries blobs; (\d+) of (\d+) "
                                         r"convolutions carry a bias; auxiliary classifiers with blobs: none\): "
                                         r"conv3_sub1_proj has 1 blobs, the BN-merged network needs 2") as refused:
        icnet_from_caffe(_net(layers, blobs))
    biased, convolutions = map(int, re.search(r"(\d+) of (\d+) convolutions", str(refused.value)).groups())
    assert biased == convolutions - 1 > 50


def test_a_bnnomerge_file_whose_bn_layers_have_another_type_is_refused_with_the_evidence(official, tmp_path, capsys):
    """Read as BN-merged (no layer of type BN): the refusal says why, lists a few layers, counts the rest."""
    layers, blobs = official["bnnomerge"]
    retyped = [{**layer, "type": ["BatchNorm"]} if layer["type"] == ["BN"] else layer for layer in layers]
    assert sum(layer["type"] == ["BatchNorm"] for layer in retyped) > 50
    path = write_caffemodel(tmp_path / "retyped.caffemodel", retyped, blobs)
    assert convert_caffe.main([str(path)]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and len(error) < 2000, f"{len(error)} characters: {error}"
    refused = re.fullmatch(
        r"icnet-convert-caffe: error: \S+retyped.caffemodel does not match the official ICNet, read as BN-merged with "
        r"auxiliary classifiers \(no layer of type BN carries blobs; 0 of (\d+) convolutions carry a bias, as in the "
        r"bnnomerge form; (\d+) layers named '\*/bn' carry blobs but are of type 'BatchNorm', not BN; auxiliary "
        r"classifiers with blobs: conv6_sub4, conv6_sub2\): extra layers: conv1_1_3x3_s2/bn \(BatchNorm\), "
        r"(?:[^;]+, ){11}\.\.\. \((\d+) more\); conv1_1_3x3_s2 has 1 blobs, the BN-merged network needs 2 \([^)]+\); "
        r"(?:[^;]+; ){3}"
        r"\.\.\. \((\d+) more\)\n", error)
    assert refused, error
    convolutions, named_bn, more_layers, more_problems = map(int, refused.groups())
    assert named_bn == 12 + more_layers and convolutions == 4 + more_problems
    assert not path.with_suffix(".safetensors").exists()


@pytest.mark.parametrize("args, message", [
    (["absent.caffemodel"], "Caffe model not found"),
    (["garbage.caffemodel"], "is not a readable Caffe model"),
    (["model.caffemodel", "-o", "out.pth"], "the output must be a .safetensors file"),
    (["model.caffemodel", "-o", "existing.safetensors"], "existing.safetensors exists"),
])
def test_cli_refuses_bad_input_with_exit_2_and_a_message(tmp_path, capsys, args, message):
    """Bad input: exit status 2 and one line naming the reason (an exception would fail the test)."""
    (tmp_path / "model.caffemodel").write_bytes(b"")
    (tmp_path / "garbage.caffemodel").write_bytes(b"\xff" * 64)
    (tmp_path / "existing.safetensors").write_bytes(b"")
    try:
        code = convert_caffe.main([arg if arg.startswith("-") else str(tmp_path / arg) for arg in args])
    except SystemExit as exit_:
        code = exit_.code
    error = capsys.readouterr().err
    assert code == 2 and error.startswith(("icnet-convert-caffe: error: ", "usage: icnet-convert-caffe")), error
    assert message in error and "Traceback" not in error
    assert not (tmp_path / "out.safetensors").exists() and not (tmp_path / "out.pth").exists()


def test_the_node_starts_from_a_converted_file_alone(official, tmp_path):
    """`segmentation_node -p weights:=CONVERTED` and nothing else: official size and pre-processing."""
    layers, blobs = official["merged"]
    output = tmp_path / "converted.safetensors"
    assert convert_caffe.main([str(write_caffemodel(tmp_path / "m.caffemodel", layers, blobs)),
                               "-o", str(output)]) == 0
    environment = {"ROS_DOMAIN_ID": fresh_domain_id(), "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST"}
    process = NodeProcess(tmp_path / "node.log", parameters={"weights": output, "cpu_threads": 1},
                          environment=environment)
    try:
        deadline = time.monotonic() + 180
        while "active: segmenting" not in process.log() and process.alive():
            assert time.monotonic() < deadline, process.log()
            time.sleep(0.2)
        text = process.log()
        assert process.alive(), text
        assert "1025x2049" in text and "Traceback" not in text, text
        code, _ = process.exit_after(signal.SIGINT, 10)
        assert code == 0, process.log()
    finally:
        process.stop()


def test_half_keeps_trained_scale_bn_statistics_in_float32(official, tmp_path, capsys):
    """``--half`` on a bnnomerge file whose BN variances reach 1.5e6 (as trained ones do, far
    beyond fp16's 65504): the statistics stay float32, the metadata and the output say so,
    and the network computes what the float32 file's does."""
    layers, blobs = official["bnnomerge"]
    rng = np.random.default_rng(3)
    trained = {name: [*values[:3], rng.uniform(1e3, 1.5e6, values[3].shape).astype(np.float32)]
               if name.endswith("/bn") else values for name, values in blobs.items()}
    source = write_caffemodel(tmp_path / "trained_bnnomerge.caffemodel", layers, trained)
    full, half = tmp_path / "full.safetensors", tmp_path / "half.safetensors"
    assert convert_caffe.main([str(source), "-o", str(full)]) == 0
    assert convert_caffe.main([str(source), "-o", str(half), "--half"]) == 0
    assert "stored as float16; kept float32" in capsys.readouterr().out
    model, metadata = load_model(half)
    variances = {name for name, _ in model.named_buffers() if name.endswith("running_var")}
    assert variances <= set(metadata.storage["kept_float32"]) and metadata.storage["dtype"] == "float16"
    assert half.stat().st_size < 0.6 * full.stat().st_size
    reference, _ = load_model(full)
    data = 50 * torch.randn(1, 3, 129, 257, generator=torch.Generator().manual_seed(2))
    with torch.no_grad(), _one_thread():
        assert _relative_error(model(data), reference(data)) < 1e-2
