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

from icnet_ros.tools.weight_output import add_output_arguments, output_path, write_weights
from icnet_ros.weights.caffe import convert_caffemodel
from icnet_ros.weights.weight_file import WeightsError, file_sha256

PROG = "icnet-convert-caffe"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description="Convert an official ICNet .caffemodel (no Caffe needed) to .safetensors.")
    parser.add_argument("caffemodel", type=Path, help="official ICNet .caffemodel (merged or _bnnomerge)")
    add_output_arguments(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    output = output_path(parser, args, args.caffemodel)
    try:
        model, metadata = convert_caffemodel(args.caffemodel)
    except WeightsError as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        print(f"{PROG}: error: cannot read {args.caffemodel}: {error.strerror or error}", file=sys.stderr)
        return 2
    if not write_weights(PROG, output, model, metadata, half=args.half):
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
