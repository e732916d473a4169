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
from icnet_ros.model.dilated_resnet import DilatedResNet
from icnet_ros.model.icnet import PYRAMID_BINS, RELEASED_WIDTH, scaled_channels


class PSPNet(DilatedResNet):
    """PSPNet50 (dilated, output stride 8) with summed pyramid pooling; eval returns logits.

    ``forward`` returns logits at the input size in both modes (the baseline has no
    cascade outputs).
    """

    def __init__(self, num_classes: int = 19, width: float = RELEASED_WIDTH) -> None:
        if num_classes < 1:
            raise ValueError(f"num_classes must be positive, got {num_classes}")
        super().__init__(scaled_channels(width), dict(num_classes=num_classes, width=width))
        c = self.add_conv("conv5_4_k1", self.add_trunk(), 1)
        self.conv6 = nn.Conv2d(c, num_classes, 1)
        self.init_weights()

    def forward(self, data: torch.Tensor) -> torch.Tensor:
        x = self.run_blocks(self.stem(data), "conv2_1", "conv5_3")
        pooled = x
        for bins in PYRAMID_BINS:
            pooled = pooled + interp(pyramid_pool(x, bins), tuple(x.shape[-2:]))
        logits = self.conv6(self.conv5_4_k1(pooled))
        return interp(logits, tuple(data.shape[-2:]))


def pspnet50_baseline(*, num_classes: int = 19, width: float = RELEASED_WIDTH) -> PSPNet:
    """Build the paper's PSPNet50 baseline; width 0.5 is "compressed by half"."""
    return PSPNet(num_classes, width)
