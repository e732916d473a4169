"""Batch norm folding for networks of plain ``nn.Conv2d`` and ``nn.BatchNorm2d`` modules
(DDRNet, PIDNet), in fp32, for inference.

A BN that directly follows a convolution (the next entry of an ``nn.Sequential``, or a pair a
module names in ``CONV_BN_PAIRS``) is merged into it: the convolution gains a bias, the BN
becomes ``nn.Identity``. A BN that cannot be merged (pre-activation: BN-ReLU-conv) is
rewritten as the same affine map with unit statistics (``running_mean`` 0, ``running_var``
1 - eps), which fp16 and bf16 hold (trained variances do not always fit in them). The result
is deterministic, so a folded network's ``state_dict`` loads into a freshly built and folded one.
"""

from __future__ import annotations

import torch
from torch import nn


@torch.no_grad()
def merged_convolution(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    """``bn(conv(x))`` as one biased convolution (computed in fp32)."""
    scale = bn.weight.float() / torch.sqrt(bn.running_var.float() + bn.eps)
    bias = bn.bias.float() - bn.running_mean.float() * scale
    if conv.bias is not None:
        bias = bias + conv.bias.float() * scale
    merged = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                       conv.dilation, conv.groups, bias=True).to(conv.weight.device)
    merged.weight.copy_(conv.weight.float() * scale.reshape(-1, 1, 1, 1))
    merged.bias.copy_(bias)
    return merged


@torch.no_grad()
def normalise_batchnorm(bn: nn.BatchNorm2d) -> None:
    """Rewrite ``bn`` (eval mode) as the same affine map with mean 0 and variance 1 - eps."""
    scale = bn.weight.float() / torch.sqrt(bn.running_var.float() + bn.eps)
    bn.bias.copy_(bn.bias.float() - bn.running_mean.float() * scale)
    bn.weight.copy_(scale)
    bn.running_mean.zero_()
    bn.running_var.fill_(1.0 - bn.eps)


@torch.no_grad()
def fold_batchnorm(network: nn.Module) -> None:
    """Merge every BN that follows a convolution into it, normalise the others; in place."""
    network.float().eval()
    for module in list(network.modules()):
        if isinstance(module, nn.Sequential):
            for index in range(len(module) - 1):
                if isinstance(module[index], nn.Conv2d) and isinstance(module[index + 1], nn.BatchNorm2d):
                    module[index] = merged_convolution(module[index], module[index + 1])
                    module[index + 1] = nn.Identity()
        for conv_name, bn_name in getattr(module, "CONV_BN_PAIRS", ()):
            bn = getattr(module, bn_name)
            if isinstance(bn, nn.BatchNorm2d):
                setattr(module, conv_name, merged_convolution(getattr(module, conv_name), bn))
                setattr(module, bn_name, nn.Identity())
    for module in network.modules():
        if isinstance(module, nn.BatchNorm2d):
            normalise_batchnorm(module)
