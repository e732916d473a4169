"""Export to the node's weight file and to ONNX."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from icnet_ros.synthetic.street_scenes import generate_scene
from icnet_ros.weights.labels import CITYSCAPES
from icnet_ros.weights.weight_file import load_model, read_weights
from icnet_train import checkpoint as ckpt
from icnet_train.cli import main
from icnet_train.data.transforms import normalize
from icnet_train.evaluate import predict
from icnet_train.export import ONNX_TOLERANCE


@pytest.fixture(scope="module")
def exported(trained_run, tmp_path_factory):
    config, summary = trained_run
    output = tmp_path_factory.mktemp("export")
    checkpoint = Path(config.output_dir) / "checkpoint.pth"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main(["export", "--checkpoint", str(checkpoint), "--output", str(output / "tiny.safetensors"),
                     "--onnx", str(output / "tiny.onnx")]) == 0
    trained = ckpt.model_from(ckpt.load(checkpoint)).eval()
    return config, summary, trained, output, printed.getvalue()


def test_weight_file_rebuilds_the_trained_network_with_its_metadata(exported):
    config, summary, trained, output, _ = exported
    model, metadata = load_model(output / "tiny.safetensors")
    x = normalize(generate_scene(99, 65, 129)[0], config.preprocessing())[None]
    with torch.no_grad():
        assert torch.equal(model(x), trained(x))
    tensors, _ = read_weights(output / "tiny.safetensors")
    assert not any(name.startswith(("conv6_sub4", "conv6_sub2")) for name in tensors)  # deploy network
    assert metadata.labels == CITYSCAPES and metadata.preprocessing == config.preprocessing()
    assert metadata.preprocessing.channel_order == "BGR" and metadata.preprocessing.input_size == (65, 129)
    assert metadata.provenance["config_sha256"] == config.digest()
    assert metadata.provenance["iterations"] == 40
    assert metadata.metrics["val_miou"] == pytest.approx(summary["miou"])


@pytest.mark.skipif(importlib.util.find_spec("icnet_ros.runtime.engine") is None, reason="no engine yet")
def test_the_node_engine_segments_like_the_trained_network(exported):
    from icnet_ros.runtime.engine import SegmentationEngine

    config, _, trained, output, _ = exported
    rgb, _ = generate_scene(98, 96, 192)  # camera size differs from the network input
    with SegmentationEngine(output / "tiny.safetensors", device="cpu", cpu_threads=1) as engine:
        mask = engine.segment(rgb).class_mask
    expected = predict(trained, torch.from_numpy(rgb)[None], config.preprocessing())[0].numpy()
    assert np.array_equal(mask, expected)


def test_onnx_runtime_matches_pytorch(exported):
    import onnxruntime

    config, _, trained, output, _ = exported
    session = onnxruntime.InferenceSession(str(output / "tiny.onnx"), providers=["CPUExecutionProvider"])
    x = normalize(generate_scene(97, 65, 129)[0], config.preprocessing())[None]
    (logits,) = session.run(["logits"], {"data": x.numpy()})
    with torch.no_grad():
        expected = trained(x).numpy()
    assert logits.shape == (1, 19, 65, 129)
    assert np.abs(logits - expected).max() <= ONNX_TOLERANCE * np.abs(expected).max()


def test_export_prints_the_onnx_check_against_its_tolerance(exported):
    *_, output, printed = exported
    check = re.search(rf"wrote {re.escape(str(output / 'tiny.onnx'))} \(input 1x3x65x129\); onnxruntime vs PyTorch: "
                      r"max \|difference\| (\S+), (\S+) of the largest logit \(tolerance 0\.0001\)$", printed, re.M)
    assert check, printed
    assert float(check.group(2)) <= ONNX_TOLERANCE
    print(f"\nonnxruntime vs PyTorch: max |difference| {check.group(1)}, relative {check.group(2)}")


def test_export_exits_1_when_onnx_exceeds_the_tolerance(trained_run, tmp_path, capsys):
    """A tolerance below the measured difference (printed by the test above) fails the export."""
    checkpoint = Path(trained_run[0].output_dir) / "checkpoint.pth"
    code = main(["export", "--checkpoint", str(checkpoint), "--output", str(tmp_path / "tiny.safetensors"),
                 "--onnx", str(tmp_path / "tiny.onnx"), "--onnx-tolerance", "1e-12"])
    error = capsys.readouterr().err
    assert code == 1, error
    assert re.fullmatch(rf"icnet-train: error: {re.escape(str(tmp_path / 'tiny.onnx'))} differs from PyTorch by "
                        r"\S+ of the largest logit, more than the tolerance 1e-12 \(file kept for inspection\)\n",
                        error), error


def test_a_negative_onnx_tolerance_is_refused(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["export", "--checkpoint", "c.pth", "--output", "w.safetensors", "--onnx-tolerance", "-1"])
    assert exit_.value.code == 2
    assert "-1 is not a tolerance (a number >= 0)" in capsys.readouterr().err
