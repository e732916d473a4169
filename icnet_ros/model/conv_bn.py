"""Convolution followed by batch normalisation and an optional ReLU."""

from __future__ import annotations

import torch
from torch import nn


class ConvBN(nn.Module):
    """One official ``Convolution`` layer ``X`` with its ``X/bn`` and ``X/relu``.

    Children are ``conv`` (official ``X``) and ``bn`` (official ``X/bn``). With
    ``batch_norm=False`` the layer is in the BN-merged form: the convolution carries a
    bias and there is no ``bn``, as in the official ``icnet_cityscapes.prototxt``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        padding: int = 0,
        dilation: int = 1,
        relu: bool = True,
        batch_norm: bool = True,
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(
            in_channels, out_channels, kernel_size, stride, padding, dilation, bias=not batch_norm
        )
        self.bn = nn.BatchNorm2d(out_channels, eps=1e-5) if batch_norm else None
        self.relu = relu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        if self.bn is not None:
            x = self.bn(x)
        return torch.relu(x) if self.relu else x

    @torch.no_grad()
    def fold_batchnorm(self) -> None:
        """Merge ``bn`` into ``conv`` (inference only): same outputs, one op fewer."""
        if self.bn is None:
            return
        bn, conv = self.bn, self.conv
        scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        bias = bn.bias - bn.running_mean * scale
        if conv.bias is not None:
            bias = bias + conv.bias * scale
        folded = nn.Conv2d(
            conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride,
            conv.padding, conv.dilation, bias=True,
        ).to(device=conv.weight.device, dtype=conv.weight.dtype)
        folded.weight.copy_(conv.weight * scale.reshape(-1, 1, 1, 1))
        folded.bias.copy_(bias)
        self.conv = folded
        self.bn = None
