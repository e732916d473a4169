"""icnet-bench-node at a tiny size with few frames: the report's fields, real processes.

No timing assertions: benchmarks print figures, tests check that they are produced and
that each one agrees with the raw samples the report keeps, or with a hand-made input
whose answer is known.
"""

from __future__ import annotations

import json
import math
import statistics

import pytest

from icnet_bench import node_bench

# The targets docs/performance.md states: node p50 <= 1.1 x (model + floor); output >= 0.95 / slowest.
OVERHEAD_TARGET = 1.1
PIPELINING_TARGET = 0.95


@pytest.fixture(scope="module")
def report(tmp_path_factory, tiny_weights):
    out_dir = tmp_path_factory.mktemp("results")
    code = node_bench.main([
        "--profiles", "shm", "--sizes", "64x128", "--frames", "2", "--warmup", "1",
        "--pipeline-seconds", "0.5", "--cameras", "1", "--camera-size", "48x96", "--rounds", "1",
        "--throughput-seconds", "0.3", "--throughput-blocks", "2", "--weights", str(tiny_weights),
        "--out-dir", str(out_dir)])
    assert code == 0
    files = sorted(out_dir.iterdir())
    assert [f.suffix for f in files] == [".json", ".md"]
    return json.loads(files[0].read_text()), files


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not math.isnan(value) and value > 0


@pytest.mark.slow
def test_files_environment_and_settings(report):
    data, files = report
    assert data["schema"] == node_bench.SCHEMA
    for path in files:
        assert path.name.startswith(f"node_{data['machine']['kind']}_{data['date'][:10]}")
    assert data["machine"]["cores"] >= 1 and data["versions"]["torch"]
    assert data["settings"]["sizes"] == [[64, 128]] and data["settings"]["profiles"] == ["shm"]
    assert data["weights"].startswith("given") and data["shm_profile"].endswith("fastdds_shm.xml")
    profile = data["profiles"]["shm"]
    assert profile["fastdds_profile"] == data["shm_profile"] and profile["input_qos"] == "best_effort"
    markdown = files[1].read_text()
    for heading in ("## Node overhead", "## Pipelining", "## Many cameras", "## The engine alone"):
        assert heading in markdown


@pytest.mark.slow
def test_overhead_fields(report):
    (run,) = report[0]["profiles"]["shm"]["overhead"]
    assert run["size"] == [64, 128] and run["frames"] == 2 and len(run["rows"]) == 2
    summary, rows = run["summary"], run["rows"]
    for key in ("node_ms", "echo_ms", "model_ms"):
        assert summary[key]["n"] == 2 and _number(summary[key]["p50"]), key
        assert math.isclose(summary[key]["p50"], statistics.median(row[key] for row in rows)), key
    model, echo, node = (statistics.median(row[key] for row in rows) for key in ("model_ms", "echo_ms", "node_ms"))
    assert math.isclose(summary["sum_p50_ms"], model + echo)
    assert math.isclose(summary["ratio"], node / (model + echo))
    assert _number(summary["node_stages_ms"]["inference"]) and _number(summary["model_stages_ms"]["inference"])
    timed = [row["node_stages_ms"] for row in rows if row["node_stages_ms"]]
    assert math.isclose(summary["node_stages_ms"]["inference"], statistics.median(t["inference"] for t in timed))
    assert report[0]["targets"]["overhead_ratio_max"] == OVERHEAD_TARGET
    assert summary["target_met"] == (summary["ratio"] <= OVERHEAD_TARGET)
    engine = statistics.median(sum(t[stage] for stage in node_bench.ENGINE_STAGES) for t in timed)
    assert math.isclose(summary["ratio_node_engine"], node / (engine + echo))


@pytest.mark.slow
def test_pipelining_fields(report):
    (run,) = report[0]["profiles"]["shm"]["pipelining"]
    assert run["sent"] >= run["answered"] > 0 and _number(run["camera_hz"])
    assert run["slowest_unit"] in run["units_ms"] and run["slowest_ms"] == max(run["units_ms"].values())
    assert set(run["stages_ms"]) == set(node_bench.NODE_STAGES)
    answers, timings = run["answers_s"], run["timings_ms"]
    assert len(answers) == run["answered"] and all(0 <= sent < arrived for sent, arrived in answers)
    for stage in node_bench.NODE_STAGES:
        assert math.isclose(run["stages_ms"][stage], statistics.median(t[stage] for t in timings)), stage
    assert math.isclose(run["latency_ms"]["p50"], statistics.median((a - s) * 1e3 for s, a in answers))
    # Answers per second after the ramp (a fifth of the run, at most 1 s) until the last send.
    ramp = min(1.0, run["seconds"] / 5)
    counted = sum(ramp <= arrived <= run["seconds"] for _, arrived in answers)
    assert run["counted"] == counted
    assert math.isclose(run["output_hz"], counted / (run["seconds"] - ramp))
    assert math.isclose(run["ratio"], run["output_hz"] * run["slowest_ms"] / 1e3)
    assert report[0]["targets"]["pipelining_ratio_min"] == PIPELINING_TARGET
    assert run["target_met"] == (run["ratio"] >= PIPELINING_TARGET)


def test_summaries_of_hand_made_samples():
    """``stats`` against known percentiles (linear interpolation), NaN and None left out."""
    summary = node_bench.stats([4.0, 1.0, None, 3.0, math.nan, 2.0, 5.0])
    assert summary == {"p50": 3.0, "p90": 4.6, "p99": pytest.approx(4.96), "mean": 3.0, "min": 1.0,
                       "max": 5.0, "n": 5}
    assert node_bench.stats([]) is None and node_bench.stats([math.nan]) is None


def test_steady_rate_of_hand_made_arrivals():
    """10 s from 100 s on: the first 1 s is the ramp, so 9 of these arrivals count, over 9 s."""
    arrivals = [100.5, 101.0, *[100.0 + t for t in range(2, 10)], 110.0, 110.5]
    assert node_bench._steady_rate(arrivals, 100.0, 110.0) == (pytest.approx(10 / 9), 10)
    # A 2 s run: a ramp of 0.4 s.
    assert node_bench._steady_rate([0.2, 0.4, 1.0, 2.0], 0.0, 2.0) == (pytest.approx(3 / 1.6), 3)


def test_pipeline_units_of_hand_made_stages():
    stages = {"decode": 1.0, "upload": 2.0, "preprocess": 4.0, "inference": 8.0, "postprocess": 16.0,
              "download": 32.0, "colorize": 64.0, "publish": 128.0}
    assert node_bench._units(stages, "cpu") == {
        "submitter thread (decode..inference)": 15.0, "post-processing thread": 48.0,
        "publisher thread (colorize, publish)": 192.0}
    assert node_bench._units(stages, "cuda") == {
        "submitter thread (decode, staging)": 1.0, "upload stream": 2.0,
        "compute stream (preprocess..download)": 60.0, "publisher thread (colorize, publish)": 192.0}


@pytest.mark.slow
def test_cameras_fields(report):
    (run,) = report[0]["profiles"]["shm"]["cameras"]
    # One camera (the fewest processes on a shared CPU): the one-node setup serves it through image_topics.
    assert run["cameras"] == 1 and run["size"] == [48, 96]
    for mode, processes in (("one_node", 1), ("separate_nodes", 1)):
        result = run[mode]
        assert result["processes"] == processes and len(result["throughput_fps"]) == 1
        assert result["frame_latency_ms"]["n"] == 1 and _number(result["set_latency_ms"]["p50"])
    assert run["one_node"]["batch_size_together"]["max"] == 1
    assert _number(run["model_only"]["batch_ms"]["p50"]) and _number(run["model_batch_gain"])


@pytest.mark.slow
def test_engine_part_and_available_cores(report):
    profile = report[0]["profiles"]["shm"]
    (run,) = profile["engine"]
    assert run["size"] == [64, 128] and run["model_ms"]["1"]["n"] == 2 and _number(run["speedup_all_cores"])
    assert run["overlap"]["fps"]["own_thread"]["n"] == 6 == run["overlap"]["fps"]["at_submit"]["n"]
    assert _number(run["overlap"]["gain"])
    assert len(profile["cores_available"]) == 3 and all(_number(v) for v in profile["cores_available"])


def test_bad_settings_are_refused_with_the_reason(capsys):
    assert node_bench.main(["--sizes", "1024"]) == 2
    assert node_bench.main(["--profiles", "udp"]) == 2
    assert node_bench.main(["--weights", "/nonexistent.safetensors", "--parts", "overhead"]) == 2
    err = capsys.readouterr().err
    assert "HEIGHTxWIDTH" in err and "shm, default" in err and "does not exist" in err
    assert "Traceback" not in err
