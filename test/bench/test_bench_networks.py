"""icnet-bench model compares ICNet, PIDNet and DDRNet in one run (tiny input, CPU, eager)."""

from __future__ import annotations

import json

import pytest

from icnet_bench import model_bench as bench

pytestmark = pytest.mark.slow


def test_one_run_compares_icnet_pidnet_and_ddrnet(tmp_path):
    code = bench.main(["model", "--models", "sub124,pidnet-s,ddrnet-23-slim", "--sizes", "65x129",
                       "--devices", "cpu", "--precisions", "fp32", "--backends", "eager+channels_last+fold",
                       "--repeats", "2", "--warmup", "0", "--threads", "1", "--no-memory", "--out-dir", str(tmp_path)])
    assert code == 0
    json_file, md_file = sorted(tmp_path.iterdir())
    report = json.loads(json_file.read_text())
    assert report["models"]["pidnet-s"]["parameters"] == 7_625_715     # official, without the training heads
    assert report["models"]["ddrnet-23-slim"]["parameters"] == 5_695_987
    assert report["models"]["pidnet-s"]["costs"]["65x129"]["gmac"] > 0
    rows = {(r["model"], r["backend"]): r for r in report["results"]}
    assert len(rows) == 3 and all(r["status"] == "ok" for r in rows.values())
    pidnet = rows[("pidnet-s", "eager+channels_last+fold")]
    assert (pidnet["height"], pidnet["width"], pidnet["requested_size"]) == (64, 128, "65x129")
    assert pidnet["outputs"]["within_tolerance"] and pidnet["latency_ms"]["median"] > 0
    markdown = md_file.read_text()
    assert "## ICNet beside PIDNet and DDRNet" in markdown
    table = markdown.split("## ICNet beside PIDNet and DDRNet")[1]
    assert "| pidnet-s | 64x128 | 7,625,715 |" in table and "| 78.8 | 93.2 (RTX 3090" in table
    assert "| sub124 | 65x129 |" in table and "| 67.7 | 30.3 (TitanX" in table
