"""Data sets, augmentation and the deterministic sample order."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from icnet_ros.weights.preprocessing import OFFICIAL, Preprocessing
from icnet_train.data.cityscapes import CityscapesSegmentation
from icnet_train.data.folder import ClassMapping, DatasetError, FolderSegmentation
from icnet_train.data.sampling import StepSampler
from icnet_train.data.transforms import TrainTransform, normalize, preprocess


def write_rgb(path, rgb):
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))


def write_label(path, label):
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), label)


def test_cityscapes_layout_and_official_train_ids(tmp_path):
    rgb = np.zeros((4, 6, 3), np.uint8)
    rgb[..., 0] = 200  # red: checks the RGB order
    label_ids = np.array([[7, 8, 11, 26, 33, 0], [1, 9, 14, 17, 23, 24]] * 2, np.uint8)
    for city, name in (("aachen", "aachen_000000_000019"), ("bremen", "bremen_000001_000019")):
        write_rgb(tmp_path / "leftImg8bit" / "train" / city / f"{name}_leftImg8bit.png", rgb)
        write_label(tmp_path / "gtFine" / "train" / city / f"{name}_gtFine_labelIds.png", label_ids)
    data = CityscapesSegmentation(tmp_path, "train")
    assert len(data) == 2
    image, label = data[1]
    assert image.shape == (4, 6, 3) and image[0, 0].tolist() == [200, 0, 0]
    # road, sidewalk, building, car, bicycle, unlabeled | ego vehicle, parking, guard rail, pole, sky, person
    assert label[:2].tolist() == [[0, 1, 2, 13, 18, 255], [255, 255, 255, 5, 10, 11]]


def test_cityscapes_errors_name_the_problem(tmp_path):
    with pytest.raises(DatasetError, match="leftImg8bit"):
        CityscapesSegmentation(tmp_path, "val")
    write_rgb(tmp_path / "leftImg8bit" / "val" / "lindau" / "lindau_1_leftImg8bit.png", np.zeros((2, 2, 3), np.uint8))
    (tmp_path / "gtFine" / "val").mkdir(parents=True)
    with pytest.raises(DatasetError, match="lindau_1_gtFine_labelIds.png"):
        CityscapesSegmentation(tmp_path, "val")


def test_folder_with_class_mapping(tmp_path):
    write_rgb(tmp_path / "images" / "a.jpg", np.full((3, 4, 3), 90, np.uint8))
    write_label(tmp_path / "labels" / "a.png", np.array([[0, 5, 9, 200]] * 3, np.uint8))
    (tmp_path / "classes.yaml").write_text("names: [background, lane]\nmapping: {0: 0, 5: 1, 9: 1}\n")
    mapping = ClassMapping.from_file(tmp_path / "classes.yaml")
    assert mapping.labels.names == ("background", "lane")
    _, label = FolderSegmentation(tmp_path / "images", tmp_path / "labels", mapping)[0]
    assert label[0].tolist() == [0, 1, 1, 255]
    (tmp_path / "bad.yaml").write_text("names: [a]\nmapping: {3: 4}\n")
    with pytest.raises(DatasetError, match="mapping 3 -> 4"):
        ClassMapping.from_file(tmp_path / "bad.yaml")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no images"):
        FolderSegmentation(tmp_path / "empty", tmp_path / "labels", mapping)


def test_normalisation_is_the_engines_bgr_mean_subtraction():
    rgb = np.zeros((2, 3, 3), np.uint8)
    rgb[..., 0], rgb[..., 1], rgb[..., 2] = 200, 100, 50
    x = normalize(rgb, OFFICIAL)
    assert x.shape == (3, 2, 3)
    np.testing.assert_allclose(x[:, 0, 0].numpy(), [50 - 103.939, 100 - 116.779, 200 - 123.68], rtol=1e-6)
    imagenet = Preprocessing((2, 3), "RGB", (123.675, 116.28, 103.53), (58.395, 57.12, 57.375))
    np.testing.assert_allclose(normalize(rgb, imagenet)[:, 1, 1].numpy(),
                               [(200 - 123.675) / 58.395, (100 - 116.28) / 57.12, (50 - 103.53) / 57.375], rtol=1e-6)
    # The evaluation path (torch, batched, resized to the input size) agrees at the same size.
    batch = torch.from_numpy(rgb)[None]
    torch.testing.assert_close(preprocess(batch, OFFICIAL.__class__((2, 3)))[0], x)


def test_training_transform_resizes_mirrors_crops_and_pads_with_ignore():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (40, 60, 3), dtype=np.uint8)
    label = rng.integers(0, 19, (40, 60), dtype=np.uint8)
    transform = TrainTransform((33, 49), Preprocessing((33, 49)), scale_range=(0.5, 0.5), photometric=True)
    x, y = transform(image, label, np.random.default_rng(1))
    assert x.shape == (3, 33, 49) and x.dtype == torch.float32 and y.shape == (33, 49) and y.dtype == torch.int64
    assert (y[20:] == 255).all() and (y[:, 30:] == 255).all()  # 20x30 after scaling, padded
    assert (y[:20, :30] != 255).all() and (x[:, 20:] == 0).all()  # image padded with the mean
    again = transform(image, label, np.random.default_rng(1))
    assert torch.equal(again[0], x) and torch.equal(again[1], y)


def test_processes_share_each_batch_and_resume_where_they_stopped():
    def keys(**kw):
        options = dict(size=10, batch_size=8, accumulation=2, rank=0, world_size=1, seed=3, start=0, stop=3)
        return list(StepSampler(**{**options, **kw}))

    single = keys()
    assert len(single) == 24 and sorted(p for _, p in single) == list(range(24))
    two = [keys(rank=0, world_size=2), keys(rank=1, world_size=2)]
    # Micro-batch m of iteration i: rank 0 takes its first half, rank 1 the second.
    merged = [key for step in range(6) for rank in (0, 1) for key in two[rank][2 * step:2 * step + 2]]
    assert merged == single
    assert keys(start=1) == single[8:]
    epochs = [sorted(i for i, p in single if p // 10 == e) for e in (0, 1)]
    assert epochs[0] == list(range(10)) and epochs[1] == list(range(10))  # every image once per pass
    with pytest.raises(ValueError, match="divisible"):
        keys(batch_size=6, world_size=4)
