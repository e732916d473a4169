"""The driver of ``icnet-bench model``: every configuration of every size, prepared,
checked, timed interleaved and measured, into one report (JSON and Markdown)."""

from __future__ import annotations

import datetime
import gc
import json
import statistics
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from icnet_bench.backends import Runner, prepare, torch_settings
from icnet_bench.environment import machine_info, skip_reason, versions
from icnet_bench.measurements import MEMORY_METHOD, compare, measure_memory, summarize, time_interleaved
from icnet_bench.model_cases import SCHEMA, TOLERANCE, Case, Settings, configurations
from icnet_bench.model_report import PAPER, markdown, ratios
from icnet_bench.model_zoo import (
    CALIBRATION_SIZE,
    MODELS,
    RESIDUAL_BRANCH_SCALE,
    build_model,
    input_size,
    model_costs,
    random_image,
)

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
        size = input_size(name, height, width)
        reference = model(random_image(1, *size, settings.seed)).float()
        for device, precision, backend in configurations(settings):
            case = Case(name, *size, device, precision, backend)
            row = rows[case] = {**asdict(case), "requested_size": f"{height}x{width}", "status": "skipped"}
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
                                f"last BN scaled by {RESIDUAL_BRANCH_SCALE}; unit-scale statistics cannot show "
                                "the fp16 overflow of trained BN variances (the engine folds BN in fp32 first; "
                                "test/runtime/test_precision.py checks trained weights)",
                     "fp32": "true fp32: TF32 off for cuDNN and matmul"},
        "paper": PAPER,
        "models": {},
        "results": [],
    }
    for name in settings.models:
        report["models"][name] = {
            "parameters": sum(p.numel() for p in MODELS[name]().parameters()),
            "costs": {f"{h}x{w}": model_costs(name, h, w) for h, w in settings.sizes},
        }
    with tempfile.TemporaryDirectory(prefix="icnet-bench-") as tmp, torch_settings(settings):
        for height, width in settings.sizes:
            report["results"] += run_size(height, width, settings, Path(tmp))
    report["ratios"] = ratios(report["results"])
    out_dir = Path(settings.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path, md_path = _output_paths(out_dir, machine["kind"], now.strftime("%Y-%m-%d"), settings.label)
    json_path.write_text(json.dumps(report, indent=1, default=float) + "\n")
    md_path.write_text(markdown(report))
    return report, json_path, md_path
