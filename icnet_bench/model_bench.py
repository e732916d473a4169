"""icnet-bench: benchmarks side by side with the paper (ICNet, arXiv 1704.08545).

Subcommands (one per kind of benchmark; the node and many-camera ones come with the node):

- ``model``: model-only latency (median, p90 after warm-up; CUDA events on a GPU,
  ``perf_counter`` on the CPU), throughput and peak memory of ICNet sub4 / sub24 / sub124
  and the paper's PSPNet50 baseline, per device, precision and backend, with every
  backend's outputs checked against eager fp32. Prints the paper's Tables 3 and 4 beside
  the measured figures and writes JSON and Markdown to ``--out-dir``.

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
import contextlib
import copy
import datetime
import gc
import importlib.util
import io
import json
import logging
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
import weakref
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten
from torch.utils.flop_counter import FlopCounterMode

from icnet_ros.model import icnet, pspnet50_baseline
from icnet_bench.settings import BenchError, choices, comma_list, parse_size

SCHEMA = "icnet_ros.bench.model/1"
MODELS: dict[str, Callable[[], nn.Module]] = {
    "sub4": lambda: icnet(branches="sub4"),
    "sub24": lambda: icnet(branches="sub24"),
    "sub124": lambda: icnet(branches="sub124"),
    "baseline": pspnet50_baseline,
}
DEVICES = ("cpu", "cuda")
PRECISIONS = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
BASES = ("eager", "compile", "cuda_graphs", "onnxruntime", "tensorrt")
MODIFIERS = ("channels_last", "fold")
ALIASES = {"channels_last": "eager+channels_last"}
DEFAULT_BACKENDS = ("eager", "eager+fold", "eager+channels_last+fold", "compile",
                    "cuda_graphs+channels_last+fold", "onnxruntime", "tensorrt")
DEFAULT_SIZES = ((1025, 2049), (513, 1025))
# Relative L2 error ||out - ref|| / ||ref|| against eager fp32 below which outputs agree
# (fp32 leaves room for TF32 convolutions on NVIDIA GPUs).
TOLERANCE = {"fp32": 5e-3, "fp16": 2e-2, "bf16": 6e-2}
CALIBRATION_SIZE = (129, 257)
RESIDUAL_BRANCH_SCALE = 0.5
MEMORY_METHOD = {
    "cpu": "peak resident set (VmHWM, reset after imports) minus resident set after imports, "
           "fresh subprocess per configuration, over model build, backend preparation, a "
           "warm-up and a measured forward (weights, input, activations, caches)",
    "cuda": "torch.cuda.max_memory_allocated in a fresh subprocess per configuration, over "
            "model upload, backend preparation, a warm-up and a measured forward",
}

# The paper's Tables 3 and 4 (Cityscapes val, TitanX Maxwell, Caffe, 1024x2048 input).
PAPER = {
    "device": "NVIDIA TitanX (Maxwell), Caffe, fp32, 1024x2048",
    "table3": {"baseline": {"miou": 67.9, "time_ms": 170, "fps": 5.9, "memory_gb": 9.2},
               "sub124": {"miou": 67.7, "time_ms": 33, "fps": 30.3, "memory_gb": 1.6},
               "speedup": 5.1, "memory_saving": 5.8},
    "table4": {"baseline": {"miou": 67.9, "time_ms": 170, "fps": 5.9, "memory_saving": 1.0},
               "sub4": {"miou": 59.6, "time_ms": 18, "fps": 55.6, "memory_saving": 15.3},
               "sub24": {"miou": 66.5, "time_ms": 25, "fps": 40.0, "memory_saving": 8.4},
               "sub124": {"miou": 67.7, "time_ms": 33, "fps": 30.3, "memory_saving": 5.8}},
}




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


@dataclass
class Runner:
    """A prepared configuration: ``run()`` does one forward on a fixed input."""

    run: Callable[[], Any]
    to_tensor: Callable[[Any], torch.Tensor]
    device: str
    cuda_events: bool = True
    keep: list[Any] = field(default_factory=list)

    def time_ms(self) -> float:
        """Wall time of one forward: CUDA events where possible, else a synchronised clock."""
        if self.device == "cuda":
            torch.cuda.current_stream().synchronize()
            if self.cuda_events:
                start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                start.record()
                self.run()
                end.record()
                end.synchronize()
                return start.elapsed_time(end)
            t0 = time.perf_counter()
            self.run()
            torch.cuda.synchronize()
            return (time.perf_counter() - t0) * 1e3
        t0 = time.perf_counter()
        self.run()
        return (time.perf_counter() - t0) * 1e3


# ---------------------------------------------------------------------------- options


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


# ------------------------------------------------------------------------ environment


def _cpu_flags() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    match = re.search(r"^flags\s*:\s*(.*)$", text, re.MULTILINE)
    return set(match.group(1).split()) if match else set()


def _cpu_model() -> str:
    try:
        match = re.search(r"^model name\s*:\s*(.*)$", Path("/proc/cpuinfo").read_text(), re.MULTILINE)
        if match:
            return match.group(1).strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(module: str) -> str | None:
    if importlib.util.find_spec(module) is None:
        return None
    try:
        return getattr(__import__(module), "__version__", "unknown")
    except Exception as error:  # a broken install is reported, not fatal
        return f"unusable: {error}"


def _onednn_version() -> str | None:
    match = re.search(r"MKL-DNN v([\d.]+)", torch.__config__.show())
    return match.group(1) if match else None


def machine_info(devices: Sequence[str]) -> dict[str, Any]:
    flags = _cpu_flags()
    gpus = ([torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
            if torch.cuda.is_available() else [])
    cuda = "cuda" in devices and bool(gpus)
    name = gpus[0] if cuda else f"cpu-{_cpu_model()}-{len(os.sched_getaffinity(0))}c"
    kind = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return {
        "kind": kind,
        "cpu": _cpu_model(),
        "cores": len(os.sched_getaffinity(0)),
        "cpu_features": sorted(flags & {"avx2", "avx512f", "avx512_bf16", "avx512_fp16",
                                         "avx512_vnni", "amx_bf16", "amx_fp16", "amx_tile"}),
        "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "gpu": gpus or None,
        "load_average": [round(v, 2) for v in os.getloadavg()],
        "platform": platform.platform(),
    }


def versions() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "onednn": _onednn_version(),
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.cuda.is_available() else None,
        "numpy": np.__version__,
        "onnx": _version("onnx"),
        "onnxruntime": _version("onnxruntime"),
        "onnxscript": _version("onnxscript"),
        "tensorrt": _version("tensorrt"),
        "triton": _version("triton"),
    }


def skip_reason(case: Case) -> str | None:
    """Why ``case`` cannot run on this machine, or None."""
    flags = _cpu_flags()
    if case.device == "cuda" and not torch.cuda.is_available():
        return "no CUDA device (torch.cuda.is_available() is False)"
    if case.base == "cuda_graphs" and case.device != "cuda":
        return "CUDA graphs need a CUDA device"
    if case.base == "tensorrt":
        if case.device != "cuda":
            return "TensorRT runs on CUDA devices only"
        if importlib.util.find_spec("tensorrt") is None:
            return "TensorRT is not installed (python module tensorrt)"
        if case.precision == "bf16":
            return "the TensorRT path of this tool builds fp32 and fp16 engines only"
    if case.base == "onnxruntime":
        if importlib.util.find_spec("onnxruntime") is None:
            return "onnxruntime is not installed"
        import onnxruntime
        if case.device == "cuda" and "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
            return "onnxruntime has no CUDAExecutionProvider here (install onnxruntime-gpu)"
        if case.precision == "bf16":
            return "onnxruntime has no bf16 convolution kernels"
        if case.precision == "fp16" and case.device == "cpu":
            return "onnxruntime's CPU provider has no fp16 convolution kernels on x86"
    if case.base == "compile":
        if case.device == "cpu" and not any(shutil.which(c) for c in (os.environ.get("CXX", "g++"), "c++", "clang++")):
            return "torch.compile (inductor) on the CPU needs a C++ compiler; none found"
        if case.device == "cuda" and importlib.util.find_spec("triton") is None:
            return "torch.compile (inductor) on CUDA needs triton; not installed"
    if case.device == "cpu":
        if case.precision == "fp16" and not flags & {"avx512_fp16", "amx_fp16"}:
            return "this CPU has no native fp16 arithmetic (no avx512_fp16/amx_fp16): PyTorch would emulate it"
        if case.precision == "bf16" and not flags & {"avx512_bf16", "amx_bf16"}:
            return "this CPU has no native bf16 arithmetic (no avx512_bf16/amx_bf16)"
    if case.device == "cuda" and case.precision == "bf16" and not torch.cuda.is_bf16_supported():
        return "this GPU has no bf16 support"
    return None


# ------------------------------------------------------------------------------ models


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
        model(random_image(1, *CALIBRATION_SIZE, seed + 1))
    for norm in norms:
        norm.momentum = 0.1
    with torch.no_grad():
        for module_name, module in model.named_modules():
            if module_name.endswith("_1x1_increase"):
                module.bn.weight.mul_(RESIDUAL_BRANCH_SCALE)
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
        model(torch.empty(1, 3, height, width, device="meta"))
    return {"gmac": round(flops.get_total_flops() / 2e9, 3), "all_blobs_mb": round(tensors.total / 2**20, 1),
            "live_peak_mb": round(tensors.peak / 2**20, 1)}


# ---------------------------------------------------------------------------- backends


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence the ONNX exporter's progress prints and warnings."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def export_onnx(model: nn.Module, example: torch.Tensor, path: Path) -> Path:
    """Export ``model`` at the static shape of ``example`` (reused when already exported)."""
    if not path.is_file():
        with _quiet(), torch.no_grad():
            torch.onnx.export(model, (example,), str(path), input_names=["image"],
                              output_names=["logits"], dynamo=True, verbose=False)
    return path


def _compile_options(mode: str) -> dict[str, Any]:
    options: dict[str, Any] = {"freezing": True}
    if mode == "max-autotune":
        options.update(max_autotune=True)
    return options


def _onnxruntime_runner(case: Case, model: nn.Module, image: torch.Tensor, settings: Settings,
                        onnx_path: Path) -> Runner:
    import onnxruntime

    export_onnx(model, image, onnx_path)
    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    options.intra_op_num_threads = settings.threads
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if settings.ort_spinning else "0")
    options.log_severity_level = 3
    if case.device == "cpu":
        session = onnxruntime.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
        feed = {"image": image.numpy()}
        return Runner(lambda: session.run(None, feed)[0], lambda out: torch.from_numpy(out).float(),
                      "cpu", keep=[session])
    session = onnxruntime.InferenceSession(
        str(onnx_path), options, providers=[("CUDAExecutionProvider", {"device_id": 0}), "CPUExecutionProvider"])
    output = torch.empty(image.shape[0], model_out_channels(model), *image.shape[-2:],
                         device="cuda", dtype=image.dtype)
    binding = session.io_binding()
    element = np.float16 if image.dtype == torch.float16 else np.float32
    binding.bind_input("image", "cuda", 0, element, tuple(image.shape), image.data_ptr())
    binding.bind_output("logits", "cuda", 0, element, tuple(output.shape), output.data_ptr())

    def run() -> torch.Tensor:
        session.run_with_iobinding(binding)
        return output

    return Runner(run, lambda out: out.float().cpu(), "cuda", cuda_events=False, keep=[session, binding, image])


def _tensorrt_runner(case: Case, model: nn.Module, image: torch.Tensor, onnx_path: Path) -> Runner:
    import tensorrt as trt

    export_onnx(model.float(), image.float(), onnx_path)
    logger = trt.Logger(trt.Logger.ERROR)
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(onnx_path.read_bytes()):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise RuntimeError(f"TensorRT could not parse the ONNX model: {errors}")
    config = builder.create_builder_config()
    if case.precision == "fp16":
        config.set_flag(trt.BuilderFlag.FP16)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise RuntimeError("TensorRT failed to build an engine")
    engine = trt.Runtime(logger).deserialize_cuda_engine(serialized)
    context = engine.create_execution_context()
    x = image.float().contiguous()
    output = torch.empty(x.shape[0], model_out_channels(model), *x.shape[-2:], device="cuda")
    context.set_tensor_address("image", x.data_ptr())
    context.set_tensor_address("logits", output.data_ptr())

    def run() -> torch.Tensor:
        if not context.execute_async_v3(torch.cuda.current_stream().cuda_stream):
            raise RuntimeError("TensorRT execution failed")
        return output

    return Runner(run, lambda out: out.float().cpu(), "cuda", keep=[engine, context, x, output])


def model_out_channels(model: nn.Module) -> int:
    """Number of classes of an ICNet or PSPNet (its ``num_classes`` setting)."""
    return int(model.config["num_classes"])


def prepare(case: Case, model: nn.Module, settings: Settings, workdir: Path, batch: int = 1) -> Runner:
    """Build the runner of ``case`` from the calibrated fp32 CPU ``model`` (left untouched)."""
    dtype = PRECISIONS[case.precision]
    device = torch.device(case.device)
    model = copy.deepcopy(model)
    if "fold" in case.modifiers:
        model.fold_batchnorm()
    model = model.to(device=device, dtype=dtype)
    image = random_image(batch, case.height, case.width, settings.seed).to(device=device, dtype=dtype)
    if "channels_last" in case.modifiers:
        model = model.to(memory_format=torch.channels_last)
        image = image.contiguous(memory_format=torch.channels_last)
    to_tensor = lambda out: out.float().cpu()  # noqa: E731
    name = f"{case.model}_{case.size}_b{batch}_{case.precision}{'_fold' if 'fold' in case.modifiers else ''}"
    if case.base == "eager":
        return Runner(lambda: model(image), to_tensor, case.device, keep=[model, image])
    if case.base == "compile":
        compiled = torch.compile(model, options=_compile_options(settings.compile_mode))
        return Runner(lambda: compiled(image), to_tensor, case.device, keep=[compiled, image])
    if case.base == "cuda_graphs":
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            for _ in range(3):
                model(image)
        torch.cuda.current_stream().wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            output = model(image)

        def replay() -> torch.Tensor:
            graph.replay()
            return output

        return Runner(replay, to_tensor, "cuda", keep=[graph, model, image, output])
    if case.base == "onnxruntime":
        return _onnxruntime_runner(case, model, image, settings, workdir / f"{name}_{case.device}.onnx")
    if case.base == "tensorrt":
        return _tensorrt_runner(case, model, image, workdir / f"{name}_trt.onnx")
    raise BenchError(f"unknown backend {case.backend!r}")


@contextlib.contextmanager
def _torch_settings(settings: Settings) -> Iterator[None]:
    """Threads, cuDNN autotuning and dynamo's recompile limit for the run; restored after."""
    import torch._dynamo.config as dynamo_config

    threads = torch.get_num_threads()
    benchmark = torch.backends.cudnn.benchmark
    limits = {key: getattr(dynamo_config, key) for key in ("cache_size_limit", "recompile_limit")
              if hasattr(dynamo_config, key)}
    torch.set_num_threads(settings.threads)
    torch.backends.cudnn.benchmark = True
    for key in limits:
        setattr(dynamo_config, key, 256)  # one compiled graph per model, size and precision
    try:
        with torch.no_grad():
            yield
    finally:
        torch.set_num_threads(threads)
        torch.backends.cudnn.benchmark = benchmark
        for key, value in limits.items():
            setattr(dynamo_config, key, value)


# ------------------------------------------------------------------------ measurements


def compare(out: torch.Tensor, ref: torch.Tensor, precision: str) -> dict[str, Any]:
    """Differences of ``out`` from the eager fp32 reference ``ref`` (both float32, CPU)."""
    if out.shape != ref.shape:
        return {"shape": list(out.shape), "within_tolerance": False}
    if not torch.isfinite(out).all():
        return {"finite": False, "within_tolerance": False}
    diff = (out - ref).abs()
    rel_l2 = float(torch.linalg.vector_norm(out - ref) / torch.linalg.vector_norm(ref))
    return {
        "max_abs": float(diff.max()),
        "max_rel": float(diff.max() / ref.abs().max()),
        "rel_l2": rel_l2,
        "label_agreement": float((out.argmax(1) == ref.argmax(1)).float().mean()),
        "tolerance_rel_l2": TOLERANCE[precision],
        "within_tolerance": rel_l2 <= TOLERANCE[precision],
    }


def summarize(samples: Sequence[float]) -> dict[str, Any]:
    ordered = sorted(samples)
    return {
        "median": statistics.median(ordered),
        "p90": float(np.percentile(ordered, 90)),
        "min": ordered[0],
        "mean": statistics.fmean(ordered),
        "samples": [round(s, 3) for s in samples],
    }


def time_interleaved(runners: dict[Case, Runner], repeats: int) -> dict[Case, list[float]]:
    """``repeats`` rounds, one forward of every runner per round, order rotated each round."""
    order = list(runners)
    samples: dict[Case, list[float]] = {case: [] for case in order}
    for round_ in range(repeats):
        shift = round_ % len(order)
        for case in order[shift:] + order[:shift]:
            samples[case].append(runners[case].time_ms())
    return samples


def _read_status(key: str) -> int | None:
    match = re.search(rf"^{key}:\s+(\d+) kB", Path("/proc/self/status").read_text(), re.MULTILINE)
    return int(match.group(1)) * 1024 if match else None


def memory_probe(request: dict[str, Any]) -> dict[str, Any]:
    """Run in a fresh process: peak memory of one configuration (see the module docstring)."""
    case = Case(**request["case"])
    settings = Settings(**request["settings"])
    if case.base == "onnxruntime":
        import onnxruntime  # noqa: F401  (imported before the baseline is taken)
    from safetensors.torch import load_file

    torch.set_num_threads(settings.threads)
    cuda = case.device == "cuda"
    if cuda:
        torch.cuda.init()
        torch.cuda.reset_peak_memory_stats()
    gc.collect()
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")  # restart VmHWM from the current RSS
    rss0 = _read_status("VmRSS")
    with torch.no_grad():
        model = build_model(case.model, settings.seed, load_file(request["state"]))
        runner = prepare(case, model, settings, Path(request["workdir"]))
        for _ in range(2):
            runner.to_tensor(runner.run())
    if cuda:
        if case.base in ("onnxruntime", "tensorrt"):
            return {"peak_mem_bytes": None, "memory_note": f"{case.base} allocates outside PyTorch's allocator"}
        return {"peak_mem_bytes": int(torch.cuda.max_memory_allocated())}
    hwm = _read_status("VmHWM")
    if rss0 is None or hwm is None:
        return {"peak_mem_bytes": None, "memory_note": "no /proc/self/status on this system"}
    return {"peak_mem_bytes": hwm - rss0}


def _memory_probe_main() -> int:
    """Entry of the memory subprocess: request JSON on stdin, result JSON on the last stdout line."""
    request = json.loads(sys.stdin.read())
    with _quiet():
        result = memory_probe(request)
    print(json.dumps(result))
    return 0


def measure_memory(case: Case, settings: Settings, state_path: Path, workdir: Path) -> dict[str, Any]:
    request = {"case": asdict(case), "settings": asdict(settings), "state": str(state_path),
               "workdir": str(workdir)}
    command = [sys.executable, "-c",
               "import sys; from icnet_bench.model_bench import _memory_probe_main; sys.exit(_memory_probe_main())"]
    try:
        done = subprocess.run(command, input=json.dumps(request), capture_output=True, text=True,
                              timeout=1800, check=False)
    except subprocess.TimeoutExpired:
        return {"peak_mem_bytes": None, "memory_note": "memory probe timed out"}
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {"peak_mem_bytes": None, "memory_note": f"memory probe failed: {tail}"}
    return json.loads(lines[-1])


# ------------------------------------------------------------------------------ driver


_STARTED = time.monotonic()


def _log(message: str) -> None:
    print(f"[{time.monotonic() - _STARTED:7.0f} s] {message}", file=sys.stderr, flush=True)


def run_size(height: int, width: int, settings: Settings, workdir: Path) -> list[dict[str, Any]]:
    """Every configuration at one input size: prepare, check outputs, time interleaved, memory."""
    from safetensors.torch import save_file

    rows: dict[Case, dict[str, Any]] = {}
    runners: dict[Case, Runner] = {}
    states: dict[str, Path] = {}
    for name in settings.models:
        model = build_model(name, settings.seed)
        states[name] = workdir / f"{name}_state.safetensors"
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(states[name]))
        reference = model(random_image(1, height, width, settings.seed)).float()
        for device, precision, backend in configurations(settings):
            case = Case(name, height, width, device, precision, backend)
            row = rows[case] = {**asdict(case), "status": "skipped"}
            reason = skip_reason(case)
            if reason:
                row["reason"] = reason
                continue
            _log(f"preparing {case.label()}")
            started = time.perf_counter()
            try:
                runner = prepare(case, model, settings, workdir)
                out = runner.to_tensor(runner.run())
                for _ in range(settings.warmup):
                    runner.run()
            except Exception as error:  # reported in the results, the run goes on
                row.update(status="error", reason=f"{type(error).__name__}: {error}".splitlines()[0][:300])
                continue
            row.update(status="ok", prepare_s=round(time.perf_counter() - started, 2),
                       outputs=compare(out, reference, precision),
                       timer="cuda_events" if device == "cuda" and runner.cuda_events else
                       ("perf_counter+synchronize" if device == "cuda" else "perf_counter"))
            runners[case] = runner
            del out
        del reference, model
        gc.collect()

    if runners:
        _log(f"timing {len(runners)} configurations at {height}x{width}, {settings.repeats} rounds")
        for case, samples in time_interleaved(runners, settings.repeats).items():
            latency = summarize(samples)
            rows[case].update(latency_ms=latency, batch=1,
                              throughput_fps=1e3 / latency["median"])
    runners.clear()
    gc.collect()

    ok = [case for case, row in rows.items() if row["status"] == "ok"]
    if settings.batch > 1 and ok:
        batched: dict[Case, Runner] = {}
        for case in ok:
            try:
                model = build_model(case.model, settings.seed, _load_state(states[case.model]))
                batched[case] = prepare(case, model, settings, workdir, batch=settings.batch)
                for _ in range(settings.warmup + 1):
                    batched[case].run()
            except Exception as error:
                rows[case]["throughput_note"] = f"batch {settings.batch} failed: {type(error).__name__}: {error}"[:300]
        for case, samples in time_interleaved(batched, settings.repeats).items():
            median = statistics.median(samples)
            rows[case].update(batch=settings.batch, throughput_fps=settings.batch * 1e3 / median,
                              batch_latency_ms=summarize(samples))
        batched.clear()
        gc.collect()

    if settings.memory:
        for case in ok:
            _log(f"memory of {case.label()}")
            rows[case].update(measure_memory(case, settings, states[case.model], workdir))
    return list(rows.values())


def _load_state(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file
    return load_file(str(path))


def _find(results: list[dict[str, Any]], **key: Any) -> dict[str, Any] | None:
    for row in results:
        if row["status"] == "ok" and all(row[k] == v for k, v in key.items()):
            return row
    return None


def _paired(slow: dict[str, Any], fast: dict[str, Any]) -> float:
    """Median over rounds of slow/fast, both timed in the same round (robust to load drifts)."""
    pairs = zip(slow["latency_ms"]["samples"], fast["latency_ms"]["samples"])
    return statistics.median(a / b for a, b in pairs)


def ratios(results: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """ICNet vs baseline, the branches against each other, backends against eager fp32.

    Ratios of medians, and (``*_paired``) the median of the per-round ratios.
    """
    groups = list(dict.fromkeys((r["height"], r["width"], r["device"], r["precision"], r["backend"])
                                for r in results if r["status"] == "ok"))  # in run order
    icnet_vs_baseline, branches = [], []
    for height, width, device, precision, backend in groups:
        key = dict(height=height, width=width, device=device, precision=precision, backend=backend)
        rows = {m: _find(results, model=m, **key) for m in MODELS}
        base, full = rows["baseline"], rows["sub124"]
        if base and full:
            entry = {**key, "speedup": base["latency_ms"]["median"] / full["latency_ms"]["median"],
                     "speedup_paired": _paired(base, full)}
            if base.get("peak_mem_bytes") and full.get("peak_mem_bytes"):
                entry["memory_saving"] = base["peak_mem_bytes"] / full["peak_mem_bytes"]
            icnet_vs_baseline.append(entry)
        present = {m: r["latency_ms"]["median"] for m, r in rows.items() if r}
        if len(present) > 1:
            branches.append({**key, "median_ms": present,
                             "relative_to_sub124": {m: t / present["sub124"] for m, t in present.items()}
                             if "sub124" in present else None})
    backend_speedup = []
    for model in MODELS:
        for height, width, device in dict.fromkeys((r["height"], r["width"], r["device"]) for r in results):
            ref = _find(results, model=model, height=height, width=width, device=device,
                        precision="fp32", backend="eager")
            candidates = [r for r in results if r["status"] == "ok" and r["model"] == model
                          and (r["height"], r["width"], r["device"]) == (height, width, device)]
            if not ref or not candidates:
                continue
            agreeing = [r for r in candidates if r["outputs"].get("within_tolerance")] or candidates
            best = min(agreeing, key=lambda r: r["latency_ms"]["median"])
            best32 = min((r for r in agreeing if r["precision"] == "fp32"),
                         key=lambda r: r["latency_ms"]["median"], default=ref)
            backend_speedup.append({
                "model": model, "height": height, "width": width, "device": device,
                "best_backend": best["backend"], "best_precision": best["precision"],
                "speedup_vs_eager_fp32": ref["latency_ms"]["median"] / best["latency_ms"]["median"],
                "speedup_paired": _paired(ref, best), "outputs": best["outputs"],
                "best_fp32_backend": best32["backend"],
                "best_fp32_speedup": ref["latency_ms"]["median"] / best32["latency_ms"]["median"],
                "best_fp32_outputs": best32["outputs"],
            })
    return {"icnet_vs_baseline": icnet_vs_baseline, "branches": branches, "backend_speedup": backend_speedup}


# ---------------------------------------------------------------------------- reports


def _ms(row: dict[str, Any] | None) -> str:
    return f"{row['latency_ms']['median']:.1f}" if row else "-"


def _mb(row: dict[str, Any] | None) -> str:
    value = row.get("peak_mem_bytes") if row else None
    return f"{value / 2**20:.0f}" if value else "-"


def markdown(report: dict[str, Any]) -> str:
    """The report as Markdown: paper tables beside the measurements, then every row."""
    results, machine = report["results"], report["machine"]
    t3, t4 = PAPER["table3"], PAPER["table4"]
    lines = [
        f"# icnet-bench model: {machine['kind']}, {report['date']}",
        "",
        f"Machine: {machine['cpu']} ({machine['cores']} cores), GPU: {', '.join(machine['gpu'] or ['none'])}; "
        f"load average at start {machine['load_average']}. Versions: "
        + ", ".join(f"{k} {v}" for k, v in report["versions"].items() if v) + ".",
        f"Settings: {report['settings']['repeats']} interleaved rounds after {report['settings']['warmup']} "
        f"warm-up forwards, batch 1 latency, {report['settings']['threads']} threads; "
        "random weights with calibrated BN; outputs compared with eager fp32 on the CPU.",
        "",
        "## Table 3: ICNet (sub124) against the PSPNet50 baseline",
        "",
        "| source | size | device / precision / backend | baseline ms | ICNet ms | speedup (paired) "
        "| baseline MB | ICNet MB | memory saving |",
        "|---|---|---|---|---|---|---|---|---|",
        f"| paper | 1024x2048 | {PAPER['device']} | {t3['baseline']['time_ms']} | {t3['sub124']['time_ms']} | "
        f"{t3['speedup']}x | {t3['baseline']['memory_gb'] * 1024:.0f} | {t3['sub124']['memory_gb'] * 1024:.0f} "
        f"| {t3['memory_saving']}x |",
    ]
    for entry in report["ratios"]["icnet_vs_baseline"]:
        key = {k: entry[k] for k in ("height", "width", "device", "precision", "backend")}
        base, full = _find(results, model="baseline", **key), _find(results, model="sub124", **key)
        saving = f"{entry['memory_saving']:.1f}x" if "memory_saving" in entry else "-"
        lines.append(f"| measured | {entry['height']}x{entry['width']} | {entry['device']} / {entry['precision']} / "
                     f"{entry['backend']} | {_ms(base)} | {_ms(full)} | {entry['speedup']:.1f}x "
                     f"({entry.get('speedup_paired', float('nan')):.1f}x) | {_mb(base)} | "
                     f"{_mb(full)} | {saving} |")
    models = report["models"]
    if "baseline" in models and "sub124" in models:
        for size, cost in models["baseline"]["costs"].items():
            full = models["sub124"]["costs"][size]
            lines.append(f"| counted | {size} | every intermediate kept (no reuse, like Caffe); fp32 | "
                         f"{cost['gmac']:.0f} GMAC | {full['gmac']:.1f} GMAC | {cost['gmac'] / full['gmac']:.1f}x (MAC) | "
                         f"{cost['all_blobs_mb']:.0f} | {full['all_blobs_mb']:.0f} | "
                         f"{cost['all_blobs_mb'] / full['all_blobs_mb']:.1f}x |")
            if "live_peak_mb" in cost:
                lines.append(f"| counted | {size} | eager, unused intermediates freed: peak live tensors; fp32 | | | | "
                             f"{cost['live_peak_mb']:.0f} | {full['live_peak_mb']:.0f} | "
                             f"{cost['live_peak_mb'] / full['live_peak_mb']:.1f}x |")
    lines += [
        "",
        "## Table 4: the cascade branches (median ms; in brackets: speedup over the baseline)",
        "",
        "| source | size | device / precision / backend | baseline | sub4 | sub24 | sub124 | sub4 : sub24 : sub124 |",
        "|---|---|---|---|---|---|---|---|",
        f"| paper | 1024x2048 | {PAPER['device']} | 170 | 18 (9.4x) | 25 (6.8x) | 33 (5.2x) | "
        f"{18 / 33:.2f} : {25 / 33:.2f} : 1 |",
    ]
    for entry in report["ratios"]["branches"]:
        times = entry["median_ms"]
        base = times.get("baseline")
        cells = [f"{times[m]:.1f}" + (f" ({base / times[m]:.1f}x)" if base and m != "baseline" else "")
                 if m in times else "-" for m in MODELS if m != "baseline"]
        rel = entry["relative_to_sub124"]
        relative = " : ".join(f"{rel[m]:.2f}" if m in rel else "-" for m in ("sub4", "sub24", "sub124")) if rel else "-"
        lines.append(f"| measured | {entry['height']}x{entry['width']} | {entry['device']} / {entry['precision']} / "
                     f"{entry['backend']} | {f'{base:.1f}' if base else '-'} | {' | '.join(cells)} | {relative} |")
    lines += [
        "",
        f"Paper memory saving over the baseline (Table 4): sub4 {t4['sub4']['memory_saving']}x, "
        f"sub24 {t4['sub24']['memory_saving']}x, sub124 {t4['sub124']['memory_saving']}x.",
        "",
        "## Best backend against eager fp32 (outputs within tolerance)",
        "",
        "| model | size | device | best | speedup (paired) | rel L2 | label agreement | best fp32 | speedup | rel L2 |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for entry in report["ratios"]["backend_speedup"]:
        out, out32 = entry["outputs"], entry.get("best_fp32_outputs", {})
        lines.append(f"| {entry['model']} | {entry['height']}x{entry['width']} | {entry['device']} | "
                     f"{entry['best_precision']} {entry['best_backend']} | {entry['speedup_vs_eager_fp32']:.2f}x "
                     f"({entry.get('speedup_paired', float('nan')):.2f}x) | "
                     f"{out.get('rel_l2', float('nan')):.1e} | {out.get('label_agreement', float('nan')):.4f} | "
                     f"{entry.get('best_fp32_backend', '-')} | {entry.get('best_fp32_speedup', float('nan')):.2f}x | "
                     f"{out32.get('rel_l2', float('nan')):.1e} |")
    lines += [
        "",
        "## All configurations",
        "",
        "| model | size | device | precision | backend | median ms | p90 ms | fps | peak MB | rel L2 | max abs | "
        "labels | status |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in results:
        if row["status"] == "ok":
            out, lat = row["outputs"], row["latency_ms"]
            lines.append(
                f"| {row['model']} | {row['height']}x{row['width']} | {row['device']} | {row['precision']} | "
                f"{row['backend']} | {lat['median']:.1f} | {lat['p90']:.1f} | {row['throughput_fps']:.2f} | "
                f"{_mb(row)} | {out.get('rel_l2', float('nan')):.1e} | {out.get('max_abs', float('nan')):.2e} | "
                f"{out.get('label_agreement', float('nan')):.4f} | ok |")
    skipped = sorted({(row["device"], row["precision"], row["backend"], row["status"], row.get("reason", ""))
                      for row in results if row["status"] != "ok"})
    if skipped:
        lines += ["", "Not run:", ""]
        lines += [f"- {device} {precision} {backend}: {status}, {reason}"
                  for device, precision, backend, status, reason in skipped]
    lines += ["", "## Model costs (fp32, batch 1, counted on the meta device)", "",
              "| model | parameters | size | GMAC | all intermediate tensors MB | peak live tensors MB (eager) |",
              "|---|---|---|---|---|---|"]
    for name, info in report["models"].items():
        for size, cost in info["costs"].items():
            live = f"{cost['live_peak_mb']:.0f}" if "live_peak_mb" in cost else "-"
            lines.append(f"| {name} | {info['parameters']:,} | {size} | {cost['gmac']:.1f} | "
                         f"{cost['all_blobs_mb']:.0f} | {live} |")
    lines += ["", f"Peak memory: {report['settings']['memory_method']}.", ""]
    return "\n".join(lines)


def _output_paths(out_dir: Path, kind: str, date: str, label: str) -> tuple[Path, Path]:
    """``model_<kind>_<date>[_<label>][_<n>]``: never overwrites an earlier run."""
    base = f"model_{kind}_{date}" + (f"_{label}" if label else "")
    stem, index = base, 1
    while (out_dir / f"{stem}.json").exists():
        index += 1
        stem = f"{base}_{index}"
    return out_dir / f"{stem}.json", out_dir / f"{stem}.md"


def run_model_benchmark(settings: Settings) -> tuple[dict[str, Any], Path, Path]:
    """Run ``icnet-bench model``; return the report and the JSON and Markdown paths."""
    now = datetime.datetime.now(datetime.timezone.utc)
    machine = machine_info(settings.devices)
    report: dict[str, Any] = {
        "schema": SCHEMA,
        "date": now.isoformat(timespec="seconds"),
        "machine": machine,
        "versions": versions(),
        "settings": {**asdict(settings), "tolerance_rel_l2": TOLERANCE,
                     "memory_method": MEMORY_METHOD["cuda" if machine["gpu"] and "cuda" in settings.devices
                                                    else "cpu"],
                     "reference": "eager fp32 on the CPU, same random weights and input",
                     "weights": "random (seeded), BN statistics calibrated on one random "
                                f"{CALIBRATION_SIZE[0]}x{CALIBRATION_SIZE[1]} image, residual branches' "
                                f"last BN scaled by {RESIDUAL_BRANCH_SCALE}"},
        "paper": PAPER,
        "models": {},
        "results": [],
    }
    for name in settings.models:
        report["models"][name] = {
            "parameters": sum(p.numel() for p in MODELS[name]().parameters()),
            "costs": {f"{h}x{w}": model_costs(name, h, w) for h, w in settings.sizes},
        }
    with tempfile.TemporaryDirectory(prefix="icnet-bench-") as tmp, _torch_settings(settings):
        for height, width in settings.sizes:
            report["results"] += run_size(height, width, settings, Path(tmp))
    report["ratios"] = ratios(report["results"])
    out_dir = Path(settings.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path, md_path = _output_paths(out_dir, machine["kind"], now.strftime("%Y-%m-%d"), settings.label)
    json_path.write_text(json.dumps(report, indent=1, default=float) + "\n")
    md_path.write_text(markdown(report))
    return report, json_path, md_path


# -------------------------------------------------------------------------------- CLI


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="icnet-bench", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    model = commands.add_parser(
        "model", help="model-only latency, throughput and memory beside the paper's Tables 3 and 4",
        description="Model-only benchmark of ICNet sub4/sub24/sub124 and the PSPNet50 baseline.")
    model.add_argument("--models", default=",".join(MODELS), help=f"comma list of {', '.join(MODELS)}")
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
