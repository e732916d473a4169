"""The configurations of ``icnet-bench model``: what runs (model, size, device, precision,
backend) and the options, validated with the reason when refused."""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass

import torch

from icnet_bench.model_zoo import MODELS
from icnet_bench.settings import BenchError, choices, comma_list, parse_size

SCHEMA = "icnet_ros.bench.model/1"
DEVICES = ("cpu", "cuda")
PRECISIONS = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
BASES = ("eager", "compile", "cuda_graphs", "onnxruntime", "tensorrt")
MODIFIERS = ("channels_last", "fold")
ALIASES = {"channels_last": "eager+channels_last"}
DEFAULT_BACKENDS = ("eager", "eager+fold", "eager+channels_last+fold", "compile",
                    "cuda_graphs+channels_last+fold", "onnxruntime", "tensorrt")
DEFAULT_SIZES = ((1025, 2049), (513, 1025))
# Relative L2 error ||out - ref|| / ||ref|| against eager fp32 below which outputs agree
# (fp32 is true fp32 everywhere, TF32 off; the margin covers backends summing in other orders).
TOLERANCE = {"fp32": 5e-3, "fp16": 2e-2, "bf16": 6e-2}


@dataclass(frozen=True)
class Case:
    """One configuration: a model at one input size on one device, precision and backend."""

    model: str
    height: int
    width: int
    device: str
    precision: str
    backend: str

    @property
    def base(self) -> str:
        return self.backend.split("+")[0]

    @property
    def modifiers(self) -> set[str]:
        return set(self.backend.split("+")[1:])

    @property
    def size(self) -> str:
        return f"{self.height}x{self.width}"

    def label(self) -> str:
        return f"{self.model} {self.size} {self.device} {self.precision} {self.backend}"


@dataclass
class Settings:
    """Options of ``icnet-bench model``."""

    models: list[str]
    sizes: list[tuple[int, int]]
    devices: list[str]
    precisions: list[str]
    backends: list[str]
    warmup: int = 2
    repeats: int = 10
    batch: int = 1
    threads: int = 0
    seed: int = 0
    memory: bool = True
    compile_mode: str = "default"
    ort_spinning: bool = False
    out_dir: str = "bench/results"
    label: str = ""


def canonical_backend(text: str) -> str:
    """Validate ``base[+modifier...][@precision]`` and return it in canonical order."""
    text, _, precision = text.strip().partition("@")
    if precision and precision not in PRECISIONS:
        raise BenchError(f"unknown precision {precision!r} in backend {text!r}: choose from {', '.join(PRECISIONS)}")
    text = ALIASES.get(text, text)
    base, *mods = text.split("+")
    if base not in BASES:
        raise BenchError(f"unknown backend {base!r}: choose from {', '.join(BASES)} "
                         f"(modifiers: {', '.join(MODIFIERS)})")
    unknown = set(mods) - set(MODIFIERS)
    if unknown:
        raise BenchError(f"unknown backend modifier(s) {sorted(unknown)} in {text!r}: "
                         f"choose from {', '.join(MODIFIERS)}")
    if "channels_last" in mods and base in ("onnxruntime", "tensorrt"):
        raise BenchError(f"{base} chooses its own memory layout: channels_last does not apply")
    return "+".join([base, *(m for m in MODIFIERS if m in mods)]) + (f"@{precision}" if precision else "")


def configurations(settings: Settings) -> list[tuple[str, str, str]]:
    """(device, precision, backend) to run: ``backend@precision`` only at that precision."""
    found: dict[tuple[str, str, str], None] = {}
    for device in settings.devices:
        for precision in PRECISIONS:
            for spec in settings.backends:
                backend, _, only = spec.partition("@")
                if precision == only or (not only and precision in settings.precisions):
                    found[(device, precision, backend)] = None
    return list(found)


def settings_from_args(args: argparse.Namespace) -> Settings:
    if args.label and not re.fullmatch(r"[a-z0-9-]+", args.label):
        raise BenchError(f"--label {args.label!r}: use lower-case letters, digits and '-'")
    if args.repeats < 1 or args.warmup < 0 or args.batch < 1 or args.threads < 0:
        raise BenchError("--repeats and --batch must be at least 1, --warmup and --threads at least 0")
    default_devices = "cpu,cuda" if torch.cuda.is_available() else "cpu"
    return Settings(
        models=choices(args.models, list(MODELS), "model"),
        sizes=[parse_size(s, minimum=33) for s in comma_list(args.sizes)],
        devices=choices(args.devices or default_devices, DEVICES, "device"),
        precisions=choices(args.precisions, list(PRECISIONS), "precision"),
        backends=list(dict.fromkeys(canonical_backend(b) for b in comma_list(args.backends))),
        warmup=args.warmup, repeats=args.repeats, batch=args.batch,
        threads=args.threads or torch.get_num_threads(), seed=args.seed,
        memory=not args.no_memory, compile_mode=args.compile_mode,
        ort_spinning=args.ort_spinning, out_dir=args.out_dir, label=args.label,
    )

