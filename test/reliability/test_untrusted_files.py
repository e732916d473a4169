"""Files named by parameters are untrusted: the node checks the paths before use and refuses
a corrupt weight or label file with one clear log line, exiting with status 1.

Weight files are never unpickled (``test/weights/test_weights.py``: a crafted ``.pth``
payload never runs; here the node refuses one, saying what it found); missing files are in
``test/ros/test_node_startup.py``; truncated bags are refused by ``icnet-eval`` in
``test/eval``, a bag holding a corrupt message here.
All the node processes here start at once: most exit before torch is even imported.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from ros_harness import SegmenterProcess

pytestmark = pytest.mark.ros

NAMES = [f"class {i}" for i in range(19)]
PAYLOAD_MARKER = "payload_ran"


class _Payload:
    """Unpickling this would create ``marker`` (it calls ``open(marker, "w")``)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return open, (str(self.marker), "w")


def _cases(folder, tiny_weights) -> dict[str, tuple[dict, str]]:
    """case -> (parameters, the words the log must hold)."""
    data = tiny_weights.read_bytes()
    (folder / "truncated.safetensors").write_bytes(data[: len(data) // 3])
    (folder / "binary.yaml").write_bytes(bytes(range(256)) * 4)
    (folder / "broken.yaml").write_text("names: [road, sidewalk\ncolors: {")
    (folder / "no_colors.yaml").write_text(yaml.safe_dump({"name": "x", "names": NAMES}))
    (folder / "three.yaml").write_text(yaml.safe_dump({"names": NAMES[:3], "colors": [[1, 2, 3]] * 3}))
    (folder / "a_directory").mkdir()
    torch.save({"state_dict": {}, "metadata": _Payload(folder / PAYLOAD_MARKER)}, folder / "pickled_code.pth")
    weights = str(tiny_weights)
    return {
        "truncated-weights": ({"weights": str(folder / "truncated.safetensors")},
                              "is not a readable safetensors file"),
        "pickled-code-weights": ({"weights": str(folder / "pickled_code.pth")},
                                 "pickled_code.pth refused (it pickles unsupported GLOBAL io.open); "
                                 "nothing in it was run"),
        "weights-device": ({"weights": "/dev/zero"}, "weights file '/dev/zero' is not a file"),
        "binary-labels": ({"weights": weights, "labels_file": str(folder / "binary.yaml")},
                          "binary.yaml is not UTF-8 text"),
        "broken-yaml-labels": ({"weights": weights, "labels_file": str(folder / "broken.yaml")},
                               "broken.yaml is not valid yaml"),
        "labels-without-colors": ({"weights": weights, "labels_file": str(folder / "no_colors.yaml")},
                                  "no_colors.yaml: a label set needs 'names' and 'colors'"),
        "labels-of-another-network": ({"weights": weights, "labels_file": str(folder / "three.yaml")},
                                      "has 3 classes, the network 19"),
        "labels-directory": ({"weights": weights, "labels_file": str(folder / "a_directory")},
                             "is not a file"),
    }


@pytest.fixture(scope="module")
def refusals(tmp_path_factory, tiny_weights, ros_environment) -> tuple[Path, dict[str, tuple[SegmenterProcess, str]]]:
    """Every case's node process, all started together, each waited for once."""
    folder = tmp_path_factory.mktemp("untrusted")
    processes = {}
    cases = _cases(folder, tiny_weights)
    assert sorted(cases) == sorted(CASES)
    for case, (parameters, words) in cases.items():
        weights = parameters.pop("weights")
        processes[case] = (SegmenterProcess(folder, weights=weights, parameters=parameters, name=case), words)
    yield folder, processes
    for process, _ in processes.values():
        process.stop()


CASES = ["truncated-weights", "pickled-code-weights", "weights-device", "binary-labels", "broken-yaml-labels",
         "labels-without-colors", "labels-of-another-network", "labels-directory"]


@pytest.mark.parametrize("case", CASES)
def test_refused_with_a_clear_error(refusals, case):
    folder, processes = refusals
    process, words = processes[case]
    try:
        code = process.process.wait(timeout=90)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"the node kept running:\n{process.log()}") from None
    log = process.log()
    assert code == 1, log
    assert words in log, log
    assert "Traceback" not in log, log
    assert not (folder / PAYLOAD_MARKER).exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="running as root: file permissions do not stop reads")
def test_an_unreadable_weight_file_is_refused(tmp_path, tiny_weights, ros_environment):
    unreadable = tmp_path / "unreadable.safetensors"
    unreadable.write_bytes(tiny_weights.read_bytes())
    unreadable.chmod(0)
    process = SegmenterProcess(tmp_path, weights=unreadable)
    try:
        assert process.process.wait(timeout=60) == 1
    finally:
        process.stop()
    assert "is not readable (permissions)" in process.log()


def test_icnet_eval_refuses_a_bag_with_a_corrupt_message(tmp_path, tiny_weights, capsys):
    """Truncated bags are tested with icnet-eval (test/eval); a readable bag may still hold a
    message that is not valid CDR."""
    from rosbags.rosbag2 import StoragePlugin, Writer

    from icnet_ros.evaluation.bag_writing import TYPESTORE, image_message
    from icnet_ros.tools.evaluate_bag import main

    bag = tmp_path / "corrupt_message"
    with Writer(bag, version=9, storage_plugin=StoragePlugin.MCAP) as writer:
        connection = writer.add_connection("/camera/image_raw", "sensor_msgs/msg/Image", typestore=TYPESTORE)
        for index in range(3):
            stamp = 1_700_000_000_000_000_000 + index * 100_000_000
            data = bytes(TYPESTORE.serialize_cdr(image_message(np.zeros((8, 8, 3), np.uint8), stamp, "camera"),
                                                 "sensor_msgs/msg/Image"))
            writer.write(connection, stamp, data[:30] if index == 1 else data)
    assert main([str(bag), "--weights", str(tiny_weights), "-o", str(tmp_path / "report"), "--no-progress",
                 "--threads", "1"]) == 2
    error = capsys.readouterr().err
    assert "a message on /camera/image_raw" in error and "cannot be decoded" in error, error
    assert "Traceback" not in error
