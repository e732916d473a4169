"""A random-weight PIDNet-S checkpoint laid out like the official one, imported with
``icnet-import-checkpoint``, starts the node from ``ros2 launch ... weights:=`` (the network
comes from the weights; a params file only shrinks the network input for a fast test)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
import yaml
from ros_harness import Segmenter, rgb_message, values_of

from icnet_ros.model.registry import build_network
from icnet_ros.ros.diagnostics import NETWORK

pytestmark = pytest.mark.ros


def test_an_imported_pidnet_s_checkpoint_starts_the_node_from_ros2_launch(workspace_command, ros_client, tmp_path):
    torch.manual_seed(1)
    state = build_network({"name": "pidnet", "variant": "s"}).state_dict()
    checkpoint = tmp_path / "PIDNet_S_Cityscapes_val.pt"
    torch.save({"epoch": 484, "state_dict": {**{f"model.{k}": v for k, v in state.items()},
                                             "sem_loss.criterion.weight": torch.ones(19)}}, checkpoint)
    weights = tmp_path / "pidnet_s.safetensors"
    subprocess.run([sys.executable, "-m", "icnet_ros.tools.import_checkpoint", "pidnet-s", str(checkpoint),
                    "-o", str(weights)], check=True, capture_output=True, timeout=300)
    params = tmp_path / "small_input.yaml"
    params.write_text(yaml.safe_dump({"/**/icnet_segmenter": {"ros__parameters": {
        "input_height": 64, "input_width": 128, "cpu_backend": "torch", "diagnostics_period_s": 0.5}}}))
    command = workspace_command(["ros2", "launch", "icnet_ros", "segment.launch.py", f"weights:={weights}",
                                 f"params_file:={params}", "device:=cpu"], "pidnet_launch")
    node = Segmenter(ros_client, command)
    try:
        node.wait_active()
        header = node.header("launched")
        node.send(rgb_message(header, np.full((48, 80, 3), 120, np.uint8)))
        mask = node.answer(header)
        assert (mask.height, mask.width, mask.encoding) == (48, 80, "mono8")
        assert values_of(node.status("pipeline"))[NETWORK] == "PIDNet-S"
        assert "configured: PIDNet-S from pidnet_s.safetensors" in command.log()
    finally:
        node.close()
        command.close()
