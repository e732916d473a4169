"""``ros2 launch icnet_ros segment.launch.py`` of the colcon-built package, every launch
argument shown by its effect.

Two launches show them all: ``front`` sets image, namespace, params_file, weights, device,
precision and fastdds_profile (shm_profile true), ``plain`` the defaults with
use_sim_time:=true and shm_profile:=false. Each ends with SIGINT to ``ros2 launch``.
A third asks for rviz2 where it is not installed.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import yaml
from launch_harness import RosCommand, parameters, topics_of, wait_for_node_name
from ros_harness import FASTDDS_PROFILE, Segmenter, rgb_message, values_of

from icnet_ros.ros.diagnostics import DEVICE, PRECISION, WEIGHTS
from icnet_ros.ros.fastdds_profile import PROFILE_VARIABLES

pytestmark = pytest.mark.ros

NODE = "icnet_segmenter"
FRONT_IMAGE = "/cam_a/image_raw"
# Published by every node whatever its namespace.
GLOBAL_TOPICS = {"/diagnostics", "/rosout", "/parameter_events"}


@dataclass
class Launched:
    command: RosCommand
    segmenter: Segmenter
    files: dict[str, Path]


def launch(workspace_command, ros_client, arguments: dict[str, str], name: str, namespace: str = "",
           image: str | None = None, files: dict[str, Path] | None = None) -> Launched:
    command = workspace_command(["ros2", "launch", "icnet_ros", "segment.launch.py",
                            *(f"{key}:={value}" for key, value in arguments.items())], name)
    segmenter = Segmenter(ros_client, command, namespace, image_topic=image)
    segmenter.wait_active()
    return Launched(command, segmenter, files or {})


@pytest.fixture(scope="module")
def front(workspace_command, ros_client, tiny_weights, tmp_path_factory):
    folder = tmp_path_factory.mktemp("front_files")
    params_file = folder / "front.yaml"
    params_file.write_text(yaml.safe_dump({"/**/icnet_segmenter": {"ros__parameters": {
        "overlay_alpha": 0.25, "precision": "fp32", "device": "auto", "diagnostics_period_s": 0.5}}}))
    profile = shutil.copy(FASTDDS_PROFILE, folder / "profile.xml")
    launched = launch(workspace_command, ros_client, {
        "image": FRONT_IMAGE, "namespace": "front", "params_file": str(params_file),
        "weights": str(tiny_weights), "device": "cpu", "precision": "bf16",
        "shm_profile": "true", "fastdds_profile": str(profile)},
        "front", namespace="front", image=FRONT_IMAGE, files={"params": params_file, "profile": profile})
    yield launched
    launched.segmenter.close()
    launched.command.close()


@pytest.fixture(scope="module")
def plain(workspace_command, ros_client, tiny_weights):
    launched = launch(workspace_command, ros_client, {
        "weights": str(tiny_weights), "use_sim_time": "true", "shm_profile": "false"}, "plain")
    yield launched
    launched.segmenter.close()
    launched.command.close()


def assert_serves(launched: Launched, namespace: str, image: str) -> None:
    """Up under ``namespace/icnet_segmenter``, answering a frame sent on ``image``, its
    outputs in the namespace and its input on ``image``."""
    client, node = launched.segmenter.client, launched.segmenter
    wait_for_node_name(client, NODE, namespace)
    assert set(launched.command.wait_for_nodes({namespace})) == {namespace}
    header = node.header("launched")
    node.send(rgb_message(header, np.full((48, 80, 3), 120, np.uint8)))
    mask = node.answer(header)
    assert (mask.height, mask.width, mask.encoding) == (48, 80, "mono8")
    published, subscribed = topics_of(client, NODE, namespace)
    prefix = namespace.rstrip("/") + "/"
    assert {prefix + "segmentation/" + name for name in ("class_mask", "color_mask", "overlay", "timing",
                                                       "camera_info")} <= published
    assert all(topic.startswith(prefix) or topic in GLOBAL_TOPICS for topic in published), published
    assert image in subscribed


def test_front_node_in_its_namespace_answers_on_the_image_argument(front):
    assert_serves(front, "/front", FRONT_IMAGE)


def test_front_arguments_override_the_params_file(front, tiny_weights):
    values = parameters(front.segmenter.client, f"/front/{NODE}",
                        ["weights", "device", "precision", "overlay_alpha", "diagnostics_period_s",
                         "use_sim_time"])
    assert values == {"weights": str(tiny_weights), "device": "cpu", "precision": "bf16",
                      "overlay_alpha": 0.25, "diagnostics_period_s": 0.5, "use_sim_time": False}
    status = values_of(front.segmenter.status("pipeline"))
    assert (status[DEVICE], status[PRECISION], status[WEIGHTS]) == ("cpu", "bf16", tiny_weights.name)


def test_front_node_runs_with_the_fastdds_profile_argument(front):
    node = front.command.wait_for_nodes({"/front"})["/front"]
    environment = node.environ()   # both: Fast DDS 3 reads the first, Fast DDS 2 (Jazzy) the second
    assert [environment.get(variable) for variable in PROFILE_VARIABLES] == [str(front.files["profile"])] * 2
    arguments = node.cmdline()
    assert str(front.files["params"]) in arguments
    # launch_ros writes the argument overrides to TMPDIR, here the launch's temporary folder.
    assert any(a.startswith(str(front.command.home / "tmp" / "launch_params_")) for a in arguments)


def test_front_sigint_ends_every_node(front):
    front.command.assert_interrupt_ends_everything(nodes=1)


def test_plain_defaults_root_namespace_and_image_topic(plain):
    assert_serves(plain, "/", "/image")


def test_plain_installed_params_file_and_sim_time(plain, colcon_workspace):
    values = parameters(plain.segmenter.client, f"/{NODE}",
                        ["device", "precision", "overlay_alpha", "use_sim_time"])
    assert values == {"device": "auto", "precision": "fp32", "overlay_alpha": 0.5, "use_sim_time": True}
    node = plain.command.wait_for_nodes({"/"})["/"]
    assert str(colcon_workspace.prefix / "share" / "icnet_ros" / "config" / "icnet.yaml") in node.cmdline()


def test_plain_shm_profile_false_leaves_fastdds_defaults(plain):
    node = plain.command.wait_for_nodes({"/"})["/"]
    assert not set(PROFILE_VARIABLES) & set(node.environ())


def test_plain_sigint_ends_every_node(plain):
    plain.command.assert_interrupt_ends_everything(nodes=1)


def test_rviz_without_rviz2_is_refused_before_anything_starts(workspace_command, tiny_weights):
    from ament_index_python.packages import PackageNotFoundError, get_package_prefix
    try:
        get_package_prefix("rviz2")
        pytest.skip("rviz2 is installed here")
    except (PackageNotFoundError, OSError):    # OSError: no ament prefix at all
        pass
    command = workspace_command(["ros2", "launch", "icnet_ros", "segment.launch.py", "rviz:=true",
                            f"weights:={tiny_weights}"], "rviz")
    status = command.process.wait(60)
    log = command.log()
    errors = [line for line in log.splitlines() if "ERROR" in line]
    assert status == 1 and len(errors) == 1, log
    assert "rviz:=true but the package 'rviz2' is not installed" in errors[0]
    assert "process started" not in log
    assert command.processes() == []
