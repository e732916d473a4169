"""Reports of ``icnet-bench model``: ratios (ICNet against the baseline, the branches,
backends against eager fp32) and the Markdown beside the paper's Tables 3 and 4, and beside
PIDNet's and DDRNet's published figures."""

from __future__ import annotations

import statistics
from typing import Any

from icnet_bench.model_zoo import ICNET_MODELS, MODELS
from icnet_ros.weights.official_checkpoints import OFFICIAL_NETWORKS

# The paper's Tables 3 and 4 (Cityscapes val, TitanX Maxwell, Caffe, 1024x2048 input).
PAPER = {
    "device": "NVIDIA TitanX (Maxwell), Caffe, fp32, 1024x2048",
    "table3": {"baseline": {"miou": 67.9, "time_ms": 170, "fps": 5.9, "memory_gb": 9.2},
               "sub124": {"miou": 67.7, "time_ms": 33, "fps": 30.3, "memory_gb": 1.6},
               "speedup": 5.1, "memory_saving": 5.8},
    "table4": {"baseline": {"miou": 67.9, "time_ms": 170, "fps": 5.9, "memory_saving": 1.0},
               "sub4": {"miou": 59.6, "time_ms": 18, "fps": 55.6, "memory_saving": 15.3},
               "sub24": {"miou": 66.5, "time_ms": 25, "fps": 40.0, "memory_saving": 8.4},
               "sub124": {"miou": 67.7, "time_ms": 33, "fps": 30.3, "memory_saving": 5.8}},
}




def _find(results: list[dict[str, Any]], **key: Any) -> dict[str, Any] | None:
    for row in results:
        if row["status"] == "ok" and all(row[k] == v for k, v in key.items()):
            return row
    return None


def _paired(slow: dict[str, Any], fast: dict[str, Any]) -> float:
    """Median over rounds of slow/fast, both timed in the same round (robust to load drifts)."""
    pairs = zip(slow["latency_ms"]["samples"], fast["latency_ms"]["samples"])
    return statistics.median(a / b for a, b in pairs)


def ratios(results: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """ICNet vs baseline, the branches against each other, backends against eager fp32.

    Ratios of medians, and (``*_paired``) the median of the per-round ratios.
    """
    groups = list(dict.fromkeys((r["height"], r["width"], r["device"], r["precision"], r["backend"])
                                for r in results if r["status"] == "ok"))  # in run order
    icnet_vs_baseline, branches = [], []
    for height, width, device, precision, backend in groups:
        key = dict(height=height, width=width, device=device, precision=precision, backend=backend)
        rows = {m: _find(results, model=m, **key) for m in ICNET_MODELS}
        base, full = rows["baseline"], rows["sub124"]
        if base and full:
            entry = {**key, "speedup": base["latency_ms"]["median"] / full["latency_ms"]["median"],
                     "speedup_paired": _paired(base, full)}
            if base.get("peak_mem_bytes") and full.get("peak_mem_bytes"):
                entry["memory_saving"] = base["peak_mem_bytes"] / full["peak_mem_bytes"]
            icnet_vs_baseline.append(entry)
        present = {m: r["latency_ms"]["median"] for m, r in rows.items() if r}
        if len(present) > 1:
            branches.append({**key, "median_ms": present,
                             "relative_to_sub124": {m: t / present["sub124"] for m, t in present.items()}
                             if "sub124" in present else None})
    backend_speedup = []
    for model in MODELS:
        for height, width, device in dict.fromkeys((r["height"], r["width"], r["device"]) for r in results):
            ref = _find(results, model=model, height=height, width=width, device=device,
                        precision="fp32", backend="eager")
            candidates = [r for r in results if r["status"] == "ok" and r["model"] == model
                          and (r["height"], r["width"], r["device"]) == (height, width, device)]
            if not ref or not candidates:
                continue
            agreeing = [r for r in candidates if r["outputs"].get("within_tolerance")] or candidates
            best = min(agreeing, key=lambda r: r["latency_ms"]["median"])
            best32 = min((r for r in agreeing if r["precision"] == "fp32"),
                         key=lambda r: r["latency_ms"]["median"], default=ref)
            backend_speedup.append({
                "model": model, "height": height, "width": width, "device": device,
                "best_backend": best["backend"], "best_precision": best["precision"],
                "speedup_vs_eager_fp32": ref["latency_ms"]["median"] / best["latency_ms"]["median"],
                "speedup_paired": _paired(ref, best), "outputs": best["outputs"],
                "best_fp32_backend": best32["backend"],
                "best_fp32_speedup": ref["latency_ms"]["median"] / best32["latency_ms"]["median"],
                "best_fp32_outputs": best32["outputs"],
            })
    return {"icnet_vs_baseline": icnet_vs_baseline, "branches": branches, "backend_speedup": backend_speedup}


def _ms(row: dict[str, Any] | None) -> str:
    return f"{row['latency_ms']['median']:.1f}" if row else "-"


def _mb(row: dict[str, Any] | None) -> str:
    value = row.get("peak_mem_bytes") if row else None
    return f"{value / 2**20:.0f}" if value else "-"


def published(model: str) -> dict[str, Any] | None:
    """The authors' Cityscapes val mIoU and FPS (and their setting) of a benchmarked network."""
    if model == "sub124":
        t3 = PAPER["table3"]["sub124"]
        return {"cityscapes_val_miou": t3["miou"], "fps": t3["fps"], "fps_setting": "TitanX Maxwell, Caffe"}
    official = OFFICIAL_NETWORKS.get(model)
    return official.published if official else None


def networks_table(report: dict[str, Any]) -> list[str]:
    """ICNet beside PIDNet and DDRNet: per requested size and configuration, each network's
    median ms, parameters, GMAC and peak memory, with the published mIoU and speed."""
    results = [r for r in report["results"] if r["status"] == "ok"]
    networks = [m for m in report["models"] if m not in ICNET_MODELS or m == "sub124"]
    if not any(m not in ICNET_MODELS for m in networks):
        return []
    lines = ["", "## ICNet beside PIDNet and DDRNet (random weights: speed and memory; accuracy as published)",
             "",
             "| size | device / precision / backend | network | input | parameters | GMAC | median ms | "
             "peak MB | published val mIoU | published FPS (setting) | mIoU per published ms |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    groups = dict.fromkeys((r.get("requested_size", f"{r['height']}x{r['width']}"), r["device"], r["precision"],
                            r["backend"]) for r in results)
    for size, device, precision, backend in groups:
        for model in networks:
            row = next((r for r in results if r["model"] == model and r["device"] == device
                        and r["precision"] == precision and r["backend"] == backend
                        and r.get("requested_size", f"{r['height']}x{r['width']}") == size), None)
            if row is None:
                continue
            info, paper = report["models"][model], published(model) or {}
            cost = info["costs"].get(size, {})
            per_ms = (f"{paper['cityscapes_val_miou'] * paper['fps'] / 1e3:.2f}" if paper else "-")
            lines.append(
                f"| {size} | {device} / {precision} / {backend} | {model} | {row['height']}x{row['width']} | "
                f"{info['parameters']:,} | {cost.get('gmac', float('nan')):.1f} | {_ms(row)} | {_mb(row)} | "
                f"{paper.get('cityscapes_val_miou', '-')} | {paper.get('fps', '-')} ({paper.get('fps_setting', '-')}) "
                f"| {per_ms} |")
    return lines


def markdown(report: dict[str, Any]) -> str:
    """The report as Markdown: paper tables beside the measurements, then every row."""
    results, machine = report["results"], report["machine"]
    t3, t4 = PAPER["table3"], PAPER["table4"]
    lines = [
        f"# icnet-bench model: {machine['kind']}, {report['date']}",
        "",
        f"Machine: {machine['cpu']} ({machine['cores']} cores), GPU: {', '.join(machine['gpu'] or ['none'])}; "
        f"load average at start {machine['load_average']}. Versions: "
        + ", ".join(f"{k} {v}" for k, v in report["versions"].items() if v) + ".",
        f"Settings: {report['settings']['repeats']} interleaved rounds after {report['settings']['warmup']} "
        f"warm-up forwards, batch 1 latency, {report['settings']['threads']} threads; "
        "random weights with calibrated BN; fp32 is true fp32 (TF32 off); outputs compared with eager fp32 on the CPU.",
        "",
        "## Table 3: ICNet (sub124) against the PSPNet50 baseline",
        "",
        "| source | size | device / precision / backend | baseline ms | ICNet ms | speedup (paired) "
        "| baseline MB | ICNet MB | memory saving |",
        "|---|---|---|---|---|---|---|---|---|",
        f"| paper | 1024x2048 | {PAPER['device']} | {t3['baseline']['time_ms']} | {t3['sub124']['time_ms']} | "
        f"{t3['speedup']}x | {t3['baseline']['memory_gb'] * 1024:.0f} | {t3['sub124']['memory_gb'] * 1024:.0f} "
        f"| {t3['memory_saving']}x |",
    ]
    for entry in report["ratios"]["icnet_vs_baseline"]:
        key = {k: entry[k] for k in ("height", "width", "device", "precision", "backend")}
        base, full = _find(results, model="baseline", **key), _find(results, model="sub124", **key)
        saving = f"{entry['memory_saving']:.1f}x" if "memory_saving" in entry else "-"
        lines.append(f"| measured | {entry['height']}x{entry['width']} | {entry['device']} / {entry['precision']} / "
                     f"{entry['backend']} | {_ms(base)} | {_ms(full)} | {entry['speedup']:.1f}x "
                     f"({entry.get('speedup_paired', float('nan')):.1f}x) | {_mb(base)} | "
                     f"{_mb(full)} | {saving} |")
    models = report["models"]
    if "baseline" in models and "sub124" in models:
        for size, cost in models["baseline"]["costs"].items():
            full = models["sub124"]["costs"][size]
            lines.append(f"| counted | {size} | every intermediate kept (no reuse, like Caffe); fp32 | "
                         f"{cost['gmac']:.0f} GMAC | {full['gmac']:.1f} GMAC | {cost['gmac'] / full['gmac']:.1f}x (MAC) | "
                         f"{cost['all_blobs_mb']:.0f} | {full['all_blobs_mb']:.0f} | "
                         f"{cost['all_blobs_mb'] / full['all_blobs_mb']:.1f}x |")
            if "live_peak_mb" in cost:
                lines.append(f"| counted | {size} | eager, unused intermediates freed: peak live tensors; fp32 | | | | "
                             f"{cost['live_peak_mb']:.0f} | {full['live_peak_mb']:.0f} | "
                             f"{cost['live_peak_mb'] / full['live_peak_mb']:.1f}x |")
    lines += [
        "",
        "## Table 4: the cascade branches (median ms; in brackets: speedup over the baseline)",
        "",
        "| source | size | device / precision / backend | baseline | sub4 | sub24 | sub124 | sub4 : sub24 : sub124 |",
        "|---|---|---|---|---|---|---|---|",
        f"| paper | 1024x2048 | {PAPER['device']} | 170 | 18 (9.4x) | 25 (6.8x) | 33 (5.2x) | "
        f"{18 / 33:.2f} : {25 / 33:.2f} : 1 |",
    ]
    for entry in report["ratios"]["branches"]:
        times = entry["median_ms"]
        base = times.get("baseline")
        cells = [f"{times[m]:.1f}" + (f" ({base / times[m]:.1f}x)" if base and m != "baseline" else "")
                 if m in times else "-" for m in ICNET_MODELS if m != "baseline"]
        rel = entry["relative_to_sub124"]
        relative = " : ".join(f"{rel[m]:.2f}" if m in rel else "-" for m in ("sub4", "sub24", "sub124")) if rel else "-"
        lines.append(f"| measured | {entry['height']}x{entry['width']} | {entry['device']} / {entry['precision']} / "
                     f"{entry['backend']} | {f'{base:.1f}' if base else '-'} | {' | '.join(cells)} | {relative} |")
    lines += networks_table(report)
    lines += [
        "",
        f"Paper memory saving over the baseline (Table 4): sub4 {t4['sub4']['memory_saving']}x, "
        f"sub24 {t4['sub24']['memory_saving']}x, sub124 {t4['sub124']['memory_saving']}x.",
        "",
        "## Best backend against eager fp32 (outputs within tolerance)",
        "",
        "| model | size | device | best | speedup (paired) | rel L2 | label agreement | best fp32 | speedup | rel L2 |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for entry in report["ratios"]["backend_speedup"]:
        out, out32 = entry["outputs"], entry.get("best_fp32_outputs", {})
        lines.append(f"| {entry['model']} | {entry['height']}x{entry['width']} | {entry['device']} | "
                     f"{entry['best_precision']} {entry['best_backend']} | {entry['speedup_vs_eager_fp32']:.2f}x "
                     f"({entry.get('speedup_paired', float('nan')):.2f}x) | "
                     f"{out.get('rel_l2', float('nan')):.1e} | {out.get('label_agreement', float('nan')):.4f} | "
                     f"{entry.get('best_fp32_backend', '-')} | {entry.get('best_fp32_speedup', float('nan')):.2f}x | "
                     f"{out32.get('rel_l2', float('nan')):.1e} |")
    lines += [
        "",
        "## All configurations",
        "",
        "| model | size | device | precision | backend | median ms | p90 ms | fps | peak MB | rel L2 | max abs | "
        "labels | status |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in results:
        if row["status"] == "ok":
            out, lat = row["outputs"], row["latency_ms"]
            lines.append(
                f"| {row['model']} | {row['height']}x{row['width']} | {row['device']} | {row['precision']} | "
                f"{row['backend']} | {lat['median']:.1f} | {lat['p90']:.1f} | {row['throughput_fps']:.2f} | "
                f"{_mb(row)} | {out.get('rel_l2', float('nan')):.1e} | {out.get('max_abs', float('nan')):.2e} | "
                f"{out.get('label_agreement', float('nan')):.4f} | ok |")
    skipped = sorted({(row["device"], row["precision"], row["backend"], row["status"], row.get("reason", ""))
                      for row in results if row["status"] != "ok"})
    if skipped:
        lines += ["", "Not run:", ""]
        lines += [f"- {device} {precision} {backend}: {status}, {reason}"
                  for device, precision, backend, status, reason in skipped]
    lines += ["", "## Model costs (fp32, batch 1, counted on the meta device)", "",
              "| model | parameters | size | GMAC | all intermediate tensors MB | peak live tensors MB (eager) |",
              "|---|---|---|---|---|---|"]
    for name, info in report["models"].items():
        for size, cost in info["costs"].items():
            live = f"{cost['live_peak_mb']:.0f}" if "live_peak_mb" in cost else "-"
            lines.append(f"| {name} | {info['parameters']:,} | {size} | {cost['gmac']:.1f} | "
                         f"{cost['all_blobs_mb']:.0f} | {live} |")
    lines += ["", f"Peak memory: {report['settings']['memory_method']}.", ""]
    return "\n".join(lines)
