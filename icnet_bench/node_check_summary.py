"""``python -m icnet_bench.node_check_summary OUT_DIR``: the figures of ``scripts/gpu_node_check.sh``
against the issue's targets (reported, never asserted), as ``OUT_DIR/summary.md`` and ``summary.json``.

Reads every ``ros2_benchmark_*.json`` (the ros2_benchmark form per weights and precision)
and ``node_*.json`` (``icnet-bench-node``: overhead against the model alone + the echo
floor, one node for 4 cameras against 4 nodes) in OUT_DIR.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from icnet_bench.node_bench import _f

TARGETS = {"e2e_p50_ms_max": 15.0, "peak_fps_min": 100.0, "overhead_ratio_max": 1.1, "cameras_gain_min": 2.0}


def summarize(out_dir: Path) -> dict[str, Any]:
    """One row per ros2_benchmark-form run, the overhead and camera figures, and the targets."""
    forms = []
    for path in sorted(out_dir.glob("ros2_benchmark_*.json")):
        report = json.loads(path.read_text())
        peak = report.get("peak") or {}
        at_30 = next((m for m in report["fixed"] if m["rate_hz"] == 30), None)
        forms.append({
            "file": path.name, "weights": report["weights"], "precision": report["settings"]["precision"],
            "size": report["bag"]["size"], "peak_fps": (peak.get("combined") or {}).get("MEAN_FRAME_RATE"),
            "peak_sustained": peak.get("sustained"),
            "p50_ms_at_30hz": at_30["combined"]["latency_ms"]["p50"] if at_30 else None,
            "first_sent_received_ms_at_30hz": at_30["combined"]["FIRST_SENT_RECEIVED_LATENCY"] if at_30 else None,
            "gpu_mib": max(((m.get("memory") or {}).get("gpu_process_mib") or 0 for m in report["fixed"]), default=0)
            or None,
            "miou": (at_30 or {}).get("accuracy", {}).get("miou")})
    overhead, cameras = [], []
    for path in sorted(out_dir.glob("node_*.json")):
        report = json.loads(path.read_text())
        for profile in report["profiles"].values():
            for run in profile["overhead"]:
                s = run["summary"]
                overhead.append({"file": path.name, "weights": report["weights"],
                                 "precision": report["settings"]["precision"], "size": run["size"],
                                 "node_p50_ms": (s["node_ms"] or {}).get("p50"), "ratio": s.get("ratio")})
            for run in profile["cameras"]:
                cameras.append({"file": path.name, "weights": report["weights"], "cameras": run["cameras"],
                                "size": run["size"], "one_node_fps": run["one_node"]["throughput_fps_mean"],
                                "separate_fps": run["separate_nodes"]["throughput_fps_mean"],
                                "gain": run["throughput_ratio"], "one_node_pss_mib": run["one_node"]["pss_mib"],
                                "separate_pss_mib": run["separate_nodes"]["pss_mib"],
                                "one_node_p50_ms": (run["one_node"]["frame_latency_ms"] or {}).get("p50"),
                                "separate_p50_ms": (run["separate_nodes"]["frame_latency_ms"] or {}).get("p50"),
                                "one_node_gpu_mib": run["one_node"].get("gpu_mib"),
                                "separate_gpu_mib": run["separate_nodes"].get("gpu_mib")})
    return {"targets": TARGETS, "ros2_benchmark": forms, "overhead": overhead, "cameras": cameras}


def _met(value: float | None, ok: bool) -> str:
    return "-" if value is None else ("met" if ok else "missed")


def markdown(summary: dict[str, Any]) -> str:
    t = summary["targets"]
    lines = ["# GPU node check: summary", "",
             f"Targets (reported, not asserted): node e2e p50 <= {t['e2e_p50_ms_max']:g} ms at 1024x2048 fp16; "
             f">= {t['peak_fps_min']:g} frames/s sustained with <= 5 % missed; node / (model + transport floor) "
             f"<= {t['overhead_ratio_max']:g}; one node for 4 cameras >= {t['cameras_gain_min']:g}x the frames/s "
             "of 4 nodes.", "",
             "| weights | precision | camera | peak fps (<= 5 % missed) | target | latency p50 at 30 Hz (ms) | "
             "target | FIRST_SENT_RECEIVED at 30 Hz (ms) | GPU memory (MiB) | mIoU at 30 Hz |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for f in summary["ros2_benchmark"]:
        peak, p50 = f["peak_fps"], f["p50_ms_at_30hz"]
        lines.append(f"| {f['weights']} | {f['precision']} | {f['size'][0]}x{f['size'][1]} | {_f(peak, 1)} | "
                     f"{_met(peak, peak is not None and peak >= t['peak_fps_min'])} | {_f(p50, 1)} | "
                     f"{_met(p50, p50 is not None and p50 <= t['e2e_p50_ms_max'])} | "
                     f"{_f(f['first_sent_received_ms_at_30hz'], 1)} | {_f(f['gpu_mib'], 0)} | "
                     f"{_f(None if f['miou'] is None else 100 * f['miou'], 1)} |")
    lines += ["", "| overhead run | precision | camera | node p50 (ms) | node / (model + floor) | target |",
              "|---|---|---|---|---|---|"]
    for o in summary["overhead"]:
        lines.append(f"| {o['weights']} | {o['precision']} | {o['size'][0]}x{o['size'][1]} | "
                     f"{_f(o['node_p50_ms'], 1)} | {_f(o['ratio'])} | "
                     f"{_met(o['ratio'], o['ratio'] is not None and o['ratio'] <= t['overhead_ratio_max'])} |")
    lines += ["", "| cameras | camera | one node (frames/s) | N nodes (frames/s) | gain | target | latency p50 "
              "one / N (ms) | memory PSS one / N (MiB) | GPU memory one / N (MiB) |",
              "|---|---|---|---|---|---|---|---|---|"]
    for c in summary["cameras"]:
        lines.append(f"| {c['cameras']} | {c['size'][0]}x{c['size'][1]} | {_f(c['one_node_fps'], 1)} | "
                     f"{_f(c['separate_fps'], 1)} | {_f(c['gain'])} | "
                     f"{_met(c['gain'], c['gain'] >= t['cameras_gain_min'])} | "
                     f"{_f(c['one_node_p50_ms'], 1)} / {_f(c['separate_p50_ms'], 1)} | "
                     f"{_f(c['one_node_pss_mib'], 0)} / {_f(c['separate_pss_mib'], 0)} | "
                     f"{_f(c['one_node_gpu_mib'], 0)} / {_f(c['separate_gpu_mib'], 0)} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1 or not Path(argv[0]).is_dir():
        print("usage: python -m icnet_bench.node_check_summary OUT_DIR (a folder of result JSON files)",
              file=sys.stderr)
        return 2
    out_dir = Path(argv[0])
    summary = summarize(out_dir)
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    (out_dir / "summary.md").write_text(markdown(summary))
    print(markdown(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
