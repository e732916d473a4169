"""The evaluation report: a JSON file of a stable schema, a Markdown summary and two plots.

:func:`build_report` turns an :class:`Evaluation` and the run's context into the JSON
document (schema in docs/evaluation.md, ``schema_version`` :data:`SCHEMA_VERSION`; fields are
only ever added within a version); :func:`write_report` writes ``report.json``,
``report.md``, ``confusion_matrix.png`` (rows: ground truth, normalised per row) and
``latency_histogram.png``; :func:`summary_text` is what the tool prints.
"""

from __future__ import annotations

import json
import math
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from icnet_ros.evaluation.metrics import ConfusionMatrix
from icnet_ros.evaluation.scoring import STATUSES, Evaluation
from icnet_ros.weights.labels import IGNORE_LABEL

SCHEMA_VERSION = 1
PERCENTILES = (50, 90, 99)


def latency_summary(values_ms: list[float]) -> dict:
    """count, mean, min, p50, p90, p99, max of latencies (ms); None values when there are none."""
    keys = ("mean", "min", *(f"p{p}" for p in PERCENTILES), "max")
    if not values_ms:
        return {"count": 0, **dict.fromkeys(keys)}
    values = np.asarray(values_ms, np.float64)
    summary = {"count": int(values.size), "mean": values.mean(), "min": values.min()}
    summary.update({f"p{p}": np.percentile(values, p) for p in PERCENTILES})
    summary["max"] = values.max()
    return {key: (round(float(v), 3) if key != "count" else v) for key, v in summary.items()}


def _number(value: float) -> float | None:
    return None if value is None or math.isnan(value) else float(value)


def accuracy(confusion: ConfusionMatrix, names: list[str]) -> dict | None:
    """mIoU, pixel accuracy, per-class IoU and the confusion matrix; None when nothing was scored."""
    if confusion.matrix.sum() == 0:
        return None
    summary = confusion.summary(names)
    return {"classes": list(names), "miou": _number(summary["miou"]),
            "pixel_accuracy": _number(summary["pixel_accuracy"]), "iou": summary["iou"],
            "pixels": int(confusion.matrix.sum()), "ignore_label": IGNORE_LABEL,
            "confusion_matrix": confusion.matrix.tolist()}


def _counts(evaluation: Evaluation, topic: str | None = None) -> dict:
    records = [r for r in evaluation.records if topic is None or r.topic == topic]
    counts = {"frames": len(records), **{s: sum(r.status == s for r in records) for s in STATUSES}}
    counts["scored"] = sum(r.scored for r in records)
    return counts


def build_report(evaluation: Evaluation, *, mode: str, settings: dict, bag: dict, weights: dict | None,
                 ground_truth: dict | None, node: dict | None, latency_definition: str) -> dict:
    """The JSON document (docs/evaluation.md lists every field)."""
    names = list(evaluation.labels.names)
    latencies = [r.latency_ms for r in evaluation.records if r.latency_ms is not None]
    answered = evaluation.count("answered")
    wall = evaluation.wall_s
    topics = {}
    for topic in evaluation.topics:
        topic_accuracy = accuracy(evaluation.topic_confusion[topic], names)
        topics[topic] = {**_counts(evaluation, topic),
                         "miou": topic_accuracy["miou"] if topic_accuracy else None,
                         "latency_ms": latency_summary([r.latency_ms for r in evaluation.records
                                                        if r.topic == topic and r.latency_ms is not None])}
    return {
        "schema_version": SCHEMA_VERSION,
        "tool": "icnet-eval",
        "created_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "mode": mode,
        "settings": settings,
        "bag": bag,
        "weights": weights,
        "ground_truth": ground_truth,
        "node": node,
        "counts": _counts(evaluation),
        "topics": topics,
        "accuracy": accuracy(evaluation.confusion, names),
        "latency_definition": latency_definition,
        "latency_ms": latency_summary(latencies),
        "throughput": {"wall_s": round(wall, 3), "fps": round(answered / wall, 3) if wall > 0 else None},
        "frames": [r.to_dict() for r in sorted(evaluation.records, key=lambda r: (r.stamp_ns, r.topic, r.index))],
        "files": {},
    }


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.2f}"


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}"


def summary_text(report: dict) -> str:
    """A few lines: frames, mIoU, latency percentiles, fps, drops."""
    counts, latency, acc = report["counts"], report["latency_ms"], report["accuracy"]
    fps = report["throughput"]["fps"]
    lines = [f"frames: {counts['frames']} sent, {counts['answered']} answered, {counts['dropped']} dropped, "
             f"{counts['rejected']} rejected, {counts['failed']} failed; {counts['scored']} scored",
             ("mIoU: n/a (no ground truth)" if acc is None else
              f"mIoU: {_percent(acc['miou'])} %   pixel accuracy: {_percent(acc['pixel_accuracy'])} %"),
             f"latency ({report['latency_definition']}): p50 {_ms(latency['p50'])} ms   p90 {_ms(latency['p90'])} ms   "
             f"p99 {_ms(latency['p99'])} ms   max {_ms(latency['max'])} ms",
             f"throughput: {'n/a' if fps is None else f'{fps:.1f}'} fps over {report['throughput']['wall_s']:.1f} s"]
    return "\n".join(lines)


def markdown(report: dict) -> str:
    """The Markdown summary of a report."""
    bag, weights, acc = report["bag"], report["weights"], report["accuracy"]
    lines = [f"# icnet-eval report ({report['mode']})", "",
             f"Created {report['created_utc']}, schema version {report['schema_version']}.", "",
             "```", summary_text(report), "```", "",
             "## Bag", "",
             f"- path: `{bag['path']}` ({bag['storage']}), sha256 `{bag['sha256']}`",
             f"- duration {bag['duration_s']:.2f} s; topics evaluated: "
             + ", ".join(f"`{t}`" for t in report["topics"]), ""]
    lines += ["## Weights", ""]
    if weights is None:
        lines += ["Unknown (a running node was evaluated without `--weights`).", ""]
    else:
        metadata = weights["metadata"]
        architecture = {k: v for k, v in metadata["architecture"].items() if k != "channels"}
        metrics = {k: v for k, v in metadata.get("metrics", {}).items() if not isinstance(v, dict)}
        lines += [f"- `{weights['path']}`{' (the demo weights)' if weights['default'] else ''}, "
                  f"sha256 `{weights['sha256']}`",
                  f"- architecture: {json.dumps(architecture)}",
                  f"- input size: {metadata['preprocessing']['input_size']}",
                  f"- provenance: {json.dumps(metadata.get('provenance', {}))}",
                  f"- recorded metrics: {json.dumps(metrics)}", ""]
    lines += ["## Frames by topic", "",
              "| topic | frames | answered | dropped | rejected | failed | scored | mIoU | p50 ms | p99 ms |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for topic, entry in report["topics"].items():
        lines.append(f"| `{topic}` | {entry['frames']} | {entry['answered']} | {entry['dropped']} "
                     f"| {entry['rejected']} | {entry['failed']} | {entry['scored']} | {_percent(entry['miou'])} "
                     f"| {_ms(entry['latency_ms']['p50'])} | {_ms(entry['latency_ms']['p99'])} |")
    lines.append("")
    if acc is not None:
        lines += ["## Accuracy", "",
                  f"mIoU {_percent(acc['miou'])} %, pixel accuracy {_percent(acc['pixel_accuracy'])} % over "
                  f"{acc['pixels']} labelled pixels (label {acc['ignore_label']} ignored).", "",
                  "| class | IoU % | ground-truth pixels |", "|---|---|---|"]
        for name, row in zip(acc["classes"], acc["confusion_matrix"]):
            lines.append(f"| {name} | {_percent(acc['iou'][name])} | {sum(row)} |")
        lines += ["", "![confusion matrix](confusion_matrix.png)", ""]
    latency = report["latency_ms"]
    lines += ["## Latency", "", f"{report['latency_definition']}, {latency['count']} frames (ms):", "",
              "| mean | min | p50 | p90 | p99 | max |", "|---|---|---|---|---|---|",
              "| " + " | ".join(_ms(latency[k]) for k in ("mean", "min", "p50", "p90", "p99", "max")) + " |", "",
              "![latency histogram](latency_histogram.png)", "",
              "## Settings", "", "```json", json.dumps(report["settings"], indent=2), "```", ""]
    return "\n".join(lines)


def _plot_confusion(acc: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    matrix = np.asarray(acc["confusion_matrix"], np.float64)
    rows = matrix.sum(axis=1, keepdims=True)
    normalised = np.divide(matrix, rows, out=np.zeros_like(matrix), where=rows > 0)
    size = 3 + 0.35 * len(acc["classes"])
    figure, axes = plt.subplots(figsize=(size + 1.5, size))
    shown = axes.imshow(normalised, cmap="viridis", vmin=0.0, vmax=1.0)
    axes.set_xticks(range(len(acc["classes"])), acc["classes"], rotation=90, fontsize=7)
    axes.set_yticks(range(len(acc["classes"])), acc["classes"], fontsize=7)
    axes.set_xlabel("prediction")
    axes.set_ylabel("ground truth")
    axes.set_title(f"confusion (row-normalised), mIoU {_percent(acc['miou'])} %")
    figure.colorbar(shown, ax=axes, fraction=0.046)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def _plot_latency(report: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    values = [f["latency_ms"] for f in report["frames"] if f["latency_ms"] is not None]
    figure, axes = plt.subplots(figsize=(6, 3.5))
    if values:
        axes.hist(values, bins=min(50, max(5, len(values) // 2)), color="#4c72b0")
        for key, style in (("p50", "-"), ("p90", "--"), ("p99", ":")):
            axes.axvline(report["latency_ms"][key], color="black", linestyle=style, label=f"{key} "
                         f"{report['latency_ms'][key]:.1f} ms")
        axes.legend()
    axes.set_xlabel(f"latency (ms), {report['latency_definition']}")
    axes.set_ylabel("frames")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def write_report(report: dict, output_dir: str | Path) -> dict:
    """Write report.json, report.md and the plots into ``output_dir``; returns ``report['files']``."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    files = report["files"]
    files["json"] = str(output_dir / "report.json")
    files["markdown"] = str(output_dir / "report.md")
    files["latency_histogram_png"] = str(output_dir / "latency_histogram.png")
    _plot_latency(report, Path(files["latency_histogram_png"]))
    if report["accuracy"] is not None:
        files["confusion_matrix_png"] = str(output_dir / "confusion_matrix.png")
        _plot_confusion(report["accuracy"], Path(files["confusion_matrix_png"]))
    Path(files["markdown"]).write_text(markdown(report), encoding="utf-8")
    Path(files["json"]).write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    return files
