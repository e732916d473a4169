"""icnet-bench-node at a tiny size with few frames: the report's fields, real processes.

No timing assertions: benchmarks print figures, tests check that they are produced.
"""

from __future__ import annotations

import json
import math

import pytest

from icnet_bench import node_bench

pytestmark = pytest.mark.slow


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


def test_overhead_fields(report):
    (run,) = report[0]["profiles"]["shm"]["overhead"]
    assert run["size"] == [64, 128] and run["frames"] == 2 and len(run["rows"]) == 2
    summary = run["summary"]
    for key in ("node_ms", "echo_ms", "model_ms"):
        assert summary[key]["n"] == 2 and _number(summary[key]["p50"]), key
    assert math.isclose(summary["sum_p50_ms"], summary["model_ms"]["p50"] + summary["echo_ms"]["p50"])
    assert math.isclose(summary["ratio"], summary["node_ms"]["p50"] / summary["sum_p50_ms"])
    assert _number(summary["node_stages_ms"]["inference"]) and _number(summary["model_stages_ms"]["inference"])
    assert summary["target_met"] == (summary["ratio"] <= node_bench.OVERHEAD_TARGET)
    assert math.isclose(summary["ratio_node_engine"], summary["node_ms"]["p50"] / (
        summary["node_engine_ms"]["p50"] + summary["echo_ms"]["p50"]))


def test_pipelining_fields(report):
    (run,) = report[0]["profiles"]["shm"]["pipelining"]
    assert run["sent"] >= run["answered"] > 0 and _number(run["camera_hz"])
    assert run["slowest_unit"] in run["units_ms"] and run["slowest_ms"] == max(run["units_ms"].values())
    assert set(run["stages_ms"]) == set(node_bench.NODE_STAGES)
    assert math.isclose(run["ratio"], run["output_hz"] * run["slowest_ms"] / 1e3)
    assert math.isclose(run["output_hz"], run["counted"] / (run["seconds"] - min(1.0, run["seconds"] / 5)))


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
