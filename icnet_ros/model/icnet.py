"""ICNet (Zhao et al., arXiv 1704.08545), a port of the official deploy network.

Module names are the official Caffe layer names: a ``Convolution`` layer ``X`` is the
module ``X`` (a :class:`ConvBN`), its ``X/bn`` is ``X.bn`` and the convolution itself
``X.conv``; the classifiers ``conv6_cls``, ``conv6_sub4``, ``conv6_sub2`` are plain
convolutions. So the official weights load by name.

Sizes follow Caffe exactly at the official 1025x2049 input (and any 2^k*n+1 size).
For other sizes the rule is: shrinks use Caffe's ``(size - 1) / 2 + 1``; each cascade
fusion resizes the coarse map to the size of the finer one (which is Caffe's zoom by 2
at the official sizes); the final logits are resized to the input size (Caffe's zoom by
4 at the official sizes). Pyramid pooling follows :func:`caffe_ops.pyramid_window`.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from icnet_ros.model.caffe_ops import interp, pyramid_pool, shrink_size, zoom_size
from icnet_ros.model.dilated_resnet import STAGES, DilatedResNet

BRANCHES = ("sub4", "sub24", "sub124")
PYRAMID_BINS = (1, 2, 3, 6)
RELEASED_WIDTH = 0.5


def _official_channels() -> dict[str, int]:
    """Output channels of every convolution of the released (width 0.5) network."""
    channels = {"conv1_1_3x3_s2": 32, "conv1_2_3x3": 32, "conv1_3_3x3": 64}
    for stage, blocks, mid, out, _, _ in STAGES:
        for block in range(1, blocks + 1):
            name = f"conv{stage}_{block}"
            channels[f"{name}_1x1_reduce"] = mid
            channels[f"{name}_3x3"] = mid
            channels[f"{name}_1x1_increase"] = out
            if block == 1:
                channels[f"{name}_1x1_proj"] = out
    channels.update(
        conv5_4_k1=256, conv_sub4=128, conv3_1_sub2_proj=128, conv_sub2=128,
        conv1_sub1=32, conv2_sub1=32, conv3_sub1=64, conv3_sub1_proj=128,
    )
    return channels


OFFICIAL_CHANNELS: dict[str, int] = _official_channels()


def scaled_channels(width: float, overrides: Mapping[str, int] | None = None) -> dict[str, int]:
    """Per-layer output channels at ``width`` (1.0 = PSPNet50), then ``overrides``."""
    if width <= 0:
        raise ValueError(f"width must be positive, got {width}")
    channels = {
        name: max(1, round(count * width / RELEASED_WIDTH)) for name, count in OFFICIAL_CHANNELS.items()
    }
    for name, count in (overrides or {}).items():
        if name not in channels:
            raise ValueError(f"unknown layer {name!r} in channels")
        if int(count) < 1:
            raise ValueError(f"layer {name!r} needs at least one channel, got {count}")
        channels[name] = int(count)
    return channels


def _check_consistent(channels: Mapping[str, int], branches: str) -> None:
    """Layers whose outputs are summed must have the same number of channels."""
    groups = [[f"conv{s}_{b}_1x1_increase" for b in range(1, n + 1)] + [f"conv{s}_1_1x1_proj"]
              for s, n, *_ in STAGES]
    if branches in ("sub24", "sub124"):
        groups.append(["conv_sub4", "conv3_1_sub2_proj"])
    if branches == "sub124":
        groups.append(["conv_sub2", "conv3_sub1_proj"])
    for group in groups:
        counts = {name: channels[name] for name in group}
        if len(set(counts.values())) > 1:
            raise ValueError(f"layers summed together need equal channels, got {counts}")


class ICNet(DilatedResNet):
    """ICNet with the official topology; see the module docstring for names and sizes.

    In training mode ``forward`` returns the cascade outputs as a dict (``sub4`` at 1/16,
    ``sub24`` at 1/8, ``sub124`` at 1/4 of the input, those the branches and auxiliary
    classifiers provide); in eval mode the final logits at the input size.
    """

    def __init__(
        self,
        num_classes: int = 19,
        width: float = RELEASED_WIDTH,
        branches: str = "sub124",
        aux_classifiers: bool = False,
        batch_norm: bool = True,
        channels: Mapping[str, int] | None = None,
    ) -> None:
        if branches not in BRANCHES:
            raise ValueError(f"branches must be one of {BRANCHES}, got {branches!r}")
        if num_classes < 1:
            raise ValueError(f"num_classes must be positive, got {num_classes}")
        ch = scaled_channels(width, channels)
        _check_consistent(ch, branches)
        super().__init__(ch, dict(num_classes=num_classes, width=width, branches=branches,
                                  aux_classifiers=aux_classifiers, batch_norm=batch_norm,
                                  channels=dict(channels or {})))
        self.branches = branches
        self.aux_classifiers = aux_classifiers
        conv = self.add_conv

        # Shared trunk on the 1/2 image, then the 1/4 branch (PSPNet50 compressed).
        c = self.add_trunk()
        conv3_channels = ch["conv3_1_1x1_increase"]
        sub4_channels = conv("conv5_4_k1", c, 1)
        self.conv6_sub4 = nn.Conv2d(sub4_channels, num_classes, 1) if (
            branches == "sub4" or aux_classifiers) else None

        self.conv_sub4 = self.conv3_1_sub2_proj = None
        self.conv6_sub2 = None
        if branches in ("sub24", "sub124"):
            conv("conv_sub4", sub4_channels, 3, dilation=2, relu=False)
            conv("conv3_1_sub2_proj", conv3_channels, 1, relu=False)
            if branches == "sub24" or aux_classifiers:
                self.conv6_sub2 = nn.Conv2d(ch["conv_sub4"], num_classes, 1)

        self.conv1_sub1 = self.conv2_sub1 = self.conv3_sub1 = None
        self.conv3_sub1_proj = self.conv_sub2 = self.conv6_cls = None
        if branches == "sub124":
            conv("conv_sub2", ch["conv_sub4"], 3, dilation=2, relu=False)
            c = conv("conv1_sub1", 3, 3, stride=2)
            c = conv("conv2_sub1", c, 3, stride=2)
            c = conv("conv3_sub1", c, 3, stride=2)
            conv("conv3_sub1_proj", c, 1, relu=False)
            self.conv6_cls = nn.Conv2d(ch["conv_sub2"], num_classes, 1)
        self.init_weights()

    def forward(self, data: torch.Tensor) -> torch.Tensor | dict[str, torch.Tensor]:
        height, width = data.shape[-2:]
        outputs: dict[str, torch.Tensor] = {}

        # 1/2 image through the shared trunk (computed once for the 1/2 and 1/4 branches).
        data_sub2 = interp(data, (shrink_size(height, 2), shrink_size(width, 2)))
        conv3_1 = self.run_blocks(self.stem(data_sub2), "conv2_1", "conv3_1")

        # 1/4 branch: shrink the shared features, dilated PSPNet, summed pyramid pooling.
        x = interp(conv3_1, (shrink_size(conv3_1.shape[-2], 2), shrink_size(conv3_1.shape[-1], 2)))
        conv5_3 = self.run_blocks(x, "conv3_2", "conv5_3")
        pooled = conv5_3
        for bins in PYRAMID_BINS:
            pooled = pooled + interp(pyramid_pool(conv5_3, bins), tuple(conv5_3.shape[-2:]))
        conv5_4_interp = interp(self.conv5_4_k1(pooled), tuple(conv3_1.shape[-2:]))
        if self.conv6_sub4 is not None:
            outputs["sub4"] = self.conv6_sub4(conv5_4_interp)
        final = outputs.get("sub4")

        if self.conv_sub4 is not None:
            # CFF sub24: coarse 1/16 features (dilated 3x3 + BN) + projected 1/16 trunk.
            sub24_sum = torch.relu(self.conv_sub4(conv5_4_interp) + self.conv3_1_sub2_proj(conv3_1))
            if self.conv3_sub1 is not None:
                fine = self.conv3_sub1(self.conv2_sub1(self.conv1_sub1(data)))
                target = tuple(fine.shape[-2:])
            else:
                target = (zoom_size(sub24_sum.shape[-2], 2), zoom_size(sub24_sum.shape[-1], 2))
            sub24_sum_interp = interp(sub24_sum, target)
            if self.conv6_sub2 is not None:
                outputs["sub24"] = self.conv6_sub2(sub24_sum_interp)
            final = outputs.get("sub24")

            if self.conv_sub2 is not None:
                # CFF sub12: 1/8 fused features + projected full-resolution branch.
                sub12_sum = torch.relu(self.conv_sub2(sub24_sum_interp) + self.conv3_sub1_proj(fine))
                sub12_sum_interp = interp(
                    sub12_sum, (zoom_size(sub12_sum.shape[-2], 2), zoom_size(sub12_sum.shape[-1], 2)))
                final = outputs["sub124"] = self.conv6_cls(sub12_sum_interp)

        if self.training:
            return outputs
        return interp(final, (height, width))


def icnet(
    *,
    num_classes: int = 19,
    width: float = RELEASED_WIDTH,
    branches: str = "sub124",
    aux_classifiers: bool = False,
    batch_norm: bool = True,
    channels: Mapping[str, int] | None = None,
) -> ICNet:
    """Build ICNet. Defaults give the released Cityscapes deploy network (with BN).

    Args:
        num_classes: classifier outputs (19 Cityscapes trainIds).
        width: channel multiplier; 0.5 is the released model, 1.0 PSPNet50 widths.
        branches: ``sub4``, ``sub24`` or ``sub124`` (the paper's ablation).
        aux_classifiers: add ``conv6_sub4`` / ``conv6_sub2`` for cascade label guidance.
        batch_norm: False builds the BN-merged form (biased convolutions, no BN).
        channels: per-layer output channels by official name (pruned models).
    """
    return ICNet(num_classes, width, branches, aux_classifiers, batch_norm, channels)
