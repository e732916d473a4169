"""The Markdown of an ``icnet-bench-node ros2-benchmark`` report (:mod:`icnet_bench.ros2_benchmark_form`)."""

from __future__ import annotations

from typing import Any

from icnet_bench.node_bench import _f


def _row(name: str, measured: dict[str, Any]) -> str:
    c, memory = measured["combined"], measured.get("memory") or {}
    latency = c["latency_ms"]
    accuracy = measured.get("accuracy")
    gpu = memory.get("gpu_process_mib") or memory.get("gpu_peak_mib")
    return (f"| {name} | {_f(measured['rate_hz'], 1)} | {_f(c['MEAN_PLAYBACK_FRAME_RATE'], 1)} | "
            f"**{_f(c['MEAN_FRAME_RATE'], 1)}** | {_f(c['NUM_MISSED_FRAMES'], 1)} / {_f(c['NUM_FRAMES_SENT'], 1)} "
            f"({_f(100 * c['missed_fraction'], 1)} %) | {_f(c['FIRST_SENT_RECEIVED_LATENCY'], 1)} | "
            f"{_f(c['LAST_SENT_RECEIVED_LATENCY'], 1)} | "
            + " / ".join(_f(latency[k], 1) for k in ("p50", "p90", "p99", "max")) + " | "
            + " / ".join(_f(c[k], 1) for k in ("MAX_JITTER", "MEAN_JITTER", "STD_DEV_JITTER")) + " | "
            f"{_f(c['node_cpu_percent'], 0)} | {_f(c['MEAN_OVERALL_CPU_UTILIZATION'], 0)} | "
            f"{_f(gpu, 0) if gpu else '-'} | "
            f"{_f(100 * accuracy['miou'], 1) if accuracy and accuracy['frames_scored'] else '-'} |")


def markdown(report: dict[str, Any]) -> str:
    machine, settings, bag = report["machine"], report["settings"], report["bag"]
    lines = [f"# icnet-bench-node ros2-benchmark, {report['date']}", "",
             f"Machine: {machine['cpu']}, {machine['cores']} cores, GPU: {', '.join(machine['gpu'] or ['none'])}; "
             f"load average {machine['load_average']} before, {machine.get('load_average_after')} after. "
             f"torch {report['versions']['torch']}, Python {report['versions']['python']}.", "",
             f"Weights: {report['weights']}. Device {settings['device']}, {settings['precision']}, "
             f"cpu_threads {settings['cpu_threads']} (0: torch's default). Bag {bag['path']}: {bag['frames']} "
             f"{bag['kind']} frames of {bag['size'][0]}x{bag['size'][1]} on {bag['image_topic']} "
             f"({bag['labelled']} with labels), replayed in a loop. Fast DDS profile: "
             f"{report['environment'].get('FASTDDS_DEFAULT_PROFILES_FILE') or 'built-in'}.", "",
             f"Runs of {settings['run_seconds']:g} s, {settings['runs']} per rate, every figure the mean of the "
             f"runs with the best and the worst dropped. Publisher ceiling (back to back, pre-serialised): "
             f"{report['publisher_ceiling_hz']:.0f} frames/s.", "",
             "| rate | publishing (Hz) | publisher achieved (Hz) | MEAN_FRAME_RATE (fps) | NUM_MISSED_FRAMES / "
             "sent | FIRST_SENT_RECEIVED_LATENCY (ms) | LAST_SENT_RECEIVED_LATENCY (ms) | latency p50 / p90 / p99 / "
             "max (ms) | jitter max / mean / std (ms) | node CPU (% of a core) | machine CPU (%) | GPU memory "
             "(MiB) | mIoU (%) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    peak = report.get("peak")
    if peak and peak.get("rate_hz") is not None:
        lines.append(_row("peak" + ("" if peak["sustained"] else " (not sustained)"), peak))
    for measured in report["fixed"]:
        lines.append(_row(f"{measured['rate_hz']:g} Hz", measured))
    lines.append("")
    if peak:
        lines += [f"Peak search ({settings['search_seconds']:g} s trials, at most "
                  f"{100 * report['missed_limit']:.0f} % missed"
                  + (", stopped: the publisher could not keep up" if peak["camera_bound"] else "") + "): "
                  + ", ".join(f"{t['rate_hz']:.1f} Hz {'ok' if t['sustained'] else 'missed'} "
                              f"({t['NUM_MISSED_FRAMES']}/{t['NUM_FRAMES_SENT']})" for t in peak["trials"])
                  + (f". {peak['note']}." if peak.get("note") else ".")
                  + (" Repeated runs at the rate found (stepped down by 10 % while they missed more): "
                     + ", ".join(f"{c['rate_hz']:.1f} Hz {100 * c['missed_fraction']:.1f} % missed"
                                 for c in peak.get("confirmations", [])) + "." if peak.get("confirmations") else ""),
                  ""]
    return "\n".join(lines)
