"""The engine checks and the summary of ``scripts/gpu_check.sh``:
``python -m icnet_bench.gpu_check engine OUT_DIR [--dry-run]`` and ``... summary OUT_DIR``.

Three checks with the demo weights, written to ``OUT_DIR/engine.json``:

- ``agreement``: class masks of fp32, fp16 and bf16 on the device against fp32 on the CPU
  (1024x2048 frames, network at 1025x2049): fraction of equal pixels per frame.
- ``sync_free``: the steady state (every device encoding alone, batches, changing batch
  compositions) under ``torch.cuda.set_sync_debug_mode("warn")``: synchronising calls counted.
- ``pipelining``: frames/s with the pipeline two deep (submit N+1 before collecting N)
  against one frame at a time, and the fraction of frames whose upload began before the
  previous frame was done (from the engine's CUDA events).

``--dry-run`` runs what needs no CUDA on the CPU at reduced sizes (the CPU reference and
the CPU's own fp16/bf16 agreement, the pipelining figures of the CPU engine) and marks
the CUDA parts skipped. Exit status 1 when a check fails its target.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import numpy as np
import torch

from icnet_bench.synthetic_frames import encode, smooth_scene
from icnet_ros.runtime.device_decoding import DEVICE_ENCODINGS
from icnet_ros.runtime.engine import SegmentationEngine
from icnet_ros.weights.demo import default_weights_path

MIN_AGREEMENT = {"fp32": 0.999, "fp16": 0.99, "bf16": 0.98}
FULL = {"frame": (1024, 2048), "network": (1025, 2049), "frames": 3, "timed": 40}
DRY = {"frame": (256, 512), "network": (257, 513), "frames": 2, "timed": 6}
REGION = 128  # pixels per colour cell of the smooth scenes (as test/runtime/test_precision.py)


def _masks(device: str, precision: str, frames: list[np.ndarray], size: dict) -> list[np.ndarray]:
    with SegmentationEngine(default_weights_path(), device=device, precision=precision,
                            input_size=size["network"]) as engine:
        return [engine.segment(frame).class_mask for frame in frames]


def agreement(device: str, size: dict) -> list[dict[str, Any]]:
    """Per precision on ``device``: per-frame agreement with CPU fp32, and whether it meets the target."""
    frames = [smooth_scene(*size["frame"], seed, cell=REGION) for seed in range(size["frames"])]
    reference = _masks("cpu", "fp32", frames, size)
    rows = []
    for precision in ("fp32", "fp16", "bf16") if device == "cuda" else ("fp16", "bf16"):
        try:
            masks = _masks(device, precision, frames, size)
        except ValueError as error:  # a precision this device cannot run, with the reason
            rows.append({"device": device, "precision": precision, "status": "skipped", "reason": str(error)})
            continue
        values = [float((a == b).mean()) for a, b in zip(masks, reference)]
        rows.append({"device": device, "precision": precision, "agreement": values,
                     "target": MIN_AGREEMENT[precision],
                     "status": "ok" if min(values) >= MIN_AGREEMENT[precision] else "failed"})
    return rows


def _steady_state(engine: SegmentationEngine, singles: list, batches: list[list]) -> int:
    """Frames through the pipeline, collected when full; returns the number of results."""
    pending: list[int] = []
    results = 0

    def room() -> None:
        nonlocal results
        if len(pending) == engine.pipeline_depth:
            for _ in range(pending.pop(0)):
                results += engine.collect() is not None

    for frame in singles:
        room()
        engine.submit(frame)
        pending.append(1)
    for batch in batches:
        room()
        engine.submit_batch(batch, want_confidence=True)
        pending.append(len(batch))
    while pending:
        for _ in range(pending.pop(0)):
            results += engine.collect() is not None
    return results


def sync_free(size: dict) -> dict[str, Any]:
    """Synchronising CUDA calls in the steady state (target: none)."""
    height, width = size["frame"]
    rgb = smooth_scene(height, width, 0, cell=REGION)
    small = smooth_scene(height // 2, width // 2, 1, cell=REGION)
    singles = [rgb] + [encode(rgb, encoding) for encoding in sorted(DEVICE_ENCODINGS)]
    batches = [[singles[1], singles[2], small], [singles[2], small], [singles[1]], [small, singles[1], singles[2]]]
    with SegmentationEngine(default_weights_path(), device="cuda", input_size=size["network"]) as engine:
        engine.warmup((height, width), batch_size=3)
        _steady_state(engine, singles, batches)  # every shape's buffers allocated once
        torch.cuda.synchronize()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            torch.cuda.set_sync_debug_mode("warn")
            try:
                results = _steady_state(engine, singles, batches)
            finally:
                torch.cuda.set_sync_debug_mode("default")
    synchronising = [str(w.message).splitlines()[0] for w in caught if "synchroniz" in str(w.message).lower()]
    return {"frames": results, "encodings": sorted(DEVICE_ENCODINGS) + ["rgb array"],
            "synchronising_calls": len(synchronising), "examples": sorted(set(synchronising))[:5],
            "status": "ok" if not synchronising else "failed"}


def pipelining(device: str, size: dict) -> dict[str, Any]:
    """Frames/s two deep against one at a time; overlap from CUDA events."""
    height, width = size["frame"]
    scenes = [smooth_scene(height, width, seed, cell=REGION) for seed in range(2)]
    # bgr8, the commonest camera encoding, where the device converts it (the CPU would need OpenCV).
    frames = [encode(rgb, "bgr8") for rgb in scenes] if device == "cuda" else scenes
    count = size["timed"]
    with SegmentationEngine(default_weights_path(), device=device, input_size=size["network"]) as engine:
        engine.warmup((height, width))
        start = time.perf_counter()
        for index in range(count):
            engine.segment(frames[index % 2])
        one_at_a_time = count / (time.perf_counter() - start)
        start = time.perf_counter()
        results = []
        for index in range(count):
            if engine.pending() == engine.pipeline_depth:
                results.append(engine.collect())
            engine.submit(frames[index % 2])
        while engine.pending():
            results.append(engine.collect())
        pipelined = count / (time.perf_counter() - start)
    row = {"device": device, "frames": count, "frame_size": [height, width], "network_input": list(size["network"]),
           "one_at_a_time_fps": round(one_at_a_time, 2), "pipelined_fps": round(pipelined, 2),
           "speedup": round(pipelined / one_at_a_time, 3), "status": "ok"}
    if device == "cuda":
        gaps = [before.events["done"].elapsed_time(after.events["upload"])
                for before, after in zip(results[1:], results[2:])]
        row["upload_before_previous_done"] = round(sum(gap < 0 for gap in gaps) / len(gaps), 3)
    return row


def run(dry_run: bool) -> dict[str, Any]:
    size = DRY if dry_run else FULL
    skipped = {"status": "skipped", "reason": "dry run: no CUDA (run scripts/gpu_check.sh on a GPU machine)"}
    report: dict[str, Any] = {
        "schema": "icnet_ros.gpu_check.engine/1", "dry_run": dry_run,
        "weights": default_weights_path().name, "torch": torch.__version__, "cuda": torch.version.cuda,
        "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
        "sizes": {"frame": list(size["frame"]), "network_input": list(size["network"])},
        "frames": f"smooth scenes (icnet_bench.synthetic_frames, {REGION}-pixel colour cells)",
    }
    report["agreement"] = agreement("cpu", size) + (
        [{"device": "cuda", **skipped}] if dry_run else agreement("cuda", size))
    report["sync_free"] = skipped if dry_run else sync_free(size)
    report["pipelining"] = [pipelining("cpu" if dry_run else "cuda", size)] + ([{"device": "cuda", **skipped}]
                                                                             if dry_run else [])
    return report


def failures(report: dict[str, Any]) -> list[str]:
    rows = report["agreement"] + report["pipelining"] + [report["sync_free"]]
    return [json.dumps(row) for row in rows if row.get("status") == "failed"]


def _test_counts(path: Path) -> dict[str, int] | None:
    """Totals of a pytest JUnit XML file."""
    if not path.is_file():
        return None
    suite = ElementTree.parse(path).getroot()
    suite = suite if suite.tag == "testsuite" else suite.find("testsuite")
    return {key: int(suite.get(key, 0)) for key in ("tests", "failures", "errors", "skipped")}


def _model_targets(report: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's targets against an icnet-bench model report (CUDA rows only)."""
    rows = [r for r in report["results"] if r["status"] == "ok" and r["device"] == "cuda"]
    graphs = [r for r in rows if r["model"] == "sub124" and r["precision"] == "fp16"
              and r["backend"].startswith("cuda_graphs")]
    targets = []
    for row in graphs:
        median = row["latency_ms"]["median"]
        targets.append({"target": "ICNet fp16 model-only at 1025x2049 <= 1 ms with CUDA graphs",
                        "measured": f"{median:.3f} ms ({row['backend']})", "met": median <= 1.0})
    for entry in report["ratios"]["icnet_vs_baseline"]:
        if entry["device"] != "cuda":
            continue
        label = f"{entry['precision']} {entry['backend']}"
        targets.append({"target": f"ICNet >= 5x faster than the baseline ({label})",
                        "measured": f"{entry['speedup']:.2f}x", "met": entry["speedup"] >= 5})
        if "memory_saving" in entry:
            targets.append({"target": f"ICNet >= 5x less memory than the baseline ({label})",
                            "measured": f"{entry['memory_saving']:.2f}x", "met": entry["memory_saving"] >= 5})
    return targets


def summary(out_dir: Path, steps: list[str], dry_run: bool) -> int:
    """summary.json and summary.md from the step statuses (``name=exit_code:seconds``) and files."""
    parsed = []
    for step in steps:
        name, _, rest = step.partition("=")
        code, _, seconds = rest.partition(":")
        parsed.append({"step": name, "exit_code": int(code), "seconds": float(seconds or 0)})
    engine = json.loads((out_dir / "engine.json").read_text()) if (out_dir / "engine.json").is_file() else None
    models = sorted(out_dir.glob("model_*.json"))
    model = json.loads(models[-1].read_text()) if models else None
    result = {"schema": "icnet_ros.gpu_check/1", "dry_run": dry_run, "steps": parsed,
              "tests": _test_counts(out_dir / "tests.xml"), "engine": engine and {
                  "agreement": engine["agreement"], "sync_free": engine["sync_free"],
                  "pipelining": engine["pipelining"]},
              "model_report": models[-1].name if models else None,
              "targets": _model_targets(model) if model else []}
    result["passed"] = all(step["exit_code"] == 0 for step in parsed)
    (out_dir / "summary.json").write_text(json.dumps(result, indent=1) + "\n")
    lines = [f"# gpu_check{' (dry run: CUDA parts skipped)' if dry_run else ''}: "
             f"{'passed' if result['passed'] else 'FAILED'}", "",
             f"torch {torch.__version__}, CUDA {torch.version.cuda}, GPU "
             f"{torch.cuda.get_device_name() if torch.cuda.is_available() else 'none'}", "",
             "| step | exit | seconds |", "|---|---|---|"]
    lines += [f"| {s['step']} | {s['exit_code']} | {s['seconds']:.0f} |" for s in parsed]
    if result["tests"]:
        lines += ["", "CUDA tests (ICNET_REQUIRE_CUDA=1 unless dry run): " + ", ".join(
            f"{key} {value}" for key, value in result["tests"].items())]
    if engine:
        lines += ["", "| agreement with CPU fp32 | precision | per frame | target | status |", "|---|---|---|---|---|"]
        lines += [f"| {r['device']} | {r.get('precision', '-')} | "
                  f"{', '.join(f'{v:.4f}' for v in r.get('agreement', [])) or r.get('reason', '')} | "
                  f"{r.get('target', '-')} | {r['status']} |" for r in engine["agreement"]]
        sync = engine["sync_free"]
        lines += ["", f"Sync-free steady state: {sync['status']}"
                  + (f", {sync['synchronising_calls']} synchronising calls over {sync['frames']} frames"
                     if "frames" in sync else f" ({sync.get('reason', '')})")]
        lines += ["", "| pipelining | one at a time fps | pipelined fps | speedup | upload before previous done |",
                  "|---|---|---|---|---|"]
        lines += [f"| {r['device']} | {r.get('one_at_a_time_fps', '-')} | {r.get('pipelined_fps', '-')} | "
                  f"{r.get('speedup', r.get('reason', '-'))} | {r.get('upload_before_previous_done', '-')} |"
                  for r in engine["pipelining"]]
    if result["targets"]:
        lines += ["", "| target | measured | met |", "|---|---|---|"]
        lines += [f"| {t['target']} | {t['measured']} | {'yes' if t['met'] else 'no'} |" for t in result["targets"]]
    if models:
        lines += ["", f"Model benchmark (Tables 3 and 4 beside the paper): {models[-1].with_suffix('.md').name}"]
    (out_dir / "summary.md").write_text("\n".join(lines) + "\n")
    return 0 if result["passed"] else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m icnet_bench.gpu_check", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    engine = commands.add_parser("engine", help="the engine checks, into OUT_DIR/engine.json")
    engine.add_argument("out_dir", type=Path)
    engine.add_argument("--dry-run", action="store_true", help="no CUDA: the CPU steps at reduced sizes")
    report = commands.add_parser("summary", help="summary.json and summary.md of a gpu_check.sh run")
    report.add_argument("out_dir", type=Path)
    report.add_argument("--step", action="append", default=[], help="name=exit_code:seconds")
    report.add_argument("--dry-run", action="store_true")
    args = parser.parse_args(argv)
    if args.command == "summary":
        return summary(args.out_dir, args.step, args.dry_run)
    if not args.dry_run and not torch.cuda.is_available():
        print("gpu_check: no CUDA device (torch.cuda.is_available() is False); use --dry-run", file=sys.stderr)
        return 2
    result = run(args.dry_run)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / "engine.json").write_text(json.dumps(result, indent=1) + "\n")
    failed = failures(result)
    for line in failed:
        print(f"gpu_check: failed: {line}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
