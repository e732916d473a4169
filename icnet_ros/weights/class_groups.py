"""Class groups: the network's classes mapped to a user's groups (road and sidewalk as
drivable, person and rider as human, ...), for the class mask, the colours and label_info.

The file format is MIT-SPARK semantic_inference's label grouping (YAML or JSON)::

    name: driving
    offset: 0                 # added to integer labels (semantic_inference: -1 for 1-based ids)
    groups:
      - {name: drivable, labels: [road, sidewalk]}
      - {name: human, labels: [person, rider]}
      - {name: vehicle, labels: [car, truck, bus, train]}
    specified_colors:         # optional; a group without one takes its first class's colour
      - {name: drivable, color: [128, 64, 128]}
    default_color: [0, 0, 0]  # optional: the colour of the classes no group lists
    default_name: other       # optional (an icnet_ros addition): their group's name

``labels`` hold class names of the network's label set or class ids (plus ``offset``).
Group ids are the groups' positions; the classes no group lists form one more group,
``default_name``, after them (only if there are such classes). Colours are three integers
0..255, or three floats 0..1 (semantic_inference's ``default_color``). Unknown class names,
ids out of range and classes listed twice are refused, all of them named at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from icnet_ros.weights.labels import LabelSet, LabelSetError
from icnet_ros.weights.mapping_files import read_mapping_file

DEFAULT_NAME = "other"
DEFAULT_COLOR = (0, 0, 0)
KEYS = {"name", "offset", "groups", "specified_colors", "default_color", "default_name", "distinct"}


class ClassGroupsError(ValueError):
    """A class-groups file that cannot be used with the network's label set."""


@dataclass(frozen=True)
class ClassGroups:
    """The groups as a label set (what the grouped masks' values mean) and the class -> group table."""

    labels: LabelSet
    lookup: np.ndarray  # 256 uint8: class id -> group id
    members: tuple[tuple[str, ...], ...]  # each group's class names

    def apply(self, class_mask: np.ndarray) -> np.ndarray:
        """A class mask (uint8 class ids) as group ids."""
        return self.lookup[class_mask]


def _color(value: object, where: str) -> tuple[int, int, int]:
    if not isinstance(value, (list, tuple)) or len(value) != 3 or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
        raise ClassGroupsError(f"{where}: a colour is three numbers, got {value!r}")
    if all(isinstance(v, int) for v in value):
        color = tuple(value)
    else:
        color = tuple(round(float(v) * 255) for v in value)
    if not all(0 <= c <= 255 for c in color):
        raise ClassGroupsError(f"{where}: colour {value!r} out of range (0..255, or 0..1 floats)")
    return color


def class_groups(data: dict, classes: LabelSet, source: str = "class groups") -> ClassGroups:
    """Group ``classes`` as ``data`` (the file's content) says; see the module docstring."""
    if not isinstance(data, dict):
        raise ClassGroupsError(f"{source}: expected a mapping with 'groups'")
    unknown_keys = sorted(set(data) - KEYS)
    if unknown_keys:
        raise ClassGroupsError(f"{source}: unknown keys {', '.join(unknown_keys)}")
    groups = data.get("groups")
    if not isinstance(groups, list) or not groups:
        raise ClassGroupsError(f"{source}: 'groups' must be a non-empty list of {{name, labels}}")
    offset = data.get("offset", 0)
    if not isinstance(offset, int) or isinstance(offset, bool):
        raise ClassGroupsError(f"{source}: 'offset' must be an integer, got {offset!r}")
    index = {name: class_id for class_id, name in enumerate(classes.names)}
    unknown, out_of_range, twice = [], [], []
    owner: dict[int, str] = {}
    names, members = [], []
    for position, group in enumerate(groups):
        if not isinstance(group, dict) or not isinstance(group.get("name"), str) or not isinstance(
                group.get("labels"), list) or not group["labels"]:
            raise ClassGroupsError(f"{source}: group {position} needs a 'name' and a non-empty 'labels' list")
        name = group["name"]
        if name in names:
            raise ClassGroupsError(f"{source}: group {name!r} is listed twice")
        names.append(name)
        listed = []
        for label in group["labels"]:
            if isinstance(label, int) and not isinstance(label, bool):
                class_id = label + offset
                if not 0 <= class_id < classes.num_classes:
                    out_of_range.append(f"{label} (+ offset {offset})")
                    continue
            elif isinstance(label, str) and label in index:
                class_id = index[label]
            else:
                unknown.append(repr(label))
                continue
            if class_id in owner:
                twice.append(f"{classes.names[class_id]} ({owner[class_id]}, {name})")
                continue
            owner[class_id] = name
            listed.append(classes.names[class_id])
        members.append(tuple(listed))
    problems = [f"{what}: {', '.join(items)}" for what, items in (
        (f"unknown class names (the {classes.name} classes are {', '.join(classes.names)})", unknown),
        (f"class ids out of range 0..{classes.num_classes - 1}", out_of_range),
        ("classes in two groups", twice)) if items]
    if problems:
        raise ClassGroupsError(f"{source}: " + "; ".join(problems))
    specified = {}
    for entry in data.get("specified_colors") or []:
        if not isinstance(entry, dict) or entry.get("name") not in names:
            raise ClassGroupsError(f"{source}: specified_colors entry {entry!r} does not name a group")
        specified[entry["name"]] = _color(entry.get("color"), f"{source}: colour of {entry['name']}")
    colors = [specified.get(name) or classes.colors[index[group_members[0]]]
              for name, group_members in zip(names, members)]
    lookup = np.zeros(256, np.uint8)
    rest = [class_id for class_id in range(classes.num_classes) if class_id not in owner]
    if rest:
        default_name = str(data.get("default_name", DEFAULT_NAME))
        if default_name in names:
            raise ClassGroupsError(f"{source}: default_name {default_name!r} is also a group's name")
        names.append(default_name)
        members.append(tuple(classes.names[class_id] for class_id in rest))
        colors.append(_color(data["default_color"], f"{source}: default_color")
                      if "default_color" in data else DEFAULT_COLOR)
        lookup[rest] = len(names) - 1
    for class_id, name in owner.items():
        lookup[class_id] = names.index(name)
    try:
        labels = LabelSet(str(data.get("name", "groups")), tuple(names), tuple(colors))
    except LabelSetError as error:
        raise ClassGroupsError(f"{source}: {error}") from None
    return ClassGroups(labels, lookup, tuple(members))


def read_class_groups(path: str | Path, classes: LabelSet) -> ClassGroups:
    """Read a YAML/JSON class-groups file for the network's ``classes``."""
    try:
        data = read_mapping_file(path, "class groups file")
    except ValueError as error:
        raise ClassGroupsError(str(error)) from None
    return class_groups(data, classes, f"class groups file {path}")
