"""scripts/gpu_node_check.sh --dry-run: every step of the GPU check on the CPU, tiny and short.

The dry run starts the same live nodes over Fast DDS as the GPU run (the ros2_benchmark form
for two networks, the overhead against the model alone, one node for N cameras against N
nodes) and writes the summary; the tests check that every step produced its report and that
the summary's figures are those of the reports. No timing assertions.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "gpu_node_check.sh"


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("gpu_node_check")
    result = subprocess.run([str(SCRIPT), "--dry-run", str(out)], capture_output=True, text=True, timeout=600,
                            env={"PATH": "/usr/bin:/bin", "PYTHON": sys.executable, "HOME": str(out)})
    assert result.returncode == 0, result.stderr[-3000:]
    return out


@pytest.mark.slow
@pytest.mark.ros
def test_every_step_ran_and_reported(dry_run):
    log = (dry_run / "check.log").read_text()
    assert "failed: none; skipped: none" in log
    forms = sorted(p.name for p in dry_run.glob("ros2_benchmark_*.json"))
    assert [re.sub(r".*_\d{4}-\d\d-\d\d_", "", name) for name in forms] == ["demo_fp32.json", "official_fp32.json"]
    assert len(list(dry_run.glob("node_*.json"))) == 2 and (dry_run / "summary.md").is_file()
    assert not (dry_run / "sample_bag").exists()
    assert "torch 2.13.0" in (dry_run / "environment.txt").read_text()


@pytest.mark.slow
@pytest.mark.ros
def test_summary_figures_are_those_of_the_reports(dry_run):
    summary = json.loads((dry_run / "summary.json").read_text())
    assert len(summary["ros2_benchmark"]) == 2 and len(summary["overhead"]) == 2 and len(summary["cameras"]) == 1
    for row in summary["ros2_benchmark"]:
        report = json.loads((dry_run / row["file"]).read_text())
        assert report["bag"]["size"] == row["size"] == [48, 96] and report["settings"]["device"] == "cpu"
        assert row["peak_fps"] == report["peak"]["combined"]["MEAN_FRAME_RATE"]
        at_30 = next(m for m in report["fixed"] if m["rate_hz"] == 30)
        assert row["p50_ms_at_30hz"] == at_30["combined"]["latency_ms"]["p50"]
        assert row["miou"] == at_30["accuracy"]["miou"]
    assert {"demo weights" in row["weights"] for row in summary["ros2_benchmark"]} == {True, False}
    for row in summary["overhead"]:
        (run,) = json.loads((dry_run / row["file"]).read_text())["profiles"]["shm"]["overhead"]
        assert row["ratio"] == run["summary"]["ratio"] and row["node_p50_ms"] == run["summary"]["node_ms"]["p50"]
    (cameras,) = summary["cameras"]
    assert cameras["cameras"] == 2 and cameras["gain"] == pytest.approx(
        cameras["one_node_fps"] / cameras["separate_fps"])
    markdown = (dry_run / "summary.md").read_text()
    assert markdown.count("| fp32 | 48x96 |") == 4 and "| 2 | 48x96 |" in markdown


def test_the_wheel_list_never_names_torch():
    lines = [line.split("#")[0].strip() for line in (REPO / "scripts/gpu-wheels/node.txt").read_text().splitlines()]
    names = [re.split(r"[<>=\[ ]", line)[0].lower() for line in lines if line and not line.startswith("-")]
    assert names and not [n for n in names if n.startswith(("torch", "nvidia", "triton"))]
    assert "-r ../../requirements-ros.txt" in lines and (REPO / "requirements-ros.txt").is_file()


def test_usage_errors_are_refused_with_the_reason(tmp_path):
    result = subprocess.run([str(SCRIPT)], capture_output=True, text=True)
    assert result.returncode == 2 and "usage:" in result.stderr
    result = subprocess.run([str(SCRIPT), str(tmp_path)], capture_output=True, text=True,
                            env={"PATH": "/usr/bin:/bin", "PYTHON": "/nonexistent/python3.12"})
    assert result.returncode == 2 and "no /nonexistent/python3.12" in result.stderr
    result = subprocess.run([str(SCRIPT), str(tmp_path)], capture_output=True, text=True,  # a CPU-only torch
                            env={"PATH": "/usr/bin:/bin", "PYTHON": sys.executable})
    assert result.returncode == 3 and "no CUDA torch" in result.stderr
