"""icnet_train runs on a training machine without ROS: no module of it loads rclpy."""

from __future__ import annotations

import subprocess
import sys

import pytest

from icnet_train.cli import main

CHECK = """
import importlib, pkgutil, sys
import icnet_train
names = [m.name for m in pkgutil.walk_packages(icnet_train.__path__, "icnet_train.")
         if m.name != "icnet_train.__main__"]
for name in names + ["icnet_ros.evaluation.metrics"]:
    importlib.import_module(name)
loaded = sorted(m for m in sys.modules if m == "rclpy" or m.startswith(("rclpy.", "icnet_ros.ros")))
print(len(names), "modules;", "ROS modules loaded:", loaded)
sys.exit(1 if loaded else 0)
"""


def test_no_icnet_train_module_loads_rclpy():
    result = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert int(result.stdout.split()[0]) >= 14  # every module of the package was imported


def test_help_lists_the_commands(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert all(command in out for command in ("train", "evaluate", "prune", "export"))
