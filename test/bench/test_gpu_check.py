"""scripts/gpu_check.sh --dry-run, rehearsed in the GPU machine's environment: a Python with
exactly the GPU image's packages (CPU torch standing in, no pip), the carried wheels unpacked
without pip, every step on the CPU at reduced sizes, the CUDA parts marked skipped. Also the
pieces the GPU run relies on: unpacking wheels, counting host waits, the wheel lists."""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import subprocess
import sys
import threading
import zipfile
from pathlib import Path

import pytest
import torch
from gpu_rehearsal import CARRY_LIMIT, carried_bytes, normalized, rehearsal

from icnet_bench.carried_wheels import exports, install
from icnet_bench.host_waits import HostWaits

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "gpu_check.sh"
STEPS = ["tests", "masks", "steady", "speed", "bag", "node", "model"]


@pytest.fixture(scope="module")
def environment():
    try:
        return rehearsal()
    except RuntimeError as error:  # the .venv lacks what the wheel lists name (no ROS wheels)
        pytest.skip(f"cannot rehearse the GPU environment: {error}")


@pytest.fixture(scope="module")
def dry_run(environment, tmp_path_factory):
    out = tmp_path_factory.mktemp("gpu_check")
    run = subprocess.run([str(SCRIPT), "--dry-run", str(out)], cwd=REPO, capture_output=True, text=True, timeout=900,
                         env={"PATH": "/usr/bin:/bin", "HOME": str(out.parent), "PYTHON": str(environment.python),
                              "GPU_WHEELS": str(environment.wheels)})
    return run, out


@pytest.mark.slow
def test_the_rehearsal_holds_the_gpu_images_packages_and_fits_a_device_call(environment):
    """What the environment has is what the image has (no pip, no ROS); what it lacks travels
    as wheels, which with the repository fit the 64 MiB a device call carries."""
    probe = ("import importlib.metadata as m, importlib.util as u, json; print(json.dumps("
             "[sorted(d.metadata['Name'] for d in m.distributions()), [u.find_spec(n) is None for n in "
             "('pip', 'rclpy', 'rosbags', 'icnet_ros')]]))")
    names, missing = json.loads(subprocess.run([str(environment.python), "-c", probe], capture_output=True,
                                               text=True, check=True, env={"PATH": "/usr/bin:/bin"},
                                               cwd=environment.wheels).stdout)
    assert {normalized(name) for name in names} == environment.image and "torch" in environment.image
    assert missing == [True, True, True, True]
    wheels = {normalized(path.name.split("-")[0]) for path in environment.wheels.glob("*.whl")}
    assert wheels == environment.carried and "ros-rclpy" in wheels and not wheels & environment.image
    assert carried_bytes(environment.wheels) <= CARRY_LIMIT


@pytest.mark.slow
def test_the_dry_run_passes_every_step_and_writes_what_a_device_call_brings_back(dry_run):
    run, out = dry_run
    assert run.returncode == 0, run.stderr[-3000:]
    names = sorted(path.name for path in out.iterdir())
    assert len(names) <= 8, names  # what comes back from a device call
    assert {"tests.xml", "engine.json", "summary.json", "summary.md"} <= set(names)
    for prefix in ("model_", "ros2_benchmark_"):
        files = [name for name in names if name.startswith(prefix) and "gpu-check" in name]
        assert sorted(Path(name).suffix for name in files) == [".json", ".md"], names
    summary = json.loads((out / "summary.json").read_text())
    assert summary["dry_run"] and summary["passed"]
    assert [(step["step"], step["status"]) for step in summary["steps"]] == [(name, "ok") for name in STEPS]
    assert "ros-rclpy" in run.stderr.partition("already here")[0]  # unpacked, not found installed


@pytest.mark.slow
def test_cuda_parts_are_marked_skipped_and_cpu_parts_measured(dry_run):
    _, out = dry_run
    summary = json.loads((out / "summary.json").read_text())
    tests = summary["tests"]
    assert tests["tests"] >= 9 and tests["skipped"] == tests["tests"] and not tests["failures"] + tests["errors"]
    engine = json.loads((out / "engine.json").read_text())
    cpu = {row["precision"]: row for row in engine["masks"] if row["device"] == "cpu"}
    assert set(cpu) == {"fp16", "bf16"} and all(row["status"] == "ok" for row in cpu.values())
    assert [row["status"] for row in engine["masks"] if row["device"] == "cuda"] == ["skipped"]
    assert engine["steady"]["status"] == "skipped"
    speed = {row["device"]: row for row in engine["speed"]}
    assert speed["cpu"]["pipelined_ms_per_frame"] > 0 and speed["cuda"]["status"] == "skipped"
    model = json.loads(next(out.glob("model_*.json")).read_text())
    statuses = {(row["model"], row["backend"]): row["status"] for row in model["results"]}
    assert statuses[("sub124", "eager+channels_last+fold")] == "ok"
    assert statuses[("baseline", "cuda_graphs+channels_last+fold")] == "skipped"
    node = json.loads(next(out.glob("ros2_benchmark_*.json")).read_text())
    assert node["settings"]["device"] == "cpu" and node["bag"]["size"] == [48, 96]
    at_30 = next(m for m in node["fixed"] if m["rate_hz"] == 30)
    p50 = next(t for t in summary["targets"] if "30 Hz" in t["target"])
    assert p50["measured"] == f"{at_30['combined']['latency_ms']['p50']:.1f} ms"
    assert "dry run" in (out / "summary.md").read_text()


def _wheel(folder: Path, name: str, files: dict[str, bytes]) -> Path:
    path = folder / f"{name}-1.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as archive:
        for arcname, data in files.items():
            archive.writestr(arcname, data)
    return path


def test_carried_wheels_unpack_only_what_is_missing_and_where_pip_would(tmp_path):
    wheels, site = tmp_path / "wheels", tmp_path / "site"
    wheels.mkdir()
    stem = "icnet_probe_pkg-1.0"
    _wheel(wheels, "icnet_probe_pkg", {
        "icnet_probe/__init__.py": b"VALUE = 42\n", f"{stem}.dist-info/METADATA": b"Name: icnet-probe-pkg\nVersion: 1.0\n",
        f"{stem}.data/data/lib/libprobe.so": b"\x7fELF", f"{stem}.data/scripts/probe": b"#!/bin/sh\necho probe\n",
        f"{stem}.data/purelib/icnet_probe_extra.py": b"", f"{stem}.data/headers/probe.h": b""})
    (wheels / "numpy-0.0-py3-none-any.whl").write_bytes(b"not a zip: numpy is here, so never opened")
    unpacked, kept = install(wheels, site)
    assert (unpacked, kept) == (["icnet-probe-pkg"], ["numpy"])
    assert (site / "prefix" / "lib" / "libprobe.so").is_file() and (site / "icnet_probe_extra.py").is_file()
    assert os.access(site / "prefix" / "bin" / "probe", os.X_OK) and not (site / "probe.h").exists()
    lines = dict(line.removeprefix("export ").split("=", 1) for line in exports(site))
    assert lines["PYTHONPATH"].strip("'").split(os.pathsep)[0] == str(site)
    assert lines["LD_LIBRARY_PATH"].strip("'").startswith(str(site / "prefix" / "lib"))
    found = subprocess.run([sys.executable, "-c", "import icnet_probe, importlib.metadata as m; "
                            "print(icnet_probe.VALUE, m.version('icnet-probe-pkg'))"],
                           env={**os.environ, "PYTHONPATH": str(site)}, capture_output=True, text=True)
    assert found.stdout.split() == ["42", "1.0"], found.stderr
    assert importlib.metadata.version("numpy")  # the one kept is this Python's own


def test_host_waits_sees_the_waits_sync_debug_mode_misses():
    """Calls are counted by thread before they run (here they fail: no CUDA needed to see them);
    only the engine's waiting thread may wait on an event; everything is restored after."""
    originals = (torch.cuda.synchronize, torch.cuda.Event.synchronize, torch.cuda.Stream.synchronize)

    def attempt(call) -> None:
        try:
            call()
        except (RuntimeError, AssertionError, AttributeError, TypeError):
            pass

    with HostWaits() as waits:
        attempt(torch.cuda.synchronize)
        attempt(lambda: torch.cuda.Event.synchronize(None))
        waiter = threading.Thread(target=attempt, args=(lambda: torch.cuda.Event.synchronize(None),),
                                  name="icnet-cuda-wait_0")
        waiter.start()
        waiter.join()
        torch.zeros(2).copy_(torch.ones(2), non_blocking=True)  # host to host: no device wait
    assert [what for what, _ in waits.calls] == ["torch.cuda.synchronize", "Event.synchronize", "Event.synchronize"]
    assert waits.outside_the_waiting_thread() == waits.calls[:2] and waits.unpinned_copies == 0
    assert (torch.cuda.synchronize, torch.cuda.Event.synchronize, torch.cuda.Stream.synchronize) == originals
    assert "copy_" not in vars(torch.Tensor)


def test_the_wheel_lists_never_name_torch():
    for path in (REPO / "scripts" / "gpu-wheels").glob("*.txt"):
        lines = [line.split("#")[0].strip() for line in path.read_text().splitlines()]
        names = [re.split(r"[<>=\[ ;]", line)[0].lower() for line in lines if line and not line.startswith("-")]
        assert names and not [n for n in names if n.startswith(("torch", "nvidia", "triton"))], path


def test_usage_errors_are_refused_with_the_reason(tmp_path):
    result = subprocess.run([str(SCRIPT)], capture_output=True, text=True)
    assert result.returncode == 2 and "usage:" in result.stderr
    result = subprocess.run([str(SCRIPT), str(tmp_path)], capture_output=True, text=True,
                            env={"PATH": "/usr/bin:/bin", "PYTHON": "/nonexistent/python3.12"})
    assert result.returncode == 2 and "no /nonexistent/python3.12" in result.stderr
    if not torch.cuda.is_available():  # a CPU-only torch, without --dry-run
        result = subprocess.run([str(SCRIPT), str(tmp_path)], capture_output=True, text=True,
                                env={"PATH": "/usr/bin:/bin", "PYTHON": sys.executable})
        assert result.returncode == 3 and "no CUDA device" in result.stderr
