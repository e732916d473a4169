"""The package's own metadata is enough to run the node.

A fresh venv gets only the ROS 2 wheels (requirements-ros.txt) and then
``pip install -c constraints.txt torch .``: the torch the user picks (setup.py declares
none) and what setup.py declares, nothing from requirements*.txt. torch comes from the test
environments' torch layer (the same files a pip install of torch 2.13.0 gives, nothing else;
test/environments.py). The engine's default CPU backend, onnxruntime, must come with the
package: ``auto`` would fall back to torch without a word. Its ``segmentation_node`` then
segments frames streamed for 10 s without a traceback, and exits 0 on SIGINT. pip's cache
and the machine's wheel directories serve the downloads. Slow: ``-m slow`` selects it.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

import numpy as np
import pytest
from colcon_workspace import copy_sources
from environments import Venv
from ros_harness import Segmenter, SegmenterProcess, rgb_message, same_header

pytestmark = [pytest.mark.ros, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
CONSTRAINTS = str(REPO / "constraints.txt")
STREAM_S = 10.0
# The engine's choice for ``auto`` on the CPU in fp32, in the installed venv, with the
# modules the onnxruntime backend needs (the exporter's onnx and onnxscript included).
BACKEND_PROBE = """
import sys
import onnx, onnxruntime, onnxscript, torch
from icnet_ros.runtime.inference_network import folded_network, network_runner
from icnet_ros.weights.weight_file import load_model
model, metadata = load_model(sys.argv[1], "cpu")
runner = network_runner(folded_network(model, torch.device("cpu"), torch.float32), "fp32", "auto",
                        tuple(metadata.preprocessing.input_size))
print(type(runner).__name__)
"""


def _build(venv: Venv) -> None:
    # --no-compile: Python compiles what is imported, when it is (the package step: 43 -> 31 s here).
    venv.pip("install", "-q", "--no-compile", "-c", CONSTRAINTS, "-r", str(REPO / "requirements-ros.txt"))
    # From a copy: pip builds in the source tree (build/, icnet_ros.egg-info), which other tests
    # of the session read (importlib.metadata finds an egg-info in the working directory).
    source = copy_sources(venv.path.parent / f"{venv.path.name}-source")
    venv.pip("install", "-q", "--no-compile", "-c", CONSTRAINTS, "torch", str(source))


@pytest.fixture(scope="module")
def installed(install_environments) -> Venv:
    """The venv with the ROS wheels and this package installed from its metadata."""
    return install_environments.venv("metadata", _build)


def test_the_installed_package_needs_nothing_it_does_not_declare(installed: Venv):
    probe = ("import importlib.util, torch; "
             "print(torch.__version__, importlib.util.find_spec('psutil') is None, "
             "importlib.util.find_spec('icnet_ros').origin)")
    version, no_psutil, origin = installed.run("-c", probe).stdout.split()
    assert version.split("+")[0] == "2.13.0"         # the constraints' torch, no other
    assert no_psutil == "True"                        # the node does not need it
    assert str(installed.path) in origin              # the installed copy, not this checkout
    # torch comes from the layer, as the user's own pick: the package declares none (setup.md).
    assert not any(r.startswith("torch") for r in installed.requirements("icnet_ros")), \
        installed.requirements("icnet_ros")


def test_the_installed_engine_runs_onnxruntime_by_default(installed: Venv, tiny_weights):
    """onnx, onnxruntime and onnxscript came with the package, and ``auto`` picks onnxruntime."""
    assert installed.run("-c", BACKEND_PROBE, str(tiny_weights)).stdout.split() == ["OnnxRuntimeNetwork"]


def test_the_installed_node_segments_a_10_s_stream(installed: Venv, ros_client, tiny_weights, tmp_path):
    executable = installed.bin("segmentation_node")
    assert executable.is_file(), sorted(p.name for p in executable.parent.iterdir())
    process = SegmenterProcess(tmp_path, weights=tiny_weights, name="metadata_install",
                               parameters={"diagnostics_period_s": 0.2}, command=[str(executable)])
    node = Segmenter(ros_client, process)
    try:
        node.wait_active()
        answered, sent = 0, 0
        end = time.monotonic() + STREAM_S
        rng = np.random.default_rng(0)
        while time.monotonic() < end:
            header = node.header(f"stream_{sent}")
            node.send(rgb_message(header, rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)))
            sent += 1
            assert same_header(node.answer(header).header, header)
            answered += 1
        print(f"\n{answered} of {sent} frames answered in {STREAM_S:g} s by the metadata-installed node")
        node.process.send_signal(signal.SIGINT)
        assert node.process.process.wait(timeout=30) == 0
        assert "Traceback" not in node.process.log(), node.process.log()
    finally:
        node.process.stop()
        node.close()
