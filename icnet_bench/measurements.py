"""Measurements: outputs against the reference, latency statistics, interleaved timing,
and peak memory in a fresh subprocess per configuration."""

from __future__ import annotations

import contextlib
import gc
import json
import re
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from icnet_bench.backends import Runner, prepare
from icnet_bench.model_cases import TOLERANCE, Case, Settings
from icnet_bench.model_zoo import build_model
from icnet_bench.summaries import stats
from icnet_ros.runtime.device import set_tf32
from icnet_ros.runtime.onnx_network import quiet_export

MEMORY_METHOD = {
    "cpu": "peak resident set (VmHWM, reset after imports) minus resident set after imports, "
           "fresh subprocess per configuration, over model build, backend preparation, a "
           "warm-up and a measured forward (weights, input, activations, caches)",
    "cuda": "torch.cuda.max_memory_allocated in a fresh subprocess per configuration, over "
            "model upload, backend preparation, a warm-up and a measured forward",
}


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
    """Median, p90, min and mean of a case's latencies (:func:`summaries.stats`), and the samples."""
    summary = stats(samples)
    return {"median": summary["p50"], "p90": summary["p90"], "min": summary["min"], "mean": summary["mean"],
            "samples": [round(s, 3) for s in samples]}


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
    """Run in a fresh process: peak memory of one configuration (MEMORY_METHOD). No cuDNN
    autotuning here: its trial workspaces would count as the configuration's memory."""
    case = Case(**request["case"])
    settings = Settings(**request["settings"])
    if case.base == "onnxruntime":
        import onnxruntime  # noqa: F401  (imported before the baseline is taken)
    from safetensors.torch import load_file

    torch.set_num_threads(settings.threads)
    cuda = case.device == "cuda"
    if cuda:
        set_tf32(False)  # as the timed rows
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
    with quiet_export():
        result = memory_probe(request)
    print(json.dumps(result))
    return 0


def measure_memory(case: Case, settings: Settings, state_path: Path, workdir: Path) -> dict[str, Any]:
    request = {"case": asdict(case), "settings": asdict(settings), "state": str(state_path),
               "workdir": str(workdir)}
    command = [sys.executable, "-c",
               "import sys; from icnet_bench.measurements import _memory_probe_main; sys.exit(_memory_probe_main())"]
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
