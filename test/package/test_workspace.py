"""The README's ROS 2 workspace path, step by step, as literally as this machine allows
(docs/setup.md, "In a ROS 2 workspace"): rosdep (simulated against ../shared/rosdistro), a
venv made with ``--system-site-packages`` with ``COLCON_IGNORE`` in it, the pip step with the
workspace's requirements and constraints, ``python -m colcon build`` run by the venv's Python,
then ``ros2 launch icnet_ros segment.launch.py`` up to an active node and ``ros2 run icnet_ros
<tool> --help`` for every tool.

The stand-in for ``/opt/ros/<distro>`` where no ROS 2 is sourced: this project's .venv, which
holds the ROS 2 wheels (its ``lib``, ``share`` and ``bin`` are a ROS prefix), with the variables
``source /opt/ros/<distro>/setup.bash`` sets (AMENT_PREFIX_PATH, LD_LIBRARY_PATH, PATH). Its
Python packages reach the workspace venv through a ``.pth`` line (after the standard library)
rather than PYTHONPATH: it also holds every pip package, among them a ``typing`` backport that
on PYTHONPATH would shadow the standard library's. So the pip step finds everything installed:
it runs with ``--no-index`` (no network in tests) and must install nothing; what it downloads on
Ubuntu's Pythons is recorded in docs/setup.md. The venv's own interpreter is the one .venv was
made from, as a user's is the system's.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from colcon_workspace import BUILD_TIMEOUT_S, ColconWorkspace, copy_sources
from domain_ids import fresh_domain_id

pytestmark = pytest.mark.ros

STEP_TIMEOUT_S = 300     # a hang, not a speed limit
DISTRO, OS_NAME = "kilted", "ubuntu:noble"   # what requirements-ros.txt's wheels are


def run(args: list[str], cwd: Path, env: dict[str, str]) -> str:
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=STEP_TIMEOUT_S)
    assert done.returncode == 0, f"{args}: exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done.stdout


def sourced_environment(rosdep_environment: dict[str, str]) -> dict[str, str]:
    """The environment after ``source /opt/ros/<distro>/setup.bash``: the sourced one where
    AMENT_PREFIX_PATH is set, else .venv as the stand-in prefix; rosdep reads the snapshot."""
    environment = {**rosdep_environment, "ROS_DOMAIN_ID": fresh_domain_id(),
                   "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST", "RCUTILS_COLORIZED_OUTPUT": "0"}
    if "AMENT_PREFIX_PATH" not in environment:
        site = Path(sysconfig.get_paths()["purelib"])
        libraries = [str(Path(sys.prefix) / "lib"), *map(str, sorted(site.glob("ros_*.libs")))]
        environment.update(
            AMENT_PREFIX_PATH=sys.prefix,
            LD_LIBRARY_PATH=os.pathsep.join([*libraries, environment.get("LD_LIBRARY_PATH", "")]),
            PATH=os.pathsep.join([str(Path(sys.prefix) / "bin"), environment["PATH"]]))
    return environment


@pytest.fixture(scope="module")
def workspace(rosdep_environment, tmp_path_factory) -> ColconWorkspace:
    """Every step of the path up to ``colcon build``; the workspace with the venv activated."""
    if importlib.util.find_spec("ros2launch") is None:
        pytest.skip("ros2 launch is not installed: ../shared/ros2-launch/install.sh (make setup "
                    "does it where present) or a ROS 2 installation provides it")
    if importlib.util.find_spec("colcon") is None:
        pytest.skip("colcon is not installed (requirements-dev.txt)")
    root = tmp_path_factory.mktemp("ros2_ws")
    source = copy_sources(root)
    environment = sourced_environment(rosdep_environment)
    # rosdep install --from-paths src --ignore-src -y
    run(["rosdep", "install", "--simulate", "--from-paths", "src", "--ignore-src", "-y",
         "--rosdistro", DISTRO, "--os", OS_NAME], root, environment)
    # python3 -m venv --system-site-packages venv && touch venv/COLCON_IGNORE && source venv/bin/activate
    run([sys._base_executable, "-m", "venv", "--system-site-packages", "venv"], root, environment)
    venv = root / "venv"
    (venv / "COLCON_IGNORE").touch()
    python = str(venv / "bin" / "python")
    venv_site = Path(run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                         root, environment).strip())
    (venv_site / "ros_stand_in.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    environment.update(VIRTUAL_ENV=str(venv), PATH=os.pathsep.join([str(venv / "bin"), environment["PATH"]]))
    before = {p.name for p in venv_site.iterdir()}
    # pip install -c src/icnet_ros/constraints-workspace.txt -r src/icnet_ros/requirements-workspace.txt
    run([python, "-m", "pip", "install", "--no-index", "-c", str(source / "constraints-workspace.txt"),
         "-r", str(source / "requirements-workspace.txt")], root, environment)
    added = {p.name for p in venv_site.iterdir()} - before
    assert added == set(), f"the pip step installed over what the system has: {sorted(added)}"
    # python -m colcon build
    done = subprocess.run([python, "-m", "colcon", "build"], cwd=root, capture_output=True, text=True,
                          timeout=BUILD_TIMEOUT_S, env={**environment, "COLCON_HOME": str(root / ".colcon")})
    assert done.returncode == 0, done.stdout + done.stderr
    return ColconWorkspace(root, environment)


def test_colcon_ignored_the_venv_and_built_with_its_python(workspace: ColconWorkspace):
    assert sorted(p.name for p in workspace.install.iterdir() if p.is_dir()) == ["icnet_ros"]
    node = workspace.prefix / "lib" / "icnet_ros" / "segmentation_node"
    assert node.read_text().splitlines()[0] == f"#!{workspace.root / 'venv' / 'bin' / 'python'}"


def test_ros2_launch_reaches_an_active_node(workspace: ColconWorkspace, tiny_weights, tmp_path):
    from launch_harness import RosCommand
    from ros_harness import wait_until

    command = RosCommand(workspace, ["ros2", "launch", "icnet_ros", "segment.launch.py",
                                     f"weights:={tiny_weights}"], tmp_path, "launch")
    try:
        node = command.wait_for_nodes({"/"})["/"]
        interpreter, executable = node.cmdline()[:2]
        assert interpreter == str(workspace.root / "venv" / "bin" / "python")
        assert executable == str(workspace.prefix / "lib" / "icnet_ros" / "segmentation_node")
        def active() -> bool:
            command.assert_alive()
            return "active: segmenting" in command.log()
        wait_until(active, 120, "the launched node's 'active: segmenting' line", interval=0.2)
        command.assert_interrupt_ends_everything(nodes=1)
    finally:
        command.close()


def test_ros2_run_reaches_every_tool(workspace: ColconWorkspace, tmp_path):
    site = next((workspace.prefix / "lib").glob("python3*/site-packages"))
    entry_points = next(site.glob("icnet_ros*-info/entry_points.txt")).read_text()
    tools = sorted(line.split("=")[0].strip() for line in entry_points.splitlines()
                   if "=" in line and not line.startswith("segmentation_node"))
    assert {"icnet-eval", "icnet-train", "icnet-convert-caffe", "icnet-make-sample-bag"} <= set(tools)
    environment = workspace.environment(tmp_path)
    started = {tool: subprocess.Popen(workspace.command(["ros2", "run", "icnet_ros", tool, "--help"]),
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                      env=environment)
               for tool in tools}
    failed = {}
    for tool, process in started.items():
        output, _ = process.communicate(timeout=STEP_TIMEOUT_S)
        if process.returncode != 0 or "usage:" not in output:
            failed[tool] = f"exit {process.returncode}: {output[-2000:]}"
    assert failed == {}, "\n".join(f"{tool}: {why}" for tool, why in failed.items())
