"""A ``segmentation_node`` process started as users start it, logging to a file.

:class:`NodeProcess` builds the command line (``--ros-args``: a parameter file,
``-p`` parameters, a namespace, remaps), runs it with its output in a log file,
and stops it (SIGINT, then SIGKILL if it does not exit in time). ``icnet-eval --mode
live``, the maintainer instruments (``icnet_bench``) and the tests all start nodes
through it. :func:`node_executable`, :func:`shipped_file` and
:func:`use_shipped_profile` find what the package installs.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from icnet_ros.ros.fastdds_profile import profile_environment, profile_in, share_profile_variables

PACKAGE = "icnet_ros"
EXECUTABLE = "segmentation_node"
STOP_TIMEOUT_S = 15.0


class NodeProcessError(RuntimeError):
    """A node process cannot be started (its executable is not installed), with the reason."""


def shipped_file(relative: str) -> Path | None:
    """A file the package installs under ``share/icnet_ros/`` (or the source tree's copy)."""
    candidates = []
    try:
        from ament_index_python.packages import PackageNotFoundError, get_package_share_directory
        try:
            candidates.append(Path(get_package_share_directory(PACKAGE)) / relative)
        except (PackageNotFoundError, OSError):  # not installed by colcon, or no AMENT_PREFIX_PATH
            pass
    except ImportError:
        pass
    candidates.append(Path(sys.prefix) / "share" / PACKAGE / relative)
    candidates.append(Path(__file__).resolve().parents[2] / relative)  # a source checkout
    return next((path for path in candidates if path.is_file()), None)


def node_executable() -> Path:
    """The installed ``segmentation_node`` (beside this Python, on PATH, or in a colcon ``lib/``)."""
    beside = Path(sys.executable).parent / EXECUTABLE
    if beside.is_file():
        return beside
    found = shutil.which(EXECUTABLE)
    if found:
        return Path(found)
    colcon = Path(sys.prefix) / "lib" / PACKAGE / EXECUTABLE
    if colcon.is_file():
        return colcon
    raise NodeProcessError(f"the {EXECUTABLE} executable is not installed (pip install -e . or colcon build), "
                           "or use --node running with a node started by hand")


def use_shipped_profile() -> str | None:
    """Name the shipped SHM profile in both Fast DDS variables unless one names a profile
    (then both name that one); returns the profile used."""
    if not profile_in(os.environ):
        profile = shipped_file("config/fastdds_shm.xml")
        if profile is not None:
            os.environ.update(profile_environment(profile))
    share_profile_variables(os.environ)
    return profile_in(os.environ) or None


def parameter_text(value: Any) -> str:
    """A parameter value as ``-p name:=VALUE`` takes it (booleans lower case, '' for an empty string)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value) or "''"


def ros_arguments(*, params_file: Path | str | None = None, parameters: dict[str, Any] | None = None,
                  namespace: str = "", remaps: dict[str, str] | None = None) -> list[str]:
    """``--ros-args`` and what follows it for a parameter file, parameters, a namespace and remaps."""
    args = ["--ros-args"]
    if params_file is not None:
        args += ["--params-file", str(params_file)]
    for key, value in (parameters or {}).items():
        args += ["-p", f"{key}:={parameter_text(value)}"]
    if namespace.strip("/"):
        args += ["-r", f"__ns:=/{namespace.strip('/')}"]
    for source, target in (remaps or {}).items():
        args += ["-r", f"{source}:={target}"]
    return args


def _environment(variables: dict[str, str | None]) -> dict[str, str]:
    """The variables that have a value (None unsets one)."""
    return {key: value for key, value in variables.items() if value is not None}


class NodeProcess:
    """A node process (by default the installed ``segmentation_node``) writing its output to ``log_path``."""

    def __init__(self, log_path: Path, *, command: Sequence[str] | None = None,
                 params_file: Path | str | None = None, parameters: dict[str, Any] | None = None,
                 namespace: str = "", remaps: dict[str, str] | None = None,
                 environment: dict[str, str | None] | None = None) -> None:
        """``command``: what to run instead of the installed executable (it gets the same
        ``--ros-args``); ``environment``: variables set on top of this process's (None: unset)."""
        self.args = [*(command or [str(node_executable())]),
                     *ros_arguments(params_file=params_file, parameters=parameters, namespace=namespace,
                                    remaps=remaps)]
        self.log_path = Path(log_path)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "wb")
        self.process = subprocess.Popen(self.args, stdout=self._log, stderr=subprocess.STDOUT,
                                        env=_environment({**os.environ, "PYTHONUNBUFFERED": "1", **(environment or {})}))

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def returncode(self) -> int | None:
        """The exit status, None while it runs."""
        return self.process.poll()

    def alive(self) -> bool:
        return self.process.poll() is None

    def log(self) -> str:
        """Everything the process wrote so far."""
        return self.log_path.read_text(errors="replace")

    def last_line(self) -> str:
        lines = [line for line in self.log().splitlines() if line.strip()]
        return lines[-1].strip() if lines else "(no output)"

    def send_signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    def exit_after(self, signum: int, timeout: float) -> tuple[int | None, float]:
        """Send ``signum`` and wait up to ``timeout`` s: the exit status (None if still running) and
        the seconds waited."""
        start = time.monotonic()
        self.send_signal(signum)
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            code = None
        return code, time.monotonic() - start

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> None:
        """SIGINT, then SIGKILL if it has not exited within ``timeout`` s; closes the log."""
        if self.alive():
            self.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()


def stop_all(processes: Iterable[NodeProcess]) -> None:
    """Stop processes together: every one gets SIGINT before any is waited for."""
    processes = list(processes)
    for process in processes:
        if process.alive():
            process.send_signal(signal.SIGINT)
    for process in processes:
        process.stop()
