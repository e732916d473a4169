"""The engine's network on onnxruntime (CPU, fp32; ``cpu_backend="onnxruntime"``): the fastest
CPU backend with the same masks.

The BN-folded fp32 network is exported with ``torch.onnx.export(dynamo=True)``, in a child
process (the exporter's imports, memory and threads never enter the engine's), at the
engine's fixed input size and batch 1 (a batch runs frame by frame: on the CPU a batch of
N costs about N single passes anyway, and a dynamic batch dimension does not export for
every input size; the TorchScript exporter cannot export the pyramid pooling). onnxruntime's
CPU provider (Conv+BN+ReLU+Add fusion, blocked layouts) runs it at 1025x2049 on one thread
at 2.0x a plain eager network, against 1.5x for the folded channels_last torch module
(docs/performance.md). The export takes seconds (11 s for the released width on a busy
2-core machine), so it is cached: one ONNX file per network (a hash of its tensors and
configuration), input size and versions, in ``$ICNET_ROS_CACHE`` or
``$XDG_CACHE_HOME/icnet_ros`` (default ``~/.cache/icnet_ros``), written atomically. Where
that folder cannot be written, the export goes to a temporary one.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import io
import json
import logging
import os
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from icnet_ros.model import registry


def available() -> bool:
    """Whether onnxruntime and the exporter's onnxscript are installed."""
    return all(importlib.util.find_spec(name) is not None for name in ("onnxruntime", "onnxscript"))


EXPORT_TIMEOUT_S = 600


class OnnxRuntimeNetwork:
    """``network(x)`` for an Nx3xHxW float32 CPU tensor of the exported size: logits as a tensor
    (frame by frame).

    onnxruntime's own exceptions become RuntimeError (what the engine treats as a failed frame).
    """

    def __init__(self, model: nn.Module, input_size: tuple[int, int], threads: int) -> None:
        import onnxruntime

        self._errors = (onnxruntime.capi.onnxruntime_pybind11_state.Fail,
                        onnxruntime.capi.onnxruntime_pybind11_state.RuntimeException)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        # No spinning between ops: on a shared CPU it burns the cores other work needs.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.log_severity_level = 3
        name = f"icnet_{_network_key(model, input_size, onnxruntime.__version__)}.onnx"
        with contextlib.ExitStack() as stack:
            folder = cache_folder()
            try:
                folder.mkdir(parents=True, exist_ok=True)
                if not os.access(folder, os.W_OK):
                    raise PermissionError(folder)
            except OSError:
                folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="icnet-onnx-")))
            path = folder / name
            if not path.is_file():
                _export(model, input_size, path)
            try:
                self._session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
            except self._errors + (onnxruntime.capi.onnxruntime_pybind11_state.InvalidProtobuf,):
                _export(model, input_size, path)  # a damaged cache file: export again
                self._session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        images = np.ascontiguousarray(x.detach().numpy(), np.float32)
        try:
            logits = [self._session.run(None, {"image": images[i: i + 1]})[0] for i in range(len(images))]
        except self._errors as error:
            raise RuntimeError(f"onnxruntime: {error}") from None
        return torch.from_numpy(logits[0] if len(logits) == 1 else np.concatenate(logits))


def cache_folder() -> Path:
    """Where exported networks are kept."""
    root = os.environ.get("ICNET_ROS_CACHE")
    if root:
        return Path(root) / "onnx"
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "icnet_ros" / "onnx"


def _network_key(model: nn.Module, input_size: tuple[int, int], runtime_version: str) -> str:
    """A hash of everything the exported file depends on."""
    digest = hashlib.sha256(json.dumps([torch.__version__, runtime_version, list(input_size),
                                        getattr(model, "config", {})], sort_keys=True, default=str).encode())
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:32]


def _export(model: nn.Module, input_size: tuple[int, int], path: Path) -> None:
    """Export in a child process (the exporter's imports, memory and threads stay there), to a
    temporary file beside ``path``, then rename it: readers never see half a file."""
    from safetensors.torch import save_file

    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        with tempfile.TemporaryDirectory(prefix="icnet-export-") as folder:
            state = Path(folder) / "network.safetensors"
            save_file({name: t.detach().cpu().contiguous() for name, t in model.state_dict().items()}, str(state))
            request = {"architecture": registry.architecture_of(model), "state": str(state), "input_size": list(input_size),
                       "output": str(partial)}
            done = subprocess.run([sys.executable, "-m", __name__], input=json.dumps(request), text=True,
                                  capture_output=True, timeout=EXPORT_TIMEOUT_S, check=False)
        if done.returncode != 0 or not partial.is_file():
            reason = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
            raise RuntimeError(f"the ONNX export failed: {reason}")
        os.replace(partial, path)
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"the ONNX export took more than {EXPORT_TIMEOUT_S} s") from None
    finally:
        partial.unlink(missing_ok=True)


def _export_main() -> None:
    """The child process: rebuild the folded network from its architecture and state, export it."""
    from safetensors.torch import load_file

    request = json.loads(sys.stdin.read())
    torch.set_num_threads(1)
    model = registry.build_network(request["architecture"]).eval()
    model.fold_batchnorm()  # the state is the folded network's
    model.load_state_dict(load_file(request["state"]))
    with quiet_export(), torch.no_grad():
        torch.onnx.export(model, (torch.zeros(1, 3, *request["input_size"]),), request["output"],
                          input_names=["image"], output_names=["logits"], dynamo=True, external_data=False,
                          verbose=False)


@contextlib.contextmanager
def quiet_export():
    """The exporter's progress prints, warnings and log lines are no news for the engine's user."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


if __name__ == "__main__":
    _export_main()
