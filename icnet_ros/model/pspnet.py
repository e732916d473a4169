"""The paper's baseline: PSPNet50 compressed by half (ICNet paper, Table 3).

"Structure-optimized PSPNet50 with compress operation by half": the dilated ResNet50
trunk of ICNet's 1/4 branch (same layers, names and channel widths: conv1_1..conv5_3 at
width 0.5), run on the full-resolution input with output stride 8 (conv3 downsamples,
conv4 and conv5 are dilated by 2 and 4 on the 1/8 map), the same summed pyramid pooling
and 1x1 reduction ``conv5_4_k1`` as ICNet, then a 1x1 classifier ``conv6`` and a
bilinear resize of the logits to the input size.

Layer names are ICNet's, so the trunk of an ICNet weight file loads by name. At
1025x2049 the 1/8 map is 129x257 (33 times the pixels of ICNet's 33x65 1/4-branch map).
"""

from __future__ import annotations

import torch
from torch import nn

from icnet_ros.model.caffe_ops import interp, pyramid_pool
from icnet_ros.model.conv_bn import ConvBN
from icnet_ros.model.icnet import PYRAMID_BINS, RELEASED_WIDTH, STAGES, scaled_channels


class PSPNet(nn.Module):
    """PSPNet50 (dilated, output stride 8) with summed pyramid pooling; eval returns logits.

    ``forward`` returns logits at the input size in both modes (the baseline has no
    cascade outputs).
    """

    def __init__(self, num_classes: int = 19, width: float = RELEASED_WIDTH) -> None:
        super().__init__()
        if num_classes < 1:
            raise ValueError(f"num_classes must be positive, got {num_classes}")
        ch = scaled_channels(width)
        self.config = dict(num_classes=num_classes, width=width)

        def conv(name: str, in_ch: int, kernel: int, stride: int = 1, dilation: int = 1,
                 relu: bool = True) -> int:
            padding = dilation * (kernel // 2)
            setattr(self, name, ConvBN(in_ch, ch[name], kernel, stride, padding, dilation, relu=relu))
            return ch[name]

        c = conv("conv1_1_3x3_s2", 3, 3, stride=2)
        c = conv("conv1_2_3x3", c, 3)
        c = conv("conv1_3_3x3", c, 3)
        self.pool1_3x3_s2 = nn.MaxPool2d(3, stride=2, padding=1, ceil_mode=True)
        self.blocks: list[tuple[str, bool]] = []
        for stage, blocks, _, _, stride, dilation in STAGES:
            for block in range(1, blocks + 1):
                name = f"conv{stage}_{block}"
                block_stride = stride if block == 1 else 1
                mid = conv(f"{name}_1x1_reduce", c, 1, stride=block_stride)
                mid = conv(f"{name}_3x3", mid, 3, dilation=dilation)
                out = conv(f"{name}_1x1_increase", mid, 1, relu=False)
                if block == 1:
                    conv(f"{name}_1x1_proj", c, 1, stride=block_stride, relu=False)
                self.blocks.append((name, block == 1))
                c = out
        c = conv("conv5_4_k1", c, 1)
        self.conv6 = nn.Conv2d(c, num_classes, 1)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
                if module.bias is not None:
                    nn.init.zeros_(module.bias)

    def forward(self, data: torch.Tensor) -> torch.Tensor:
        x = self.conv1_3_3x3(self.conv1_2_3x3(self.conv1_1_3x3_s2(data)))
        x = self.pool1_3x3_s2(x)
        for name, has_proj in self.blocks:
            residual = getattr(self, f"{name}_1x1_proj")(x) if has_proj else x
            y = getattr(self, f"{name}_1x1_reduce")(x)
            y = getattr(self, f"{name}_3x3")(y)
            x = torch.relu(residual + getattr(self, f"{name}_1x1_increase")(y))
        pooled = x
        for bins in PYRAMID_BINS:
            pooled = pooled + interp(pyramid_pool(x, bins), tuple(x.shape[-2:]))
        logits = self.conv6(self.conv5_4_k1(pooled))
        return interp(logits, tuple(data.shape[-2:]))

    @torch.no_grad()
    def fold_batchnorm(self) -> "PSPNet":
        """Merge every BN into its convolution (inference only); in place."""
        for module in self.modules():
            if isinstance(module, ConvBN):
                module.fold_batchnorm()
        return self


def pspnet50_baseline(*, num_classes: int = 19, width: float = RELEASED_WIDTH) -> PSPNet:
    """Build the paper's PSPNet50 baseline; width 0.5 is "compressed by half"."""
    return PSPNet(num_classes, width)
