"""icnet-eval on generated bags: offline and live (real node, real DDS), both storage formats.

Scores are checked against an independent computation from the saved mask PNGs and the
labels read from the bag with rosbags directly; the report against its documented schema.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from eval_support import FRAMES, SIZE
from test_make_sample_bag import read_bag

from icnet_ros.evaluation.bag_writing import BagWriter, image_message
from icnet_ros.evaluation.ground_truth import train_id_to_label_id
from icnet_ros.tools.evaluate_bag import main

CLI = Path(sys.executable).parent / "icnet-eval"
LABELS = "/camera/labels"
TOPICS = {"mcap": "/camera/image_raw", "sqlite3": "/camera/image_raw/compressed"}

# The documented schema (docs/evaluation.md), version 1: key -> type(s).
SCHEMA = {"schema_version": int, "tool": str, "created_utc": str, "mode": str, "settings": dict, "bag": dict,
          "weights": (dict, type(None)), "ground_truth": (dict, type(None)), "node": (dict, type(None)),
          "counts": dict, "topics": dict, "accuracy": (dict, type(None)), "latency_definition": str,
          "latency_ms": dict, "throughput": dict, "frames": list, "files": dict}
BAG_KEYS = {"path", "storage", "files", "sha256", "duration_s", "start_stamp_ns", "topics"}
COUNT_KEYS = {"frames", "answered", "dropped", "rejected", "failed", "scored"}
ACCURACY_KEYS = {"classes", "miou", "pixel_accuracy", "iou", "pixels", "ignore_label", "confusion_matrix"}
LATENCY_KEYS = {"count", "mean", "min", "p50", "p90", "p99", "max"}
FRAME_KEYS = {"topic", "index", "stamp_ns", "sent_stamp_ns", "status", "latency_ms", "scored", "reason", "timings_ms"}
WEIGHTS_KEYS = {"path", "sha256", "size_bytes", "default", "metadata"}


def check_schema(report: dict) -> None:
    assert set(report) == set(SCHEMA)
    for key, kind in SCHEMA.items():
        assert isinstance(report[key], kind), key
    assert report["schema_version"] == 1 and report["tool"] == "icnet-eval"
    assert set(report["bag"]) == BAG_KEYS
    assert set(report["counts"]) == COUNT_KEYS
    assert set(report["latency_ms"]) == LATENCY_KEYS
    assert set(report["throughput"]) == {"wall_s", "fps"}
    assert report["accuracy"] is None or set(report["accuracy"]) == ACCURACY_KEYS
    assert report["weights"] is None or set(report["weights"]) == WEIGHTS_KEYS
    for entry in report["topics"].values():
        assert set(entry) == COUNT_KEYS | {"miou", "latency_ms"}
    for frame in report["frames"]:
        assert set(frame) == FRAME_KEYS
    for name in ("json", "markdown", "latency_histogram_png"):
        assert Path(report["files"][name]).is_file()


def independent_miou(masks_dir: Path, bag: Path, stamps: set[int] | None = None) -> tuple[float, int]:
    """mIoU (official definition) of the saved masks against the bag's labels (of ``stamps``), in plain NumPy."""
    counts = np.zeros((19, 19), np.int64)
    frames = 0
    for _, stamp, label in read_bag(bag)[LABELS]:
        if stamps is not None and stamp not in stamps:
            continue
        mask = cv2.imread(str(masks_dir / f"{stamp:019d}.png"), cv2.IMREAD_UNCHANGED)
        assert mask is not None and mask.shape == SIZE and mask.dtype == np.uint8
        target = label.data.reshape(SIZE).astype(np.int64)
        keep = target != 255
        counts += np.bincount(target[keep] * 19 + mask[keep], minlength=361).reshape(19, 19)
        frames += 1
    tp = np.diag(counts).astype(np.float64)
    union = counts.sum(0) + counts.sum(1) - tp
    return float(np.mean(tp[union > 0] / union[union > 0])), frames


def run_offline(bag: Path, topic: str, weights: Path, out: Path, *extra: str) -> dict:
    assert main([str(bag), "--topic", topic, "--weights", str(weights), "-o", str(out / "report"),
                 "--no-progress", "--threads", "1", *extra]) == 0
    return json.loads((out / "report" / "report.json").read_text())


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_offline(storage, sample_bags, tiny_weights, tmp_path):
    bag = sample_bags[storage]
    report = run_offline(bag, TOPICS[storage], tiny_weights, tmp_path, "--label-topic", LABELS,
                         "--save-masks", str(tmp_path / "masks"), "--output-bag", str(tmp_path / "out_bag"),
                         "--strip", str(tmp_path / "strip.png"))
    check_schema(report)
    assert report["mode"] == "offline" and report["bag"]["storage"] == storage
    assert report["counts"] == {"frames": FRAMES, "answered": FRAMES, "dropped": 0, "rejected": 0, "failed": 0,
                                "scored": FRAMES}
    assert all(f["latency_ms"] > 0 and f["timings_ms"] for f in report["frames"])
    assert report["latency_ms"]["count"] == FRAMES
    miou, frames = independent_miou(tmp_path / "masks", bag)
    assert frames == FRAMES
    assert report["accuracy"]["miou"] == pytest.approx(miou, abs=1e-12)
    assert Path(report["files"]["confusion_matrix_png"]).is_file()
    strip = cv2.imread(str(tmp_path / "strip.png"))
    assert strip.shape == (192, 3 * 384, 3)
    outputs = read_bag(tmp_path / "out_bag")
    base = TOPICS[storage].removesuffix("/compressed")
    assert sorted(outputs) == [f"{base}/class_mask", f"{base}/overlay"]
    assert [s for _, s, _ in outputs[f"{base}/class_mask"]] == [s for _, s, _ in read_bag(bag)[LABELS]]
    saved = cv2.imread(str(sorted((tmp_path / "masks").iterdir())[0]), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(outputs[f"{base}/class_mask"][0][2].data.reshape(SIZE), saved)


def test_label_folder_of_label_ids_gives_the_same_score(sample_bags, tiny_weights, tmp_path):
    """Cityscapes labelIds PNGs named by stamp score exactly like the trainId label topic."""
    bag = sample_bags["mcap"]
    folder = tmp_path / "gt"
    folder.mkdir()
    for _, stamp, label in read_bag(bag)[LABELS]:
        name = f"{stamp // 1_000_000_000}_{stamp % 1_000_000_000:09d}_gtFine_labelIds.png"
        cv2.imwrite(str(folder / name), train_id_to_label_id()[label.data.reshape(SIZE)])
    by_topic = run_offline(bag, TOPICS["mcap"], tiny_weights, tmp_path / "a", "--label-topic", LABELS)
    by_folder = run_offline(bag, TOPICS["mcap"], tiny_weights, tmp_path / "b", "--labels-dir", str(folder),
                            "--label-format", "labelIds")
    assert by_folder["ground_truth"]["match"] == "stamp"
    assert by_folder["counts"]["scored"] == FRAMES
    assert by_folder["accuracy"]["confusion_matrix"] == by_topic["accuracy"]["confusion_matrix"]


def test_miou_matches_cityscapes_scripts(sample_bags, tiny_weights, tmp_path):
    """The official evaluation script, on the same predictions as labelId files, gives the same mIoU."""
    from cityscapesscripts.evaluation import evalPixelLevelSemanticLabeling as official

    bag = sample_bags["mcap"]
    report = run_offline(bag, TOPICS["mcap"], tiny_weights, tmp_path, "--label-topic", LABELS,
                         "--save-masks", str(tmp_path / "masks"))
    to_label_ids = train_id_to_label_id()
    predictions, ground_truth = [], []
    for _, stamp, label in read_bag(bag)[LABELS]:
        mask = cv2.imread(str(tmp_path / "masks" / f"{stamp:019d}.png"), cv2.IMREAD_UNCHANGED)
        predictions.append(str(tmp_path / f"{stamp}_pred.png"))
        ground_truth.append(str(tmp_path / f"{stamp}_gtFine_labelIds.png"))
        cv2.imwrite(predictions[-1], to_label_ids[mask])
        cv2.imwrite(ground_truth[-1], to_label_ids[label.data.reshape(SIZE)])
    args = official.args
    args.evalInstLevelScore, args.JSONOutput, args.quiet = False, False, True
    result = official.evaluateImgLists(predictions, ground_truth, args)
    assert report["accuracy"]["miou"] == pytest.approx(result["averageScoreClasses"], abs=1e-12)
    for name, iou in report["accuracy"]["iou"].items():
        official_iou = result["classScores"][name]
        assert (iou is None and np.isnan(official_iou)) or iou == pytest.approx(official_iou, abs=1e-12)


@pytest.mark.ros
@pytest.mark.parametrize(("storage", "rate"), [("mcap", "2"), ("sqlite3", "0")])
def test_live(storage, rate, sample_bags, tiny_weights, tmp_path, ros_isolation):
    """The tool starts segmentation_node, replays at twice the recorded rate (mcap, raw images) or
    frame by frame (sqlite3, png CompressedImage), and scores what comes back."""
    bag = sample_bags[storage]
    assert main([str(bag), "--mode", "live", "--rate", rate, "--timeout", "20", "--topic", TOPICS[storage],
                 "--label-topic", LABELS, "--weights", str(tiny_weights), "-o", str(tmp_path / "report"),
                 "--save-masks", str(tmp_path / "masks"), "--threads", "1", "--no-progress"]) == 0
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    check_schema(report)
    assert report["mode"] == "live" and report["node"]["started"]
    counts = report["counts"]
    assert counts["frames"] == FRAMES and counts["answered"] + counts["dropped"] == FRAMES
    assert counts["answered"] >= 1 and counts["scored"] == counts["answered"]
    if rate == "0":  # the next frame only after the previous one's answer: none is replaced
        assert counts["answered"] == FRAMES
    answered = [f for f in report["frames"] if f["status"] == "answered"]
    assert all(f["latency_ms"] > 0 and f["sent_stamp_ns"] > f["stamp_ns"] for f in answered)
    assert report["latency_ms"]["count"] == counts["answered"]
    stamps = {f["stamp_ns"] for f in answered}
    assert {int(p.stem) for p in (tmp_path / "masks").iterdir()} == stamps
    miou, frames = independent_miou(tmp_path / "masks", bag, stamps)
    assert frames == counts["answered"]
    assert report["accuracy"]["miou"] == pytest.approx(miou, abs=1e-12)
    log = Path(report["node"]["logs"][0]).read_text()
    assert "input_transport:=" + ("raw" if storage == "mcap" else "compressed") in " ".join(report["node"]["command"])
    assert "active" in log


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(CLI), *args, "--no-progress"], capture_output=True, text=True, timeout=180)


def assert_refused(done: subprocess.CompletedProcess, *phrases: str) -> None:
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith("icnet-eval: error:")]
    assert len(lines) == 1, done.stderr
    for phrase in phrases:
        assert phrase in lines[0]


def test_refuses_a_missing_topic_listing_the_topics(sample_bags, tmp_path):
    done = run_cli(str(sample_bags["mcap"]), "--topic", "/front/image", "-o", str(tmp_path))
    assert_refused(done, "/front/image", "/camera/image_raw (sensor_msgs/msg/Image, 6)",
                   "/camera/labels (sensor_msgs/msg/Image, 6)")


def test_refuses_truncated_bags(sample_bags, tmp_path):
    data = (sample_bags["mcap"] / "sample_mcap.mcap").read_bytes()
    truncated = tmp_path / "truncated.mcap"
    truncated.write_bytes(data[: len(data) // 2])
    assert_refused(run_cli(str(truncated), "--topic", "/camera/image_raw", "-o", str(tmp_path)),
                   "truncated.mcap", "truncated")
    database = (sample_bags["sqlite3"] / "sample_sqlite3.db3").read_bytes()
    broken = tmp_path / "broken.db3"
    broken.write_bytes(database[: len(database) // 2])
    assert_refused(run_cli(str(broken), "-o", str(tmp_path)), "broken.db3", "truncated")


def test_refuses_a_label_of_the_wrong_size(tiny_weights, tmp_path):
    bag = tmp_path / "bad_labels"
    with BagWriter(bag, "mcap") as writer:
        for index in range(2):
            stamp = 1_700_000_000_000_000_000 + index * 100_000_000
            writer.write("/camera/image_raw", image_message(np.zeros((*SIZE, 3), np.uint8), stamp, "camera"))
            writer.write(LABELS, image_message(np.zeros((SIZE[0] // 2, SIZE[1] // 2), np.uint8), stamp, "camera"))
    done = run_cli(str(bag), "--topic", "/camera/image_raw", "--label-topic", LABELS, "--weights", str(tiny_weights),
                   "-o", str(tmp_path / "report"), "--threads", "1")
    assert_refused(done, "64x32", "128x64", "sizes must match")
