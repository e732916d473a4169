"""Import of official PIDNet/DDRNet checkpoints: files laid out as the official training code
saves them (random weights), through ``icnet-import-checkpoint``, and the refusals."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from safetensors import safe_open

from icnet_ros.model.registry import build_network
from icnet_ros.weights.errors import WeightsError
from icnet_ros.weights.labels import CITYSCAPES
from icnet_ros.weights.official_checkpoints import OFFICIAL_PREPROCESSING, checkpoint_state, import_checkpoint, place_tensors
from icnet_ros.weights.weight_file import file_sha256, load_model


@pytest.fixture(scope="module")
def pidnet_s_state():
    """A random PIDNet-S state dict with non-trivial BN statistics (what the official one holds)."""
    torch.manual_seed(0)
    model = build_network({"name": "pidnet", "variant": "s"})
    with torch.no_grad():
        for name, buffer in model.named_buffers():
            if name.endswith("running_var"):
                buffer.uniform_(0.5, 1.5)
    return model.state_dict()


def official_layout(state: dict[str, torch.Tensor]) -> dict:
    """As PIDNet's tools/train.py saves a resumable checkpoint of its FullModel wrapper."""
    wrapped = {f"model.{key}": value for key, value in state.items()}
    wrapped["sem_loss.criterion.weight"] = torch.ones(19)
    return {"epoch": 484, "best_mIoU": 0.788, "state_dict": wrapped,
            "optimizer": {"state": {}, "param_groups": [{"lr": 0.01, "params": [0, 1]}]}}


def test_an_official_layout_imports_through_the_command(tmp_path, pidnet_s_state):
    checkpoint = tmp_path / "PIDNet_S_Cityscapes_val.pt"
    torch.save(official_layout(pidnet_s_state), checkpoint)
    output = tmp_path / "pidnet_s.safetensors"
    done = subprocess.run([sys.executable, "-m", "icnet_ros.tools.import_checkpoint", "pidnet-s", str(checkpoint),
                           "-o", str(output)], capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    assert "PIDNet-S, 7,720,935 parameters, with the training heads" in done.stdout
    assert "left out (training losses): sem_loss.criterion.weight" in done.stdout
    model, metadata = load_model(output)
    assert metadata.architecture == {"name": "pidnet", "variant": "s", "num_classes": 19, "planes": 32,
                                     "ppm_planes": 96, "head_planes": 128, "aux_heads": True}
    for key, value in pidnet_s_state.items():
        assert torch.equal(model.state_dict()[key], value), key
    assert metadata.preprocessing == OFFICIAL_PREPROCESSING
    assert (metadata.preprocessing.channel_order, metadata.preprocessing.input_size) == ("RGB", (1024, 2048))
    assert metadata.preprocessing.mean == pytest.approx((123.675, 116.28, 103.53))
    assert metadata.preprocessing.std == pytest.approx((58.395, 57.12, 57.375))
    assert metadata.labels == CITYSCAPES
    assert metadata.provenance["source_sha256"] == file_sha256(checkpoint)
    assert metadata.provenance["checkpoint_entries_left"] == ["best_mIoU", "epoch", "optimizer"]
    assert metadata.metrics["published"]["cityscapes_val_miou"] == 78.8
    with safe_open(str(output), framework="pt") as handle:
        assert json.loads(handle.metadata()["icnet_ros"])["provenance"]["repository"].endswith("XuJiacong/PIDNet")


def test_a_bare_state_without_the_training_heads_imports(tmp_path, pidnet_s_state):
    state = {f"model.{k}": v for k, v in pidnet_s_state.items() if not k.startswith(("seghead_p", "seghead_d"))
             and not k.endswith("num_batches_tracked")}   # older torch: no counters
    checkpoint = tmp_path / "bare.pth"
    torch.save(state, checkpoint)
    model, metadata = import_checkpoint("pidnet-s", checkpoint)
    assert metadata.architecture == {} and model.config["aux_heads"] is False
    assert model.seghead_p is None and not metadata.provenance["dropped_training_keys"]


def test_unplaceable_missing_and_misshapen_tensors_are_refused_by_name(pidnet_s_state):
    state, dropped, _ = checkpoint_state(official_layout(pidnet_s_state), "ckpt.pt")
    assert dropped == ["sem_loss.criterion.weight"]
    state = dict(state)
    del state["layer3.1.bn2.running_var"]
    state["layer9.0.conv1.weight"] = torch.zeros(1)
    state["final_layer.conv2.bias"] = torch.zeros(11)
    model = build_network({"name": "pidnet", "variant": "s"})
    with pytest.raises(WeightsError) as refused:
        place_tensors(model, state, "ckpt.pt")
    message = str(refused.value)
    assert "keys it cannot place: layer9.0.conv1.weight" in message
    assert "missing tensors: layer3.1.bn2.running_var" in message
    assert "shape mismatch: final_layer.conv2.bias [11] != [19]" in message


def test_the_wrong_network_and_pickled_code_are_refused(tmp_path, pidnet_s_state):
    checkpoint = tmp_path / "pidnet_s.pt"
    torch.save({f"model.{k}": v for k, v in pidnet_s_state.items()}, checkpoint)
    with pytest.raises(WeightsError, match="not the official network it was named as; keys it cannot place: "
                                           r"dfm\.conv_i\.0\.weight.*; missing tensors: down3\.0\.weight"):
        import_checkpoint("ddrnet-23", checkpoint)
    crafted = tmp_path / "crafted.pt"
    torch.save({"state_dict": {"model.x": torch.zeros(1)}, "callback": print}, crafted)
    with pytest.raises(WeightsError, match="refused .*nothing in it was run"):
        import_checkpoint("pidnet-s", crafted)
    with pytest.raises(WeightsError, match="unknown network 'pidnet-xl'"):
        import_checkpoint("pidnet-xl", checkpoint)


def test_a_ddrnet_checkpoint_of_the_hrnet_code_base_imports(tmp_path):
    """DDRNet's files (best_val_smaller.pth, best_val.pth) hold the wrapper's state bare: ``model.``
    keys (ydhongHIT/DDRNet issue #11, open-mmlab/mmsegmentation#2855), the auxiliary head beside
    them, and here the loss's weights too."""
    torch.manual_seed(2)
    state = build_network({"name": "ddrnet", "variant": "23-slim"}).state_dict()
    checkpoint = tmp_path / "best_val_smaller.pth"
    torch.save({**{k if k.startswith("seghead_extra.") else f"model.{k}": v for k, v in state.items()},
                "loss.criterion.weight": torch.ones(19)}, checkpoint)
    model, metadata = import_checkpoint("ddrnet-23-slim", checkpoint)
    assert metadata.provenance["dropped_training_keys"] == ["loss.criterion.weight"]
    assert model.config == {"variant": "23-slim", "num_classes": 19, "planes": 32, "spp_planes": 128,
                            "head_planes": 64, "aux_head": True}
    assert all(torch.equal(model.state_dict()[k], v) for k, v in state.items())
    assert metadata.metrics["published"]["cityscapes_val_miou"] == 77.8
