"""icnet-make-sample-bag: frame counts, stamp spacing, storage formats, image formats, refusals."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
from eval_support import FRAMES, RATE, SIZE
from rosbags.highlevel import AnyReader
from rosbags.typesys import Stores, get_typestore

from icnet_ros.tools.make_sample_bag import main, street_frames

CLI = Path(sys.executable).parent / "icnet-make-sample-bag"


def read_bag(path: Path) -> dict[str, list]:
    """Every message by topic, read with rosbags directly: (log time, stamp ns, message)."""
    messages: dict[str, list] = {}
    with AnyReader([path], default_typestore=get_typestore(Stores.ROS2_KILTED)) as reader:
        for connection, log_time, rawdata in reader.messages():
            msg = reader.deserialize(rawdata, connection.msgtype)
            stamp = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
            messages.setdefault(connection.topic, []).append((log_time, stamp, msg))
    return messages


def test_counts_rate_and_content_in_both_storages(sample_bags):
    expected = list(street_frames(FRAMES, RATE, *SIZE, seed=3))
    for storage, path in sample_bags.items():
        suffix = ".mcap" if storage == "mcap" else ".db3"
        assert [p.suffix for p in path.iterdir() if p.name != "metadata.yaml"] == [suffix]
        messages = read_bag(path)
        image_topic = "/camera/image_raw" if storage == "mcap" else "/camera/image_raw/compressed"
        assert sorted(messages) == sorted([image_topic, "/camera/labels"])
        images, labels = messages[image_topic], messages["/camera/labels"]
        assert len(images) == len(labels) == FRAMES
        stamps = [stamp for _, stamp, _ in images]
        assert np.diff(stamps).tolist() == [int(1e9 / RATE)] * (FRAMES - 1)
        assert [stamp for _, stamp, _ in labels] == stamps
        assert [log for log, _, _ in images] == stamps  # logged at the header stamp
        for (_, _, image), (_, _, label), (rgb, train_ids) in zip(images, labels, expected):
            if storage == "mcap":
                assert (image.encoding, image.height, image.width, image.step) == ("rgb8", *SIZE, SIZE[1] * 3)
                decoded = image.data.reshape(*SIZE, 3)
            else:
                assert "png" in image.format
                decoded = cv2.cvtColor(cv2.imdecode(image.data, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
            np.testing.assert_array_equal(decoded, rgb)
            assert label.encoding == "mono8"
            np.testing.assert_array_equal(label.data.reshape(SIZE), train_ids)
            assert set(np.unique(train_ids)) <= set(range(19)) | {255}


def test_cli_rate_size_jpeg_and_refusals(tmp_path):
    bag = tmp_path / "jpeg"
    assert main([str(bag), "--frames", "3", "--rate", "4", "--size", "32", "48", "--format", "jpeg",
                 "--storage", "sqlite3", "--no-labels"]) == 0
    messages = read_bag(bag)
    assert list(messages) == ["/camera/image_raw/compressed"]
    stamps = [stamp for _, stamp, _ in messages["/camera/image_raw/compressed"]]
    assert np.diff(stamps).tolist() == [250_000_000, 250_000_000]
    image = cv2.imdecode(messages["/camera/image_raw/compressed"][0][2].data, cv2.IMREAD_COLOR)
    assert image.shape == (32, 48, 3)
    again = subprocess.run([str(CLI), str(bag)], capture_output=True, text=True, timeout=120)
    assert again.returncode == 2
    assert "already exists" in again.stderr and "Traceback" not in again.stderr
