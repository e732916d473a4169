"""launch/segment.launch.py: it parses, declares the documented arguments, and names the
installed executable and the shipped configuration files.

Where ``launch`` is installed the file is loaded and its description inspected; here
(``launch`` has no wheel) its syntax tree is checked instead.
"""

from __future__ import annotations

import ast
import importlib.util

import pytest
from ros_harness import REPO

LAUNCH_FILE = REPO / "launch" / "segment.launch.py"
ARGUMENTS = ["image", "namespace", "params_file", "weights", "device", "precision", "use_sim_time",
             "rviz", "shm_profile", "fastdds_profile"]
CONSTANTS = {"PACKAGE": "icnet_ros", "EXECUTABLE": "segmentation_node", "NODE_NAME": "icnet_segmenter",
             "PARAMS_FILE": "icnet.yaml", "RVIZ_CONFIG": "icnet.rviz", "FASTDDS_PROFILE": "fastdds_shm.xml"}


def module_constants(tree: ast.Module) -> dict[str, ast.expr]:
    return {target.id: node.value for node in tree.body if isinstance(node, ast.Assign)
            for target in node.targets if isinstance(target, ast.Name)}


def test_launch_file_names_the_executable_the_configs_and_the_arguments():
    tree = ast.parse(LAUNCH_FILE.read_text(), filename=str(LAUNCH_FILE))
    constants = module_constants(tree)
    for name, value in CONSTANTS.items():
        assert ast.literal_eval(constants[name]) == value, name
    declared = [element.elts[0].value for element in constants["ARGUMENTS"].elts]
    assert declared == ARGUMENTS
    functions = {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}
    assert "generate_launch_description" in functions
    # The files it names ship in the package (setup.py installs config/* and launch/*).
    for name in ("PARAMS_FILE", "RVIZ_CONFIG", "FASTDDS_PROFILE"):
        assert (REPO / "config" / CONSTANTS[name]).is_file()


def test_launch_description_declares_the_arguments():
    # `launch.actions`, not `launch`: the repository's launch/ folder imports as a namespace package.
    pytest.importorskip("launch.actions", reason="ROS 2 `launch` is not installable here (no wheel); "
                                                 "the syntax-tree test above covers the file")
    pytest.importorskip("launch_ros.actions", reason="launch_ros is not installed")
    from launch.actions import DeclareLaunchArgument

    spec = importlib.util.spec_from_file_location("segment_launch", LAUNCH_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    description = module.generate_launch_description()
    declared = [entity.name for entity in description.entities if isinstance(entity, DeclareLaunchArgument)]
    assert declared == ARGUMENTS
