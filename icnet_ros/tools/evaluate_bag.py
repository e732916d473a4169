"""``icnet-eval``: evaluate ICNet on a rosbag2 bag, offline or live through the ROS 2 node.

    icnet-eval BAG --topic /camera/image_raw --label-topic /camera/labels --mode offline
    icnet-eval BAG --topic /camera/image_raw --label-topic /camera/labels --mode live --rate 1

Offline, every frame goes through the segmentation engine in this process (deterministic).
Live, the frames are published over DDS to ``segmentation_node`` (started here, or
already running with ``--node running``), at the recorded rate times ``--rate`` (0: the
next frame as soon as the previous one is answered); latencies are publish to class mask
received (see ``icnet_ros.ros.bag_replay`` for the clock semantics). Writes report.json,
report.md and plots into ``--output``; exit code 2 with one line on stderr for unusable input.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from icnet_ros.evaluation.bag_reading import IMAGE_TYPES, Bag, BagError
from icnet_ros.evaluation.bag_writing import BagWriteError, BagWriter
from icnet_ros.evaluation.ground_truth import LABEL_FORMATS, MATCHES, GroundTruthError, LabelFolder
from icnet_ros.weights.demo import default_weights_path
from icnet_ros.weights.labels import CITYSCAPES, LabelSetError

PROG = "icnet-eval"


class UsageError(ValueError):
    """Arguments that do not fit the bag or each other."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("bag", type=Path, help="rosbag2 directory, .mcap or .db3 file")
    parser.add_argument("--topic", action="append", default=[], help="image topic (Image or CompressedImage); "
                        "repeat for several cameras (default: the bag's only image topic)")
    truth = parser.add_argument_group("ground truth (frames without it are timed, not scored)")
    truth.add_argument("--label-topic", action="append", default=[],
                       help="mono8 trainId label topic, one per --topic in the same order; matched by header stamp")
    truth.add_argument("--labels-dir", type=Path, help="folder of Cityscapes-style label PNGs (one image topic)")
    truth.add_argument("--label-format", choices=LABEL_FORMATS, default="trainIds",
                       help="what the label PNGs hold (default trainIds; labelIds: the *_gtFine_labelIds.png files)")
    truth.add_argument("--label-match", choices=MATCHES, default="auto",
                       help="stamp: file names are header stamps; name: files in name order are the frames in "
                            "order; auto: stamp when every name is one (default)")
    parser.add_argument("--mode", choices=("offline", "live"), default="offline", help="default offline")
    parser.add_argument("--weights", type=Path, help="weight file (default: the demo weights)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default auto)")
    parser.add_argument("--precision", choices=("fp32", "fp16", "bf16"), default="fp32")
    parser.add_argument("--input-size", type=int, nargs=2, metavar=("HEIGHT", "WIDTH"),
                        help="network input size (default: the weights')")
    parser.add_argument("--threads", type=int, help="CPU threads for inference (default: torch's)")
    outputs = parser.add_argument_group("outputs")
    outputs.add_argument("-o", "--output", type=Path, default=Path("icnet_eval"),
                         help="report folder: report.json, report.md, plots (default ./icnet_eval)")
    outputs.add_argument("--save-masks", type=Path, metavar="DIR",
                         help="write each class mask as DIR/<stamp ns>.png (trainIds)")
    outputs.add_argument("--output-bag", type=Path, metavar="DIR",
                         help="write an mcap bag of <topic>/class_mask and <topic>/overlay (original stamps)")
    outputs.add_argument("--strip", type=Path, metavar="PNG", help="write input | colour mask | overlay of one frame")
    outputs.add_argument("--strip-frame", type=int, help="frame of the first topic drawn by --strip (default: middle)")
    outputs.add_argument("--overlay-alpha", type=float, default=0.5, help="colour weight in overlays (default 0.5)")
    outputs.add_argument("--no-progress", action="store_true", help="no progress bar")
    live = parser.add_argument_group("live mode")
    live.add_argument("--node", choices=("start", "running"), default="start",
                      help="start segmentation_node (default) or use one already running")
    live.add_argument("--node-namespace", action="append", default=[],
                      help="namespace of the node for each --topic (default /icnet_eval, or /icnet_eval/camN "
                           "for several topics); the node reads <ns>/image and publishes <ns>/segmentation/class_mask")
    live.add_argument("--rate", type=float, default=1.0,
                      help="multiple of the recorded rate; 0: next frame when the previous is answered (default 1)")
    live.add_argument("--timeout", type=float, default=5.0,
                      help="seconds after which an unanswered frame counts as dropped (default 5)")
    live.add_argument("--params-file", type=Path, help="node parameter file (default: the shipped config/icnet.yaml)")
    live.add_argument("--start-timeout", type=float, default=120.0,
                      help="seconds to wait for the node to come up (default 120)")
    return parser


def _select_topics(args: argparse.Namespace, bag: Bag) -> list[str]:
    if args.topic:
        return args.topic
    candidates = [t for t, info in bag.topics.items() if info.msgtype in IMAGE_TYPES and t not in args.label_topic]
    if len(candidates) != 1:
        raise UsageError(f"name the image topic with --topic; {bag.describe_topics()}")
    return candidates


def _check_arguments(args: argparse.Namespace) -> None:
    if args.label_topic and len(args.label_topic) != len(args.topic or [None]):
        raise UsageError(f"{len(args.label_topic)} --label-topic for {len(args.topic or [None])} image topic(s): "
                         "give one per --topic, in the same order")
    if args.labels_dir and args.label_topic:
        raise UsageError("give ground truth as --label-topic or --labels-dir, not both")
    if args.labels_dir and len(args.topic) > 1:
        raise UsageError("--labels-dir serves one image topic")
    if args.rate < 0 or args.timeout <= 0:
        raise UsageError("--rate must be 0 or positive and --timeout positive")
    if args.node_namespace and len(args.node_namespace) != len(args.topic or [None]):
        raise UsageError("give one --node-namespace per --topic")
    if args.output_bag is not None and args.output_bag.exists():
        raise UsageError(f"--output-bag {args.output_bag} already exists")
    if not 0.0 <= args.overlay_alpha <= 1.0:
        raise UsageError("--overlay-alpha must lie in [0, 1]")


def _weights(args: argparse.Namespace) -> tuple[Path | None, bool]:
    """(weight file, whether it is the demo default); None for a running node without --weights."""
    if args.weights is not None:
        return args.weights, False
    if args.mode == "live" and args.node == "running":
        return None, False
    path = default_weights_path()
    if not path.is_file():
        raise UsageError(f"no --weights given and the demo weights are missing ({path})")
    print(f"{PROG}: no --weights given: using the demo weights {path} "
          "(ICNet trained on synthetic street scenes)", file=sys.stderr)
    return path, True


def _weights_info(path: Path | None, default: bool):
    if path is None:
        return None, CITYSCAPES
    from icnet_ros.weights.weight_file import file_sha256, read_weights

    _, metadata = read_weights(path)
    return {"path": str(path), "sha256": file_sha256(path), "size_bytes": path.stat().st_size,
            "default": default, "metadata": metadata.to_dict()}, metadata.labels


def _settings(args: argparse.Namespace) -> dict:
    return {key: (str(value) if isinstance(value, Path) else
                  [str(v) for v in value] if isinstance(value, list) else value)
            for key, value in sorted(vars(args).items())}


def _progress(args: argparse.Namespace, total: int, what: str):
    from tqdm import tqdm

    return tqdm(total=total, desc=what, unit="frame", disable=args.no_progress, dynamic_ncols=True, file=sys.stderr)


def _run_offline(args, weights: Path, frames, evaluation, total: int) -> None:
    from icnet_ros.evaluation.scoring import evaluate_offline
    from icnet_ros.runtime.engine import SegmentationEngine

    engine = SegmentationEngine(weights, device=args.device, precision=args.precision,
                                input_size=tuple(args.input_size) if args.input_size else None,
                                pipeline_depth=1, cpu_threads=args.threads)
    with engine, _progress(args, total, "offline") as progress:
        evaluate_offline(engine, frames, evaluation, progress)


def _run_live(args, weights: Path | None, topics: list[str], bag: Bag, frames, evaluation, total: int) -> dict:
    from icnet_ros.ros.bag_replay import Replayer, ReplayTarget, replay_node
    from icnet_ros.ros.node_process import NodeProcess, shipped_file, use_shipped_profile

    profile = use_shipped_profile()
    namespaces = args.node_namespace or (["/icnet_eval"] if len(topics) == 1 else
                                         [f"/icnet_eval/cam{i}" for i in range(len(topics))])
    targets = [ReplayTarget(topic, IMAGE_TYPES[bag.topics[topic].msgtype], ns) for topic, ns in zip(topics, namespaces)]
    processes: list[NodeProcess] = []
    node_info = {"started": args.node == "start", "namespaces": namespaces, "fastdds_profile": profile,
                 "ros_domain_id": os.environ.get("ROS_DOMAIN_ID", "0")}
    replayer = Replayer(targets)
    try:
        if args.node == "start":
            params_file = args.params_file or shipped_file("config/icnet.yaml")
            node_info["params_file"] = str(params_file) if params_file else None
            parameters = {"device": args.device, "precision": args.precision}
            if args.input_size:
                parameters.update(input_height=args.input_size[0], input_width=args.input_size[1])
            if args.threads:
                parameters["cpu_threads"] = args.threads
            size = _first_image_size(bag, topics)
            if size:
                parameters.update(warmup_height=size[0], warmup_width=size[1])
            args.output.mkdir(parents=True, exist_ok=True)
            for index, target in enumerate(targets):
                processes.append(replay_node(target, weights, args.output / f"node{index}.log",
                                             params_file=params_file, parameters=parameters))
            node_info["logs"] = [str(p.log_path) for p in processes]
            node_info["command"] = processes[0].args
        print(f"{PROG}: waiting for the node on {', '.join(t.input_topic for t in targets)}", file=sys.stderr)
        replayer.wait_connected(args.start_timeout, processes)
        replayer.handshake([next(iter(bag.frames([topic]))) for topic in topics], args.start_timeout, processes)
        with _progress(args, total, "live") as progress:
            replayer.replay(frames, evaluation, rate=args.rate, timeout_s=args.timeout, progress=progress)
        stats = replayer.stats
        node_info.update(late_answers=stats.late_answers, unknown_answers=stats.unknown_answers,
                         publish_lag_ms_max=round(max(stats.publish_lag_ms, default=0.0), 3))
    finally:
        replayer.close()
        for process in processes:
            process.stop()
    return node_info


def _first_image_size(bag: Bag, topics: list[str]) -> tuple[int, int] | None:
    """The first raw frame's size (to warm the node up at the camera's size)."""
    for frame in bag.frames(topics[:1]):
        if frame.kind == "raw":
            return int(frame.message.height), int(frame.message.width)
        return frame.rgb().shape[:2]
    return None


def evaluate(args: argparse.Namespace) -> dict:
    """Run the evaluation the arguments describe; returns the report (also written to disk)."""
    _check_arguments(args)
    with Bag(args.bag) as bag:
        topics = _select_topics(args, bag)
        infos = {topic: bag.require(topic, tuple(IMAGE_TYPES), "image") for topic in topics}
        empty = [topic for topic, info in infos.items() if info.count == 0]
        if empty:
            raise UsageError(f"image topic {empty[0]} has no messages in {bag.path}")
        label_topics = dict(zip(topics, args.label_topic))
        for label_topic in label_topics.values():
            bag.require(label_topic, ("sensor_msgs/msg/Image",), "label")
            if label_topic in topics:
                raise UsageError(f"{label_topic} is given as both an image and a label topic")
        folder = None
        if args.labels_dir:
            folder = LabelFolder(args.labels_dir, args.label_format, args.label_match)
            folder.check_count(infos[topics[0]].count)
        weights, default = _weights(args)
        # Everything above refuses bad input quickly; what follows imports torch.
        from icnet_ros.evaluation.report import build_report, summary_text, write_report
        from icnet_ros.evaluation.scoring import Evaluation

        weights_info, labels = _weights_info(weights, default)
        total = sum(info.count for info in infos.values())
        strip = None
        if args.strip is not None:
            strip = (args.strip, topics[0],
                     infos[topics[0]].count // 2 if args.strip_frame is None else args.strip_frame)
        output_bag = BagWriter(args.output_bag, "mcap") if args.output_bag else None
        evaluation = Evaluation(labels, topics, label_folder=folder, label_folder_topic=topics[0] if folder else None,
                                masks_dir=args.save_masks, output_bag=output_bag, overlay_alpha=args.overlay_alpha,
                                strip=strip)
        frames = bag.frames(topics, label_topics)
        if output_bag is not None:
            output_bag.__enter__()
        try:
            if args.mode == "offline":
                _run_offline(args, weights, frames, evaluation, total)
                node = None
            else:
                node = _run_live(args, weights, topics, bag, frames, evaluation, total)
        finally:
            if output_bag is not None:
                output_bag.__exit__(None, None, None)
        bag_info = {"path": str(bag.path), "storage": bag.storage, "files": [p.name for p in bag.files],
                    "sha256": bag.sha256(), "duration_s": round(bag.duration_s, 6), "start_stamp_ns": bag.start_ns,
                    "topics": {t: {"type": i.msgtype, "count": i.count} for t, i in bag.topics.items()}}
    truth = None
    if label_topics:
        truth = {"source": "topic", "label_topics": label_topics, "format": "trainIds", "match": "stamp"}
    elif folder is not None:
        truth = {"source": "folder", "folder": str(folder.folder), "files": len(folder.files),
                 "format": folder.label_format, "match": folder.match}
    latency = "engine_segment" if args.mode == "offline" else "publish_to_class_mask"
    report = build_report(evaluation, mode=args.mode, settings=_settings(args), bag=bag_info, weights=weights_info,
                          ground_truth=truth, node=node, latency_definition=latency)
    files = report["files"]
    files.update(masks_dir=str(args.save_masks) if args.save_masks else None,
                 output_bag=str(args.output_bag) if args.output_bag else None,
                 strip=str(evaluation.strip_written) if evaluation.strip_written else None)
    write_report(report, args.output)
    print(summary_text(report))
    print(f"report: {files['json']} and {files['markdown']}")
    return report


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        evaluate(args)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # noqa: BLE001 - known failures become one line; anything else is a bug
        if not isinstance(error, _user_errors()):
            raise
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 2
    return 0


def _user_errors() -> tuple[type[BaseException], ...]:
    errors: list[type[BaseException]] = [UsageError, BagError, GroundTruthError, BagWriteError, LabelSetError, OSError]
    if "icnet_ros.weights.weight_file" in sys.modules:
        from icnet_ros.weights.weight_file import WeightsError
        errors.append(WeightsError)
    if "icnet_ros.ros.bag_replay" in sys.modules:
        from icnet_ros.ros.bag_replay import ReplayError
        from icnet_ros.ros.node_process import NodeProcessError
        errors += [ReplayError, NodeProcessError]
    return tuple(errors)


if __name__ == "__main__":
    sys.exit(main())
