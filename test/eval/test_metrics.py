"""Metrics against a brute-force computation and the official cityscapesscripts evaluation."""

from __future__ import annotations

import math
import re

import cv2
import numpy as np
import pytest
import torch

from icnet_ros.evaluation.metrics import (
    ConfusionMatrix,
    confusion_matrix,
    format_table,
    mean_iou,
    per_class_iou,
    pixel_accuracy,
)
from icnet_ros.weights.labels import CITYSCAPES


def brute_force_iou(predictions, targets, num_classes):
    """IoU per class from intersections and unions summed over the set, by pixel masks."""
    ious = []
    for c in range(num_classes):
        intersection = union = 0
        for p, t in zip(predictions, targets):
            valid = t != 255
            intersection += np.sum((p == c) & (t == c) & valid)
            union += np.sum(((p == c) | (t == c)) & valid)
        ious.append(intersection / union if union else math.nan)
    return np.array(ious)


def test_matches_brute_force_over_a_set():
    rng = np.random.default_rng(0)
    num_classes = 6
    predictions = [rng.integers(0, 5, (7, 9)) for _ in range(4)]  # class 5 never predicted
    targets = [np.where(rng.random((7, 9)) < 0.2, 255, rng.integers(0, 4, (7, 9))) for _ in range(4)]
    targets[0][0, 0] = 5  # class 5: in the ground truth only, once
    matrix = ConfusionMatrix(num_classes)
    for p, t in zip(predictions, targets):
        matrix.update(p, t.astype(np.uint8))
    expected = brute_force_iou(predictions, targets, num_classes)
    np.testing.assert_allclose(matrix.iou(), expected)
    assert matrix.iou()[4] == 0.0  # predicted but never in the ground truth: a false alarm, IoU 0
    assert matrix.iou()[5] == 0.0
    assert matrix.mean_iou() == pytest.approx(np.nanmean(expected))
    valid = sum(int(np.sum(t != 255)) for t in targets)
    correct = sum(int(np.sum((p == t) & (t != 255))) for p, t in zip(predictions, targets))
    assert matrix.pixel_accuracy() == pytest.approx(correct / valid)
    assert matrix.matrix.sum() == valid


def test_set_totals_differ_from_the_mean_of_per_image_scores():
    """Intersections and unions are summed over the set (not per-image IoUs averaged)."""
    p1, t1 = np.array([0, 0, 0, 1]), np.array([0, 0, 0, 0])
    p2, t2 = np.array([1]), np.array([0])
    matrix = ConfusionMatrix(2).update(p1, t1).update(p2, t2)
    assert matrix.iou()[0] == pytest.approx(3 / 5)  # per image it would be (3/4 + 0) / 2
    assert matrix.iou()[1] == 0.0


def test_absent_classes_are_nan_and_excluded_from_the_mean():
    matrix = confusion_matrix(np.array([0, 1, 1]), np.array([0, 1, 255]), num_classes=4)
    ious = per_class_iou(matrix)
    assert ious[:2].tolist() == [1.0, 1.0] and np.isnan(ious[2:]).all()
    assert mean_iou(matrix) == 1.0
    assert math.isnan(mean_iou(np.zeros((3, 3), np.int64)))
    assert math.isnan(pixel_accuracy(np.zeros((3, 3), np.int64)))


def test_torch_tensors_give_the_same_counts_and_merge_adds():
    rng = np.random.default_rng(1)
    p, t = rng.integers(0, 19, (2, 33, 65)), rng.integers(0, 19, (2, 33, 65))
    t[0, :3] = 255
    from_numpy = confusion_matrix(p, t, 19)
    from_torch = confusion_matrix(torch.from_numpy(p), torch.from_numpy(t).to(torch.uint8), 19)
    np.testing.assert_array_equal(from_numpy, from_torch)
    merged = ConfusionMatrix(19).merge(from_numpy).merge(ConfusionMatrix(19).update(p, t))
    np.testing.assert_array_equal(merged.matrix, 2 * from_numpy)


def test_bad_input_is_refused_with_the_reason():
    with pytest.raises(ValueError, match="prediction holds class ids"):
        confusion_matrix(np.array([0, 7]), np.array([0, 1]), 3)
    with pytest.raises(ValueError, match="target holds class ids"):
        confusion_matrix(np.array([0, 1]), np.array([0, 9]), 3)
    with pytest.raises(ValueError, match="shape"):
        confusion_matrix(np.zeros((2, 3)), np.zeros((3, 2)), 3)
    with pytest.raises(ValueError, match="names"):
        format_table(np.zeros((3, 3)), ["a", "b"])


def test_table_lists_every_class_and_the_means():
    matrix = ConfusionMatrix(19).update(np.array([0, 13, 13]), np.array([0, 13, 11]))
    table = matrix.table(CITYSCAPES.names)
    assert "road" in table and "bicycle" in table and "n/a" in table
    assert re.search(r"^mIoU\s+50\.00$", table, re.MULTILINE)  # road 1.0, car 0.5, person 0.0
    summary = matrix.summary(CITYSCAPES.names)
    assert summary["iou"]["car"] == 0.5 and summary["iou"]["train"] is None


def test_agrees_with_cityscapesscripts(tmp_path):
    """Our trainId metrics equal the official script's on labelId images written to disk."""
    evaluation = pytest.importorskip("cityscapesscripts.evaluation.evalPixelLevelSemanticLabeling")
    from cityscapesscripts.helpers.labels import labels as official

    from icnet_train.data.cityscapes import label_id_to_train_id

    train_to_label = {label.trainId: label.id for label in official if 0 <= label.trainId < 255}
    rng = np.random.default_rng(2)
    ids = np.array([label.id for label in official if label.id >= 0])
    matrix = ConfusionMatrix(19)
    predictions, ground_truths = [], []
    for index in range(3):
        gt_ids = rng.choice(ids, size=(40, 60)).astype(np.uint8)
        truth = cv2.LUT(gt_ids, label_id_to_train_id())
        # Predictions: right where the truth is valid 60% of the time, else a random class.
        predicted = np.where((truth != 255) & (rng.random(truth.shape) < 0.6), truth,
                             rng.integers(0, 19, truth.shape)).astype(np.uint8)
        matrix.update(predicted, truth)
        pred_ids = np.vectorize(train_to_label.get)(predicted).astype(np.uint8)
        predictions.append(str(tmp_path / f"pred_{index}.png"))
        ground_truths.append(str(tmp_path / f"gt_{index}_gtFine_labelIds.png"))
        cv2.imwrite(predictions[-1], pred_ids)
        cv2.imwrite(ground_truths[-1], gt_ids)
    args = evaluation.args
    args.quiet, args.JSONOutput, args.evalInstLevelScore, args.evalPixelAccuracy = True, False, False, False
    result = evaluation.evaluateImgLists(predictions, ground_truths, args)
    official_iou = [result["classScores"][name] for name in CITYSCAPES.names]
    np.testing.assert_allclose(matrix.iou(), official_iou, rtol=1e-12)
    assert matrix.mean_iou() == pytest.approx(np.nanmean(official_iou), rel=1e-12)
