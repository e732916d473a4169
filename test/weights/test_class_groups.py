"""Class groups (MIT-SPARK semantic_inference's grouping format) over the Cityscapes classes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from icnet_ros.weights.class_groups import ClassGroupsError, class_groups, read_class_groups
from icnet_ros.weights.labels import CITYSCAPES

DRIVING = {
    "name": "driving",
    "groups": [{"name": "drivable", "labels": ["road", "sidewalk"]},
               {"name": "human", "labels": ["person", "rider"]},
               {"name": "vehicle", "labels": ["car", "truck", "bus", "train"]}],
    "specified_colors": [{"name": "human", "color": [255, 0, 255]}],
    "default_color": [0.5, 0.5, 0.5],
}


def test_classes_map_to_groups_for_masks_colours_and_names(tmp_path):
    path = tmp_path / "driving.yaml"
    path.write_text(yaml.safe_dump(DRIVING))
    groups = read_class_groups(path, CITYSCAPES)
    assert groups.labels.names == ("drivable", "human", "vehicle", "other")
    assert groups.labels.colors == ((128, 64, 128), (255, 0, 255), (0, 0, 142), (128, 128, 128))
    mask = np.array([[0, 1, 11, 12], [13, 14, 15, 16], [2, 10, 17, 18]], np.uint8)
    assert groups.apply(mask).tolist() == [[0, 0, 1, 1], [2, 2, 2, 2], [3, 3, 3, 3]]
    assert groups.members[3][:2] == ("building", "wall") and len(groups.members[3]) == 11


def test_integer_labels_with_an_offset_as_semantic_inference_writes_them():
    data = {"offset": -1, "groups": [{"name": "Road", "labels": [1]}, {"name": "Human", "labels": [12, 13]}]}
    groups = class_groups(data, CITYSCAPES)
    assert groups.apply(np.array([0, 11, 12, 5], np.uint8)).tolist() == [0, 1, 1, 2]


def test_every_class_grouped_leaves_no_default_group():
    data = {"groups": [{"name": "all", "labels": list(CITYSCAPES.names)}]}
    assert class_groups(data, CITYSCAPES).labels.names == ("all",)


def test_unknown_names_are_refused_all_listed():
    data = {"groups": [{"name": "drivable", "labels": ["road", "Road", "parking"]},
                       {"name": "vehicle", "labels": ["car", 40, "road"]}]}
    with pytest.raises(ClassGroupsError) as refused:
        class_groups(data, CITYSCAPES, "driving.yaml")
    message = str(refused.value)
    assert message.startswith("driving.yaml: unknown class names")
    assert "'Road', 'parking'" in message and "class ids out of range 0..18: 40" in message
    assert "classes in two groups: road (drivable, vehicle)" in message


@pytest.mark.parametrize("data,message", [
    ({"groups": []}, "non-empty list"),
    ({"groups": [{"name": "a"}]}, "group 0 needs a 'name'"),
    ({"groups": [{"name": "a", "labels": ["road"]}], "specified_colors": [{"name": "a", "color": "lightblue"}]},
     "a colour is three numbers"),
    ({"groups": [{"name": "a", "labels": ["road"]}], "colours": {}}, "unknown keys colours"),
    ({"groups": [{"name": "other", "labels": ["road"]}]}, "default_name 'other' is also a group's name"),
])
def test_malformed_files_are_refused(data, message):
    with pytest.raises(ClassGroupsError, match=message):
        class_groups(data, CITYSCAPES)


def test_the_shipped_example_groups_the_cityscapes_classes():
    groups = read_class_groups(Path(__file__).resolve().parents[2] / "config" / "class_groups_driving.yaml",
                               CITYSCAPES)
    assert groups.labels.names == ("drivable", "human", "vehicle", "two_wheeler", "other")
