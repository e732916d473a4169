"""``ros2 launch`` and ``ros2 run`` of the colcon-built package, as users start them.

Each command runs with the workspace's ``install/setup.bash`` sourced, its own ``ROS_HOME``
and ``TMPDIR`` (a temporary folder), the session's private ROS domain, and without the
session's Fast DDS profile (the launch file sets it, or not: that is under test). It is
stopped with SIGINT, as a terminal does: SIGTERM ends ``ros2 launch`` but not its nodes.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
from colcon_workspace import ColconWorkspace
from rcl_interfaces.srv import GetParameters
from rclpy.parameter import parameter_value_to_python
from ros_harness import RosClient, wait_until

from icnet_ros.ros.fastdds_profile import PROFILE_VARIABLES

NODE_EXECUTABLE = "lib/icnet_ros/segmentation_node"
STOP_TIMEOUT_S = 30.0      # a hang, not a speed limit: the time taken is printed


class RosCommand:
    """One command (``ros2 launch ...``) in the sourced workspace, logging to ``<home>/<name>.log``."""

    def __init__(self, workspace: ColconWorkspace, args: list[str], home: Path, name: str,
                 env: dict[str, str] | None = None) -> None:
        self.home = home
        environment = workspace.environment(home)
        for variable in PROFILE_VARIABLES:
            environment.pop(variable, None)
        environment.update(env or {})
        self.log_path = home / f"{name}.log"
        self._log = open(self.log_path, "wb")
        self.process = subprocess.Popen(workspace.command(args), stdout=self._log,
                                        stderr=subprocess.STDOUT, env=environment,
                                        start_new_session=True)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def alive(self) -> bool:
        return self.process.poll() is None

    def assert_alive(self) -> None:
        if not self.alive():
            raise AssertionError(f"{self.process.args[4:]} exited with {self.process.returncode}:\n"
                                 f"{self.log()}")

    def processes(self) -> list[psutil.Process]:
        """Every running process of this command, wherever it was reparented: those whose
        environment has this command's ``ROS_HOME``."""
        home = str(self.home / "ros")
        found = []
        for process in psutil.process_iter():
            try:
                if process.environ().get("ROS_HOME") == home and running(process):
                    found.append(process)
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                continue
        return found

    def nodes(self) -> dict[str, psutil.Process]:
        """The ``segmentation_node`` processes started, by namespace (``/`` when none)."""
        nodes = {}
        for process in self.processes():
            try:
                arguments = process.cmdline()
            except psutil.NoSuchProcess:
                continue
            if any(argument.endswith(NODE_EXECUTABLE) for argument in arguments):
                namespaces = [a.split(":=", 1)[1] for a in arguments if a.startswith("__ns:=")]
                nodes[namespaces[-1] if namespaces else "/"] = process
        return nodes

    def wait_for_nodes(self, namespaces: set[str], timeout: float = 60.0) -> dict[str, psutil.Process]:
        def started() -> dict[str, psutil.Process] | None:
            self.assert_alive()
            nodes = self.nodes()
            return nodes if set(nodes) >= namespaces else None
        return wait_until(started, timeout, f"segmentation_node in {sorted(namespaces)}", interval=0.2)

    def interrupt(self, timeout: float = STOP_TIMEOUT_S, group: bool = False) -> tuple[int, float]:
        """SIGINT to the command, or to its process ``group`` as Ctrl-C in a terminal does
        (``ros2 run`` counts on that): the exit status and the seconds it took."""
        start = time.monotonic()
        if group:
            os.killpg(self.process.pid, signal.SIGINT)
        else:
            self.process.send_signal(signal.SIGINT)
        status = self.process.wait(timeout)
        return status, time.monotonic() - start

    def wait_stopped(self, timeout: float = STOP_TIMEOUT_S) -> list[psutil.Process]:
        """Wait for this command's processes to end; those still running after ``timeout``."""
        _, alive = psutil.wait_procs(self.processes(), timeout=timeout)
        return [p for p in alive if running(p)]

    def assert_interrupt_ends_everything(self, nodes: int) -> None:
        """SIGINT to ``ros2 launch``: status 0, each of its ``nodes`` finished cleanly, none
        of its processes left running."""
        started = self.processes()
        assert len(self.nodes()) == nodes
        status, seconds = self.interrupt()
        left = self.wait_stopped()
        print(f"{' '.join(self.process.args[4:6])} ended {seconds:.1f} s after SIGINT "
              f"({len(started)} processes)")
        log = self.log()
        assert status == 0, log
        assert left == [], [p.cmdline() for p in left]
        assert log.count("process has finished cleanly") == nodes, log

    def close(self) -> None:
        """End whatever is left (a failed test's), without judging it."""
        if self.alive():
            try:
                self.interrupt()
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        for process in self.wait_stopped(timeout=5.0):
            process.kill()
        self._log.close()


def running(process: psutil.Process) -> bool:
    """Alive and not a zombie (an ended child its parent has not waited for)."""
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def parameters(client: RosClient, node: str, names: list[str]) -> dict[str, Any]:
    """Parameter values read back through ``<node>/get_parameters``."""
    response = client.call(GetParameters, f"{node}/get_parameters", GetParameters.Request(names=names))
    return {name: parameter_value_to_python(value) for name, value in zip(names, response.values)}


def wait_for_node_name(client: RosClient, name: str, namespace: str, timeout: float = 30.0) -> None:
    """Wait until the ROS graph has the node ``namespace/name``."""
    wait_until(lambda: (name, namespace) in client.node.get_node_names_and_namespaces(), timeout,
               f"node {namespace.rstrip('/')}/{name} in the ROS graph", interval=0.2)


def topics_of(client: RosClient, name: str, namespace: str) -> tuple[set[str], set[str]]:
    """The topics the node ``namespace/name`` publishes and subscribes to."""
    published = client.node.get_publisher_names_and_types_by_node(name, namespace)
    subscribed = client.node.get_subscriber_names_and_types_by_node(name, namespace)
    return {topic for topic, _ in published}, {topic for topic, _ in subscribed}


def run_to_end(start: Callable[[list[str], str], RosCommand], args: list[str],
               timeout: float = 120.0) -> tuple[int, list[str]]:
    """``args`` (a ``ros2`` command) started by ``start`` (the ``workspace_command`` fixture)
    and run to its end: its status and output lines."""
    command = start(args, "ros2_cli")
    status = command.process.wait(timeout)
    return status, command.log().splitlines()


def daemon_sees(start: Callable[[list[str], str], RosCommand], node: str, timeout: float = 60.0) -> None:
    """Start the ros2 daemon, as the first ``ros2`` command of a user's shell does, and wait
    until it has discovered ``node``: a command without the daemon looks for the node for
    0.5 s only (ros2cli's ``--spin-time``), too short on a loaded machine."""
    status, output = run_to_end(start, ["ros2", "daemon", "start"])
    assert status == 0, output
    wait_until(lambda: node in run_to_end(start, ["ros2", "node", "list"])[1], timeout,
               f"the ros2 daemon to discover {node}", interval=0.5)
