"""PIDNet and DDRNet against their official definitions: every state_dict name and shape,
parameter counts, output strides, and the outputs of tiny official networks (reference/,
made by reference/make_reference.py from the official code)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from icnet_ros.model import ddrnet, pidnet
from icnet_ros.model.registry import architecture_of, build_network

REFERENCE = Path(__file__).parent / "reference"
OFFICIAL = {
    "pidnet_s": {"name": "pidnet", "variant": "s"},
    "pidnet_m": {"name": "pidnet", "variant": "m"},
    "pidnet_l": {"name": "pidnet", "variant": "l"},
    "ddrnet_23_slim": {"name": "ddrnet", "variant": "23-slim"},
    "ddrnet_23": {"name": "ddrnet", "variant": "23"},
}
TINY = {
    "pidnet_s": dict(name="pidnet", variant="s", num_classes=5, planes=2, ppm_planes=4, head_planes=4),
    "pidnet_l": dict(name="pidnet", variant="l", num_classes=5, planes=2, ppm_planes=4, head_planes=4),
    "ddrnet_23_slim": dict(name="ddrnet", variant="23-slim", num_classes=5, planes=2, spp_planes=4, head_planes=4),
}


def reference(name: str) -> tuple[list[str], int, int]:
    """The official (name, shape) lines and the parameter counts with and without the aux heads."""
    lines = (REFERENCE / f"{name}_state_dict.txt").read_text().splitlines()
    counts = re.search(r"parameters: (\d+) with .* (\d+) at inference", lines[1])
    return [line for line in lines if not line.startswith("#")], int(counts.group(1)), int(counts.group(2))


@pytest.mark.parametrize("name", sorted(OFFICIAL))
def test_state_dict_names_shapes_and_parameter_counts_match_the_official_model(name):
    expected, with_aux, inference = reference(name)
    aux = "aux_heads" if name.startswith("pidnet") else "aux_head"
    with torch.device("meta"):  # shapes only: no memory, no initialisation
        model = build_network(OFFICIAL[name])
        lean = build_network({**OFFICIAL[name], aux: False})
    assert [f"{key} {list(value.shape)}" for key, value in model.state_dict().items()] == expected
    assert sum(p.numel() for p in model.parameters()) == with_aux
    print(f"{name}: {inference:,} parameters at inference, {with_aux:,} with the training heads")
    assert sum(p.numel() for p in lean.parameters()) == inference


@pytest.mark.parametrize("name", sorted(TINY))
def test_outputs_match_the_official_code(name):
    """A tiny official network's state loads by name and gives the official outputs."""
    data = load_file(str(REFERENCE / f"{name}_tiny_outputs.safetensors"))
    architecture = dict(TINY[name])
    model = build_network(architecture)
    model.load_state_dict({key.removeprefix("state."): value for key, value in data.items()
                           if key.startswith("state.")})
    model.eval()
    image = data["input"]
    with torch.no_grad():
        logits = model(image)
        model.train()
        for module in model.modules():  # the heads of the training outputs, BN as in eval
            if isinstance(module, torch.nn.BatchNorm2d):
                module.eval()
        heads = model(image)
    official_main = data["output.main"]
    assert official_main.shape[-2:] == (image.shape[-2] // 8, image.shape[-1] // 8)
    for head, official in ((key.removeprefix("output."), value) for key, value in data.items()
                           if key.startswith("output.")):
        torch.testing.assert_close(heads[head], official, rtol=1e-4, atol=1e-4)
    resized = torch.nn.functional.interpolate(official_main, size=image.shape[-2:], mode="bilinear",
                                              align_corners=False)
    torch.testing.assert_close(logits, resized, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", sorted(TINY))
def test_batchnorm_folding_keeps_the_outputs(name):
    data = load_file(str(REFERENCE / f"{name}_tiny_outputs.safetensors"))
    model = build_network(TINY[name])
    model.load_state_dict({key.removeprefix("state."): value for key, value in data.items()
                           if key.startswith("state.")})
    model.eval()
    with torch.no_grad():
        before = model(data["input"])
        folded = model.fold_batchnorm()
        after = folded(data["input"])
    torch.testing.assert_close(after, before, rtol=1e-4, atol=1e-4)
    # Only pre-activation BNs remain, normalised (unit statistics); merged ones are gone.
    remaining = [m for m in folded.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert remaining and all(bool((m.running_mean == 0).all()) for m in remaining)
    # A folded state loads into a freshly built and folded network (the ONNX export relies on it).
    fresh = build_network(TINY[name]).fold_batchnorm()
    fresh.load_state_dict(folded.state_dict())


@pytest.mark.parametrize("size", [(64, 128), (48, 80)])
def test_output_size_and_stride(size):
    for model in (pidnet(planes=2, ppm_planes=4, head_planes=4), ddrnet(planes=2, spp_planes=4, head_planes=4)):
        model.eval()
        with torch.no_grad():
            assert model(torch.zeros(1, 3, *size)).shape == (1, 19, *size)
        model.train()
        main = model(torch.zeros(2, 3, *size))["main"]
        assert main.shape == (2, 19, size[0] // 8, size[1] // 8)


def test_input_sizes_not_divisible_by_8_are_refused():
    for model in (pidnet(planes=2, ppm_planes=4, head_planes=4), ddrnet(planes=2, spp_planes=4, head_planes=4)):
        with pytest.raises(ValueError, match="divisible by 8, got 50x75"):
            model.eval()(torch.zeros(1, 3, 50, 75))


def test_architecture_round_trips_and_bad_variants_are_refused():
    model = pidnet(variant="m", planes=2, ppm_planes=4, head_planes=4, aux_heads=False)
    rebuilt = build_network(architecture_of(model))
    assert architecture_of(rebuilt) == architecture_of(model) == {
        "name": "pidnet", "variant": "m", "num_classes": 19, "planes": 2, "ppm_planes": 4, "head_planes": 4,
        "aux_heads": False}
    with pytest.raises(ValueError, match="variant must be one of s, m, l"):
        pidnet(variant="xl")
    with pytest.raises(ValueError, match="variant must be one of 23-slim, 23"):
        ddrnet(variant="39")
    with pytest.raises(ValueError, match="unknown architecture 'segformer'"):
        build_network({"name": "segformer"})
