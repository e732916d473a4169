"""The network the engine runs: BN folded into the convolutions in fp32, then cast.

Casting a trained network with its BN statistics to fp16 breaks it: running variances
of trained weights reach 1e6 (inf in fp16) on the 0..255 input the official weights
take. Folded in fp32 first, each convolution's weight and bias carry ``gamma /
sqrt(var + eps)``, which fp16 and bf16 hold well; it is also one operation fewer per
layer (faster on every device). Memory format: channels_last (1.1-3x faster on the CPU
measured here, and what tensor cores want). On the CPU in fp32 onnxruntime runs the same
network faster (:mod:`onnx_network`).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import torch

from icnet_ros.model import ICNet
from icnet_ros.runtime import onnx_network

MEMORY_FORMAT = torch.channels_last
CPU_BACKENDS = ("auto", "torch", "onnxruntime")


def folded_network(model: ICNet, device: torch.device, dtype: torch.dtype) -> ICNet:
    """``model`` (any stored dtype) with BN folded in fp32, then on ``device`` in ``dtype``; in place, eval mode."""
    model = model.float().eval()
    model.fold_batchnorm()
    return model.to(device, dtype, memory_format=MEMORY_FORMAT)


def network_runner(model: ICNet, precision: str, cpu_backend: str,
                   input_size: tuple[int, int]) -> Callable[[torch.Tensor], torch.Tensor]:
    """What runs the folded ``model`` (on its device, in its dtype): the module itself, or on
    the CPU in fp32 onnxruntime (``cpu_backend`` ``onnxruntime``, or ``auto`` where installed)."""
    if cpu_backend not in CPU_BACKENDS:
        raise ValueError(f"cpu_backend must be one of {', '.join(CPU_BACKENDS)}, got {cpu_backend!r}")
    parameter = next(model.parameters())
    fp32_cpu = parameter.device.type == "cpu" and parameter.dtype == torch.float32
    automatic = cpu_backend == "auto"
    if automatic:
        cpu_backend = "onnxruntime" if fp32_cpu and onnx_network.available() else "torch"
    if cpu_backend == "torch":
        return model
    if not fp32_cpu:
        raise ValueError(f"cpu_backend onnxruntime runs fp32 on the CPU only, not {precision} on "
                         f"{parameter.device}")
    try:
        return onnx_network.OnnxRuntimeNetwork(model, input_size, torch.get_num_threads())
    except RuntimeError as error:
        if not automatic:
            raise
        warnings.warn(f"running the network with torch: {error}", RuntimeWarning, stacklevel=3)
        return model
