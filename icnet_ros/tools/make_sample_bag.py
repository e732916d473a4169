"""``icnet-make-sample-bag``: a rosbag2 bag of synthetic street frames with ground truth.

The frames come from the training package's street-scene generator
(:mod:`icnet_ros.synthetic.street_scenes`): a camera driving down a street among moving
traffic, the next street (seed + 1, ...) when one ends. Every frame is an image message
(raw ``sensor_msgs/Image`` or ``sensor_msgs/CompressedImage``) plus a ``mono8`` label
message of Cityscapes trainIds (255 = void) with the same header stamp, logged at that
stamp; stamps are ``start + i / rate``. The same arguments give the same messages.

    icnet-make-sample-bag sample_bag --frames 20 --rate 10 --size 256 512 --storage mcap
"""

from __future__ import annotations

import argparse
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from icnet_ros.evaluation.bag_writing import STORAGES, BagWriteError, BagWriter, compressed_message, image_message

DEFAULT_START_S = 1_700_000_000.0  # a fixed epoch: the same arguments give the same bag
# Streets the demo weights never saw (trained on seeds 0..3999, validated on 1000000..1000099).
DEFAULT_SEED = 2_000_000
IMAGE_FORMATS = ("raw", "jpeg", "png")


def street_frames(count: int, rate: float, height: int, width: int, seed: int
                  ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """``count`` (RGB, trainIds) frames of a drive at ``rate`` Hz, street after street from ``seed``."""
    from icnet_ros.synthetic.street_scenes import sample_scene  # imports torch: not needed to refuse arguments

    index, street = 0, seed
    while index < count:
        scene = sample_scene(street)
        frames_here = min(count - index, int(scene.duration * rate) + 1)
        for k in range(frames_here):
            yield scene.render(height, width, time=k / rate, noise_seed=index)
            index += 1
        street += 1


def write_sample_bag(path: str | Path, *, frames: int = 20, rate: float = 10.0, size: tuple[int, int] = (256, 512),
                     seed: int = DEFAULT_SEED, storage: str = "mcap", image_format: str = "raw", encoding: str = "rgb8",
                     image_topic: str | None = None, label_topic: str | None = "/camera/labels",
                     frame_id: str = "camera_optical_frame", start_s: float = DEFAULT_START_S) -> Path:
    """Write the bag; returns its directory. ``label_topic`` None: no ground truth."""
    if frames < 1 or rate <= 0 or min(size) < 8:
        raise ValueError("frames must be at least 1, rate positive and the size at least 8x8")
    if image_format not in IMAGE_FORMATS:
        raise ValueError(f"image format must be one of {', '.join(IMAGE_FORMATS)}, got {image_format!r}")
    if image_topic is None:
        image_topic = "/camera/image_raw" + ("" if image_format == "raw" else "/compressed")
    start_ns = int(round(start_s * 1e9))
    height, width = size
    with BagWriter(path, storage) as writer:
        for index, (rgb, label) in enumerate(street_frames(frames, rate, height, width, seed)):
            stamp = start_ns + int(round(index * 1e9 / rate))
            if image_format == "raw":
                writer.write(image_topic, image_message(rgb, stamp, frame_id, encoding))
            else:
                writer.write(image_topic, compressed_message(rgb, stamp, frame_id, image_format))
            if label_topic:
                writer.write(label_topic, image_message(label, stamp, frame_id))
    return Path(path)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="icnet-make-sample-bag", description=__doc__.split("\n\n")[0])
    parser.add_argument("output", type=Path, help="bag directory to create")
    parser.add_argument("--storage", choices=tuple(STORAGES), default="mcap", help="rosbag2 storage (default mcap)")
    parser.add_argument("--frames", type=int, default=20, help="number of frames (default 20)")
    parser.add_argument("--rate", type=float, default=10.0, help="frames per second (default 10)")
    parser.add_argument("--size", type=int, nargs=2, default=(256, 512), metavar=("HEIGHT", "WIDTH"),
                        help="image size (default 256 512)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED,
                        help=f"first street's seed (default {DEFAULT_SEED}: streets the demo weights never saw)")
    parser.add_argument("--format", dest="image_format", choices=IMAGE_FORMATS, default="raw",
                        help="raw sensor_msgs/Image, or CompressedImage jpeg/png (default raw)")
    parser.add_argument("--encoding", choices=("rgb8", "bgr8"), default="rgb8", help="raw image encoding")
    parser.add_argument("--image-topic", default=None,
                        help="default /camera/image_raw (raw) or /camera/image_raw/compressed")
    parser.add_argument("--label-topic", default="/camera/labels", help="ground-truth topic (mono8 trainIds)")
    parser.add_argument("--no-labels", action="store_true", help="write no ground truth")
    parser.add_argument("--frame-id", default="camera_optical_frame", help="header frame_id")
    parser.add_argument("--start", type=float, default=DEFAULT_START_S, help="first stamp, seconds since the epoch")
    parser.add_argument("--force", action="store_true", help="replace an existing bag directory")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.output.exists():
        if not (args.force and (args.output / "metadata.yaml").is_file()):
            hint = "; --force replaces a bag directory" if not args.force else " and is not a bag directory"
            print(f"icnet-make-sample-bag: error: {args.output} already exists{hint}", file=sys.stderr)
            return 2
        shutil.rmtree(args.output)
    try:
        path = write_sample_bag(args.output, frames=args.frames, rate=args.rate, size=tuple(args.size),
                                seed=args.seed, storage=args.storage, image_format=args.image_format,
                                encoding=args.encoding, image_topic=args.image_topic,
                                label_topic=None if args.no_labels else args.label_topic,
                                frame_id=args.frame_id, start_s=args.start)
    except (ValueError, BagWriteError, OSError) as error:
        print(f"icnet-make-sample-bag: error: {error}", file=sys.stderr)
        return 2
    size = sum(p.stat().st_size for p in path.iterdir()) / 1e6
    print(f"wrote {args.frames} frames ({args.size[0]}x{args.size[1]}, {args.rate:g} Hz, {args.image_format}"
          f"{'' if args.no_labels else ', with labels'}) to {path} ({args.storage}, {size:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
