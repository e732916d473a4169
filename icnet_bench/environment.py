"""The machine and software a benchmark ran on, and why a configuration cannot run here."""

from __future__ import annotations

import importlib.util
import os
import platform
import re
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from icnet_bench.model_cases import Case


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

