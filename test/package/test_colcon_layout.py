"""The package builds with colcon into a workspace laid out as ROS 2 users expect
(built once per session by the ``colcon_workspace`` fixture, test/conftest.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def install_dir(colcon_workspace) -> Path:
    return colcon_workspace.prefix


def test_executable_installed_under_lib(install_dir: Path) -> None:
    node = install_dir / "lib" / "icnet_ros" / "segmentation_node"
    assert node.is_file() and os.access(node, os.X_OK)
    site = next((install_dir / "lib").glob("python3*/site-packages"))
    entry_points = next(site.glob("icnet_ros*-info/entry_points.txt")).read_text()
    assert "segmentation_node = icnet_ros.ros.node_main:main" in entry_points


def test_every_tool_installed_under_lib(install_dir: Path) -> None:
    """Where ``ros2 run icnet_ros <tool>`` looks (setup.cfg)."""
    site = next((install_dir / "lib").glob("python3*/site-packages"))
    entry_points = next(site.glob("icnet_ros*-info/entry_points.txt")).read_text()
    tools = [line.split("=")[0].strip() for line in entry_points.splitlines() if " = " in line]
    assert "icnet-eval" in tools and "icnet-train" in tools
    missing = [t for t in tools if not os.access(install_dir / "lib" / "icnet_ros" / t, os.X_OK)]
    assert missing == [], missing


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
                "python3-opencv", "python3-pytest"):
        assert key in depends, key
    assert "python3-torch" not in depends   # the user picks torch's build (docs/setup.md)
