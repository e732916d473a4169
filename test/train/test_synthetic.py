"""The procedural street-scene generator."""

from __future__ import annotations

import time

import numpy as np
import pytest

from icnet_ros.synthetic.street_scenes import (
    POLE,
    ROAD,
    SKY,
    SyntheticScenes,
    generate_scene,
    generate_sequence,
    sample_scene,
)


def test_same_seed_same_frame_other_seed_other_frame():
    first, again, other = generate_scene(3, 64, 128), generate_scene(3, 64, 128), generate_scene(4, 64, 128)
    assert np.array_equal(first[0], again[0]) and np.array_equal(first[1], again[1])
    assert not np.array_equal(first[1], other[1])


def test_frames_and_labels_are_well_formed():
    seen = set()
    for seed in range(6):
        rgb, label = generate_scene(seed, 96, 192)
        assert rgb.shape == (96, 192, 3) and rgb.dtype == np.uint8
        assert label.shape == (96, 192) and label.dtype == np.uint8
        values = set(np.unique(label).tolist())
        assert values <= set(range(19)) | {255}
        assert {ROAD, SKY} <= values
        seen |= values
        assert rgb.std() > 20  # a real picture, not a flat fill
    assert len(seen - {255}) >= 15  # nearly every Cityscapes class appears in a few scenes
    assert 255 in seen  # the ego vehicle's bonnet is void, as in Cityscapes


def test_poles_are_thin_structures():
    """Poles are a few pixels wide at 256x512: below the 1/8 grid of ICNet's sub24 branch."""
    widths = []
    for seed in range(4):
        _, label = generate_scene(seed, 256, 512)
        for row in (label == POLE):
            edges = np.flatnonzero(np.diff(np.concatenate([[0], row.astype(np.int8), [0]])))
            widths.extend(edges[1::2] - edges[::2])
    assert len(widths) > 100
    assert np.median(widths) <= 4


def test_a_drive_moves_the_camera_and_the_traffic():
    scene = sample_scene(7)
    frames = list(generate_sequence(7, 3, fps=2.0, height=64, width=128))
    assert len(frames) == 3
    assert not np.array_equal(frames[0][1], frames[2][1])
    assert np.array_equal(frames[1][1], scene.render(64, 128, time=0.5, noise_seed=1)[1])
    with pytest.raises(ValueError, match="time must be within"):
        scene.render(64, 128, time=scene.duration + 1)
    with pytest.raises(ValueError, match="do not fit"):
        next(generate_sequence(7, 10_000, fps=1.0))


def test_dataset_items_and_speed():
    frames = SyntheticScenes(3, 64, 128, seed=10)
    rgb, label = frames[2]
    assert np.array_equal(label, generate_scene(12, 64, 128)[1])
    with pytest.raises(IndexError):
        frames[3]
    start, cpu = time.perf_counter(), time.process_time()
    for seed in range(10):
        generate_scene(seed, 256, 512)
    print(f"\nsynthetic scene 256x512: {(time.perf_counter() - start) * 100:.1f} ms per frame "
          f"({(time.process_time() - cpu) * 100:.1f} ms of CPU time)")
