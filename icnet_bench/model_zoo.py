"""The benchmarked networks: ICNet sub4 / sub24 / sub124, the paper's PSPNet50 baseline, and
PIDNet-S/M/L and DDRNet-23-slim/23 (official widths, inference form: no training heads), with
random weights made to behave like trained ones, and their counted costs."""

from __future__ import annotations

import weakref
from collections.abc import Callable

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten
from torch.utils.flop_counter import FlopCounterMode

from icnet_ros.model import ddrnet, icnet, pidnet, pspnet50_baseline
from icnet_ros.model.dual_branch_blocks import OUTPUT_STRIDE, BasicBlock, Bottleneck

ICNET_MODELS = ("sub4", "sub24", "sub124", "baseline")  # the paper's Tables 3 and 4
MODELS: dict[str, Callable[[], nn.Module]] = {
    "sub4": lambda: icnet(branches="sub4"),
    "sub24": lambda: icnet(branches="sub24"),
    "sub124": lambda: icnet(branches="sub124"),
    "baseline": pspnet50_baseline,
    "pidnet-s": lambda: pidnet(variant="s", aux_heads=False),
    "pidnet-m": lambda: pidnet(variant="m", aux_heads=False),
    "pidnet-l": lambda: pidnet(variant="l", aux_heads=False),
    "ddrnet-23-slim": lambda: ddrnet(variant="23-slim", aux_head=False),
    "ddrnet-23": lambda: ddrnet(variant="23", aux_head=False),
}
CALIBRATION_SIZE = (129, 257)
RESIDUAL_BRANCH_SCALE = 0.5


def input_size(name: str, height: int, width: int) -> tuple[int, int]:
    """The size ``name`` runs for a requested one: PIDNet and DDRNet take multiples of 8
    (1025x2049, ICNet's Caffe size, becomes their official 1024x2048)."""
    if name in ICNET_MODELS:
        return height, width
    return height // OUTPUT_STRIDE * OUTPUT_STRIDE, width // OUTPUT_STRIDE * OUTPUT_STRIDE


def random_image(batch: int, height: int, width: int, seed: int) -> torch.Tensor:
    """A mean-subtracted-like image (values in -128..127), reproducible from ``seed``."""
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(batch, 3, height, width, generator=generator) * 255 - 128


def build_model(name: str, seed: int, state: dict[str, torch.Tensor] | None = None) -> nn.Module:
    """Random weights made to behave like trained ones; ``state`` restores a built model.

    BN statistics are calibrated on a random image (unit-scale activations: no fp16
    overflow), and the last BN of every residual branch is scaled by
    ``RESIDUAL_BRANCH_SCALE``: with unit-gain branches a random ResNet is chaotic, it
    amplifies every rounding error by about 1.1x per layer (bf16 logits 40-60% off in
    relative L2 at 129x257), which trained networks do not.
    """
    torch.manual_seed(seed)
    model = MODELS[name]()
    if state is not None:
        model.load_state_dict(state)
        return model.eval()
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # cumulative average: one batch gives its own statistics
    model.train()
    with torch.no_grad():
        # Two images for PIDNet and DDRNet: their global pooling branch has one value per image.
        model(random_image(1 if name in ICNET_MODELS else 2, *input_size(name, *CALIBRATION_SIZE), seed + 1))
    for norm in norms:
        norm.momentum = 0.1
    with torch.no_grad():
        for module_name, module in model.named_modules():
            if module_name.endswith("_1x1_increase"):
                module.bn.weight.mul_(RESIDUAL_BRANCH_SCALE)
            elif isinstance(module, BasicBlock):
                module.bn2.weight.mul_(RESIDUAL_BRANCH_SCALE)
            elif isinstance(module, Bottleneck):
                module.bn3.weight.mul_(RESIDUAL_BRANCH_SCALE)
    return model.eval()


class _TensorBytes(TorchDispatchMode):
    """Bytes of the tensors ops create (views excluded): in total, and the peak held at once."""

    def __init__(self) -> None:
        super().__init__()
        self.total = self.live = self.peak = 0

    def _free(self, nbytes: int) -> None:
        self.live -= nbytes

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if not func.is_view:
            for tensor in tree_flatten(out)[0]:
                if isinstance(tensor, torch.Tensor):
                    nbytes = tensor.numel() * tensor.element_size()
                    self.total += nbytes
                    self.live += nbytes
                    weakref.finalize(tensor, self._free, nbytes)
            self.peak = max(self.peak, self.live)
        return out


def model_costs(name: str, height: int, width: int) -> dict[str, float]:
    """Multiply-accumulates and activation memory of the eager forward (shapes only, no compute).

    ``all_blobs_mb``: every intermediate tensor, as held by a framework that keeps them
    all (the paper's Caffe keeps every blob). ``live_peak_mb``: the most tensor bytes
    alive at once in PyTorch's eager forward (intermediates freed when unused): what
    ``torch.cuda.max_memory_allocated`` counts beyond weights and input. fp32, batch 1.
    """
    model = MODELS[name]().eval().to("meta")
    with torch.no_grad(), FlopCounterMode(display=False) as flops, _TensorBytes() as tensors:
        model(torch.empty(1, 3, *input_size(name, height, width), device="meta"))
    return {"gmac": round(flops.get_total_flops() / 2e9, 3), "all_blobs_mb": round(tensors.total / 2**20, 1),
            "live_peak_mb": round(tensors.peak / 2**20, 1)}

