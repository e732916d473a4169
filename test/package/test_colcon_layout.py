"""The package builds with colcon into a workspace laid out as ROS 2 users expect."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _colcon() -> str:
    found = Path(sys.executable).with_name("colcon")
    if found.exists():
        return str(found)
    which = shutil.which("colcon")
    if which is None:
        pytest.skip("colcon is not installed (pip install colcon-common-extensions)")
    return which


@pytest.fixture(scope="module")
def install_dir(tmp_path_factory) -> Path:
    workspace = tmp_path_factory.mktemp("ws")
    source = workspace / "src" / "icnet_ros"
    # Build from a copy of the tracked sources, as a clone in a workspace would be.
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO, check=True,
                           capture_output=True, text=True).stdout.split()
    for name in files:
        if (REPO / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, source / name)
    result = subprocess.run(
        [_colcon(), "build", "--base-paths", "src", "--build-base", "build", "--install-base", "install"],
        cwd=workspace, capture_output=True, text=True, timeout=240,
        env={**os.environ, "COLCON_HOME": str(workspace / ".colcon")},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return workspace / "install" / "icnet_ros"


def test_executable_installed_under_lib(install_dir: Path) -> None:
    node = install_dir / "lib" / "icnet_ros" / "segmentation_node"
    assert node.is_file() and os.access(node, os.X_OK)
    site = next((install_dir / "lib").glob("python3*/site-packages"))
    entry_points = next(site.glob("icnet_ros*-info/entry_points.txt")).read_text()
    assert "segmentation_node = icnet_ros.ros.node_main:main" in entry_points


def test_launch_and_config_installed_under_share(install_dir: Path) -> None:
    share = install_dir / "share" / "icnet_ros"
    assert (share / "package.xml").is_file()
    launch = sorted(p.name for p in (share / "launch").glob("*.launch.py"))
    config = sorted(p.name for p in (share / "config").iterdir())
    assert launch == sorted(p.name for p in (REPO / "launch").glob("*.launch.py"))
    assert config == sorted(p.name for p in (REPO / "config").iterdir() if p.is_file())


def test_ament_index_marker(install_dir: Path) -> None:
    marker = install_dir / "share" / "ament_index" / "resource_index" / "packages" / "icnet_ros"
    assert marker.is_file()


def test_python_packages_installed(install_dir: Path) -> None:
    site = next((install_dir / "lib").glob("python3*/site-packages"))
    assert (site / "icnet_ros" / "model" / "icnet.py").is_file()
    assert (site / "icnet_train").is_dir()


def test_package_xml_declares_dependencies() -> None:
    import xml.etree.ElementTree as ElementTree

    root = ElementTree.parse(REPO / "package.xml").getroot()
    assert root.get("format") == "3"
    assert root.findtext("export/build_type") == "ament_python"
    depends = {e.text for e in root if e.tag.endswith("depend")}
    for key in ("rclpy", "sensor_msgs", "std_msgs", "diagnostic_msgs", "python3-numpy",
                "python3-opencv", "python3-torch", "python3-pytest"):
        assert key in depends, key
