"""What the import tools share: the output options, their checks, and writing the file."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from torch import nn

from icnet_ros.weights.weight_file import WeightsError, WeightsMetadata, save_weights


def add_output_arguments(parser: argparse.ArgumentParser) -> None:
    """``-o/--output``, ``--half`` and ``--force``."""
    parser.add_argument("-o", "--output", type=Path,
                        help="output .safetensors file (default: the input name with .safetensors)")
    parser.add_argument("--half", action="store_true",
                        help="store float16 tensors (about half the size); BN statistics and anything "
                             "float16 cannot hold stay float32, as the file's metadata says")
    parser.add_argument("--force", action="store_true", help="overwrite an existing output file")


def output_path(parser: argparse.ArgumentParser, args: argparse.Namespace, source: Path) -> Path:
    """The file to write for ``source``, or the parser's error (exit 2) naming why not."""
    output = args.output or source.with_suffix(".safetensors")
    if output.suffix != ".safetensors":
        parser.error(f"the output must be a .safetensors file, got {output}")
    if output.exists() and not args.force:
        parser.error(f"{output} exists (use --force to overwrite)")
    if output.resolve() == source.resolve():
        parser.error("the output would overwrite the input")
    return output


def write_weights(prog: str, output: Path, model: nn.Module, metadata: WeightsMetadata, *, half: bool) -> bool:
    """Save; False after one line on stderr where the file cannot be written."""
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        save_weights(output, model, metadata, dtype=torch.float16 if half else None)
    except WeightsError as error:
        print(f"{prog}: error: {error}", file=sys.stderr)
        return False
    except OSError as error:
        print(f"{prog}: error: cannot write {output}: {error.strerror or error}", file=sys.stderr)
        return False
    return True
