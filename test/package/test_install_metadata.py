"""What an install declares and where it puts the tools: no install pulls torch (the user
picks its build), the ROS 2 workspace's pip step leaves the distribution's NumPy, OpenCV and
pytest alone, and every tool is on PATH in a pip/venv install (``ros2 run icnet_ros <tool>``
after colcon: test_workspace.py, test_colcon_layout.py)."""

from __future__ import annotations

import importlib.metadata
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def requirement_names(path: Path) -> set[str]:
    """The project names a requirements file lists (``-r`` lines followed)."""
    names = set()
    for line in path.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line.startswith("-r "):
            names |= requirement_names(path.parent / line[3:].strip())
        elif line and not line.startswith("-"):
            names.add(re.split(r"[\s<>=!~;\[]", line)[0].lower())
    return names


def test_no_install_declares_torch():
    requires = importlib.metadata.requires("icnet_ros") or []
    assert not [r for r in requires if re.match(r"torch\b", r)], requires
    assert "torch" not in requirement_names(REPO / "requirements.txt")
    assert (REPO / "constraints.txt").read_text().count("torch==2.13.0") == 1


def test_without_torch_the_import_says_how_to_get_it():
    done = subprocess.run([sys.executable, "-c", "import sys; sys.modules['torch'] = None; import icnet_ros"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError: icnet_ros needs PyTorch") and "pip install torch==2.13.0" in last, last


def test_workspace_pip_step_leaves_the_distribution_packages():
    """numpy, OpenCV and PyYAML come from rosdep (apt) in a workspace; a pip pytest would
    replace the one launch_testing's plugin is built for; torch is the user's pick."""
    workspace = requirement_names(REPO / "requirements-workspace.txt")
    assert not {n for n in workspace if re.match(r"numpy|opencv|pytest|torch|pyyaml", n)}, workspace
    assert "pytest" not in requirement_names(REPO / "requirements.txt")
    constraints = (REPO / "constraints-workspace.txt").read_text()
    assert 'numpy<2; python_version == "3.10" or python_version == "3.12"' in constraints
    assert "-c constraints.txt" in constraints


def test_every_tool_is_on_the_venv_path():
    scripts = [e.name for e in importlib.metadata.distribution("icnet_ros").entry_points
               if e.group == "console_scripts"]
    assert {"segmentation_node", "icnet-eval", "icnet-train", "icnet-convert-caffe",
            "icnet-make-sample-bag"} <= set(scripts)
    missing = [name for name in scripts if not (Path(sys.executable).parent / name).is_file()]
    assert missing == [], missing
