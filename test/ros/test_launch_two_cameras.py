"""The two-camera launch file of docs/node.md (two ``IncludeLaunchDescription``s of
segment.launch.py), taken from the page as written, runs both nodes."""

from __future__ import annotations

import re

import numpy as np
import pytest
from launch_harness import wait_for_node_name
from ros_harness import REPO, Segmenter, rgb_message

pytestmark = pytest.mark.ros

CAMERAS = ("front", "rear")
DOCS_WEIGHTS = "/path/to/icnet.safetensors"


def docs_launch_file() -> str:
    """The Python block of docs/node.md that includes segment.launch.py."""
    blocks = re.findall(r"```python\n(.*?)```", (REPO / "docs" / "node.md").read_text(), re.DOTALL)
    (block,) = [b for b in blocks if "IncludeLaunchDescription(" in b]
    assert DOCS_WEIGHTS in block
    return block


@pytest.fixture(scope="module")
def two_cameras(workspace_command, ros_client, tiny_weights, tmp_path_factory):
    path = tmp_path_factory.mktemp("two_cameras_file") / "two_cameras.launch.py"
    path.write_text(docs_launch_file().replace(DOCS_WEIGHTS, str(tiny_weights)))
    command = workspace_command(["ros2", "launch", str(path)], "two_cameras")
    segmenters = {camera: Segmenter(ros_client, command, camera, image_topic=f"/{camera}/image_raw")
                  for camera in CAMERAS}
    for segmenter in segmenters.values():
        segmenter.wait_active()
    yield command, segmenters
    for segmenter in segmenters.values():
        segmenter.close()
    command.close()


def test_both_nodes_answer_in_their_namespaces(two_cameras):
    command, segmenters = two_cameras
    assert set(command.wait_for_nodes({f"/{camera}" for camera in CAMERAS})) == {"/front", "/rear"}
    for index, (camera, segmenter) in enumerate(segmenters.items()):
        wait_for_node_name(segmenter.client, "icnet_segmenter", f"/{camera}")
        header = segmenter.header(camera)
        height, width = 40 + 8 * index, 72
        segmenter.send(rgb_message(header, np.full((height, width, 3), 60, np.uint8)))
        mask = segmenter.answer(header)
        assert (mask.height, mask.width, mask.header.frame_id) == (height, width, camera)


def test_sigint_ends_both_nodes(two_cameras):
    two_cameras[0].assert_interrupt_ends_everything(nodes=2)
