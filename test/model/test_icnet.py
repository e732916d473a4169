"""ICNet against the official deploy network: parameters, shapes, variants, BN folding."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from prototxt import layers

from icnet_ros.model import BRANCHES, icnet
from icnet_ros.model.caffe_ops import pyramid_window, shrink_size, zoom_size
from icnet_ros.model.conv_bn import ConvBN

OFFICIAL_SIZE = (1025, 2049)
# Shapes (C, H, W) of key official layers at 1025x2049, kept here as well as read from the prototxt.
KEY_SHAPES = {
    "data_sub2": (3, 513, 1025),
    "conv1_1_3x3_s2": (32, 257, 513),
    "pool1_3x3_s2": (64, 129, 257),
    "conv3_1": (256, 65, 129),
    "conv3_1_sub4": (256, 33, 65),
    "conv5_3": (1024, 33, 65),
    "conv5_4_k1": (256, 33, 65),
    "conv5_4_interp": (256, 65, 129),
    "sub24_sum": (128, 65, 129),
    "conv3_sub1": (64, 129, 257),
    "sub12_sum": (128, 129, 257),
    "sub12_sum_interp": (128, 257, 513),
    "conv6_cls": (19, 257, 513),
    "conv6_interp": (19, 1025, 2049),
}


def _official_shapes(prototxt: Path) -> dict[str, tuple[int, int, int]]:
    """Every top's (C, H, W) at 1025x2049, by Caffe's rules, independent of the model code."""
    shapes = {"data": (3, *OFFICIAL_SIZE)}
    for layer in layers(prototxt):
        kind, bottom, top = layer["type"], layer["bottom"], layer["top"][0]
        c, h, w = shapes[bottom[0]]
        if kind == "Convolution":
            p = layer["convolution_param"]
            k, s, pad, d = p["kernel_size"], p.get("stride", 1), p.get("pad", 0), p.get("dilation", 1)
            size = [(x + 2 * pad - d * (k - 1) - 1) // s + 1 for x in (h, w)]
            shapes[top] = (p["num_output"], *size)
        elif kind == "Pooling":
            p = layer["pooling_param"]
            kh, kw = p.get("kernel_h", p.get("kernel_size")), p.get("kernel_w", p.get("kernel_size"))
            sh, sw = p.get("stride_h", p.get("stride")), p.get("stride_w", p.get("stride"))
            pad = p.get("pad", 0)
            out = []
            for x, k, s in ((h, kh, sh), (w, kw, sw)):
                n = math.ceil((x + 2 * pad - k) / s) + 1
                if pad and (n - 1) * s >= x + pad:
                    n -= 1
                out.append(n)
            shapes[top] = (c, *out)
        elif kind == "Interp":
            p = layer["interp_param"]
            if "shrink_factor" in p:
                f = p["shrink_factor"]
                shapes[top] = (c, (h - 1) // f + 1, (w - 1) // f + 1)
            elif "zoom_factor" in p:
                z = p["zoom_factor"]
                shapes[top] = (c, h + (h - 1) * (z - 1), w + (w - 1) * (z - 1))
            else:
                shapes[top] = (c, p["height"], p["width"])
        else:  # Scale, BN, ReLU, Eltwise keep the shape of their first input
            shapes[top] = (c, h, w)
    return shapes


def _captured_shapes(model: torch.nn.Module, size: tuple[int, int]) -> dict[str, tuple[int, ...]]:
    """Output shape of every official layer the model holds, plus the maps between them."""
    shapes: dict[str, tuple[int, ...]] = {}
    # Inputs of these layers are the outputs of unparametered official layers.
    inputs_of = {"conv1_1_3x3_s2": "data_sub2", "conv2_1_1x1_reduce": "pool1_3x3_s2",
                 "conv3_2_1x1_reduce": "conv3_1_sub4", "conv5_4_k1": "conv5_3_sum",
                 "conv_sub4": "conv5_4_interp", "conv3_1_sub2_proj": "conv3_1",
                 "conv_sub2": "sub24_sum_interp", "conv6_cls": "sub12_sum_interp"}
    hooks = []
    for name, module in model.named_children():
        if isinstance(module, (ConvBN, torch.nn.Conv2d)):
            hooks.append(module.register_forward_hook(
                lambda m, i, o, name=name: shapes.__setitem__(name, tuple(o.shape[1:]))))
        if name in inputs_of:
            hooks.append(module.register_forward_pre_hook(
                lambda m, i, name=inputs_of[name]: shapes.__setitem__(name, tuple(i[0].shape[1:]))))
    with torch.inference_mode():
        shapes["conv6_interp"] = tuple(model(torch.randn(1, 3, *size))[0].shape)
    for hook in hooks:
        hook.remove()
    return shapes


@pytest.fixture(scope="module")
def official_model_shapes() -> dict[str, tuple[int, ...]]:
    torch.manual_seed(0)
    return _captured_shapes(icnet().eval(), OFFICIAL_SIZE)


def test_released_parameter_counts() -> None:
    model = icnet()
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    statistics = sum(b.numel() for n, b in model.named_buffers() if n.endswith(("running_mean", "running_var")))
    assert trainable == 6_699_987
    assert statistics == 28_544
    assert sum(p.numel() for p in icnet(batch_norm=False).parameters()) == 6_685_715


def test_key_shapes_at_official_size(official_model_shapes) -> None:
    for name, shape in KEY_SHAPES.items():
        if name in official_model_shapes:
            assert official_model_shapes[name] == shape, name
    assert {"conv1_1_3x3_s2", "conv5_3_sum", "conv6_interp", "sub24_sum_interp"} <= set(official_model_shapes)


def test_every_shape_matches_the_official_prototxt(official_model_shapes, reference_dir) -> None:
    for prototxt in ("icnet_cityscapes_bnnomerge.prototxt", "icnet_cityscapes.prototxt"):
        official = _official_shapes(reference_dir / prototxt)
        for name, shape in KEY_SHAPES.items():
            assert official[name] == shape, (prototxt, name)
        checked = 0
        for name, shape in official_model_shapes.items():
            assert official[name] == shape, (prototxt, name, shape, official[name])
            checked += 1
        assert checked == 73  # 64 convolutions, 8 maps between them, the logits


def test_module_names_are_the_official_layer_names(reference_dir) -> None:
    names = {layer["name"] for layer in layers(reference_dir / "icnet_cityscapes_bnnomerge.prototxt")}
    model = icnet()
    convs = {n for n, m in model.named_children() if isinstance(m, (ConvBN, torch.nn.Conv2d))}
    official_convs = {layer["name"] for layer in layers(reference_dir / "icnet_cityscapes_bnnomerge.prototxt")
                      if layer["type"] == "Convolution"}
    assert convs == official_convs
    bns = {f"{n}/bn" for n, m in model.named_children() if isinstance(m, ConvBN) and m.bn is not None}
    assert bns == {n for n in names if n.endswith("/bn")}


def test_pyramid_rule_reproduces_the_official_kernels(reference_dir) -> None:
    pools = {layer["name"]: layer["pooling_param"] for layer in layers(reference_dir / "icnet_cityscapes.prototxt")
             if layer["type"] == "Pooling" and layer["name"].startswith("conv5_3_pool")}
    assert len(pools) == 4
    for name, p in pools.items():
        bins = int(name.removeprefix("conv5_3_pool"))
        assert pyramid_window(33, bins) == (p["kernel_h"], p["stride_h"])
        assert pyramid_window(65, bins) == (p["kernel_w"], p["stride_w"])


def test_pyramid_rule_official_values_kept_in_test() -> None:
    expected = {1: ((33, 33), (65, 65)), 2: ((17, 16), (33, 32)), 3: ((13, 10), (25, 20)), 6: ((8, 5), (15, 10))}
    for bins, (rows, cols) in expected.items():
        assert pyramid_window(33, bins) == rows and pyramid_window(65, bins) == cols


def test_caffe_size_rules() -> None:
    assert shrink_size(1025, 2) == 513 and shrink_size(65, 2) == 33 and shrink_size(1024, 2) == 512
    assert zoom_size(257, 4) == 1025 and zoom_size(33, 2) == 65


def test_interp_matches_caffe_bilinear() -> None:
    """align_corners=True bilinear, computed here pixel by pixel as Caffe's Interp does."""
    from icnet_ros.model.caffe_ops import interp

    torch.manual_seed(1)
    x = torch.randn(1, 2, 5, 7, dtype=torch.float64)
    out = interp(x, (9, 13))
    h1, w1, h2, w2 = 5, 7, 9, 13
    rh, rw = (h1 - 1) / (h2 - 1), (w1 - 1) / (w2 - 1)
    for i in range(h2):
        for j in range(w2):
            y, xx = rh * i, rw * j
            y0, x0 = int(y), int(xx)
            y1, x1 = min(y0 + 1, h1 - 1), min(x0 + 1, w1 - 1)
            ly, lx = y - y0, xx - x0
            value = ((1 - ly) * ((1 - lx) * x[0, :, y0, x0] + lx * x[0, :, y0, x1])
                     + ly * ((1 - lx) * x[0, :, y1, x0] + lx * x[0, :, y1, x1]))
            torch.testing.assert_close(out[0, :, i, j], value)


@pytest.mark.parametrize("branches", BRANCHES)
def test_branch_variants_run_and_are_finite(branches: str) -> None:
    torch.manual_seed(0)
    model = icnet(width=0.25, branches=branches, aux_classifiers=True)
    data = torch.randn(2, 3, 129, 257)
    outputs = model.train()(data)
    present = BRANCHES[: BRANCHES.index(branches) + 1]
    assert list(outputs) == list(present)
    sizes = {"sub4": (9, 17), "sub24": (17, 33), "sub124": (33, 65)}
    for name, logits in outputs.items():
        assert logits.shape == (2, 19, *sizes[name]), name
        assert torch.isfinite(logits).all()
    sum(o.mean() for o in outputs.values()).backward()
    assert all(p.grad is not None for p in model.parameters())
    with torch.inference_mode():
        logits = model.eval()(data)
    assert logits.shape == (2, 19, 129, 257) and torch.isfinite(logits).all()


def test_without_aux_classifiers_training_returns_the_final_output() -> None:
    model = icnet(width=0.125).train()
    assert model.conv6_sub4 is None and model.conv6_sub2 is None
    assert list(model(torch.randn(2, 3, 65, 129))) == ["sub124"]


@pytest.mark.parametrize("size", [(64, 64), (100, 200), (97, 131), (480, 640), (33, 33)])
def test_any_input_size(size: tuple[int, int]) -> None:
    model = icnet(width=0.125).eval()
    with torch.inference_mode():
        logits = model(torch.randn(1, 3, *size))
    assert logits.shape == (1, 19, *size) and torch.isfinite(logits).all()


def test_batchnorm_folding_gives_the_same_outputs() -> None:
    torch.manual_seed(0)
    model = icnet(width=0.25).double().eval()  # float64, so any difference is the folding's
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.2, 0.2)
                module.running_mean.uniform_(-0.2, 0.2)
                module.running_var.uniform_(0.5, 2.0)
    data = torch.randn(1, 3, 97, 161, dtype=torch.float64)
    with torch.inference_mode():
        before = model(data)
        model.fold_batchnorm()
        after = model(data)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    torch.testing.assert_close(after, before, rtol=1e-9, atol=1e-9)
    # The folded network has exactly the parameters of the BN-merged form.
    merged = icnet(width=0.25, batch_norm=False)
    assert {k: v.shape for k, v in model.state_dict().items()} == {k: v.shape for k, v in merged.state_dict().items()}


def test_widths_and_pruned_channels() -> None:
    full = icnet(width=1.0)
    assert full.layer_channels()["conv5_3_1x1_increase"] == 2048
    assert full.layer_channels()["conv1_sub1"] == 64
    pruned_channels = {"conv4_2_1x1_reduce": 50, "conv4_2_3x3": 70, "conv5_4_k1": 100}
    pruned = icnet(channels=pruned_channels)
    for name, count in pruned_channels.items():
        assert pruned.layer_channels()[name] == count
    assert pruned(torch.randn(1, 3, 65, 129)) is not None
    with pytest.raises(ValueError, match="equal channels"):
        icnet(channels={"conv4_3_1x1_increase": 300})
    with pytest.raises(ValueError, match="equal channels"):
        icnet(channels={"conv_sub4": 64})
    with pytest.raises(ValueError, match="unknown layer"):
        icnet(channels={"conv9_9": 3})
    with pytest.raises(ValueError, match="branches"):
        icnet(branches="sub8")
