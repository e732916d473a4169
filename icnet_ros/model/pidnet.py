"""PIDNet (Xu et al., "PIDNet: A Real-time Semantic Segmentation Network Inspired by PID
Controllers", CVPR 2023, arXiv 2206.02066), S, M and L.

Three branches: I (integral: a ResNet down to 1/64 and a pyramid pooling module), P
(proportional: a 1/8 detail branch that pulls context from I through the pixel-attention
fusion ``pag3``/``pag4``) and D (derivative: a 1/8 boundary branch). ``dfm`` (Bag, or the
light Bag of S and M) fuses the three, guided by the boundary features, and ``final_layer``
classifies at 1/8 of the input. The auxiliary heads ``seghead_p`` and ``seghead_d`` exist
(so that official checkpoints load by name) but serve training only: the forward pass in
eval mode runs the main head and resizes its logits to the input size (bilinear,
``align_corners=False``, as the official evaluation); in training mode it returns
``{"p", "main", "d"}`` logits at 1/8.

Module names and ``Sequential`` positions are those of the official ``models/pidnet.py``:
its ``state_dict`` keys (less the training wrapper's ``model.`` prefix) are the
specification; ``test/model/reference/`` holds them.
"""

from __future__ import annotations

import torch
from torch import nn

from icnet_ros.model.batchnorm_folding import fold_batchnorm
from icnet_ros.model.dual_branch_blocks import (
    DAPPM,
    OUTPUT_STRIDE,
    PAPPM,
    BasicBlock,
    Bottleneck,
    SegmentHead,
    bn_relu_conv,
    check_input_size,
    conv_bn,
    residual_stage,
    resize,
    single_block,
    stem,
)

# variant: (m, n, planes, ppm_planes, head_planes) of the official get_seg_model.
VARIANTS: dict[str, tuple[int, int, int, int, int]] = {
    "s": (2, 3, 32, 96, 128), "m": (2, 3, 64, 96, 128), "l": (3, 4, 64, 112, 256)}


class PagFM(nn.Module):
    """Pixel-attention-guided fusion: the P features ``x`` take the upsampled I features ``y``
    where their 1x1 embeddings agree (sigmoid of the channel-wise dot product)."""

    def __init__(self, in_channels: int, mid_channels: int) -> None:
        super().__init__()
        self.f_x = conv_bn(in_channels, mid_channels)
        self.f_y = conv_bn(in_channels, mid_channels)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        y_q = resize(self.f_y(y), size)
        similarity = torch.sigmoid(torch.sum(self.f_x(x) * y_q, dim=1, keepdim=True))
        return (1 - similarity) * x + similarity * resize(y, size)


class LightBag(nn.Module):
    """Boundary-attention-guided fusion of S and M: two 1x1 conv-BN, summed."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv_p = conv_bn(in_channels, out_channels)
        self.conv_i = conv_bn(in_channels, out_channels)

    def forward(self, p: torch.Tensor, i: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
        edge = torch.sigmoid(d)
        return self.conv_p((1 - edge) * i + p) + self.conv_i(i + edge * p)


class Bag(nn.Module):
    """Boundary-attention-guided fusion of L: BN-ReLU-3x3 conv of the boundary-weighted mix."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = bn_relu_conv(in_channels, out_channels, 3)

    def forward(self, p: torch.Tensor, i: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
        edge = torch.sigmoid(d)
        return self.conv(edge * p + (1 - edge) * i)


class PIDNet(nn.Module):
    """PIDNet of one variant (``s``, ``m``, ``l``); widths may be overridden (tests, small models)."""

    def __init__(self, variant: str = "s", num_classes: int = 19, planes: int | None = None,
                 ppm_planes: int | None = None, head_planes: int | None = None, aux_heads: bool = True) -> None:
        super().__init__()
        if variant not in VARIANTS:
            raise ValueError(f"PIDNet variant must be one of {', '.join(VARIANTS)}, got {variant!r}")
        if num_classes < 1:
            raise ValueError(f"num_classes must be positive, got {num_classes}")
        m, n, default_planes, default_ppm, default_head = VARIANTS[variant]
        planes, ppm_planes = planes or default_planes, ppm_planes or default_ppm
        head_planes = head_planes or default_head
        self.config = dict(variant=variant, num_classes=num_classes, planes=planes, ppm_planes=ppm_planes,
                           head_planes=head_planes, aux_heads=aux_heads)
        # I branch.
        self.conv1 = stem(planes)
        self.layer1 = residual_stage(BasicBlock, planes, planes, m)
        self.layer2 = residual_stage(BasicBlock, planes, planes * 2, m, 2)
        self.layer3 = residual_stage(BasicBlock, planes * 2, planes * 4, n, 2)
        self.layer4 = residual_stage(BasicBlock, planes * 4, planes * 8, n, 2)
        self.layer5 = residual_stage(Bottleneck, planes * 8, planes * 8, 2, 2)
        # P branch.
        self.compression3 = conv_bn(planes * 4, planes * 2)
        self.compression4 = conv_bn(planes * 8, planes * 2)
        self.pag3 = PagFM(planes * 2, planes)
        self.pag4 = PagFM(planes * 2, planes)
        self.layer3_ = residual_stage(BasicBlock, planes * 2, planes * 2, m)
        self.layer4_ = residual_stage(BasicBlock, planes * 2, planes * 2, m)
        self.layer5_ = residual_stage(Bottleneck, planes * 2, planes * 2, 1)
        # D branch.
        if m == 2:
            self.layer3_d = single_block(BasicBlock, planes * 2, planes)
            self.layer4_d = residual_stage(Bottleneck, planes, planes, 1)
            self.diff3 = conv_bn(planes * 4, planes, 3)
            self.diff4 = conv_bn(planes * 8, planes * 2, 3)
            self.spp: nn.Module = PAPPM(planes * 16, ppm_planes, planes * 4)
            self.dfm: nn.Module = LightBag(planes * 4, planes * 4)
        else:
            self.layer3_d = single_block(BasicBlock, planes * 2, planes * 2)
            self.layer4_d = single_block(BasicBlock, planes * 2, planes * 2)
            self.diff3 = conv_bn(planes * 4, planes * 2, 3)
            self.diff4 = conv_bn(planes * 8, planes * 2, 3)
            self.spp = DAPPM(planes * 16, ppm_planes, planes * 4)
            self.dfm = Bag(planes * 4, planes * 4)
        self.layer5_d = residual_stage(Bottleneck, planes * 2, planes * 2, 1)
        # Heads: P and D serve training only.
        self.seghead_p = SegmentHead(planes * 2, head_planes, num_classes) if aux_heads else None
        self.seghead_d = SegmentHead(planes * 2, planes, 1) if aux_heads else None
        self.final_layer = SegmentHead(planes * 4, head_planes, num_classes)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, image: torch.Tensor) -> torch.Tensor | dict[str, torch.Tensor]:
        height, width = image.shape[-2:]
        check_input_size(height, width, "PIDNet")
        size = (height // OUTPUT_STRIDE, width // OUTPUT_STRIDE)
        x = self.layer1(self.conv1(image))
        x = torch.relu(self.layer2(torch.relu(x)))
        x_p = self.layer3_(x)
        x_d = self.layer3_d(x)
        x = torch.relu(self.layer3(x))
        x_p = self.pag3(x_p, self.compression3(x))
        x_d = x_d + resize(self.diff3(x), size)
        # The auxiliary heads read the P and D features after the ReLU that follows them (the
        # official in-place ReLU changes the saved tensors too).
        x = torch.relu(self.layer4(x))
        p_features = x_p = torch.relu(x_p)
        x_p = self.layer4_(x_p)
        x_d = self.layer4_d(torch.relu(x_d))
        x_p = self.pag4(x_p, self.compression4(x))
        x_d = x_d + resize(self.diff4(x), size)
        d_features = x_d = torch.relu(x_d)
        x_p = self.layer5_(torch.relu(x_p))
        x_d = self.layer5_d(x_d)
        x = resize(self.spp(self.layer5(x)), size)
        logits = self.final_layer(self.dfm(x_p, x, x_d))
        if self.training:
            outputs = {"main": logits}
            if self.seghead_p is not None:
                outputs.update(p=self.seghead_p(p_features), d=self.seghead_d(d_features))
            return outputs
        return resize(logits, (height, width))

    def fold_batchnorm(self) -> PIDNet:
        """Merge BN into the convolutions (inference only); in place."""
        fold_batchnorm(self)
        return self


def pidnet(*, variant: str = "s", num_classes: int = 19, planes: int | None = None, ppm_planes: int | None = None,
           head_planes: int | None = None, aux_heads: bool = True) -> PIDNet:
    """Build PIDNet. Defaults give the official Cityscapes PIDNet-S (with its training heads).

    Args:
        variant: ``s``, ``m`` or ``l``.
        num_classes: classifier outputs (19 Cityscapes trainIds).
        planes, ppm_planes, head_planes: widths (None: the variant's official ones).
        aux_heads: build ``seghead_p``/``seghead_d`` (official checkpoints hold them).
    """
    return PIDNet(variant, num_classes, planes, ppm_planes, head_planes, aux_heads)
