"""DDRNet (Hong et al., "Deep Dual-resolution Networks for Real-time and Accurate Semantic
Segmentation of Road Scenes", arXiv 2101.06085), 23-slim and 23.

Two branches after a shared 1/8 trunk: a low-resolution one (ResNet down to 1/64, then the
DAPPM pyramid pooling) and a high-resolution one kept at 1/8; they exchange features twice
(bilateral fusion: ``down3``/``down4`` into the low branch, ``compression3``/``compression4``
upsampled into the high one). ``final_layer`` classifies their sum at 1/8 of the input. The
auxiliary head ``seghead_extra`` exists (official checkpoints hold it) but serves training
only: in eval mode the forward pass runs the main head and resizes its logits to the input
size (bilinear, ``align_corners=False``); in training mode it returns ``{"main", "extra"}``
logits at 1/8.

Module names and ``Sequential`` positions are those of the official
``segmentation/DDRNet_23_slim.py`` and ``DDRNet_23.py`` (``DualResNet``); ``test/model/reference/``
holds their ``state_dict`` keys.
"""

from __future__ import annotations

import torch
from torch import nn

from icnet_ros.model.batchnorm_folding import fold_batchnorm
from icnet_ros.model.dual_branch_blocks import (
    DAPPM,
    OUTPUT_STRIDE,
    BasicBlock,
    Bottleneck,
    SegmentHead,
    check_input_size,
    conv_bn,
    residual_stage,
    resize,
    stem,
)

# variant: (planes, spp_planes, head_planes) of the official builders; both use [2, 2, 2, 2] blocks.
VARIANTS: dict[str, tuple[int, int, int]] = {"23-slim": (32, 128, 64), "23": (64, 128, 128)}
BLOCKS = 2


class DDRNet(nn.Module):
    """DDRNet of one variant (``23-slim``, ``23``); widths may be overridden (tests, small models)."""

    def __init__(self, variant: str = "23-slim", num_classes: int = 19, planes: int | None = None,
                 spp_planes: int | None = None, head_planes: int | None = None, aux_head: bool = True) -> None:
        super().__init__()
        if variant not in VARIANTS:
            raise ValueError(f"DDRNet variant must be one of {', '.join(VARIANTS)}, got {variant!r}")
        if num_classes < 1:
            raise ValueError(f"num_classes must be positive, got {num_classes}")
        default_planes, default_spp, default_head = VARIANTS[variant]
        planes, spp_planes, head_planes = planes or default_planes, spp_planes or default_spp, head_planes or default_head
        self.config = dict(variant=variant, num_classes=num_classes, planes=planes, spp_planes=spp_planes,
                           head_planes=head_planes, aux_head=aux_head)
        high = planes * 2
        self.conv1 = stem(planes)
        self.layer1 = residual_stage(BasicBlock, planes, planes, BLOCKS)
        self.layer2 = residual_stage(BasicBlock, planes, planes * 2, BLOCKS, 2)
        self.layer3 = residual_stage(BasicBlock, planes * 2, planes * 4, BLOCKS, 2)
        self.layer4 = residual_stage(BasicBlock, planes * 4, planes * 8, BLOCKS, 2)
        self.compression3 = conv_bn(planes * 4, high)
        self.compression4 = conv_bn(planes * 8, high)
        self.down3 = conv_bn(high, planes * 4, 3, 2)
        self.down4 = nn.Sequential(*conv_bn(high, planes * 4, 3, 2, relu=True), *conv_bn(planes * 4, planes * 8, 3, 2))
        self.layer3_ = residual_stage(BasicBlock, planes * 2, high, 2)
        self.layer4_ = residual_stage(BasicBlock, high, high, 2)
        self.layer5_ = residual_stage(Bottleneck, high, high, 1)
        self.layer5 = residual_stage(Bottleneck, planes * 8, planes * 8, 1, 2)
        self.spp = DAPPM(planes * 16, spp_planes, planes * 4)
        self.seghead_extra = SegmentHead(high, head_planes, num_classes) if aux_head else None
        self.final_layer = SegmentHead(planes * 4, head_planes, num_classes)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, image: torch.Tensor) -> torch.Tensor | dict[str, torch.Tensor]:
        height, width = image.shape[-2:]
        check_input_size(height, width, "DDRNet")
        size = (height // OUTPUT_STRIDE, width // OUTPUT_STRIDE)
        x1 = self.layer1(self.conv1(image))
        x2 = self.layer2(torch.relu(x1))
        x3 = self.layer3(torch.relu(x2))
        high = self.layer3_(torch.relu(x2))
        low = x3 + self.down3(torch.relu(high))
        high = high + resize(self.compression3(torch.relu(x3)), size)
        extra_features = high
        x4 = self.layer4(torch.relu(low))
        high = self.layer4_(torch.relu(high))
        low = x4 + self.down4(torch.relu(high))
        high = high + resize(self.compression4(torch.relu(x4)), size)
        high = self.layer5_(torch.relu(high))
        low = resize(self.spp(self.layer5(torch.relu(low))), size)
        logits = self.final_layer(low + high)
        if self.training:
            outputs = {"main": logits}
            if self.seghead_extra is not None:
                outputs["extra"] = self.seghead_extra(extra_features)
            return outputs
        return resize(logits, (height, width))

    def fold_batchnorm(self) -> DDRNet:
        """Merge BN into the convolutions (inference only); in place."""
        fold_batchnorm(self)
        return self


def ddrnet(*, variant: str = "23-slim", num_classes: int = 19, planes: int | None = None,
           spp_planes: int | None = None, head_planes: int | None = None, aux_head: bool = True) -> DDRNet:
    """Build DDRNet. Defaults give the official Cityscapes DDRNet-23-slim (with its training head).

    Args:
        variant: ``23-slim`` or ``23``.
        num_classes: classifier outputs (19 Cityscapes trainIds).
        planes, spp_planes, head_planes: widths (None: the variant's official ones).
        aux_head: build ``seghead_extra`` (official checkpoints hold it).
    """
    return DDRNet(variant, num_classes, planes, spp_planes, head_planes, aux_head)
