"""``icnet-train`` (also ``python -m icnet_train``): train, evaluate, prune, export.

Every training option is a flag and a key of an optional YAML file (``--config``);
flags override the file, the file overrides the paper defaults. ``--resume`` takes the
configuration stored in the checkpoint; only settings that do not change the result
(output, workers, logging, stop_at...) may be changed then.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import types
import typing
from pathlib import Path

from icnet_ros.weights.labels import LabelSetError
from icnet_ros.weights.weight_file import WeightsError
from icnet_train.checkpoint import CheckpointError
from icnet_train.config import ConfigError, TrainConfig, field_types, load_yaml
from icnet_train.data.folder import DatasetError
from icnet_train.export import ONNX_TOLERANCE

ERRORS = (ConfigError, DatasetError, CheckpointError, WeightsError, LabelSetError, OSError)


def _add_config_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per TrainConfig field; absent flags stay absent (so YAML values survive)."""
    types_ = field_types()
    group = parser.add_argument_group("training configuration (also YAML keys)")
    group.add_argument("--config", type=Path, default=argparse.SUPPRESS, help="YAML file of options")
    for f in dataclasses.fields(TrainConfig):
        kind = types_[f.name]
        options: dict = {"default": argparse.SUPPRESS, "help": f"{f.metadata['help']} (default: {f.default})"}
        if typing.get_origin(kind) in (typing.Union, types.UnionType):  # X | None
            kind = next(arg for arg in typing.get_args(kind) if arg is not type(None))
        if kind is bool:
            options["action"] = argparse.BooleanOptionalAction
        elif typing.get_origin(kind) is tuple:
            args = typing.get_args(kind)
            options.update(type=args[0], nargs="+" if args[-1] is Ellipsis else len(args), metavar=args[0].__name__.upper())
        else:
            options["type"] = kind
        if "choices" in f.metadata:
            options["choices"] = f.metadata["choices"]
        group.add_argument("--" + f.name.replace("_", "-"), dest=f.name, **options)


def _config(args: argparse.Namespace, base: dict | None = None) -> TrainConfig:
    """``base`` (defaults or a checkpoint's configuration), then the YAML file, then the flags."""
    values = dict(base or {})
    if "config" in args:
        values.update(load_yaml(args.config))
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    values.update({k: v for k, v in vars(args).items() if k in names})
    return TrainConfig.from_dict(values)


def _train(args: argparse.Namespace) -> int:
    from icnet_train.checkpoint import load
    from icnet_train.train import train

    resume = getattr(args, "resume", "")
    # A resumed run keeps its stored settings, except where to stop (flags may set it again).
    base = dict(load(resume)["config"], stop_at=0) if resume else None
    train(_config(args, base))
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    import torch

    from icnet_ros.weights.labels import LabelSet
    from icnet_ros.weights.preprocessing import Preprocessing
    from icnet_ros.weights.weight_file import load_model
    from icnet_train import checkpoint as ckpt
    from icnet_train.data import build_datasets
    from icnet_train.distributed import setup, teardown
    from icnet_train.evaluate import evaluate

    if args.weights:
        model, metadata = load_model(args.weights)
        config = _config(args)
        preprocessing, labels = metadata.preprocessing, metadata.labels
    else:
        content = ckpt.load(args.checkpoint)
        model = ckpt.model_from(content, str(args.checkpoint))
        config = _config(args, dict(content.get("config") or {}))
        preprocessing, labels = config.preprocessing(), LabelSet.from_dict(content["labels"])
    if "input_size" in args:
        preprocessing = Preprocessing(tuple(args.input_size), preprocessing.channel_order,
                                      preprocessing.mean, preprocessing.std)
    if config.threads:
        torch.set_num_threads(config.threads)
    _, dataset, data_labels = build_datasets(config, train=False)
    if data_labels.num_classes != labels.num_classes:
        raise ConfigError(f"the network has {labels.num_classes} classes, the data set {data_labels.num_classes}")
    context = setup(config.device)
    try:
        matrix = evaluate(model.to(context.device), dataset, preprocessing, context, config.workers,
                          config.val_limit, config.progress)
    finally:
        teardown(context)
    if context.is_main:
        print(matrix.table(labels.names))
        if args.json:
            summary = {"images": min(len(dataset), config.val_limit or len(dataset)),
                       "input_size": list(preprocessing.input_size), **matrix.summary(labels.names),
                       "confusion_matrix": matrix.matrix.tolist()}
            Path(args.json).write_text(json.dumps(summary, indent=2))
    return 0


def _prune(args: argparse.Namespace) -> int:
    from icnet_train.prune import prune_and_finetune

    config = _config(args)
    if not config.init:
        raise ConfigError("prune needs --init: the trained network (checkpoint or weight file) to compress")
    prune_and_finetune(config)
    return 0


def _export(args: argparse.Namespace) -> int:
    import torch

    from icnet_train import checkpoint as ckpt
    from icnet_train.config import TrainConfig
    from icnet_train.export import export_checkpoint, export_onnx, onnx_difference

    path = export_checkpoint(args.checkpoint, args.output)
    print(f"wrote {path}")
    if args.onnx:
        content = ckpt.load(args.checkpoint)
        model = ckpt.model_from(content, str(args.checkpoint)).eval()
        size = tuple(TrainConfig.from_dict(dict(content["config"])).input_size)
        export_onnx(model, args.onnx, size)
        generator = torch.Generator().manual_seed(0)
        difference, relative = onnx_difference(args.onnx, model, 50 * torch.randn(1, 3, *size, generator=generator))
        print(f"wrote {args.onnx} (input 1x3x{size[0]}x{size[1]}); onnxruntime vs PyTorch: max |difference| "
              f"{difference:.2e}, {relative:.2e} of the largest logit (tolerance {args.onnx_tolerance:g})")
        if not relative <= args.onnx_tolerance:
            print(f"icnet-train: error: {args.onnx} differs from PyTorch by {relative:.2e} of the largest logit, "
                  f"more than the tolerance {args.onnx_tolerance:g} (file kept for inspection)", file=sys.stderr)
            return 1
    return 0


def _tolerance(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"{text} is not a tolerance (a number >= 0)")
    return value


def parser() -> argparse.ArgumentParser:
    main = argparse.ArgumentParser(prog="icnet-train", description="Train, evaluate, prune and export "
                                   "ICNet for icnet_ros (python -m icnet_train works too).")
    commands = main.add_subparsers(dest="command", required=True, metavar="COMMAND")
    train = commands.add_parser("train", help="train (or resume) ICNet with cascade label guidance")
    _add_config_flags(train)
    train.set_defaults(run=_train)

    evaluate = commands.add_parser("evaluate", help="mIoU by the official protocol on the validation set")
    source = evaluate.add_mutually_exclusive_group(required=True)
    source.add_argument("--weights", type=Path, help="a weight file (.safetensors)")
    source.add_argument("--checkpoint", type=Path, help="a training checkpoint (.pth); its data settings apply")
    evaluate.add_argument("--json", type=Path, help="also write the results (and confusion matrix) as JSON")
    _add_config_flags(evaluate)
    evaluate.set_defaults(run=_evaluate)

    prune = commands.add_parser("prune", help="progressive L1 filter pruning with fine-tuning after each step "
                                              "(--keep-rates; --iterations per step)")
    _add_config_flags(prune)
    prune.set_defaults(run=_prune)

    export = commands.add_parser("export", help="write the node's weight file (and optionally ONNX)")
    export.add_argument("--checkpoint", type=Path, required=True, help="training checkpoint (.pth)")
    export.add_argument("--output", type=Path, required=True, help="weight file to write (.safetensors)")
    export.add_argument("--onnx", type=Path, help="also write ONNX at the run's input size, checked with onnxruntime")
    export.add_argument("--onnx-tolerance", type=_tolerance, default=ONNX_TOLERANCE, metavar="RELATIVE",
                        help="largest accepted |onnxruntime - PyTorch| relative to the largest |logit|; "
                             "exit status 1 above it (default: %(default)g)")
    export.set_defaults(run=_export)
    return main


def main(argv: list[str] | None = None) -> int:
    arguments = parser().parse_args(argv)
    try:
        return arguments.run(arguments)
    except ERRORS as error:
        print(f"icnet-train: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("icnet-train: interrupted", file=sys.stderr)
        return 130
