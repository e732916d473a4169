"""The paper's PSPNet50 baseline: sizes, output stride, parameter count, names."""

from __future__ import annotations

import pytest
import torch

from icnet_ros.model import icnet
from icnet_ros.model.caffe_ops import shrink_size
from icnet_ros.model.pspnet import pspnet50_baseline


def expected_parameters(width: float, num_classes: int) -> int:
    """Trainable parameters counted from the architecture (BN: scale and shift per channel)."""
    def ch(count: int) -> int:
        return max(1, round(count * width / 0.5))

    def conv_bn(cin: int, cout: int, kernel: int) -> int:
        return kernel * kernel * cin * cout + 2 * cout

    total = conv_bn(3, ch(32), 3) + conv_bn(ch(32), ch(32), 3) + conv_bn(ch(32), ch(64), 3)
    cin = ch(64)
    for blocks, mid, out in ((3, 32, 128), (4, 64, 256), (6, 128, 512), (3, 256, 1024)):
        total += conv_bn(cin, ch(out), 1)  # projection shortcut of the first block
        for _ in range(blocks):
            total += conv_bn(cin, ch(mid), 1) + conv_bn(ch(mid), ch(mid), 3) + conv_bn(ch(mid), ch(out), 1)
            cin = ch(out)
    return total + conv_bn(cin, ch(256), 1) + ch(256) * num_classes + num_classes


@pytest.mark.parametrize("width,num_classes", [(0.5, 19), (0.25, 7)])
def test_parameter_count(width, num_classes):
    model = pspnet50_baseline(width=width, num_classes=num_classes)
    count = sum(p.numel() for p in model.parameters())
    print(f"PSPNet50 baseline width {width}, {num_classes} classes: {count:,} parameters")
    assert count == expected_parameters(width, num_classes)
    if width == 0.5:
        assert count == 6_189_299


def test_forward_shapes_and_output_stride():
    torch.manual_seed(0)
    model = pspnet50_baseline().eval()
    maps = {}
    model.conv5_3_1x1_increase.register_forward_hook(lambda m, i, out: maps.setdefault("conv5_3", out))
    model.conv3_1_1x1_proj.register_forward_hook(lambda m, i, out: maps.setdefault("conv3_1", out))
    image = torch.randn(1, 3, 65, 129)
    with torch.no_grad():
        logits = model(image)
    assert logits.shape == (1, 19, 65, 129)
    assert torch.isfinite(logits).all()
    # Output stride 8 on the full-resolution input; conv4/conv5 keep the 1/8 map.
    eighth = (shrink_size(65, 8), shrink_size(129, 8))
    assert tuple(maps["conv3_1"].shape[-2:]) == eighth
    assert maps["conv5_3"].shape[-3:] == (1024, *eighth)
    assert model.conv4_1_3x3.conv.dilation == (2, 2)
    assert model.conv5_1_3x3.conv.dilation == (4, 4)
    model.train()
    assert model(torch.randn(2, 3, 65, 129)).shape == (2, 19, 65, 129)


def test_same_layers_as_icnet_sub4_branch():
    """The baseline is ICNet's 1/4 branch run at full resolution: ICNet weights load by name."""
    baseline = pspnet50_baseline().state_dict()
    sub4 = {k.replace("conv6_sub4", "conv6"): v for k, v in icnet(branches="sub4").state_dict().items()}
    assert {k: tuple(v.shape) for k, v in baseline.items()} == {k: tuple(v.shape) for k, v in sub4.items()}


def test_fold_batchnorm_keeps_outputs():
    torch.manual_seed(0)
    model = pspnet50_baseline(width=0.125).eval()
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.1, 0.1)
                module.running_var.uniform_(0.5, 1.5)
        image = torch.randn(1, 3, 65, 129)
        before = model(image)
        after = model.fold_batchnorm()(image)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    assert float((after - before).norm() / before.norm()) < 1e-5


def test_bad_num_classes():
    with pytest.raises(ValueError, match="num_classes"):
        pspnet50_baseline(num_classes=0)
