"""icnet-eval scores a PIDNet as it scores ICNet: the network comes from the weights."""

from __future__ import annotations

from eval_support import FRAMES
from test_evaluate_bag import LABELS, TOPICS, check_schema, independent_miou, run_offline

from icnet_bench.random_weights import TINY_ARCHITECTURES, random_weights


def test_offline_evaluation_of_a_pidnet(sample_bags, tmp_path):
    weights = random_weights(tmp_path / "pidnet_s.safetensors", architecture=TINY_ARCHITECTURES["pidnet-s"],
                             input_size=(64, 128), bn_statistics=True, source="random initialisation for tests")
    report = run_offline(sample_bags["mcap"], TOPICS["mcap"], weights, tmp_path, "--label-topic", LABELS,
                         "--save-masks", str(tmp_path / "masks"))
    check_schema(report)
    assert report["weights"]["metadata"]["architecture"]["name"] == "pidnet"
    assert report["counts"]["scored"] == FRAMES
    miou, frames = independent_miou(tmp_path / "masks", sample_bags["mcap"])
    assert frames == FRAMES and report["accuracy"]["miou"] == miou
