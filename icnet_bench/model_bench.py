"""icnet-bench: benchmarks side by side with the paper (ICNet, arXiv 1704.08545).

Subcommands (one per kind of benchmark; the node and many-camera ones come with the node):

- ``model``: model-only latency (median, p90 after warm-up; CUDA events on a GPU,
  ``perf_counter`` on the CPU), throughput and peak memory of ICNet sub4 / sub24 / sub124
  and the paper's PSPNet50 baseline, per device, precision and backend, with every
  backend's outputs checked against eager fp32. Prints the paper's Tables 3 and 4 beside
  the measured figures and writes JSON and Markdown to ``--out-dir``. With PIDNet-S/M/L and
  DDRNet-23-slim/23 in ``--models`` (at the requested sizes rounded down to multiples of 8)
  it adds their table beside ICNet and the authors' published mIoU and speed.

Backends are written ``base[+modifier...]``: bases ``eager``, ``compile`` (inductor,
freezing), ``cuda_graphs``, ``onnxruntime``, ``tensorrt``; modifiers ``channels_last``
(NHWC memory format) and ``fold`` (BN merged into the convolutions). ``channels_last``
alone means ``eager+channels_last``.

Timing interleaves every configuration of one input size (one forward each in turn,
the order rotated every round), so that load from other processes hits all of them
alike; ratios are taken between medians of the same run.

Peak memory is measured in a fresh subprocess per configuration. On the CPU it is the
growth of the process's peak resident set (``VmHWM``, reset after the imports through
``/proc/self/clear_refs``) over the resident set after the imports: weights, input,
activations, allocator and backend caches (onnxruntime arenas, compiled code) during a
warm-up and a measured forward. On CUDA it is ``torch.cuda.max_memory_allocated`` over
the same steps (PyTorch's allocator only: backends allocating outside it report none).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from icnet_bench.model_cases import BASES, DEFAULT_BACKENDS, DEFAULT_SIZES, MODIFIERS, SCHEMA, settings_from_args
from icnet_bench.model_report import markdown, ratios
from icnet_bench.model_run import run_model_benchmark
from icnet_bench.model_zoo import ICNET_MODELS, MODELS, model_costs
from icnet_bench.settings import BenchError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="icnet-bench", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    model = commands.add_parser(
        "model", help="model-only latency, throughput and memory beside the paper's Tables 3 and 4",
        description="Model-only benchmark of ICNet sub4/sub24/sub124, the PSPNet50 baseline, PIDNet and DDRNet.")
    model.add_argument("--models", default=",".join(ICNET_MODELS),
                       help=f"comma list of {', '.join(MODELS)} (default: the paper's ICNet models; add "
                            "PIDNet and DDRNet to compare them in the same run)")
    model.add_argument("--sizes", default=",".join(f"{h}x{w}" for h, w in DEFAULT_SIZES),
                       help="comma list of HEIGHTxWIDTH network inputs")
    model.add_argument("--devices", default=None, help="comma list of cpu, cuda (default: cpu, and cuda if present)")
    model.add_argument("--precisions", default="fp32,fp16,bf16", help="comma list of fp32, fp16, bf16")
    model.add_argument("--backends", default=",".join(DEFAULT_BACKENDS),
                       help=f"comma list of base[+modifier...][@precision]; bases {', '.join(BASES)}; "
                            f"modifiers {', '.join(MODIFIERS)}; @precision runs that entry at that "
                            "precision only, others run at every --precisions")
    model.add_argument("--warmup", type=int, default=2, help="warm-up forwards per configuration")
    model.add_argument("--repeats", type=int, default=10, help="timed rounds (one forward per configuration each)")
    model.add_argument("--batch", type=int, default=1, help="batch size of the throughput measurement")
    model.add_argument("--threads", type=int, default=0, help="CPU threads for torch and onnxruntime (0: torch's default)")
    model.add_argument("--seed", type=int, default=0)
    model.add_argument("--no-memory", action="store_true", help="skip the peak-memory subprocesses")
    model.add_argument("--compile-mode", choices=("default", "max-autotune"), default="default")
    model.add_argument("--ort-spinning", action="store_true",
                       help="let onnxruntime's threads spin between ops (off: fairer when interleaved)")
    model.add_argument("--out-dir", default="bench/results", help="where the JSON and Markdown go")
    model.add_argument("--label", default="", help="added to the file names (lower-case letters, digits, '-')")
    report = commands.add_parser(
        "report", help="rewrite the Markdown of a results JSON file (refreshing its derived ratios and counted costs)")
    report.add_argument("json", type=Path, help="a results file written by icnet-bench model")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "report":
            json_path, md_path = args.json, args.json.with_suffix(".md")
            report = _read_report(json_path)
            for name, info in report["models"].items():  # counted, not measured: refresh
                info["costs"] = {size: model_costs(name, *map(int, size.split("x"))) for size in info["costs"]}
            report["ratios"] = ratios(report["results"])
            json_path.write_text(json.dumps(report, indent=1, default=float) + "\n")
            md_path.write_text(markdown(report))
        else:
            report, json_path, md_path = run_model_benchmark(settings_from_args(args))
    except BenchError as error:
        print(f"icnet-bench: error: {error}", file=sys.stderr)
        return 2
    print(markdown(report))
    print(f"wrote {json_path} and {md_path}")
    return 0


def _read_report(path: Path) -> dict[str, Any]:
    try:
        report = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise BenchError(f"cannot read {path}: {error}") from None
    if not isinstance(report, dict) or report.get("schema") != SCHEMA:
        raise BenchError(f"{path} is not an icnet-bench model report (schema {SCHEMA})")
    return report


if __name__ == "__main__":
    sys.exit(main())
