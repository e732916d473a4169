"""Progressive L1-norm filter pruning (paper section 5; Li et al., Pruning Filters for
Efficient ConvNets).

Each output filter of a convolution is ranked by the L1 sum of its weights and the
smallest are removed; the network becomes physically smaller. Layers whose outputs are
added together must keep the same channels, so they are pruned as a group ranked by the
summed L1 over the group: per stage, every ``*_1x1_increase`` with the stage's
``*_1x1_proj`` (the residual sums); ``conv_sub4`` with ``conv3_1_sub2_proj`` and
``conv_sub2`` with ``conv3_sub1_proj`` (the cascade feature fusion sums). Batch-norm
parameters go with their convolution; the consumers' input channels are sliced to match.
The classifiers keep their outputs (one per class).

Keep rates are relative to a reference width (the network before the first step), so
the schedule 0.75 -> 0.5 keeps 3/4 and then 1/2 of every layer's original filters; from
the PSPNet50 widths (``width=1.0``) the 0.5 step gives exactly the released ICNet widths.
The result records its per-layer widths (``model.layer_channels()``), which checkpoints
and weight files store, so it rebuilds anywhere.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

import torch

from icnet_ros.model import ICNet, icnet
from icnet_ros.model.icnet import STAGES
from icnet_train import checkpoint as ckpt
from icnet_train.config import TrainConfig
from icnet_train.data import build_datasets
from icnet_train.distributed import barrier, setup, teardown
from icnet_train.train import build_model, train


def channel_groups(model: ICNet) -> list[list[str]]:
    """Layers (official names) that share one set of output channels; singletons included."""
    present = model.layer_channels()
    groups = [[f"conv{stage}_{block}_1x1_increase" for block in range(1, blocks + 1)] + [f"conv{stage}_1_1x1_proj"]
              for stage, blocks, *_ in STAGES]
    groups += [pair for pair in (["conv_sub4", "conv3_1_sub2_proj"], ["conv_sub2", "conv3_sub1_proj"])
               if pair[0] in present]
    grouped = {name for group in groups for name in group}
    return groups + [[name] for name in present if name not in grouped]


def consumers(model: ICNet) -> dict[str, list[str]]:
    """For each layer, the modules (convolutions or classifiers) that read its output."""
    present = set(model.layer_channels()) | {n for n in ("conv6_sub4", "conv6_sub2", "conv6_cls")
                                             if getattr(model, n) is not None}
    reads: dict[str, list[str]] = {"conv1_1_3x3_s2": ["conv1_2_3x3"], "conv1_2_3x3": ["conv1_3_3x3"],
                                   "conv1_3_3x3": ["conv2_1_1x1_reduce", "conv2_1_1x1_proj"],
                                   "conv5_4_k1": ["conv_sub4", "conv6_sub4"],
                                   "conv_sub4": ["conv_sub2", "conv6_sub2"], "conv_sub2": ["conv6_cls"],
                                   "conv1_sub1": ["conv2_sub1"], "conv2_sub1": ["conv3_sub1"],
                                   "conv3_sub1": ["conv3_sub1_proj"]}
    for index, (stage, blocks, *_) in enumerate(STAGES):
        for block in range(1, blocks + 1):
            name = f"conv{stage}_{block}"
            reads[f"{name}_1x1_reduce"] = [f"{name}_3x3"]
            reads[f"{name}_3x3"] = [f"{name}_1x1_increase"]
        # The stage output feeds its later blocks and the next stage (or the pyramid head).
        readers = [f"conv{stage}_{block}_1x1_reduce" for block in range(2, blocks + 1)]
        if index + 1 < len(STAGES):
            readers += [f"conv{STAGES[index + 1][0]}_1_1x1_reduce", f"conv{STAGES[index + 1][0]}_1_1x1_proj"]
        else:
            readers.append("conv5_4_k1")
        if stage == 3:
            readers.append("conv3_1_sub2_proj")
        reads[f"conv{stage}_1_1x1_increase"] = readers
    for group in channel_groups(model):  # every member of a summed group feeds the sum's readers
        for name in group:
            reads[name] = reads.get(group[0], [])
    return {name: [r for r in readers if r in present] for name, readers in reads.items() if name in present}


def filter_l1(model: ICNet, name: str) -> torch.Tensor:
    """L1 norm of every output filter of layer ``name``."""
    return getattr(model, name).conv.weight.detach().abs().sum(dim=(1, 2, 3))


@torch.no_grad()
def prune(model: ICNet, keep_rate: float, reference: Mapping[str, int] | None = None) -> ICNet:
    """A new, smaller network keeping ``round(keep_rate * reference[layer])`` filters per layer.

    ``reference`` defaults to the current widths. Filters are chosen by L1 norm (summed
    over a group); kept filters stay in their original order. Returns the network in the
    mode ``model`` was in, on its device.
    """
    if not 0 < keep_rate <= 1:
        raise ValueError(f"keep_rate must lie in (0, 1], got {keep_rate}")
    widths = model.layer_channels()
    reference = dict(reference or widths)
    keep: dict[str, torch.Tensor] = {}
    for group in channel_groups(model):
        count = max(1, round(keep_rate * reference[group[0]]))
        if count > widths[group[0]]:
            raise ValueError(f"{group[0]} has {widths[group[0]]} filters, cannot keep {count}")
        score = sum(filter_l1(model, name) for name in group)
        kept = torch.sort(torch.topk(score, count).indices).values
        keep.update({name: kept for name in group})
    producer = {reader: name for name, readers in consumers(model).items() for reader in readers}
    config = {k: v for k, v in model.config.items() if k != "channels"}
    smaller = icnet(**config, channels={name: len(kept) for name, kept in keep.items()})
    state = {}
    for key, tensor in model.state_dict().items():
        module, _, parameter = key.partition(".")
        if module in keep and tensor.dim() > 0:
            tensor = tensor.index_select(0, keep[module].to(tensor.device))
        if module in producer and (parameter in ("conv.weight", "weight")) and tensor.dim() == 4:
            tensor = tensor.index_select(1, keep[producer[module]].to(tensor.device))
        state[key] = tensor
    smaller.load_state_dict(state)
    parameter = next(model.parameters())
    return smaller.to(device=parameter.device, dtype=parameter.dtype).train(model.training)


def prune_and_finetune(config: TrainConfig) -> ICNet:
    """Prune ``config.init`` through ``config.keep_rates``, fine-tuning ``config.iterations`` after each.

    Step ``r`` writes ``output_dir/keep_<r>/`` (``init.pth``: the pruned network; then the
    fine-tuning run's checkpoints and logs). Returns the last fine-tuned network.
    """
    context = setup(config.device)
    try:
        _, _, labels = build_datasets(config, train=False)
        model, origin = build_model(config, labels)
        reference = model.layer_channels()
        if context.is_main:
            print(f"icnet-train prune: {origin}; {_parameters(model):,} parameters")
        for rate in config.keep_rates:
            stage = Path(config.output_dir) / f"keep_{rate:g}"
            smaller = prune(model, rate, reference)
            if context.is_main:
                stage.mkdir(parents=True, exist_ok=True)
                ckpt.save(stage / "init.pth", ckpt.initialisation(smaller, labels.to_dict()))
                print(f"keep {rate:g}: {_parameters(smaller):,} parameters; fine-tuning in {stage}")
            barrier(context)
            train(replace(config, init=str(stage / "init.pth"), output_dir=str(stage)), context)
            model = ckpt.model_from(ckpt.load(stage / "checkpoint.pth"), str(stage / "checkpoint.pth"))
        return model
    finally:
        teardown(context)


def _parameters(model: ICNet) -> int:
    return sum(p.numel() for p in model.parameters())
