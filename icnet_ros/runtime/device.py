"""Choosing the device and the numeric precision, refusing what cannot run, with the reason."""

from __future__ import annotations

import re

import torch
import torch.nn.functional as F

PRECISIONS: dict[str, torch.dtype] = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def select_device(spec: str) -> torch.device:
    """``auto`` (CUDA when available, else CPU), ``cpu``, ``cuda`` or ``cuda:N``."""
    text = str(spec).strip().lower()
    if text == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", torch.cuda.current_device())
        return torch.device("cpu")
    if text == "cpu":
        return torch.device("cpu")
    match = re.fullmatch(r"cuda(?::(\d+))?", text)
    if match is None:
        raise ValueError(f"device must be auto, cpu, cuda or cuda:N, got {spec!r}")
    if not torch.cuda.is_available():
        why = "this PyTorch build has no CUDA" if torch.version.cuda is None else "no CUDA GPU is visible"
        raise ValueError(f"device {spec!r} requested but {why} (torch {torch.__version__}); "
                         "use device 'cpu' or 'auto'")
    index = int(match.group(1) or torch.cuda.current_device())
    count = torch.cuda.device_count()
    if index >= count:
        raise ValueError(f"device {spec!r} requested but only {count} CUDA device(s) exist "
                         f"(cuda:0..cuda:{count - 1})")
    return torch.device("cuda", index)


def select_precision(device: torch.device, precision: str) -> torch.dtype:
    """The dtype for ``precision`` (fp32, fp16, bf16), or ValueError saying why ``device`` cannot."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    dtype = PRECISIONS[precision]
    if dtype == torch.float32:
        return dtype
    if device.type == "cuda":
        major, minor = torch.cuda.get_device_capability(device)
        if dtype == torch.bfloat16 and major < 8:
            raise ValueError(f"bf16 needs a GPU of compute capability 8.0 or newer; "
                             f"{torch.cuda.get_device_name(device)} is {major}.{minor} (use fp16)")
        return dtype
    try:  # CPUs differ: try the operation the network is made of
        F.conv2d(torch.ones(1, 2, 4, 4, dtype=dtype), torch.ones(2, 2, 3, 3, dtype=dtype), padding=1)
    except RuntimeError as error:
        raise ValueError(f"{precision} convolutions cannot run on this CPU: {error}") from None
    return dtype



def _new_tf32_api() -> bool:
    """Whether this torch has ``fp32_precision`` (2.9 on): once it is set, reading the older
    ``allow_tf32`` flags raises, so the project only ever uses one of the two."""
    return (hasattr(torch.backends.cuda.matmul, "fp32_precision")
            and hasattr(getattr(torch.backends.cudnn, "conv", None), "fp32_precision"))


def set_tf32(enabled: bool) -> None:
    """TF32 for CUDA float32 convolutions and matrix products, on or off (process-wide flags).

    With torch 2.13, once cuDNN's ``fp32_precision`` is ``ieee``, ``torch.backends.cudnn.flags()``
    raises in that process, and torch.export uses it: export in another process (as the
    engine does), or leave TF32 alone where no CUDA device runs (it means nothing on the CPU)."""
    if _new_tf32_api():
        precision = "tf32" if enabled else "ieee"
        torch.backends.cuda.matmul.fp32_precision = precision
        torch.backends.cudnn.conv.fp32_precision = precision
        if hasattr(getattr(torch.backends.cudnn, "rnn", None), "fp32_precision"):  # conv and rnn alike
            torch.backends.cudnn.rnn.fp32_precision = precision
    else:
        torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = enabled


def tf32_enabled() -> bool:
    """Whether CUDA float32 convolutions may use TF32 (what :func:`set_tf32` sets)."""
    if _new_tf32_api():
        return torch.backends.cudnn.conv.fp32_precision == "tf32"
    return torch.backends.cudnn.allow_tf32
