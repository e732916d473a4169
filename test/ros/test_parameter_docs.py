"""docs/parameters.md lists exactly the parameters the node declares, with their defaults and mutability."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from icnet_ros.ros.parameters import PARAMETERS

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
