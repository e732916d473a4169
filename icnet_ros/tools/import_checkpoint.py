"""``icnet-import-checkpoint``: turn an official PIDNet or DDRNet checkpoint into a weight file.

    icnet-import-checkpoint pidnet-s PIDNet_S_Cityscapes_val.pt -o pidnet_s.safetensors

The file is read with ``torch.load(weights_only=True)`` only. The output records the
network, the official pre-processing, the Cityscapes labels, the source file's SHA-256 and
the published scores, so ``weights:=pidnet_s.safetensors`` is all the node needs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from icnet_ros.model.registry import display_name
from icnet_ros.tools.weight_output import add_output_arguments, output_path, write_weights
from icnet_ros.weights.official_checkpoints import OFFICIAL_NETWORKS, import_checkpoint
from icnet_ros.weights.weight_file import WeightsError, file_sha256

PROG = "icnet-import-checkpoint"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description="Import an official PIDNet or DDRNet Cityscapes checkpoint (.pt/.pth) as .safetensors.")
    parser.add_argument("network", choices=sorted(OFFICIAL_NETWORKS), help="which official network the file holds")
    parser.add_argument("checkpoint", type=Path, help="the official .pt/.pth file")
    add_output_arguments(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    output = output_path(parser, args, args.checkpoint)
    try:
        model, metadata = import_checkpoint(args.network, args.checkpoint)
    except WeightsError as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        print(f"{PROG}: error: cannot read {args.checkpoint}: {error.strerror or error}", file=sys.stderr)
        return 2
    if not write_weights(PROG, output, model, metadata, half=args.half):
        return 2
    provenance = metadata.provenance
    print(f"{args.checkpoint.name}: {display_name(metadata.architecture)}, "
          f"{sum(p.numel() for p in model.parameters()):,} parameters, "
          f"{'with' if provenance['auxiliary_heads'] else 'without'} the training heads")
    if provenance["dropped_training_keys"]:
        print(f"left out (training losses): {', '.join(provenance['dropped_training_keys'])}")
    print(f"wrote {output} (sha256 {file_sha256(output)}); pre-processing: "
          f"{metadata.preprocessing.input_size[0]}x{metadata.preprocessing.input_size[1]}, "
          f"{metadata.preprocessing.channel_order}, mean {metadata.preprocessing.mean}, "
          f"std {metadata.preprocessing.std}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
