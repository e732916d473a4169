"""The ROS 2 command-line tools against a node started with ``ros2 launch``, as the docs show
them: every ``$ ros2 ...`` line of the console blocks in docs/node.md's "Command-line
tools" section runs as written (the workspace sourced, the session's ROS domain) and
prints the lines shown there; the README's commands are among them. The same launch has
``rviz:=true`` with a stand-in ``rviz2`` (rviz2 itself cannot be installed here): the
config the launch wrote for it is checked against the running node's topics and QoS.
One launch serves every test of this module; ``ros2`` commands take 1-2 s each to start.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shlex
import stat

import numpy as np
import pytest
import yaml
from launch_harness import daemon_sees, run_to_end
from rclpy.qos import qos_profile_sensor_data
from ros_harness import RELIABLE, REPO, Collector, Segmenter, rgb_message, same_header, wait_until
from sensor_msgs.msg import CameraInfo, Image
from test_rviz_config import compatible, display_qos

from icnet_ros.ros.camera_info import camera_info_topic
from icnet_ros.ros.qos import RELIABILITY
from icnet_ros.ros.rviz_config import displays

pytestmark = pytest.mark.ros

NODE = "/icnet_segmenter"
FIXED_FRAME = "tools_optical"
SECTION = "## Command-line tools"
# rviz2 stand-in: keeps the arguments launch gave it and the config file it was given.
RVIZ2 = """#!/bin/sh
printf '%s\\n' "$@" > "$ROS_HOME/rviz2.args"
cp "$2" "$ROS_HOME/rviz2.rviz"
exec sleep 600
"""


def requires(*modules: str) -> None:
    """Skip, with the reason, where a ``ros2`` verb's package is not installed."""
    missing = [name for name in modules if importlib.util.find_spec(name) is None]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed: ../shared/ros2-launch/install.sh (make setup "
                    f"does it where present) or a ROS 2 installation provides it")


def documented(path, section: str = SECTION) -> list[tuple[str, list[str]]]:
    """The ``$ `` commands of the console blocks in ``section`` of ``path``, each with the
    output lines shown under it."""
    text = path.read_text()
    body = text[text.index(section):]
    body = body[:body.find("\n## ", 1)] if "\n## " in body[1:] else body
    commands: list[tuple[str, list[str]]] = []
    for block in re.findall(r"```console\n(.*?)```", body, re.S):
        for line in block.splitlines():
            if line.startswith("$ "):
                commands.append((line[2:], []))
            else:
                commands[-1][1].append(line)
    return commands


def shown_in(expected: list[str], output: list[str]) -> bool:
    """``expected`` lines appear in ``output`` in order, consecutively except where a
    ``...`` line stands for lines not shown."""
    position, gap = 0, False
    for line in expected:
        if line == "...":
            gap = True
            continue
        while position < len(output) and output[position] != line:
            if not gap:
                return False
            position += 1
        if position == len(output):
            return False
        position, gap = position + 1, False
    return True


@pytest.fixture(scope="module")
def launched(workspace_command, ros_client, tiny_weights, tmp_path_factory):
    """``ros2 launch icnet_ros segment.launch.py`` with rviz:=true (the stand-in rviz2 first
    on the ament prefix path), its node answering and known to the ros2 daemon (stopped after)."""
    requires("ros2node")   # the daemon is waited for with `ros2 node list`
    prefix = tmp_path_factory.mktemp("rviz2_prefix")
    (prefix / "share" / "ament_index" / "resource_index" / "packages").mkdir(parents=True)
    (prefix / "share" / "ament_index" / "resource_index" / "packages" / "rviz2").touch()
    executable = prefix / "lib" / "rviz2" / "rviz2"
    executable.parent.mkdir(parents=True)
    executable.write_text(RVIZ2)
    executable.chmod(executable.stat().st_mode | stat.S_IXUSR)
    command = workspace_command(
        ["ros2", "launch", "icnet_ros", "segment.launch.py", f"weights:={tiny_weights}", "rviz:=true",
         f"fixed_frame:={FIXED_FRAME}"], "cli_launch",
        env={"AMENT_PREFIX_PATH": os.pathsep.join(filter(None, [str(prefix), os.environ.get("AMENT_PREFIX_PATH")]))})
    segmenter = Segmenter(ros_client, command)
    try:
        segmenter.wait_active()
        daemon_sees(workspace_command, NODE)
        yield command, segmenter
    finally:
        segmenter.close()
        run_to_end(workspace_command, ["ros2", "daemon", "stop"])
        command.close()


def run_documented(workspace_command, line: str, expected: list[str]) -> list[str]:
    status, output = run_to_end(workspace_command, shlex.split(line))
    assert status == 0 and shown_in(expected, output), f"$ {line}\n" + "\n".join(output)
    print(f"$ {line}: {len(output)} lines as documented")
    return output


def test_the_readmes_commands_are_the_documented_ones():
    commands = {line for line, _ in documented(REPO / "docs" / "node.md")}
    readme = re.findall(r"^(ros2 (?:lifecycle|param|topic) .*)$", (REPO / "README.md").read_text(), re.M)
    assert readme and set(readme) <= commands, set(readme) - commands


def test_rviz_gets_a_config_of_the_launched_nodes_topics(launched, ros_client):
    command, segmenter = launched
    home = command.home / "ros"
    wait_until(lambda: (home / "rviz2.rviz").exists(), 30, "the stand-in rviz2 to start")
    arguments = (home / "rviz2.args").read_text().splitlines()
    assert arguments[0] == "-d" and arguments[1].startswith(str(command.home / "tmp"))
    config = yaml.safe_load((home / "rviz2.rviz").read_text())
    assert config["Visualization Manager"]["Global Options"]["Fixed Frame"] == FIXED_FRAME
    graph = ros_client.node
    subscribed = dict(graph.get_subscriber_names_and_types_by_node("icnet_segmenter", "/"))
    published = dict(graph.get_publisher_names_and_types_by_node("icnet_segmenter", "/"))
    (input_display, *output_displays) = displays(config)
    assert input_display["Topic"]["Value"] == "/image" and "/image" in subscribed
    info_publisher = ros_client.in_executor(
        lambda: graph.create_publisher(CameraInfo, "/camera_info", RELIABLE))
    collectors: list[Collector] = []
    try:
        for display in output_displays:
            topic = display["Topic"]["Value"]
            assert published.get(topic) == ["sensor_msgs/msg/Image"], (topic, published)
            (info,) = graph.get_publishers_info_by_topic(topic)
            for reliability in RELIABILITY:   # this node's, and the other value's
                info.qos_profile.reliability = RELIABILITY[reliability]
                assert compatible(info.qos_profile, display_qos(display)), (topic, reliability)
            collectors.append(ros_client.collector(Image, topic, display_qos(display)))
        camera = next(d for d in output_displays if d["Class"] == "rviz_default_plugins/Camera")
        calibration = camera_info_topic(camera["Topic"]["Value"])
        assert published.get(calibration) == ["sensor_msgs/msg/CameraInfo"], (calibration, published)
        infos = ros_client.collector(CameraInfo, calibration, qos_profile_sensor_data)   # rviz2's QoS for it
        collectors.append(infos)
        wait_until(lambda: all(c.subscription.get_publisher_count() > 0 for c in collectors)
                   and info_publisher.get_subscription_count() > 0, 20, "the displays' topics to match")
        for attempt in range(20):   # best effort: a frame may be lost, a later one is not
            header = segmenter.header(FIXED_FRAME)
            info_publisher.publish(CameraInfo(header=header, height=24, width=32, k=[30.0] + [0.0] * 8))
            segmenter.send(rgb_message(header, np.zeros((24, 32, 3), np.uint8)))
            try:
                for collector in collectors:
                    collector.wait_for(lambda m: same_header(m.header, header), timeout=3.0)
                break
            except AssertionError:
                if attempt == 19:
                    raise
    finally:
        for collector in collectors:
            collector.close()
        ros_client.in_executor(lambda: graph.destroy_publisher(info_publisher))


def test_ros2_param_as_documented(launched, workspace_command):
    requires("ros2param")
    for line, expected in documented(REPO / "docs" / "node.md"):
        if line.startswith("ros2 param "):
            run_documented(workspace_command, line, expected)


def test_ros2_topic_echo_once_gets_the_latched_label_info(launched, workspace_command):
    requires("ros2topic", "rosidl_runtime_py", "vision_msgs")
    lines = [(line, expected) for line, expected in documented(REPO / "docs" / "node.md")
             if line.startswith("ros2 topic echo ")]
    assert any("label_info" in line and "--once" in line for line, _ in lines)
    for line, expected in lines:
        run_documented(workspace_command, line, expected)


def test_ros2_lifecycle_as_documented_and_the_node_answers_after_each_activate(launched, workspace_command):
    requires("ros2lifecycle", "rosidl_runtime_py")
    _, segmenter = launched
    lines = [(line, expected) for line, expected in documented(REPO / "docs" / "node.md")
             if line.startswith("ros2 lifecycle ")]
    transitions = [line.split()[-1] for line, _ in lines if line.startswith("ros2 lifecycle set ")]
    assert transitions == ["deactivate", "activate", "deactivate", "cleanup", "configure", "activate"]
    for line, expected in lines:
        run_documented(workspace_command, line, expected)
        if line.startswith("ros2 lifecycle set ") and line.endswith(" activate"):
            segmenter.wait_active()
            header = segmenter.header("after_activate")
            segmenter.send(rgb_message(header, np.zeros((24, 32, 3), np.uint8)))
            assert segmenter.answer(header).encoding == "mono8"
