"""Building blocks that DDRNet (Hong et al., arXiv 2101.06085) and PIDNet (Xu et al.,
arXiv 2206.02066) share: residual blocks, the segmentation head, the pyramid pooling modules.

Attribute names and ``nn.Sequential`` positions follow the official model definitions
(github.com/ydhongHIT/DDRNet, github.com/XuJiacong/PIDNet ``models/model_utils.py``): their
``state_dict`` keys are the specification, so official checkpoints load by name. All resizes
are bilinear with ``align_corners=False``, as the official weights were trained.

Each block names its (convolution, batch norm) pairs in ``CONV_BN_PAIRS`` for
:func:`icnet_ros.model.batchnorm_folding.fold_batchnorm`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

OUTPUT_STRIDE = 8


def check_input_size(height: int, width: int, network: str) -> None:
    """The 1/8 branches of both networks meet only where the input is a multiple of 8 (as in the
    official code, which fails otherwise): refuse other sizes with a clear message."""
    if height % OUTPUT_STRIDE or width % OUTPUT_STRIDE:
        raise ValueError(f"{network} needs an input height and width divisible by {OUTPUT_STRIDE}, "
                         f"got {height}x{width}")


def resize(x: torch.Tensor, size: tuple[int, int] | torch.Size) -> torch.Tensor:
    """Bilinear resize, ``align_corners=False`` (the official models' rule)."""
    return F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=False)


def conv_bn(in_channels: int, out_channels: int, kernel_size: int = 1, stride: int = 1,
            relu: bool = False) -> nn.Sequential:
    """``Sequential(Conv2d (no bias, same padding), BatchNorm2d[, ReLU])``: keys ``0.*``, ``1.*``."""
    layers: list[nn.Module] = [
        nn.Conv2d(in_channels, out_channels, kernel_size, stride, kernel_size // 2, bias=False),
        nn.BatchNorm2d(out_channels)]
    if relu:
        layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def bn_relu_conv(in_channels: int, out_channels: int, kernel_size: int = 1, groups: int = 1,
                 pool: nn.Module | None = None) -> nn.Sequential:
    """Pre-activation ``Sequential([pool,] BatchNorm2d, ReLU, Conv2d)`` (no bias, same padding)."""
    layers = [] if pool is None else [pool]
    layers += [nn.BatchNorm2d(in_channels), nn.ReLU(),
               nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, groups=groups,
                         bias=False)]
    return nn.Sequential(*layers)


def stem(planes: int) -> nn.Sequential:
    """``conv1``: two stride-2 3x3 convolutions (with bias) + BN + ReLU: the 1/4 map."""
    return nn.Sequential(
        nn.Conv2d(3, planes, 3, 2, 1), nn.BatchNorm2d(planes), nn.ReLU(),
        nn.Conv2d(planes, planes, 3, 2, 1), nn.BatchNorm2d(planes), nn.ReLU())


class BasicBlock(nn.Module):
    """ResNet basic block: 3x3 conv-BN-ReLU, 3x3 conv-BN, + shortcut[, ReLU]."""

    expansion = 1
    CONV_BN_PAIRS = (("conv1", "bn1"), ("conv2", "bn2"))

    def __init__(self, in_channels: int, planes: int, stride: int = 1, downsample: nn.Module | None = None,
                 no_relu: bool = False) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample
        self.no_relu = no_relu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
        out = out + (x if self.downsample is None else self.downsample(x))
        return out if self.no_relu else torch.relu(out)


class Bottleneck(nn.Module):
    """Bottleneck with expansion 2: 1x1, 3x3 (strided), 1x1 (each BN) + shortcut[, ReLU]."""

    expansion = 2
    CONV_BN_PAIRS = (("conv1", "bn1"), ("conv2", "bn2"), ("conv3", "bn3"))

    def __init__(self, in_channels: int, planes: int, stride: int = 1, downsample: nn.Module | None = None,
                 no_relu: bool = True) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * self.expansion, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.downsample = downsample
        self.no_relu = no_relu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = torch.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        out = out + (x if self.downsample is None else self.downsample(x))
        return out if self.no_relu else torch.relu(out)


def residual_stage(block: type[BasicBlock] | type[Bottleneck], in_channels: int, planes: int, blocks: int,
                   stride: int = 1) -> nn.Sequential:
    """``blocks`` residual blocks (the first strided, with a 1x1 conv-BN ``downsample`` where the
    shape changes); the last one ends without ReLU (the official ``_make_layer``)."""
    out_channels = planes * block.expansion
    downsample = (conv_bn(in_channels, out_channels, 1, stride)
                  if stride != 1 or in_channels != out_channels else None)
    layers = [block(in_channels, planes, stride, downsample)]
    layers += [block(out_channels, planes, 1, no_relu=index == blocks - 1) for index in range(1, blocks)]
    return nn.Sequential(*layers)


def single_block(block: type[BasicBlock] | type[Bottleneck], in_channels: int, planes: int) -> nn.Module:
    """One block without final ReLU (the official ``_make_single_layer``)."""
    out_channels = planes * block.expansion
    downsample = conv_bn(in_channels, out_channels, 1) if in_channels != out_channels else None
    return block(in_channels, planes, 1, downsample, no_relu=True)


class SegmentHead(nn.Module):
    """BN-ReLU-3x3 conv-BN-ReLU-1x1 conv (with bias): the official ``segmenthead``."""

    CONV_BN_PAIRS = (("conv1", "bn2"),)

    def __init__(self, in_channels: int, mid_channels: int, out_channels: int) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.conv1 = nn.Conv2d(in_channels, mid_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(mid_channels)
        self.conv2 = nn.Conv2d(mid_channels, out_channels, 1, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(torch.relu(self.bn1(x)))
        return self.conv2(torch.relu(self.bn2(x)))


def _pooled_scales(in_channels: int, branch_channels: int) -> dict[str, nn.Sequential]:
    """The four pooled branches (windows 5, 9, 17 with strides 2, 4, 8, then global) and ``scale0``."""
    scales = {f"scale{index}": bn_relu_conv(in_channels, branch_channels, 1,
                                            pool=nn.AvgPool2d(2 * stride + 1, stride, stride))
              for index, stride in ((1, 2), (2, 4), (3, 8))}
    scales["scale4"] = bn_relu_conv(in_channels, branch_channels, 1, pool=nn.AdaptiveAvgPool2d((1, 1)))
    scales["scale0"] = bn_relu_conv(in_channels, branch_channels, 1)
    return scales


class DAPPM(nn.Module):
    """Deep Aggregation Pyramid Pooling Module (DDRNet; PIDNet-L): each pooled scale is added
    to the previous one's result and refined by a 3x3 ``process`` convolution, in sequence."""

    def __init__(self, in_channels: int, branch_channels: int, out_channels: int) -> None:
        super().__init__()
        for name, module in _pooled_scales(in_channels, branch_channels).items():
            setattr(self, name, module)
        for index in range(1, 5):
            setattr(self, f"process{index}", bn_relu_conv(branch_channels, branch_channels, 3))
        self.compression = bn_relu_conv(branch_channels * 5, out_channels, 1)
        self.shortcut = bn_relu_conv(in_channels, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        outputs = [self.scale0(x)]
        for index in range(1, 5):
            pooled = resize(getattr(self, f"scale{index}")(x), size)
            outputs.append(getattr(self, f"process{index}")(pooled + outputs[-1]))
        return self.compression(torch.cat(outputs, 1)) + self.shortcut(x)


class PAPPM(nn.Module):
    """Parallel Aggregation PPM (PIDNet-S/M): the pooled scales, each added to ``scale0``, are
    refined together by one grouped 3x3 convolution."""

    def __init__(self, in_channels: int, branch_channels: int, out_channels: int) -> None:
        super().__init__()
        for name, module in _pooled_scales(in_channels, branch_channels).items():
            setattr(self, name, module)
        self.scale_process = bn_relu_conv(branch_channels * 4, branch_channels * 4, 3, groups=4)
        self.compression = bn_relu_conv(branch_channels * 5, out_channels, 1)
        self.shortcut = bn_relu_conv(in_channels, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        base = self.scale0(x)
        scales = [resize(getattr(self, f"scale{index}")(x), size) + base for index in range(1, 5)]
        refined = self.scale_process(torch.cat(scales, 1))
        return self.compression(torch.cat([base, refined], 1)) + self.shortcut(x)
