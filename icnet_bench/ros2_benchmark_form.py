"""``icnet-bench-node ros2-benchmark BAG``: the running node in the form NVIDIA ros2_benchmark reports.

Frames of a bag (``icnet-make-sample-bag`` or a user's) are replayed through a live
``segmentation_node`` (started here as users start it, with the shipped Fast DDS
shared-memory profile, in a private ROS domain) over real DDS, as ros2_benchmark does
for the Isaac ROS figures:

- **peak**: the highest publishing rate at which at most 5 % of the frames are missed,
  found by a search (the rate doubles from ``--search-start`` until a trial misses
  more, halves if the first one does, then bisects to within 10 %); the rate found is
  then measured like a fixed rate (stepped down by 10 % while the repeated runs miss
  more than 5 %). Its ``MEAN_FRAME_RATE`` is the peak sustained output rate.
- **fixed rates** (``--rates``, 10, 30 and 60 Hz): ``--runs`` runs of ``--run-seconds``
  each; every figure is the mean of the runs with the best and the worst dropped.

The camera side: the bag's frames are held in memory as recorded (CDR bytes), given a
fresh header stamp and handed to ``Publisher.publish(bytes)`` (no message is built or
serialised while publishing); class masks are received serialised (``raw=True``: only
the stamp is read). The publisher's achieved rate is reported for every run
(``MEAN_PLAYBACK_FRAME_RATE``) with its ceiling (back-to-back publishing); a trial whose
publisher falls short of its rate by more than 5 % ends the search (camera-bound).

Metrics per run, with ros2_benchmark's names (times on this host's monotonic clock):
``NUM_FRAMES_SENT``; ``NUM_MISSED_FRAMES`` (sent - answered); ``MEAN_PLAYBACK_FRAME_RATE``
and ``MEAN_FRAME_RATE`` ((n - 1) / (last - first) of the sends and of the answers);
``RECEIVED_DURATION`` (first to last answer, ms); ``FIRST_SENT_RECEIVED_LATENCY`` (first
answer - first send) and ``LAST_SENT_RECEIVED_LATENCY`` (last answer - last send), ms;
``MAX/MIN/MEAN_JITTER`` and ``STD_DEV_JITTER``: jitter of the answers, the absolute
change between consecutive inter-arrival intervals, ms; ``MEAN_OVERALL_CPU_UTILIZATION``
(every core of the machine, %, other processes included). Ours: the per-frame latency
(send -> its class mask, matched by stamp) p50/p90/p99/max, the missed fraction, the
node process's CPU use (% of one core), its resident memory, GPU memory on CUDA (the
node's own diagnostics; the process's share per ``nvidia-smi`` where present), and the
mIoU of the answered frames when the bag has labels (one mask per bag frame and run).
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

import psutil
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.serialization import deserialize_message
from sensor_msgs.msg import CompressedImage, Image

from icnet_bench.environment import machine_info
from icnet_bench.node_bench import nvidia_smi_mib, prepare_weights, result_paths, versions
from icnet_bench.node_session import Client, Link, NodeUnderTest, isolate, stamp_ns, wait_serving
from icnet_bench.ros2_benchmark_metrics import MISSED_LIMIT, combine, publisher_kept_up, run_metrics, sustained
from icnet_bench.ros2_benchmark_report import markdown
from icnet_bench.settings import BenchError, comma_list, parse_size
from icnet_ros.evaluation.bag_reading import IMAGE_TYPES, Bag, BagError, cdr_stamp
from icnet_ros.evaluation.scoring import Evaluation
from icnet_ros.ros.bag_replay import restamp
from icnet_ros.ros.diagnostics import GPU_MEMORY, GPU_MEMORY_PEAK
from icnet_ros.ros.image_messages import image_array
from icnet_ros.weights.weight_file import WeightsError, read_weights

SCHEMA = "icnet_ros.bench.ros2_benchmark/1"
SEARCH_RESOLUTION = 1.1  # bisect until the failing rate is within 10 % of the passing one
CONFIRM_STEPS = 3  # peak: times the rate is stepped down by 10 % when its repeated runs miss more
MIN_RATE_HZ = 0.5
MIN_FRAMES = 20  # a run sends at least this many frames: one missed is then within the 5 %
NODE_NAMESPACE = "bench/r2b"


@dataclass
class FormSettings:
    bag: str
    image_topic: str = "/camera/image_raw"
    label_topic: str | None = "/camera/labels"  # used when the bag has it; "" = never
    frames: int = 10
    weights: str | None = None
    width: float = 0.5
    input_size: tuple[int, int] = (1025, 2049)
    device: str = "cpu"
    precision: str = "fp32"
    cpu_threads: int = 0
    rates: list[float] = field(default_factory=lambda: [10.0, 30.0, 60.0])
    peak: bool = True
    runs: int = 5
    run_seconds: float = 5.0
    search_seconds: float = 2.0
    search_start: float = 10.0
    max_rate: float = 2000.0
    answer_timeout: float = 5.0
    label: str | None = None
    out_dir: str = "bench/results"


# ------------------------------------------------------------------------------ the bag


def load_frames(settings: FormSettings) -> tuple[list, str | None]:
    """The first ``frames`` images of the image topic (with labels when the bag has them), and the label topic."""
    with Bag(settings.bag) as bag:
        bag.require(settings.image_topic, tuple(IMAGE_TYPES), "image")
        label_topic = settings.label_topic if settings.label_topic in bag.topics else None
        labels = {settings.image_topic: label_topic} if label_topic else None
        frames = list(islice(bag.frames([settings.image_topic], labels), settings.frames))
    if not frames:
        raise BenchError(f"{settings.bag} has no frames on {settings.image_topic}")
    return frames, label_topic


def frame_size(frame) -> tuple[int, int]:
    """(height, width) of a bag image (a compressed one is decoded)."""
    if frame.kind == "raw":
        return int(frame.message.height), int(frame.message.width)
    return frame.rgb().shape[:2]


# --------------------------------------------------------------------- the measuring side


class MaskRecorder:
    """The serialised class masks: (stamp, arrival) of each, and the first mask of every bag frame."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.arrivals: list[tuple[int, float]] = []
        self.frame_of: dict[int, int] = {}  # stamp -> bag frame index, set before the send
        self.kept: dict[int, tuple[int, bytes]] = {}  # bag frame index -> (stamp, mask)

    def __call__(self, raw: bytes) -> None:
        now = time.monotonic()
        stamp = cdr_stamp(raw)
        with self._lock:
            self.arrivals.append((stamp, now))
            index = self.frame_of.get(stamp)
            if index is not None and index not in self.kept:
                self.kept[index] = (stamp, raw)

    def count(self) -> int:
        with self._lock:
            return len(self.arrivals)

    def take(self) -> tuple[list[tuple[int, float]], dict[int, tuple[int, bytes]]]:
        with self._lock:
            taken = self.arrivals, self.kept
            self.arrivals, self.kept, self.frame_of = [], {}, {}
            return taken


class Bench:
    """A live node, a publisher of the bag's frames and a recorder of its class masks."""

    def __init__(self, settings: FormSettings, frames: list, weights: Path, workdir: Path) -> None:
        self.settings, self.frames = settings, frames
        height, width = frame_size(frames[0])
        self.node = NodeUnderTest(NODE_NAMESPACE, weights, workdir / "node.log", transport=frames[0].kind,
                                  parameters={"device": settings.device, "precision": settings.precision,
                                              "cpu_threads": settings.cpu_threads, "warmup_height": height,
                                              "warmup_width": width})
        self.process = psutil.Process(self.node.pid)
        self.client = Client("icnet_bench_ros2_benchmark")
        try:
            self._connect()
        except BaseException:
            self.close()
            raise
        self.quiet_s = 0.5

    def _connect(self) -> None:
        """Our publisher and a class-mask subscription; once the node answered a probe, masks arrive raw."""
        frames = self.frames
        self.link = Link(self.node)
        self.recorder = MaskRecorder()
        camera_qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1, reliability=ReliabilityPolicy.RELIABLE)
        msg_type = CompressedImage if frames[0].kind == "compressed" else Image

        def connect() -> None:
            self.link.publisher = self.client.node.create_publisher(msg_type, self.node.input_topic, camera_qos)
            self.link.mask_subscription = self.client.node.create_subscription(
                Image, self.node.topic("class_mask"), self.link.on_mask, camera_qos)
        self.client.in_executor(connect)
        self.client.links.append(self.link)
        wait_serving(self.link, lambda stamp: restamp(frames[0].rawdata, stamp_ns(stamp)), self.client)

        def measure_raw() -> None:  # from here on only the stamps of the answers are read
            self.client.node.destroy_subscription(self.link.mask_subscription)
            self.client.node.create_subscription(Image, self.node.topic("class_mask"), self.recorder,
                                                 camera_qos, raw=True)
        self.client.in_executor(measure_raw)

    def close(self) -> None:
        self.node.stop()
        self.client.close()

    def publisher_ceiling(self, seconds: float = 1.0) -> float:
        """Frames/s of back-to-back publishing (restamp + publish), the node dropping what it cannot take."""
        start, count = time.monotonic(), 0
        while time.monotonic() - start < seconds:
            stamp = stamp_ns(self.client.next_stamp())
            self.link.publish(restamp(self.frames[count % len(self.frames)].rawdata, stamp))
            count += 1
        rate = count / (time.monotonic() - start)
        self._drain(0)
        self.recorder.take()
        return rate

    def run(self, rate: float, seconds: float) -> tuple[dict[str, Any], dict[int, tuple[int, bytes]]]:
        """Publish at ``rate`` for ``seconds`` (at least MIN_FRAMES frames); the run's figures and kept masks."""
        count = max(MIN_FRAMES, round(rate * seconds))
        sent: list[tuple[int, float]] = []
        psutil.cpu_percent(None)
        cpu_before = self.process.cpu_times()
        start = time.monotonic()
        for index in range(count):
            time.sleep(max(0.0, start + index / rate - time.monotonic()))
            stamp = stamp_ns(self.client.next_stamp())
            data = restamp(self.frames[index % len(self.frames)].rawdata, stamp)
            self.recorder.frame_of[stamp] = index % len(self.frames)
            sent.append((stamp, time.monotonic()))
            self.link.publish(data)
        wall = time.monotonic() - start
        cpu_after, overall = self.process.cpu_times(), psutil.cpu_percent(None)
        self._drain(count)
        arrivals, kept = self.recorder.take()
        metrics = run_metrics(sent, arrivals, start)
        metrics.update({
            "rate_hz": rate, "seconds": wall, "MEAN_OVERALL_CPU_UTILIZATION": overall,
            "node_cpu_percent": 100 * (cpu_after.user + cpu_after.system - cpu_before.user - cpu_before.system)
            / wall, "node_rss_mib": self.process.memory_info().rss / 2**20})
        if metrics["latency_ms"]:
            self.quiet_s = max(self.quiet_s, 3 * metrics["latency_ms"]["max"] / 1e3)
        return metrics, kept

    def _drain(self, expected: int) -> None:
        """Until every frame is answered, no answer came for ``quiet_s``, or the answer timeout."""
        deadline = time.monotonic() + self.settings.answer_timeout
        last, since = -1, time.monotonic()
        while time.monotonic() < deadline:
            count = self.recorder.count()
            if expected and count >= expected:
                return
            if count != last:
                last, since = count, time.monotonic()
            elif time.monotonic() - since >= self.quiet_s:
                return
            time.sleep(0.02)

    def memory(self) -> dict[str, float | None]:
        """GPU memory of the node (its diagnostics, nvidia-smi) and its resident set, MiB."""
        report = self.link.report_after(time.time_ns(), 3 * 1.0 + 2.0)
        values = report.values("pipeline") if report else {}
        return {"gpu_in_use_mib": _float(values.get(GPU_MEMORY)),
                "gpu_peak_mib": _float(values.get(GPU_MEMORY_PEAK)),
                "gpu_process_mib": nvidia_smi_mib(self.node.pid),
                "rss_mib": self.process.memory_info().rss / 2**20}


def _float(text: str | None) -> float | None:
    return None if text is None else float(text)


# ----------------------------------------------------------------------------- the plan


def measure_rate(bench: Bench, rate: float, scorer) -> dict[str, Any]:
    """``runs`` runs at ``rate``: every run, their combination, memory and the mIoU of the answers."""
    settings = bench.settings
    runs, confusion = [], scorer.new() if scorer else None
    for _ in range(settings.runs):
        metrics, kept = bench.run(rate, settings.run_seconds)
        runs.append(metrics)
        if scorer:
            scorer.add(confusion, kept)
    result = {"rate_hz": rate, "combined": combine(runs), "memory": bench.memory(), "runs": runs}
    if scorer:
        result["accuracy"] = scorer.summary(confusion)
    return result


def find_peak(bench: Bench, scorer) -> dict[str, Any]:
    """The highest publishing rate with at most 5 % missed (see the module docstring)."""
    settings = bench.settings
    trials: list[dict[str, Any]] = []
    camera_bound = False

    def passes(rate: float) -> bool:
        nonlocal camera_bound
        metrics, _ = bench.run(rate, settings.search_seconds)
        ok = sustained(metrics, rate)
        camera_bound = camera_bound or not publisher_kept_up(metrics, rate)
        trials.append({key: metrics[key] for key in ("rate_hz", "NUM_FRAMES_SENT", "NUM_MISSED_FRAMES",
                                                     "MEAN_PLAYBACK_FRAME_RATE", "MEAN_FRAME_RATE")}
                      | {"sustained": ok})
        return ok
    low = high = None
    rate = settings.search_start
    if passes(rate):
        low = rate
        while high is None and not camera_bound and rate * 2 <= settings.max_rate:
            rate *= 2
            low, high = (rate, None) if passes(rate) else (low, rate)
    else:
        high = rate
        while low is None and rate / 2 >= MIN_RATE_HZ:
            rate /= 2
            low, high = (rate, high) if passes(rate) else (None, rate)
    while low is not None and high is not None and high / low > SEARCH_RESOLUTION and not camera_bound:
        middle = math.sqrt(low * high)
        low, high = (middle, high) if passes(middle) else (low, middle)
    if low is None:
        return {"rate_hz": None, "trials": trials, "camera_bound": camera_bound,
                "note": f"more than {MISSED_LIMIT:.0%} missed even at {rate:g} Hz"}
    confirmations = []
    for _ in range(CONFIRM_STEPS + 1):
        measured = measure_rate(bench, low, scorer)
        confirmations.append({"rate_hz": low, "missed_fraction": measured["combined"]["missed_fraction"]})
        if measured["combined"]["missed_fraction"] <= MISSED_LIMIT:
            break
        low *= 0.9
    return {**measured, "trials": trials, "confirmations": confirmations, "camera_bound": camera_bound,
            "sustained": measured["combined"]["missed_fraction"] <= MISSED_LIMIT}


class Scorer:
    """mIoU of kept class masks against the bag's labels (icnet_ros.evaluation)."""

    def __init__(self, frames: list, labels) -> None:
        self.frames, self.labels = frames, labels

    def new(self) -> Evaluation:
        return Evaluation(labels=self.labels, topics=[self.frames[0].topic])

    def add(self, evaluation, kept: dict[int, tuple[int, bytes]]) -> None:
        for index, (stamp, raw) in sorted(kept.items()):
            if self.frames[index].label is not None:
                evaluation.answered(self.frames[index], image_array(deserialize_message(raw, Image)), 0.0,
                                    sent_stamp_ns=stamp)

    def summary(self, evaluation) -> dict[str, Any]:
        return {"frames_scored": sum(r.scored for r in evaluation.records),
                **evaluation.confusion.summary(self.labels.names)}


def run_form(settings: FormSettings) -> tuple[dict[str, Any], Path, Path]:
    """Start the node, measure peak and fixed rates, write the JSON and the Markdown."""
    frames, label_topic = load_frames(settings)
    environment = isolate()
    now = datetime.datetime.now(datetime.timezone.utc)
    load_before = [round(v, 2) for v in os.getloadavg()]
    with tempfile.TemporaryDirectory(prefix="icnet-ros2-benchmark-") as tmp:
        weights, weights_note = prepare_weights(settings.weights, settings.width, settings.input_size, Path(tmp))
        labelled = [f for f in frames if f.label is not None]
        scorer = Scorer(frames, read_weights(weights)[1].labels) if labelled else None
        _log(f"starting segmentation_node ({weights_note}, {settings.device}, {settings.precision})")
        bench = Bench(settings, frames, weights, Path(tmp))
        try:
            report: dict[str, Any] = {
                "schema": SCHEMA, "date": now.isoformat(timespec="seconds"),
                "machine": machine_info([settings.device.split(":")[0]]), "versions": versions(),
                "settings": asdict(settings), "weights": weights_note, "environment": environment,
                "bag": {"path": str(settings.bag), "image_topic": settings.image_topic, "label_topic": label_topic,
                        "frames": len(frames), "labelled": len(labelled), "kind": frames[0].kind,
                        "size": list(frame_size(frames[0]))},
                "missed_limit": MISSED_LIMIT}
            report["publisher_ceiling_hz"] = bench.publisher_ceiling()
            _log(f"publisher ceiling {report['publisher_ceiling_hz']:.0f} frames/s")
            if settings.peak:
                _log("searching the peak rate")
                report["peak"] = find_peak(bench, scorer)
            report["fixed"] = []
            for rate in settings.rates:
                _log(f"{rate:g} Hz: {settings.runs} runs of {settings.run_seconds:g} s")
                report["fixed"].append(measure_rate(bench, rate, scorer))
        finally:
            bench.close()
    report["machine"]["load_average"] = load_before
    report["machine"]["load_average_after"] = [round(v, 2) for v in os.getloadavg()]
    stem = f"ros2_benchmark_{report['machine']['kind']}_{now.strftime('%Y-%m-%d')}"
    json_path, md_path = result_paths(Path(settings.out_dir), stem + (f"_{settings.label}" if settings.label else ""))
    json_path.write_text(json.dumps(report, indent=1) + "\n")
    md_path.write_text(markdown(report))
    return report, json_path, md_path


def _log(message: str) -> None:
    print(f"icnet-bench-node ros2-benchmark {time.strftime('%H:%M:%S')}: {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------- CLI


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="icnet-bench-node ros2-benchmark", description=__doc__.split("\n\n")[0])
    parser.add_argument("bag", help="rosbag2 directory, .mcap or .db3 (e.g. from icnet-make-sample-bag)")
    parser.add_argument("--image-topic", default="/camera/image_raw", help="Image or CompressedImage topic")
    parser.add_argument("--label-topic", default="/camera/labels",
                        help="mono8 trainId labels, used when the bag has them ('' = none)")
    parser.add_argument("--frames", type=int, default=10, help="bag frames held in memory and replayed in a loop")
    parser.add_argument("--weights", default=None,
                        help="weight file, or 'random' (--width, --input-size); default: the demo weights")
    parser.add_argument("--width", type=float, default=0.5, help="network width of random weights")
    parser.add_argument("--input-size", default="1025x2049", help="network input of random weights")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto")
    parser.add_argument("--precision", default="fp32", choices=("fp32", "fp16", "bf16"))
    parser.add_argument("--cpu-threads", type=int, default=0, help="the node's torch threads (0: torch's default)")
    parser.add_argument("--rates", default="10,30,60", help="fixed publishing rates in Hz (comma list; '' = none)")
    parser.add_argument("--no-peak", action="store_true", help="skip the peak rate search")
    parser.add_argument("--runs", type=int, default=5, help="runs per rate (best and worst dropped from 3 on)")
    parser.add_argument("--run-seconds", type=float, default=5.0)
    parser.add_argument("--search-seconds", type=float, default=2.0, help="length of a peak search trial")
    parser.add_argument("--search-start", type=float, default=10.0, help="first rate of the peak search (Hz)")
    parser.add_argument("--max-rate", type=float, default=2000.0, help="highest rate the search tries (Hz)")
    parser.add_argument("--answer-timeout", type=float, default=5.0,
                        help="seconds to wait for the last answers of a run")
    parser.add_argument("--label", default=None, help="suffix of the result file names")
    parser.add_argument("--out-dir", default="bench/results", help="where the JSON and Markdown go")
    return parser


def settings_from_args(args: argparse.Namespace) -> FormSettings:
    if args.frames < 1 or args.runs < 1:
        raise BenchError("--frames and --runs must be at least 1")
    if min(args.run_seconds, args.search_seconds, args.answer_timeout) <= 0 or args.cpu_threads < 0:
        raise BenchError("--run-seconds, --search-seconds and --answer-timeout must be positive, "
                         "--cpu-threads at least 0")
    if not MIN_RATE_HZ <= args.search_start <= args.max_rate:
        raise BenchError(f"--search-start must be between {MIN_RATE_HZ} Hz and --max-rate")
    try:
        rates = [float(rate) for rate in comma_list(args.rates)]
    except ValueError:
        raise BenchError(f"--rates must be a comma list of rates in Hz, got {args.rates!r}") from None
    if any(rate <= 0 for rate in rates) or (args.no_peak and not rates):
        raise BenchError("rates must be positive, and --no-peak needs --rates")
    if args.label is not None and not args.label.replace("-", "").replace("_", "").isalnum():
        raise BenchError(f"--label {args.label!r}: letters, digits, '-' and '_' only")
    return FormSettings(bag=args.bag, image_topic=args.image_topic, label_topic=args.label_topic or None,
                        frames=args.frames, weights=args.weights, width=args.width,
                        input_size=parse_size(args.input_size), device=args.device, precision=args.precision,
                        cpu_threads=args.cpu_threads, rates=rates, peak=not args.no_peak, runs=args.runs,
                        run_seconds=args.run_seconds, search_seconds=args.search_seconds,
                        search_start=args.search_start, max_rate=args.max_rate,
                        answer_timeout=args.answer_timeout, label=args.label, out_dir=args.out_dir)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        settings = settings_from_args(build_parser().parse_args(argv))
        report, json_path, md_path = run_form(settings)
    except (BenchError, BagError, WeightsError) as error:
        print(f"icnet-bench-node ros2-benchmark: error: {error}", file=sys.stderr)
        return 2
    except RuntimeError as error:  # the node died or never answered (node_session.wait_serving)
        print(f"icnet-bench-node ros2-benchmark: {error}", file=sys.stderr)
        return 1
    print(markdown(report))
    print(f"wrote {json_path} and {md_path}")
    return 0
