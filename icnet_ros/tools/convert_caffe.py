"""``icnet-convert-caffe``: turn an official ICNet ``.caffemodel`` into a weight file.

    icnet-convert-caffe icnet_cityscapes_train_30k.caffemodel -o icnet_train_30k.safetensors

Both official forms (BN-merged and ``_bnnomerge``) convert, with the auxiliary
classifiers when the file has them. The output records the official pre-processing,
the Cityscapes labels and the source file's hashes, so the node needs no other setting.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from icnet_ros.weights.caffe import convert_caffemodel
from icnet_ros.weights.weight_file import WeightsError, file_sha256, save_weights

PROG = "icnet-convert-caffe"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description="Convert an official ICNet .caffemodel (no Caffe needed) to .safetensors.")
    parser.add_argument("caffemodel", type=Path, help="official ICNet .caffemodel (merged or _bnnomerge)")
    parser.add_argument("-o", "--output", type=Path,
                        help="output .safetensors file (default: the input name with .safetensors)")
    parser.add_argument("--half", action="store_true",
                        help="store float16 tensors (about half the size); BN statistics and anything "
                             "float16 cannot hold stay float32, as the file's metadata says")
    parser.add_argument("--force", action="store_true", help="overwrite an existing output file")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    output = args.output or args.caffemodel.with_suffix(".safetensors")
    if output.suffix != ".safetensors":
        parser.error(f"the output must be a .safetensors file, got {output}")
    if output.exists() and not args.force:
        parser.error(f"{output} exists (use --force to overwrite)")
    if output.resolve() == args.caffemodel.resolve():
        parser.error("the output would overwrite the input")
    try:
        model, metadata = convert_caffemodel(args.caffemodel)
        output.parent.mkdir(parents=True, exist_ok=True)
        save_weights(output, model, metadata, dtype=torch.float16 if args.half else None)
    except WeightsError as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        print(f"{PROG}: error: cannot write {output}: {error.strerror or error}", file=sys.stderr)
        return 2
    provenance = metadata.provenance
    print(f"{args.caffemodel.name}: {provenance['caffe_form']} form, "
          f"{'with' if model.config['aux_classifiers'] else 'without'} auxiliary classifiers, "
          f"{sum(p.numel() for p in model.parameters()):,} parameters"
          + (f", official release {provenance['official_release']}" if provenance["official_release"] else ""))
    if metadata.storage:
        print(f"stored as {metadata.storage['dtype']}; kept float32: {len(metadata.storage['kept_float32'])} "
              "tensors (BN statistics and values float16 cannot represent)")
    print(f"wrote {output} (sha256 {file_sha256(output)}); pre-processing: "
          f"{metadata.preprocessing.input_size[0]}x{metadata.preprocessing.input_size[1]}, "
          f"{metadata.preprocessing.channel_order}, mean {metadata.preprocessing.mean}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
