"""The fuzzing tool, short: 300 malformed messages and 50 good frames to two real nodes (raw
and compressed input). The long run (10,000 messages) is in docs/reliability/."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.ros

MALFORMED, BATCH = 300, 6


@pytest.fixture(scope="module")
def report(tmp_path_factory, tiny_weights, ros_environment) -> dict:
    folder = tmp_path_factory.mktemp("fuzz")
    output = folder / "fuzz.json"
    done = subprocess.run([sys.executable, "-m", "icnet_bench.fuzz_node", "--messages", str(MALFORMED),
                           "--batch", str(BATCH), "--weights", str(tiny_weights), "--seed", "7",
                           "--domain-id", ros_environment["ROS_DOMAIN_ID"], "--output", str(output),
                           "--log-dir", str(folder / "logs"), "--quiet"],
                          capture_output=True, text=True, timeout=240)
    print(done.stdout)
    assert output.is_file(), done.stderr[-3000:]
    return json.loads(output.read_text())


def test_every_message_is_accounted_for(report):
    totals = report["totals"]
    assert totals["malformed_sent"] == MALFORMED
    assert totals["good_sent"] == MALFORMED // BATCH
    for transport, node in report["nodes"].items():
        deliverable = node["malformed_sent"] - node["undeliverable_sent"]
        assert node["undeliverable_sent"] > 0, transport
        assert node["refused"] + node["dropped_counted"] == deliverable, transport
        assert node["lost_before_node"] == 0 and node["unaccounted"] == 0, transport
        assert node["wrong_refusals"] == 0 and node["extra_processed"] == 0, transport
        assert node["unexplained_batches"] == 0, report["anomalies"]
        # Refused for the reasons classified: short only by the frames the node counted as dropped.
        shortfall = sum(n - node["refused_by_reason"].get(r, 0) for r, n in node["expected_refusals_by_reason"].items())
        assert shortfall == node["dropped_counted"], transport
        assert node["good_answered"] == node["good_sent"] and node["wrong_size_masks"] == 0, transport
        assert node["inference_failures"] == 0, transport
    assert report["passed"]


def test_every_kind_of_malformed_message_was_sent(report):
    raw, compressed = report["nodes"]["raw"], report["nodes"]["compressed"]
    assert set(raw["sent_by_category"]) == {"unknown_encoding", "float_nan_inf", "zero_size", "oversize_declared",
                                            "oversize_real", "step_too_small", "truncated_data", "odd_size",
                                            "cdr_garbage"}
    assert set(compressed["sent_by_category"]) == {"garbage", "empty", "truncated_header", "truncated_body",
                                                   "oversize_declared", "zero_size_declared", "depth_format",
                                                   "cdr_garbage"}
    assert {"unknown_encoding", "zero_size", "oversize", "step_too_small", "data_too_short", "odd_size"} \
        <= set(raw["expected_refusals_by_reason"])
    assert {"undecodable", "oversize", "zero_size", "unknown_encoding"} \
        <= set(compressed["expected_refusals_by_reason"])
    # NaN/infinite float images are refused as unsupported encodings, with the other unknown ones.
    assert raw["expected_refusals_by_reason"]["unknown_encoding"] >= \
        raw["sent_by_category"]["float_nan_inf"] + raw["sent_by_category"]["unknown_encoding"]


def test_the_nodes_survive_and_stop_cleanly(report):
    for node in report["nodes"].values():
        assert node["alive_at_end"]
        assert node["shutdown"]["returncode"] == 0


def test_memory_is_flat(report):
    """Resident memory after warm-up: the long run's figure is the one to quote; this short
    run only has to stay within 5 % (a leak per message would show at once)."""
    for transport, node in report["nodes"].items():
        memory = node["memory"]
        print(f"{transport}: RSS {memory['after_warmup_mib']} -> {memory['end_mib']} MiB "
              f"({memory['growth_percent']} %)")
        assert abs(memory["growth_percent"]) < 5.0
