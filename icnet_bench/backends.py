"""Backends of ``icnet-bench model``: each prepared configuration becomes a :class:`Runner`
(one forward on a fixed input). ``eager``, ``compile``, ``cuda_graphs``, ``onnxruntime``,
``tensorrt``; modifiers ``channels_last`` and ``fold`` (BN merged into the convolutions)."""

from __future__ import annotations

import contextlib
import copy
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from icnet_bench.model_cases import PRECISIONS, Case, Settings
from icnet_bench.model_zoo import random_image
from icnet_bench.settings import BenchError
from icnet_ros.runtime.device import set_tf32, tf32_enabled
from icnet_ros.runtime.onnx_network import quiet_export


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


def export_onnx(model: nn.Module, example: torch.Tensor, path: Path) -> Path:
    """Export ``model`` at the static shape of ``example`` (reused when already exported)."""
    if not path.is_file():
        with quiet_export(), torch.no_grad():
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
def torch_settings(settings: Settings) -> Iterator[None]:
    """Threads, cuDNN autotuning, true fp32 and dynamo's recompile limit for the run; restored after.

    TF32 is off: fp32 rows are fp32 as in the engine and the paper (TF32 would make the
    CUDA "fp32" rows reduced-precision convolutions, 10-bit mantissas).
    """
    import torch._dynamo.config as dynamo_config

    threads = torch.get_num_threads()
    cuda = any(device.startswith("cuda") for device in settings.devices)  # TF32: see set_tf32
    flags = {"benchmark": torch.backends.cudnn.benchmark, "tf32": tf32_enabled() if cuda else None}
    limits = {key: getattr(dynamo_config, key) for key in ("cache_size_limit", "recompile_limit")
              if hasattr(dynamo_config, key)}
    torch.set_num_threads(settings.threads)
    _set_flags(benchmark=True, tf32=False if cuda else None)
    for key in limits:
        setattr(dynamo_config, key, 256)  # one compiled graph per model, size and precision
    try:
        with torch.no_grad():
            yield
    finally:
        torch.set_num_threads(threads)
        _set_flags(**flags)
        for key, value in limits.items():
            setattr(dynamo_config, key, value)


def _set_flags(*, benchmark: bool, tf32: bool | None) -> None:
    torch.backends.cudnn.benchmark = benchmark
    if tf32 is not None:
        set_tf32(tf32)
