"""The training loop (in the style of torchvision's references/segmentation/train.py).

SGD with momentum and poly learning-rate decay on the cascade loss, iteration based as
in the paper; mixed precision on CUDA; gradient accumulation; DistributedDataParallel
when started by torchrun (gloo on CPUs). Checkpoints resume exactly: the data order and
every augmentation are functions of the stream position (see ``data/sampling.py``), and
model, optimizer, schedule, scaler and RNG states are restored.

With per-process batch norm (the default) each process normalises with the statistics
of its own share of the batch, as in the paper's multi-GPU Caffe training; ``sync_bn``
(CUDA) uses the whole batch, ``freeze_bn`` the stored statistics.
"""

from __future__ import annotations

import math
import time
from contextlib import nullcontext
from pathlib import Path

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.optim.lr_scheduler import PolynomialLR
from torch.utils.data import DataLoader
from tqdm import tqdm

from icnet_ros.model import ICNet, icnet
from icnet_ros.weights.labels import LabelSet
from icnet_ros.weights.weight_file import architecture_of, load_model
from icnet_train import checkpoint as ckpt
from icnet_train.config import TrainConfig
from icnet_train.data import build_datasets
from icnet_train.data.sampling import Augmented, StepSampler
from icnet_train.data.transforms import TrainTransform
from icnet_train.distributed import Context, all_reduce_sum, barrier, setup, teardown
from icnet_train.evaluate import evaluate
from icnet_train.logs import RunLog
from icnet_train.loss import CascadeLoss

CLASSIFIERS = ("conv6_sub4", "conv6_sub2", "conv6_cls")
# Settings that do not change what a run computes: a resumed run may change them.
RUN_CONTROL = frozenset({"resume", "stop_at", "progress", "workers", "threads", "device", "log_interval",
                         "checkpoint_interval", "tensorboard", "output_dir", "val_interval", "val_limit"})


def build_model(config: TrainConfig, labels: LabelSet) -> tuple[ICNet, str]:
    """The network to train (with auxiliary classifiers) and where its weights come from.

    ``config.init`` may be a checkpoint (.pth) or a weight file (.safetensors, e.g.
    converted official weights). Tensors it lacks (the auxiliary classifiers of a deploy
    file) or whose class count differs (another label set) keep the fresh initialisation.
    """
    torch.manual_seed(config.seed)
    if not config.init:
        model = icnet(num_classes=labels.num_classes, width=config.width, branches=config.branches,
                      aux_classifiers=True)
        return model, "initialised from scratch"
    path = Path(config.init)
    if path.suffix == ".safetensors":
        source, _ = load_model(path)
        architecture = dict(source.config)
        tensors = source.state_dict()
    else:
        content = ckpt.load(path)
        architecture = dict(content["architecture"])
        tensors = content["model"]
    architecture.pop("name", None)
    architecture.update(num_classes=labels.num_classes, aux_classifiers=True)
    model = icnet(**architecture)
    state = model.state_dict()
    fresh = sorted(name for name in state if name not in tensors or tensors[name].shape != state[name].shape)
    not_classifier = [name for name in fresh if not name.startswith(CLASSIFIERS)]
    if not_classifier:
        raise ckpt.CheckpointError(f"{path} does not fit the network: {', '.join(not_classifier[:5])}")
    state.update({name: tensors[name] for name in state if name not in fresh})
    model.load_state_dict(state)
    note = f" (fresh: {', '.join(sorted({n.split('.')[0] for n in fresh}))})" if fresh else ""
    return model, f"initialised from {path}{note}"


def _freeze_batchnorm(model: nn.Module) -> None:
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.eval()


def _loader(config: TrainConfig, dataset, context: Context, start: int, stop: int) -> DataLoader:
    transform = TrainTransform(tuple(config.crop_size), config.preprocessing(), tuple(config.scale_range),
                               config.mirror, config.photometric)
    sampler = StepSampler(len(dataset), config.batch_size, config.accumulation, context.rank,
                          context.world_size, config.seed, start, stop)
    return DataLoader(Augmented(dataset, transform, config.seed), batch_size=sampler.micro_batch,
                      sampler=sampler, num_workers=config.workers, pin_memory=context.device.type == "cuda",
                      persistent_workers=False, prefetch_factor=4 if config.workers else None)


def train(config: TrainConfig, context: Context | None = None) -> dict:
    """Run (or resume) training as ``config`` says; returns the last validation summary.

    Joins the torchrun process group itself unless a ``context`` is given.
    """
    if config.threads:
        torch.set_num_threads(config.threads)
    if context is not None:
        return _train(config, context)
    context = setup(config.device)
    try:
        return _train(config, context)
    finally:
        teardown(context)


def _train(config: TrainConfig, context: Context) -> dict:
    train_set, val_set, labels = build_datasets(config)
    output = Path(config.output_dir)
    if context.is_main:
        output.mkdir(parents=True, exist_ok=True)
    resumed = ckpt.load(config.resume) if config.resume else None
    if resumed is not None:
        saved = TrainConfig.from_dict(dict(resumed["config"])).to_dict()
        changed = sorted(k for k, v in config.to_dict().items() if k not in RUN_CONTROL and saved[k] != v)
        if changed:
            raise ckpt.CheckpointError(f"{config.resume} was written with other settings ({', '.join(changed)}); "
                                       "resume with the same configuration or use --init to fine-tune")
        model, origin = ckpt.model_from(resumed, config.resume), f"resumed from {config.resume}"
    else:
        model, origin = build_model(config, labels)
    if config.sync_bn and context.distributed:
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    model.to(context.device)
    optimizer = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum,
                                weight_decay=config.weight_decay)
    scheduler = PolynomialLR(optimizer, total_iters=config.iterations, power=config.poly_power)
    use_amp = config.amp and context.device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    start, best_miou, summary = 0, -math.inf, {}
    if resumed is not None:
        optimizer.load_state_dict(resumed["optimizer"])
        scheduler.load_state_dict(resumed["scheduler"])
        scaler.load_state_dict(resumed["scaler"])
        ckpt.set_rng_state(resumed["rng"])
        start, summary = int(resumed["iteration"]), dict(resumed.get("metrics", {}))
        best_miou = float(resumed.get("best_miou", -math.inf))
        if math.isnan(best_miou):
            best_miou = -math.inf
    stop = min(config.stop_at or config.iterations, config.iterations)
    network = DistributedDataParallel(model, device_ids=[context.device.index] if context.device.type == "cuda"
                                      else None) if context.distributed else model
    criterion = CascadeLoss(config.loss_weight_map())
    log = RunLog(output, start, config.tensorboard) if context.is_main else None
    if context.is_main:
        print(f"icnet-train: {origin}; {sum(p.numel() for p in model.parameters()):,} parameters; "
              f"{len(train_set)} training images; iterations {start}..{stop} of {config.iterations}; "
              f"{context.world_size} process(es) on {context.device}", flush=True)

    def content(iteration: int) -> dict:
        return {"iteration": iteration, "config": config.to_dict(), "architecture": architecture_of(model),
                "labels": labels.to_dict(), "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(), "scaler": scaler.state_dict(), "rng": ckpt.rng_state(),
                "metrics": summary, "best_miou": best_miou if best_miou > -math.inf else math.nan}

    batches = iter(_loader(config, train_set, context, start, stop))
    bar = tqdm(total=stop, initial=start, disable=not (config.progress and context.is_main),
               dynamic_ncols=True, desc="train")
    clock, clock_iteration = time.perf_counter(), start
    for iteration in range(start + 1, stop + 1):
        model.train()
        if config.freeze_bn:
            _freeze_batchnorm(model)
        optimizer.zero_grad(set_to_none=True)
        totals = torch.zeros(4, device=context.device)  # loss, sub4, sub24, sub124
        for micro in range(config.accumulation):
            images, targets = next(batches)
            images = images.to(context.device, non_blocking=True)
            targets = targets.to(context.device, non_blocking=True)
            last = micro == config.accumulation - 1
            with nullcontext() if last or not context.distributed else network.no_sync():
                with torch.autocast(context.device.type, enabled=use_amp):
                    outputs = network(images)
                loss, terms = criterion(outputs, targets)
                scaler.scale(loss / config.accumulation).backward()
            totals += torch.stack([loss.detach()] + [terms.get(k, torch.zeros((), device=loss.device))
                                                     for k in ("sub4", "sub24", "sub124")]) / config.accumulation
        lr = optimizer.param_groups[0]["lr"]
        scaler.step(optimizer)
        scaler.update()
        scheduler.step()

        if iteration % config.log_interval == 0 or iteration == stop:
            totals = all_reduce_sum(totals, context) / context.world_size
            elapsed = time.perf_counter() - clock
            speed = config.batch_size * (iteration - clock_iteration) / max(elapsed, 1e-9)
            clock, clock_iteration = time.perf_counter(), iteration
            values = dict(zip(("loss", "loss_sub4", "loss_sub24", "loss_sub124"), totals.tolist()))
            if not math.isfinite(values["loss"]):
                raise FloatingPointError(f"loss is {values['loss']} at iteration {iteration}; lower --lr")
            if log is not None:
                log.train(iteration, {**values, "lr": lr, "images_per_s": speed})
            bar.set_postfix(loss=f"{values['loss']:.4f}", lr=f"{lr:.2e}", img_s=f"{speed:.1f}")
        bar.update(1)

        if (config.val_interval and iteration % config.val_interval == 0) or iteration == config.iterations:
            matrix = evaluate(model, val_set, config.preprocessing(), context, config.workers,
                              config.val_limit, config.progress)
            summary = {"iteration": iteration, **matrix.summary(labels.names)}
            if context.is_main:
                log.validation(iteration, summary)
                bar.write(f"validation at iteration {iteration}:\n{matrix.table(labels.names)}")
                if summary["miou"] > best_miou:
                    best_miou = summary["miou"]
                    ckpt.save(output / "best.pth", content(iteration))
        if context.is_main and (iteration % config.checkpoint_interval == 0 or iteration == stop):
            ckpt.save(output / "checkpoint.pth", content(iteration))
    bar.close()
    if log is not None:
        log.close()
    barrier(context)
    return summary
