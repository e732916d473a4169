"""icnet-bench-node ros2-benchmark: a short run on the CPU through a live node, and its figures.

The report is produced by a real run (a sample bag with labels, a live segmentation_node
over Fast DDS); the tests recompute every figure from the per-frame send and answer
times the report keeps, and the mIoU from the engine run here on the same frames. No
timing assertions: a loaded machine changes the figures, never their consistency.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest

from icnet_bench.ros2_benchmark_form import MIN_FRAMES, SEARCH_RESOLUTION, main
from icnet_bench.ros2_benchmark_metrics import (
    LATENCY_KEYS,
    MISSED_LIMIT,
    PUBLISHER_TOLERANCE,
    THEIR_METRICS,
    combine,
    run_metrics,
    trimmed_mean,
)

RUNS, RUN_SECONDS, RATE = 3, 1.0, 20.0


@pytest.fixture(scope="module")
def sample_bag(tmp_path_factory):
    from icnet_ros.tools.make_sample_bag import write_sample_bag
    return write_sample_bag(tmp_path_factory.mktemp("bag") / "sample", frames=4, rate=10, size=(48, 96))


@pytest.fixture(scope="module")
def report(tmp_path_factory, tiny_weights, sample_bag):
    out_dir = tmp_path_factory.mktemp("results")
    result = subprocess.run(
        [sys.executable, "-m", "icnet_bench.node_bench", "ros2-benchmark", str(sample_bag),
         "--weights", str(tiny_weights), "--cpu-threads", "1", "--rates", f"{RATE:g}", "--runs", str(RUNS),
         "--run-seconds", str(RUN_SECONDS), "--search-seconds", "0.5", "--max-rate", "40",
         "--label", "ci", "--out-dir", str(out_dir)], capture_output=True, text=True, timeout=280)
    assert result.returncode == 0, result.stderr[-3000:]
    files = sorted(out_dir.iterdir())
    assert [f.suffix for f in files] == [".json", ".md"]
    return json.loads(files[0].read_text()), files[1].read_text()


def _runs(data):
    yield from data["peak"]["runs"]
    for measured in data["fixed"]:
        yield from measured["runs"]


@pytest.mark.slow
@pytest.mark.ros
def test_report_structure(report, sample_bag):
    data, markdown = report
    assert data["schema"] == "icnet_ros.bench.ros2_benchmark/1" and data["versions"]["torch"]
    assert data["bag"] == {"path": str(sample_bag), "image_topic": "/camera/image_raw",
                           "label_topic": "/camera/labels", "frames": 4, "labelled": 4, "kind": "raw",
                           "size": [48, 96]}
    assert data["environment"]["FASTDDS_DEFAULT_PROFILES_FILE"].endswith("fastdds_shm.xml")
    assert [m["rate_hz"] for m in data["fixed"]] == [RATE]
    for measured in [data["peak"], *data["fixed"]]:
        assert len(measured["runs"]) == RUNS and measured["combined"]["runs"] == RUNS
        assert set(THEIR_METRICS) <= set(measured["combined"]) and measured["memory"]["rss_mib"] > 0
    for name in ("MEAN_FRAME_RATE", "NUM_MISSED_FRAMES", "FIRST_SENT_RECEIVED_LATENCY", "| peak", f"| {RATE:g} Hz"):
        assert name in markdown
    # The camera side is measured: its ceiling and, for every run, the rate it reached.
    assert data["publisher_ceiling_hz"] > 0 and all(run["MEAN_PLAYBACK_FRAME_RATE"] > 0 for run in _runs(data))


@pytest.mark.slow
@pytest.mark.ros
def test_every_run_figure_follows_from_its_frames(report):
    for run in _runs(report[0]):
        frames = run["frames"]
        sends = [s for s, _ in frames]
        answers = sorted(a for _, a in frames if a is not None)
        assert len(answers) >= 3, "too few answers to check the jitter"
        assert run["NUM_FRAMES_SENT"] == len(frames) == max(MIN_FRAMES, round(run["rate_hz"] * RUN_SECONDS))
        assert run["NUM_MISSED_FRAMES"] == sum(a is None for _, a in frames)
        assert run["missed_fraction"] == pytest.approx(run["NUM_MISSED_FRAMES"] / len(frames))
        close = dict(rel=1e-3, abs=0.01)
        assert run["MEAN_PLAYBACK_FRAME_RATE"] == pytest.approx((len(sends) - 1) * 1e3 / (sends[-1] - sends[0]), **close)
        assert run["MEAN_FRAME_RATE"] == pytest.approx((len(answers) - 1) * 1e3 / (answers[-1] - answers[0]), **close)
        assert run["FIRST_SENT_RECEIVED_LATENCY"] == pytest.approx(answers[0] - sends[0], **close)
        assert run["LAST_SENT_RECEIVED_LATENCY"] == pytest.approx(answers[-1] - sends[-1], **close)
        jitter = np.abs(np.diff(np.diff(answers)))
        assert run["MAX_JITTER"] == pytest.approx(jitter.max(), **close)
        assert run["MEAN_JITTER"] == pytest.approx(jitter.mean(), **close)
        assert run["STD_DEV_JITTER"] == pytest.approx(jitter.std(), **close)
        latency = np.array([a - s for s, a in frames if a is not None])
        for key, value in (("p50", np.percentile(latency, 50)), ("p99", np.percentile(latency, 99)),
                           ("max", latency.max())):
            assert run["latency_ms"][key] == pytest.approx(value, **close), key
        assert run["node_cpu_percent"] > 0 and 0 <= run["MEAN_OVERALL_CPU_UTILIZATION"] <= 100


@pytest.mark.slow
@pytest.mark.ros
def test_combined_figures_drop_the_best_and_the_worst_run(report):
    for measured in [report[0]["peak"], *report[0]["fixed"]]:
        runs, combined = measured["runs"], measured["combined"]
        for key in THEIR_METRICS:
            values = sorted(run[key] for run in runs)
            assert combined[key] == pytest.approx(float(np.mean(values[1:-1]))), key
        for key in LATENCY_KEYS:
            values = sorted(run["latency_ms"][key] for run in runs)
            assert combined["latency_ms"][key] == pytest.approx(float(np.mean(values[1:-1]))), key


@pytest.mark.slow
@pytest.mark.ros
def test_peak_is_the_highest_sustained_rate_found(report):
    peak = report[0]["peak"]
    trials = peak["trials"]
    for trial in trials:  # every trial's verdict follows from its counts
        missed = trial["NUM_MISSED_FRAMES"] / trial["NUM_FRAMES_SENT"]
        kept_up = trial["MEAN_PLAYBACK_FRAME_RATE"] >= PUBLISHER_TOLERANCE * trial["rate_hz"]
        assert trial["sustained"] == (missed <= MISSED_LIMIT and kept_up)
    passed = [t["rate_hz"] for t in trials if t["sustained"]]
    assert passed and peak["rate_hz"] <= max(passed) <= 40
    # The search went on until the lowest failing rate above it was within 10 % (or the top was reached).
    failed_above = [t["rate_hz"] for t in trials if not t["sustained"] and t["rate_hz"] > max(passed)]
    assert not failed_above or min(failed_above) / max(passed) <= SEARCH_RESOLUTION + 1e-9
    assert failed_above or max(passed) * 2 > 40 or peak["camera_bound"]
    assert peak["sustained"] == (peak["combined"]["missed_fraction"] <= MISSED_LIMIT)
    # Repeated runs at the rate found, stepped down by 10 % while they missed more than 5 %.
    confirmations = peak["confirmations"]
    assert confirmations[0]["rate_hz"] == max(passed) and confirmations[-1]["rate_hz"] == peak["rate_hz"]
    assert confirmations[-1]["missed_fraction"] == peak["combined"]["missed_fraction"]
    for earlier, later in zip(confirmations, confirmations[1:]):
        assert earlier["missed_fraction"] > MISSED_LIMIT and later["rate_hz"] == pytest.approx(0.9 * earlier["rate_hz"])


@pytest.mark.slow
@pytest.mark.ros
def test_miou_of_the_replayed_frames_matches_the_engine_on_them(report, sample_bag, tiny_weights):
    from icnet_ros.evaluation.bag_reading import Bag
    from icnet_ros.evaluation.metrics import ConfusionMatrix
    from icnet_ros.runtime.engine import SegmentationEngine

    engine = SegmentationEngine(tiny_weights, device="cpu", cpu_threads=1)
    with Bag(sample_bag) as bag:
        frames = list(bag.frames(["/camera/image_raw"], {"/camera/image_raw": "/camera/labels"}))
    masks = [engine.segment(frame.frame()).class_mask for frame in frames]
    engine.close()
    for measured in [report[0]["peak"], *report[0]["fixed"]]:
        # One mask per bag frame and run (the first answer); the node's mask of a frame is the engine's.
        expected = ConfusionMatrix(19)
        scored = 0
        for run in measured["runs"]:
            for index, (mask, frame) in enumerate(zip(masks, frames)):
                if any(answer is not None for _, answer in run["frames"][index::len(frames)]):
                    expected.update(mask, frame.label)
                    scored += 1
        accuracy = measured["accuracy"]
        assert accuracy["frames_scored"] == scored > 0
        assert accuracy["miou"] == pytest.approx(expected.mean_iou(), abs=1e-9)
        assert accuracy["pixel_accuracy"] == pytest.approx(expected.pixel_accuracy(), abs=1e-9)


def test_run_metrics_of_a_known_sequence():
    sent = [(1, 0.0), (2, 0.1), (3, 0.2), (4, 0.3)]
    arrivals = [(1, 0.05), (2, 0.16), (99, 0.17), (4, 0.37), (2, 0.4)]  # 99 was never sent; 2 twice
    metrics = run_metrics(sent, arrivals, origin=0.0)
    assert metrics["NUM_FRAMES_SENT"] == 4 and metrics["NUM_MISSED_FRAMES"] == 1
    assert metrics["MEAN_PLAYBACK_FRAME_RATE"] == pytest.approx(10.0)
    assert metrics["MEAN_FRAME_RATE"] == pytest.approx(2 / 0.32)
    assert metrics["FIRST_SENT_RECEIVED_LATENCY"] == pytest.approx(50.0)
    assert metrics["LAST_SENT_RECEIVED_LATENCY"] == pytest.approx(70.0)
    assert metrics["MAX_JITTER"] == pytest.approx(100.0) == metrics["MIN_JITTER"]
    assert metrics["latency_ms"]["max"] == pytest.approx(70.0) and metrics["latency_ms"]["n"] == 3
    assert metrics["frames"] == [[0.0, 50.0], [100.0, 160.0], [200.0, None], [300.0, 370.0]]
    assert trimmed_mean([1.0, 10.0, 2.0, 3.0]) == 2.5 and trimmed_mean([1.0, 2.0]) == 1.5
    assert trimmed_mean([None, math.nan]) is None
    combined = combine([metrics, {**metrics, "NUM_MISSED_FRAMES": 3}, {**metrics, "NUM_MISSED_FRAMES": 0}])
    assert combined["NUM_MISSED_FRAMES"] == 1 and combined["latency_ms"]["max"] == pytest.approx(70.0)


def test_bad_settings_are_refused_with_the_reason(tmp_path, sample_bag, capsys):
    assert main([str(tmp_path / "missing")]) == 2
    assert main([str(sample_bag), "--image-topic", "/nope"]) == 2
    assert main([str(sample_bag), "--rates", "fast"]) == 2
    assert main([str(sample_bag), "--no-peak", "--rates", ""]) == 2
    err = capsys.readouterr().err
    assert "bag not found" in err and "/camera/image_raw (sensor_msgs/msg/Image" in err
    assert "comma list of rates" in err and "--no-peak needs --rates" in err and "Traceback" not in err


@pytest.mark.slow
@pytest.mark.ros
def test_a_compressed_bag_without_the_peak_search(tmp_path, tiny_weights):
    from icnet_ros.tools.make_sample_bag import write_sample_bag
    bag = write_sample_bag(tmp_path / "jpeg", frames=4, rate=10, size=(48, 96), image_format="jpeg")
    result = subprocess.run(
        [sys.executable, "-m", "icnet_bench.node_bench", "ros2-benchmark", str(bag),
         "--image-topic", "/camera/image_raw/compressed", "--weights", str(tiny_weights), "--cpu-threads", "1",
         "--no-peak", "--rates", "20", "--runs", "1", "--run-seconds", "1", "--out-dir", str(tmp_path / "out")],
        capture_output=True, text=True, timeout=280)
    assert result.returncode == 0, result.stderr[-3000:]
    data = json.loads(next((tmp_path / "out").glob("*.json")).read_text())
    assert "peak" not in data and data["bag"]["kind"] == "compressed" and data["bag"]["size"] == [48, 96]
    (measured,) = data["fixed"]
    (run,) = measured["runs"]
    assert run["NUM_MISSED_FRAMES"] == sum(answer is None for _, answer in run["frames"]) < run["NUM_FRAMES_SENT"]
    assert measured["combined"]["MEAN_FRAME_RATE"] == run["MEAN_FRAME_RATE"]  # one run: nothing dropped
    assert measured["accuracy"]["frames_scored"] == sum(
        any(answer is not None for _, answer in run["frames"][index::4]) for index in range(4))
