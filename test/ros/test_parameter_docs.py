"""docs/parameters.md lists exactly the parameters the node declares, with their defaults and
mutability, and what it says of each holds on a node (the table itself is generated from the
declarations: test/package/test_docs.py)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import rclpy
from rclpy.context import Context
from rclpy.parameter import Parameter

from icnet_ros.ros.parameters import PARAMETERS, ConfigurationError, check_read_only
from icnet_ros.ros.segmentation_node import SegmentationNode

DOC = Path(__file__).resolve().parents[2] / "docs" / "parameters.md"
DECLARED_ON_CONFIGURE = {"class_names"}  # declared from the label set, not in PARAMETERS


def documented_rows() -> dict[str, tuple[str, str]]:
    """name -> (default text, mutability text) for every parameter named in the table."""
    rows = {}
    for line in DOC.read_text().splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) < 4 or not cells[0].startswith("`"):
            continue
        names = re.findall(r"`([a-z0-9_]+)`", cells[0])
        defaults = [d.strip() for d in cells[1].split(",")] if len(names) > 1 else [cells[1]]
        if len(defaults) != len(names):
            defaults = [cells[1]] * len(names)
        for name, default in zip(names, defaults, strict=True):
            rows[name] = (default.strip("`"), cells[2])
    return rows


def doc_default(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value or '""'
    if isinstance(value, list):
        return "[]" if not value else str(value)
    return str(value)


def test_every_declared_parameter_is_documented_and_nothing_else():
    documented = set(documented_rows())
    declared = {spec.name for spec in PARAMETERS} | DECLARED_ON_CONFIGURE
    assert documented - declared == set(), "documented but not declared"
    assert declared - documented == set(), "declared but not documented"


@pytest.mark.parametrize("spec", PARAMETERS, ids=lambda spec: spec.name)
def test_documented_default_and_mutability_match_the_declaration(spec):
    default, mutability = documented_rows()[spec.name]
    assert default == doc_default(spec.default)
    assert mutability == ("read-only" if spec.read_only else "run time")


def test_mutability_and_ranges_the_table_gives_hold_on_a_node(ros_environment, tiny_weights):
    """On a real node (in this process, not started): read-only parameters are refused at
    run time and the others accepted; each run-time parameter takes the ends of its
    documented range and refuses values just outside; each read-only choice listed is
    accepted at start-up and any other refused."""
    context = Context()
    rclpy.init(context=context)
    node = SegmentationNode(context=context, namespace="parameter_docs", parameter_overrides=[
        Parameter("weights", value=str(tiny_weights)), Parameter("autostart", value=False)])
    try:
        wrong = []
        for spec in PARAMETERS:
            def accepted(value, name=spec.name) -> bool:
                return node.set_parameters([Parameter(name, value=value)])[0].successful

            if accepted(spec.default) == spec.read_only:
                wrong.append(f"{spec.name}: documented {'read-only' if spec.read_only else 'run time'}")
            for low, high in [r for r in (spec.int_range, spec.float_range) if r and not spec.read_only]:
                step = 1 if spec.int_range else 0.5
                if accepted(high + step) or accepted(low - step) or not (accepted(high) and accepted(low)):
                    wrong.append(f"{spec.name}: documented range {low}..{high}")
                accepted(spec.default)
        assert not wrong, wrong
    finally:
        node.destroy_node()
        rclpy.try_shutdown(context=context)
    defaults = {spec.name: spec.default for spec in PARAMETERS}
    for spec in (spec for spec in PARAMETERS if spec.choices):
        for choice in spec.choices:
            check_read_only({**defaults, spec.name: choice})
        with pytest.raises(ConfigurationError, match=spec.name):
            check_read_only({**defaults, spec.name: "undocumented"})
