"""The dilated ResNet50 trunk that ICNet's 1/4 branch and the PSPNet50 baseline share.

Layers carry the official names (``conv1_1_3x3_s2`` ... ``conv5_3_1x1_increase``): each
bottleneck ``convS_B`` has ``_1x1_reduce``, ``_3x3`` and ``_1x1_increase`` convolutions,
the first of a stage also ``_1x1_proj``; conv4 and conv5 are dilated by 2 and 4.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from icnet_ros.model.conv_bn import ConvBN

# (stage, number of blocks, bottleneck width, output width, stride, dilation) at width 0.5.
STAGES = ((2, 3, 32, 128, 1, 1), (3, 4, 64, 256, 2, 1), (4, 6, 128, 512, 1, 2), (5, 3, 256, 1024, 1, 4))


class DilatedResNet(nn.Module):
    """Base of networks built of official-named ConvBN layers around the shared trunk."""

    def __init__(self, channels: Mapping[str, int], config: dict) -> None:
        super().__init__()
        self.config = config  # the builder's arguments, as weight files record them
        self._channels = dict(channels)
        self._batch_norm = bool(config.get("batch_norm", True))
        self.blocks: list[tuple[str, bool]] = []  # (bottleneck name, has a projection)

    def add_conv(self, name: str, in_channels: int, kernel: int, stride: int = 1, dilation: int = 1,
                 relu: bool = True) -> int:
        """Add the official layer ``name`` (same-padded ConvBN); returns its output channels."""
        out_channels = self._channels[name]
        setattr(self, name, ConvBN(in_channels, out_channels, kernel, stride, dilation * (kernel // 2),
                                   dilation, relu=relu, batch_norm=self._batch_norm))
        return out_channels

    def add_trunk(self) -> int:
        """Add conv1_1..conv1_3, pool1 and every bottleneck; returns conv5_3's channels."""
        c = self.add_conv("conv1_1_3x3_s2", 3, 3, stride=2)
        c = self.add_conv("conv1_2_3x3", c, 3)
        c = self.add_conv("conv1_3_3x3", c, 3)
        self.pool1_3x3_s2 = nn.MaxPool2d(3, stride=2, padding=1, ceil_mode=True)
        for stage, blocks, _, _, stride, dilation in STAGES:
            for block in range(1, blocks + 1):
                name = f"conv{stage}_{block}"
                block_stride = stride if block == 1 else 1
                mid = self.add_conv(f"{name}_1x1_reduce", c, 1, stride=block_stride)
                mid = self.add_conv(f"{name}_3x3", mid, 3, dilation=dilation)
                out = self.add_conv(f"{name}_1x1_increase", mid, 1, relu=False)
                if block == 1:
                    self.add_conv(f"{name}_1x1_proj", c, 1, stride=block_stride, relu=False)
                self.blocks.append((name, block == 1))
                c = out
        return c

    def stem(self, x: torch.Tensor) -> torch.Tensor:
        """conv1_1..conv1_3 and pool1."""
        return self.pool1_3x3_s2(self.conv1_3_3x3(self.conv1_2_3x3(self.conv1_1_3x3_s2(x))))

    def run_blocks(self, x: torch.Tensor, first: str, last: str) -> torch.Tensor:
        """Bottlenecks ``first`` to ``last`` inclusive (e.g. ``conv2_1`` to ``conv3_1``)."""
        names = [name for name, _ in self.blocks]
        for name, has_proj in self.blocks[names.index(first): names.index(last) + 1]:
            residual = getattr(self, f"{name}_1x1_proj")(x) if has_proj else x
            y = getattr(self, f"{name}_1x1_reduce")(x)
            y = getattr(self, f"{name}_3x3")(y)
            x = torch.relu(residual + getattr(self, f"{name}_1x1_increase")(y))
        return x

    def init_weights(self) -> None:
        """MSRA (Kaiming) convolutions, unit BN scale, zero biases."""
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def layer_channels(self) -> dict[str, int]:
        """Output channels of every official convolution present in this network."""
        return {name: m.conv.out_channels for name, m in self.named_children() if isinstance(m, ConvBN)}

    @torch.no_grad()
    def fold_batchnorm(self) -> DilatedResNet:
        """Merge every BN into its convolution (the official merged form); in place."""
        for module in self.modules():
            if isinstance(module, ConvBN):
                module.fold_batchnorm()
        self._batch_norm = self.config["batch_norm"] = False
        return self
