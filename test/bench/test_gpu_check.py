"""scripts/gpu_check.sh --dry-run: every step that needs no CUDA, on the CPU at reduced
sizes, writing the files a GPU run writes with the CUDA parts marked skipped."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("gpu_check")
    environment = {key: value for key, value in os.environ.items() if key != "ICNET_REQUIRE_CUDA"}
    run = subprocess.run([str(REPO / "scripts" / "gpu_check.sh"), "--dry-run", str(out)], cwd=REPO,
                         env={**environment, "PYTHON": sys.executable}, capture_output=True, text=True, timeout=900)
    return run, out


def test_the_dry_run_passes_and_writes_the_files_of_a_gpu_run(dry_run):
    run, out = dry_run
    assert run.returncode == 0, run.stderr[-3000:]
    names = sorted(path.name for path in out.iterdir())
    assert len(names) <= 8, names
    assert {"tests.xml", "tests.log", "engine.json", "summary.json", "summary.md"} <= set(names)
    model_files = [name for name in names if name.startswith("model_") and "gpu-check" in name]
    assert sorted(Path(name).suffix for name in model_files) == [".json", ".md"], names
    summary = json.loads((out / "summary.json").read_text())
    assert summary["dry_run"] and summary["passed"]
    assert [step["step"] for step in summary["steps"]] == ["tests", "engine", "model"]
    assert all(step["exit_code"] == 0 for step in summary["steps"])


def test_cuda_parts_are_marked_skipped_and_cpu_parts_measured(dry_run):
    _, out = dry_run
    summary = json.loads((out / "summary.json").read_text())
    tests = summary["tests"]
    assert tests["tests"] >= 9 and tests["skipped"] == tests["tests"] and not tests["failures"] + tests["errors"]
    engine = json.loads((out / "engine.json").read_text())
    cpu = {row["precision"]: row for row in engine["agreement"] if row["device"] == "cpu"}
    assert set(cpu) == {"fp16", "bf16"} and all(row["status"] == "ok" for row in cpu.values())
    assert [row["status"] for row in engine["agreement"] if row["device"] == "cuda"] == ["skipped"]
    assert engine["sync_free"]["status"] == "skipped"
    pipelining = {row["device"]: row for row in engine["pipelining"]}
    assert pipelining["cpu"]["pipelined_fps"] > 0 and pipelining["cuda"]["status"] == "skipped"
    model = json.loads(next(out.glob("model_*.json")).read_text())
    statuses = {(row["model"], row["backend"]): row["status"] for row in model["results"]}
    assert statuses[("sub124", "eager+channels_last+fold")] == "ok"
    assert statuses[("baseline", "cuda_graphs+channels_last+fold")] == "skipped"
    assert "dry run" in (out / "summary.md").read_text()
