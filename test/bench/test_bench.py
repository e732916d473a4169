"""icnet-bench model at a tiny size: the report's schema, figures and output agreement.

No timing assertions: benchmarks print figures, tests check that they are produced and
agree with the raw samples the report keeps, or with the paper's own rows.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import re
import statistics

import pytest
import torch

from icnet_bench import model_bench as bench
from icnet_bench.backends import torch_settings
from icnet_bench.model_cases import Settings
from icnet_ros.model.icnet import icnet
from icnet_ros.runtime.device import set_tf32, tf32_enabled

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out_dir = tmp_path_factory.mktemp("results")
    code = bench.main([
        "model", "--models", "sub4", "--sizes", "65x129", "--devices", "cpu", "--precisions", "fp32",
        "--backends", "eager,onnxruntime,cuda_graphs,tensorrt", "--repeats", "2", "--warmup", "1",
        "--threads", "1", "--out-dir", str(out_dir),
    ])
    assert code == 0
    files = sorted(out_dir.iterdir())
    assert [f.suffix for f in files] == [".json", ".md"]
    return json.loads(files[0].read_text()), files


def test_files_named_by_machine_and_date(report):
    data, files = report
    for path in files:
        assert data["machine"]["kind"] in path.name and data["date"][:10] in path.name
    markdown = files[1].read_text()
    assert "Table 3" in markdown and "Table 4" in markdown and "| paper |" in markdown


def test_schema_and_environment(report):
    """The report describes this run: the interpreter, packages and cores it ran with, the
    settings asked for, and the model measured (its own parameter count and multiply-adds)."""
    data, _ = report
    assert data["schema"] == bench.SCHEMA
    assert data["machine"]["cores"] == len(os.sched_getaffinity(0)) and data["machine"]["cpu"]
    assert data["versions"]["python"] == platform.python_version()
    assert data["versions"]["torch"] == torch.__version__
    assert data["versions"]["onnxruntime"] == importlib.metadata.version("onnxruntime")
    assert data["settings"]["repeats"] == 2 and data["settings"]["memory_method"]
    model = icnet(branches="sub4")
    assert data["models"]["sub4"]["parameters"] == sum(p.numel() for p in model.parameters())
    # One multiply-add per weight of each convolution per output pixel, counted here by hooks.
    macs = []

    def count(module, _inputs, output):
        macs.append(module.weight.numel() * output.shape[-2] * output.shape[-1])

    for module in model.modules():
        if isinstance(module, torch.nn.Conv2d):
            module.register_forward_hook(count)
    with torch.no_grad():
        model.eval()(torch.zeros(1, 3, 65, 129))
    assert data["models"]["sub4"]["costs"]["65x129"]["gmac"] == pytest.approx(sum(macs) / 1e9, rel=0.05, abs=2e-3)


def test_paper_figures_are_the_reference_notes(report, reference_dir):
    """Table 3 as the reference notes on the paper quote it (ms, GB, speed-up, memory saving)."""
    table3 = report[0]["paper"]["table3"]
    notes = (reference_dir / "ICNET.md").read_text()
    quoted = re.search(r"baseline (\d+) ms, ([\d.]+) GB; ICNet (\d+) ms,\s+([\d.]+) GB \(([\d.]+)x faster, "
                       r"([\d.]+)x less memory\)", notes)
    assert quoted, "ICNET.md no longer quotes Table 3"
    assert [float(v) for v in quoted.groups()] == [
        table3["baseline"]["time_ms"], table3["baseline"]["memory_gb"], table3["sub124"]["time_ms"],
        table3["sub124"]["memory_gb"], table3["speedup"], table3["memory_saving"]]


def test_measured_rows_positive_and_outputs_agree(report):
    data, _ = report
    ok = {row["backend"]: row for row in data["results"] if row["status"] == "ok"}
    assert set(ok) == {"eager", "onnxruntime"}
    for row in ok.values():
        latency = row["latency_ms"]
        samples = latency["samples"]
        assert len(samples) == 2
        assert 0 < latency["min"] <= latency["median"] <= latency["p90"]
        # The figures of the samples kept (rounded to 1 us in the report).
        assert latency["min"] == pytest.approx(min(samples), abs=1e-3)
        assert latency["median"] == pytest.approx(statistics.median(samples), abs=1e-3)
        assert latency["mean"] == pytest.approx(statistics.fmean(samples), abs=1e-3)
        assert latency["p90"] <= max(samples) + 1e-3
        assert row["throughput_fps"] > 0
        assert row["batch"] == 1 and row["throughput_fps"] == pytest.approx(1e3 / statistics.median(samples),
                                                                            rel=1e-3)
        assert row["peak_mem_bytes"] > 0, row.get("memory_note")
        assert row["outputs"]["within_tolerance"], row["outputs"]
        assert row["outputs"]["label_agreement"] > 0.99
    assert ok["eager"]["outputs"]["max_abs"] == 0.0  # eager fp32 is the reference itself
    speedups = data["ratios"]["backend_speedup"]
    assert speedups and speedups[0]["speedup_vs_eager_fp32"] > 0


def test_cuda_only_backends_skipped_with_reason(report):
    data, _ = report
    skipped = {row["backend"]: row for row in data["results"] if row["status"] == "skipped"}
    assert set(skipped) == {"cuda_graphs", "tensorrt"}
    assert "CUDA" in skipped["cuda_graphs"]["reason"]
    assert "CUDA" in skipped["tensorrt"]["reason"]


@pytest.mark.parametrize("argv,message", [
    (["--sizes", "big"], "HEIGHTxWIDTH"),
    (["--backends", "onnxruntime+channels_last"], "channels_last does not apply"),
    (["--backends", "tvm"], "unknown backend"),
    (["--models", "resnet"], "unknown model"),
    (["--label", "Bad Label"], "--label"),
])
def test_bad_options_are_reported_without_traceback(argv, message, capsys, tmp_path):
    assert bench.main(["model", *argv, "--out-dir", str(tmp_path)]) == 2
    error = capsys.readouterr().err
    assert message in error and "Traceback" not in error
    assert not list(tmp_path.iterdir())


def test_report_rewrites_markdown_from_json(report, tmp_path, capsys):
    data, files = report
    copy = tmp_path / files[0].name
    copy.write_text(files[0].read_text())
    assert bench.main(["report", str(copy)]) == 0
    assert copy.with_suffix(".md").read_text() == files[1].read_text()
    assert json.loads(copy.read_text())["results"] == data["results"]
    (tmp_path / "other.json").write_text('{"schema": "something else"}')
    assert bench.main(["report", str(tmp_path / "other.json")]) == 2
    assert "not an icnet-bench model report" in capsys.readouterr().err


def test_fp32_rows_run_true_fp32_and_the_flags_come_back(report):
    """TF32 off inside a run (the CUDA "fp32" rows are fp32, as in the engine), restored after."""
    data, _ = report
    assert "TF32 off" in data["settings"]["fp32"]
    settings = Settings(models=["sub4"], sizes=[(65, 129)], devices=["cpu", "cuda"], precisions=["fp32"],
                        backends=["eager"], threads=1)
    before = tf32_enabled()
    set_tf32(True)
    try:
        with torch_settings(settings):
            assert not tf32_enabled()
            assert torch.backends.cudnn.benchmark
        assert tf32_enabled()
        # A CPU-only run leaves the flags alone: with cuDNN's fp32_precision at ieee, torch 2.13's
        # torch.export (the onnxruntime rows) fails in that process.
        with torch_settings(Settings(**{**settings.__dict__, "devices": ["cpu"]})):
            assert tf32_enabled()
    finally:
        set_tf32(before)
