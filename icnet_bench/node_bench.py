"""icnet-bench-node: what the running node adds to the model, its pipelining, many cameras.

Everything runs on real processes over real DDS: ``segmentation_node`` and the echo node
(:mod:`icnet_bench.echo_node`) as separate processes, and a measuring process (the
"camera") that publishes frames and receives the answers. Parts (``--parts``):

- ``overhead``: one frame at a time, in rounds that interleave three measurements of
  the same frame (every order in turn, so load from other processes hits all alike):
  the node end to end (publish -> ``class_mask`` received), the transport floor (the
  echo node answering with a mask-sized ``mono8`` image, no model) and the model alone
  (``SegmentationEngine.segment`` in the measuring process, same weights, device,
  precision and threads). Target: node p50 <= 1.1 x (model p50 + floor p50). Also
  against the node's own engine stages (its ``timing`` topic) instead of the model
  alone in another process.
- ``pipelining``: the camera publishes faster than the model (``--camera-factor`` x
  the model-only rate) for ``--pipeline-seconds``; the sustained output rate is
  compared with 1 / (slowest pipeline unit), from the node's own per-frame timings:
  on the CPU the submitter thread (decode through inference), the engine's
  post-processing thread (score resize, argmax) and the publisher thread; on CUDA the
  submitter thread, the upload and compute streams and the publisher thread. Target:
  rate >= 0.95 / slowest. (The units share the machine's cores: where fewer cores are
  free than units are busy, the rate falls towards 1 / their sum.)
- ``cameras``: one node serving N cameras (``image_topics``, batched forward passes)
  against N nodes with one camera each, all alive at once and measured in alternation:
  latency of N frames sent together, throughput with every camera publishing faster
  than the model, memory (PSS of the node processes), and the model-only batching gain.
- ``engine``: the engine alone, in the measuring process, interleaved: torch with 1
  thread against one per core (what ``cpu_threads`` does here; at most 20 rounds per
  size), and the score resize on its own thread (overlapping the next frame's
  inference) against at submit time (``postprocess_thread``; the node's
  ``cpu_postprocess_thread``), both pipelined (``submit``/``collect``), in 6 rounds of
  8 frames.

Each measuring process also reports how many cores it could actually use (two threads
of matrix products against one): on a CPU shared with other work, pipelining and
separate processes gain only what is free.

Fast DDS profiles (``--profiles``): ``shm`` runs every process with the project's
shared-memory profile (``config/fastdds_shm.xml``); ``default`` with Fast DDS's built-in
transports, where a best-effort subscriber loses frames above about 500 KB: the node's
and the echo's inputs then subscribe reliably (``input_qos_reliability:=reliable``).
Frames unanswered within ``--answer-timeout`` are counted as lost. The cameras and
engine parts run under the first profile only.

Results: JSON (every sample, machine, versions, settings) and Markdown in ``--out-dir``,
named ``node_<machine kind>_<date>[_n]``.

``icnet-bench-node ros2-benchmark BAG``: the node in the form NVIDIA ros2_benchmark
reports (peak rate, fixed rates, its metric names), :mod:`icnet_bench.ros2_benchmark_form`.
"""

from __future__ import annotations

import argparse
import datetime
import itertools
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from icnet_bench.node_session import private_domain_id
from icnet_bench.random_weights import random_weights
from icnet_bench.settings import BenchError, choices, comma_list, parse_size
from icnet_bench.summaries import stats
from icnet_ros.ros.background_node import BackgroundNode
from icnet_ros.ros.cameras import output_topic
from icnet_ros.ros.distributions import publisher_count
from icnet_ros.ros.fastdds_profile import PROFILE_VARIABLES, profile_environment, profile_in
from icnet_ros.ros.node_process import EXECUTABLE, NodeProcess, shipped_file, stop_all
from icnet_ros.runtime.stages import ENGINE_STAGES, NODE_STAGES

SCHEMA = "icnet_ros.bench.node/1"
PARTS = ("overhead", "pipelining", "cameras", "engine")
PROFILES = ("shm", "default")
OVERHEAD_TARGET = 1.1
PIPELINING_TARGET = 0.95
START_TIMEOUT_S = 120.0
MAX_CAMERA_HZ = 200.0
NODE_MODULE = "icnet_ros.ros.node_main"  # what the segmentation_node executable runs
SETTLE_S = 0.02  # between two measurements of a round: the previous one's stragglers finish




@dataclass
class Settings:
    parts: list[str]
    profiles: list[str]
    sizes: list[tuple[int, int]]
    frames: int = 30
    warmup: int = 3
    weights: str | None = None
    width: float = 0.25
    input_size: tuple[int, int] = (257, 513)
    device: str = "cpu"
    precision: str = "fp32"
    cpu_threads: int = 1
    pipeline_seconds: float = 10.0
    camera_factor: float = 2.0
    cameras: list[int] = field(default_factory=lambda: [2, 4])
    camera_size: tuple[int, int] = (512, 1024)
    rounds: int = 15
    throughput_seconds: float = 6.0
    throughput_blocks: int = 6
    answer_timeout: float = 30.0
    fastdds_profile: str | None = None
    out_dir: str = "bench/results"


# ----------------------------------------------------------------------- small helpers


def _median(values: Sequence[float]) -> float:
    summary = stats(values)
    return summary["p50"] if summary else math.nan


def shm_profile_path(explicit: str | None) -> Path:
    """The project's Fast DDS shared-memory profile (installed share/ or the source tree)."""
    path = Path(explicit) if explicit else shipped_file("config/fastdds_shm.xml")
    if path is None or not path.is_file():
        raise BenchError(f"Fast DDS profile not found ({explicit or 'config/fastdds_shm.xml of icnet_ros'}); "
                         "give it with --fastdds-profile")
    return path.resolve()


# ------------------------------------------------------------------------- weights, frames


def prepare_weights(weights: str | None, width: float, input_size: tuple[int, int],
                    workdir: Path) -> tuple[Path, str]:
    """The weight file to run and how it was chosen: ``weights`` (a path), ``random`` (random
    weights of ``width`` and ``input_size``), or None (the demo weights, else random ones)."""
    if weights and weights != "random":
        path = Path(weights).expanduser()
        if not path.is_file():
            raise BenchError(f"weights file {str(path)!r} does not exist or is not a file")
        return path.resolve(), f"given: {path.name}"
    from icnet_ros.weights.demo import default_weights_path
    demo = default_weights_path()
    if weights is None and demo.is_file():
        return demo, f"the project's demo weights ({demo.name})"
    path = random_weights(workdir / "random.safetensors", width=width, input_size=input_size,
                          source="icnet-bench-node random weights")
    why = "asked for" if weights == "random" else "no demo weights installed"
    return path, f"random (seed 0; {why}), width {width}, input {input_size[0]}x{input_size[1]}"


def street_frames(height: int, width: int, count: int, seed: int = 2_000_000) -> list:
    """``count`` synthetic street scenes (RGB uint8) of the given size."""
    from icnet_ros.synthetic.street_scenes import generate_scene
    return [generate_scene(seed + i, height, width)[0] for i in range(count)]


# ------------------------------------------------------------------ the measuring process


class Listener:
    """Arrival times (and optionally the timing values) of one topic's messages by frame id."""

    def __init__(self, keep_values: bool) -> None:
        self._keep_values = keep_values
        self._condition = threading.Condition()
        self._arrivals: dict[str, tuple[float, dict[str, float] | None]] = {}

    def __call__(self, msg) -> None:
        now = time.perf_counter()
        values = None
        if self._keep_values:  # the node's timing message: 'decode_ms' -> 'decode', ..., 'batch_size'
            values = {kv.key.removesuffix("_ms"): float(kv.value) for kv in msg.status[0].values}
        with self._condition:
            self._arrivals[msg.header.frame_id] = (now, values)
            self._condition.notify_all()

    def wait(self, frame_id: str, timeout: float) -> tuple[float, dict[str, float] | None] | None:
        with self._condition:
            self._condition.wait_for(lambda: frame_id in self._arrivals, timeout)
            return self._arrivals.get(frame_id)

    def get(self, frame_id: str) -> tuple[float, dict[str, float] | None] | None:
        with self._condition:
            return self._arrivals.get(frame_id)

    def count(self) -> int:
        with self._condition:
            return len(self._arrivals)

    def clear(self) -> None:
        with self._condition:
            self._arrivals.clear()


class Target:
    """A node's input (our publisher) and its outputs (our listeners)."""

    def __init__(self, client: Client, input_topic: str, output_namespace: str, timing: bool) -> None:
        from diagnostic_msgs.msg import DiagnosticArray
        from sensor_msgs.msg import Image
        self.client = client
        self.publisher = client.node.create_publisher(Image, input_topic, client.camera_qos)
        self.masks = Listener(keep_values=False)
        self.mask_subscription = client.node.create_subscription(
            Image, output_topic(output_namespace, "class_mask"), self.masks, client.answer_qos)
        self.timing = Listener(keep_values=True) if timing else None
        if timing:
            client.node.create_subscription(DiagnosticArray, output_topic(output_namespace, "timing"), self.timing,
                                            client.answer_qos)

    def send(self, msg, frame_id: str) -> float:
        from std_msgs.msg import Header
        msg.header = Header(stamp=self.client.node.get_clock().now().to_msg(), frame_id=frame_id)
        start = time.perf_counter()
        self.publisher.publish(msg)
        return start

    def round_trip_ms(self, msg, frame_id: str, timeout: float) -> float | None:
        start = self.send(msg, frame_id)
        arrival = self.masks.wait(frame_id, timeout)
        return None if arrival is None else (arrival[0] - start) * 1e3

    def clear(self) -> None:
        self.masks.clear()
        if self.timing is not None:
            self.timing.clear()


class Client(BackgroundNode):
    """The measuring process's rclpy node, spun by a background executor."""

    def __init__(self) -> None:
        from icnet_ros.ros.qos import qos_profile
        super().__init__("icnet_bench_camera")
        self.camera_qos = qos_profile("reliable", 1)  # like a camera driver
        self.answer_qos = qos_profile("reliable", 50)

    def target(self, input_topic: str, output_namespace: str, timing: bool) -> Target:
        """A :class:`Target`, its entities created in the executor's thread."""
        return self.in_executor(lambda: Target(self, input_topic, output_namespace, timing))


class BenchProcess(NodeProcess):
    """A node started as users start it (``python -m MODULE --ros-args ...``), logging to a file."""

    def __init__(self, module: str, log_path: Path, *, parameters: dict[str, Any], namespace: str) -> None:
        super().__init__(log_path, command=[sys.executable, "-m", module], parameters=parameters,
                         namespace=namespace)
        self.name = f"{EXECUTABLE if module == NODE_MODULE else module.rsplit('.', 1)[-1]} /{namespace}"

    def check(self) -> None:
        if not self.alive():
            raise BenchError(f"{self.name} exited with status {self.returncode}:\n{self.log()[-3000:]}")

    def gpu_mib(self) -> float | None:
        return nvidia_smi_mib(self.pid)

    def pss_mib(self) -> float | None:
        import psutil
        try:
            return psutil.Process(self.pid).memory_full_info().pss / 2**20
        except (psutil.Error, AttributeError):
            return None


def nvidia_smi_mib(pid: int) -> float | None:
    """GPU memory of process ``pid`` as ``nvidia-smi`` reports it (CUDA context included), or None."""
    if shutil.which("nvidia-smi") is None:
        return None
    try:
        out = subprocess.run(["nvidia-smi", "--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits"],
                             capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    rows = [line.split(",") for line in out.splitlines() if "," in line]
    return next((float(used) for found, used in rows if found.strip() == str(pid)), None)


def _wait_ready(targets: Sequence[Target], processes: Sequence[BenchProcess], probe) -> None:
    """Wait until every target matched us both ways and answered a probe frame (a
    best-effort frame sent before the node matched our publisher in turn is lost)."""
    deadline = time.monotonic() + START_TIMEOUT_S
    for target in targets:
        while not (target.publisher.get_subscription_count() > 0
                   and publisher_count(target.client.node, target.mask_subscription) > 0):
            for process in processes:
                process.check()
            if time.monotonic() > deadline:
                raise BenchError(f"no node on {target.publisher.topic_name} within {START_TIMEOUT_S:.0f} s")
            time.sleep(0.05)
        for attempt in range(10_000):
            if target.round_trip_ms(probe, f"probe-{attempt}", 2.0) is not None:
                break
            for process in processes:
                process.check()
            if time.monotonic() > deadline:
                raise BenchError(f"no answer on {target.publisher.topic_name} within {START_TIMEOUT_S:.0f} s")
        target.clear()


def _image(rgb):
    from std_msgs.msg import Header

    from icnet_ros.ros.image_messages import image_msg
    return image_msg(Header(), rgb)


def _stage_medians(timings: Sequence[dict[str, float]], keys: Sequence[str]) -> dict[str, float]:
    return {key: _median([t[key] for t in timings if key in t]) for key in keys}


def measure_overhead(node: Target, echo: Target, engine, frames: list, size: tuple[int, int],
                     settings: Settings) -> dict[str, Any]:
    """Interleaved rounds: node end to end, echo (transport floor), model alone."""
    messages = [_image(rgb) for rgb in frames]
    rows, lost = [], {"node": 0, "echo": 0}
    # Every order in turn: each measurement follows each other one equally often.
    orders = list(itertools.permutations(("echo", "node", "model")))
    for index in range(settings.warmup + settings.frames):
        frame_id = f"{size[0]}x{size[1]}-{index}"
        frame = index % len(frames)
        row: dict[str, Any] = {"frame": frame_id}
        for kind in orders[index % len(orders)]:
            time.sleep(SETTLE_S)
            if kind == "model":
                start = time.perf_counter()
                result = engine.segment(frames[frame])
                row["model_ms"] = (time.perf_counter() - start) * 1e3
                row["model_stages_ms"] = dict(result.timings_ms)
            else:
                target = node if kind == "node" else echo
                row[f"{kind}_ms"] = target.round_trip_ms(messages[frame], frame_id, settings.answer_timeout)
                if row[f"{kind}_ms"] is None:
                    lost[kind] += index >= settings.warmup
        timing = node.timing.wait(frame_id, 2.0) if row["node_ms"] is not None else None
        row["node_stages_ms"] = timing[1] if timing else None
        if index >= settings.warmup:
            rows.append(row)
    node.clear()
    echo.clear()
    complete = [r for r in rows if r["node_ms"] is not None and r["echo_ms"] is not None]
    summary = {
        "node_ms": stats([r["node_ms"] for r in complete]),
        "echo_ms": stats([r["echo_ms"] for r in complete]),
        "model_ms": stats([r["model_ms"] for r in complete]),
        "model_stages_ms": _stage_medians([r["model_stages_ms"] for r in complete], ENGINE_STAGES),
        "node_stages_ms": _stage_medians([r["node_stages_ms"] for r in complete if r["node_stages_ms"]],
                                         NODE_STAGES + ("age",)),
        "paired_ratio": stats([r["node_ms"] / (r["model_ms"] + r["echo_ms"]) for r in complete]),
        "node_engine_ms": stats([sum(r["node_stages_ms"][s] for s in ENGINE_STAGES)
                                 for r in complete if r["node_stages_ms"]]),
    }
    if complete:
        floor = summary["model_ms"]["p50"] + summary["echo_ms"]["p50"]
        summary["sum_p50_ms"] = floor
        summary["ratio"] = summary["node_ms"]["p50"] / floor
        summary["overhead_ms"] = summary["node_ms"]["p50"] - floor
        summary["target_met"] = summary["ratio"] <= OVERHEAD_TARGET
        if summary["node_engine_ms"]:
            summary["ratio_node_engine"] = summary["node_ms"]["p50"] / (
                summary["node_engine_ms"]["p50"] + summary["echo_ms"]["p50"])
    return {"size": list(size), "frames": len(rows), "lost": lost, "summary": summary, "rows": rows}


def _units(stages: dict[str, float], device: str) -> dict[str, float]:
    """Per-frame busy time of every pipeline unit that works in parallel with the others."""
    if device.startswith("cuda"):
        return {"submitter thread (decode, staging)": stages["decode"],
                "upload stream": stages["upload"],
                "compute stream (preprocess..download)": sum(stages[s] for s in ENGINE_STAGES[2:]),
                "publisher thread (colorize, publish)": stages["colorize"] + stages["publish"]}
    return {"submitter thread (decode..inference)": sum(stages[s] for s in ENGINE_STAGES[:4]),
            "post-processing thread": stages["postprocess"] + stages["download"],
            "publisher thread (colorize, publish)": stages["colorize"] + stages["publish"]}


def _drain(listeners: Sequence[Listener], quiet_s: float, timeout: float) -> None:
    """Wait until no answer arrived for ``quiet_s`` (or ``timeout``): the frames in flight."""
    deadline = time.monotonic() + timeout
    last, since = -1, time.monotonic()
    while time.monotonic() < deadline:
        count = sum(listener.count() for listener in listeners)
        if count != last:
            last, since = count, time.monotonic()
        elif time.monotonic() - since >= quiet_s:
            return
        time.sleep(0.05)


def _publish_for(targets: Sequence[Target], messages: list, rate_hz: float, seconds: float,
                 prefix: str) -> tuple[list[list[tuple[str, float]]], float, float]:
    """Every target gets a frame every 1/rate_hz s for ``seconds``: the sent (id, time) per target."""
    sent: list[list[tuple[str, float]]] = [[] for _ in targets]
    start = time.perf_counter()
    index = 0
    while time.perf_counter() - start < seconds:
        for number, target in enumerate(targets):
            frame_id = f"{prefix}-{number}-{index}"
            sent[number].append((frame_id, target.send(messages[(index + number) % len(messages)], frame_id)))
        index += 1
        time.sleep(max(0.0, start + index / rate_hz - time.perf_counter()))
    return sent, start, time.perf_counter()


def _steady_rate(times: list[float], start: float, end: float) -> tuple[float, int]:
    """Answers per second arriving between ``start`` + a ramp and ``end`` (the last send)."""
    ramp = min(1.0, (end - start) / 5)
    count = sum(start + ramp <= t <= end for t in times)
    return count / (end - start - ramp), count


def measure_pipelining(node: Target, frames: list, size: tuple[int, int], model_ms: float,
                       settings: Settings, device: str) -> dict[str, Any]:
    """The camera faster than the model: sustained output rate against 1 / slowest unit."""
    messages = [_image(rgb) for rgb in frames]
    rate = min(MAX_CAMERA_HZ, settings.camera_factor * 1e3 / model_ms)
    node.clear()
    sent, start, end = _publish_for([node], messages, rate, settings.pipeline_seconds, f"pipe{size[0]}")
    _drain([node.masks], max(0.5, 3 * model_ms / 1e3), settings.answer_timeout)
    answered = [(frame_id, sent_at, node.masks.get(frame_id), node.timing.get(frame_id))
                for frame_id, sent_at in sent[0]]
    answered = [a for a in answered if a[2] is not None]
    output_rate, counted = _steady_rate([a[2][0] for a in answered], start, end)
    timings = [a[3][1] for a in answered if a[3] is not None]
    stages = _stage_medians(timings, NODE_STAGES)
    units = _units(stages, device)
    slowest = max(units, key=units.get)
    node.clear()
    return {
        "size": list(size), "camera_hz": len(sent[0]) / (end - start), "camera_hz_asked": rate,
        "seconds": end - start, "sent": len(sent[0]), "answered": len(answered), "counted": counted,
        "output_hz": output_rate, "latency_ms": stats([(a[2][0] - a[1]) * 1e3 for a in answered]),
        "stages_ms": stages, "units_ms": units, "slowest_unit": slowest,
        "slowest_ms": units[slowest], "bound_hz": 1e3 / units[slowest],
        "ratio": output_rate * units[slowest] / 1e3,
        "target_met": output_rate * units[slowest] / 1e3 >= PIPELINING_TARGET,
        "serial_bound_hz": 1e3 / sum(units.values()),
        "stage_pipeline_bound_hz": 1e3 / max(stages[s] for s in NODE_STAGES),
        # The raw samples: per answered frame its send and arrival (s after the first send), and the
        # node's stage times of the frames whose timing message came.
        "answers_s": [[a[1] - start, a[2][0] - start] for a in answered], "timings_ms": timings,
    }


def measure_cameras(one: list[Target], separate: list[Target], engine, frames: list,
                    settings: Settings, processes: dict[str, list[BenchProcess]]) -> dict[str, Any]:
    """One node with N cameras against N nodes: latency, throughput, memory, model batching."""
    count = len(one)
    messages = [_image(rgb) for rgb in frames]
    modes = {"one_node": one, "separate_nodes": separate}
    latency: dict[str, dict[str, list]] = {mode: {"frame_ms": [], "set_ms": [], "batch": []} for mode in modes}
    model = {"single_ms": [], "batch_ms": []}
    for index in range(settings.warmup + settings.rounds):
        order = list(modes) if index % 2 == 0 else list(modes)[::-1]
        for mode in order:
            targets = modes[mode]
            sent = [(t, t.send(messages[(index + n) % len(messages)], f"set-{mode}-{index}-{n}"))
                    for n, t in enumerate(targets)]
            arrivals = [t.masks.wait(f"set-{mode}-{index}-{n}", settings.answer_timeout)
                        for n, (t, _) in enumerate(sent)]
            if index < settings.warmup or any(a is None for a in arrivals):
                continue
            latency[mode]["frame_ms"] += [(a[0] - s) * 1e3 for a, (_, s) in zip(arrivals, sent)]
            latency[mode]["set_ms"].append((max(a[0] for a in arrivals) - sent[0][1]) * 1e3)
            if mode == "one_node":
                for n, target in enumerate(targets):
                    timing = target.timing.wait(f"set-{mode}-{index}-{n}", 2.0)
                    if timing:
                        latency[mode]["batch"].append(timing[1]["batch_size"])
        if index >= settings.warmup:  # the model alone: N single passes, then one batch
            start = time.perf_counter()
            for n in range(count):
                engine.segment(frames[(index + n) % len(frames)])
            model["single_ms"].append((time.perf_counter() - start) * 1e3)
            start = time.perf_counter()
            engine.segment_batch([frames[(index + n) % len(frames)] for n in range(count)])
            model["batch_ms"].append((time.perf_counter() - start) * 1e3)
    for target in one + separate:
        target.clear()

    single_model_ms = _median(model["single_ms"]) / count
    rate = min(MAX_CAMERA_HZ, settings.camera_factor * 1e3 / single_model_ms)
    throughput: dict[str, list[float]] = {mode: [] for mode in modes}
    batches: list[float] = []
    _log(f"{count} cameras: throughput")
    for block in range(settings.throughput_blocks):
        mode = list(modes)[block % 2]
        targets = modes[mode]
        sent, start, end = _publish_for(targets, messages, rate, settings.throughput_seconds, f"tp{block}")
        _drain([t.masks for t in targets], max(0.5, 3 * count * single_model_ms / 1e3), settings.answer_timeout)
        times = [a[0] for t, frames_sent in zip(targets, sent) for frame_id, _ in frames_sent
                 if (a := t.masks.get(frame_id)) is not None]
        throughput[mode].append(_steady_rate(times, start, end)[0])
        if mode == "one_node":
            batches += [a[1]["batch_size"] for t, frames_sent in zip(targets, sent)
                        for frame_id, _ in frames_sent if (a := t.timing.get(frame_id)) is not None]
        for target in targets:
            target.clear()
    memory = {mode: [p.pss_mib() for p in processes[mode]] for mode in modes}
    gpu_memory = {mode: [p.gpu_mib() for p in processes[mode]] for mode in modes}
    result: dict[str, Any] = {"cameras": count, "size": list(settings.camera_size), "camera_hz": rate,
                              "model_only": {"single_ms": stats(model["single_ms"]),
                                             "batch_ms": stats(model["batch_ms"])}}
    for mode in modes:
        result[mode] = {
            "frame_latency_ms": stats(latency[mode]["frame_ms"]), "set_latency_ms": stats(latency[mode]["set_ms"]),
            "throughput_fps": throughput[mode], "throughput_fps_mean": statistics.fmean(throughput[mode]),
            "processes": len(processes[mode]),
            "pss_mib": None if None in memory[mode] else sum(memory[mode]),
            "gpu_mib": None if None in gpu_memory[mode] else sum(gpu_memory[mode]),
        }
    result["one_node"]["batch_size_together"] = stats(latency["one_node"]["batch"])
    result["one_node"]["batch_size_loaded"] = stats(batches)
    result["throughput_ratio"] = (result["one_node"]["throughput_fps_mean"]
                                  / result["separate_nodes"]["throughput_fps_mean"])
    result["model_batch_gain"] = _median(model["single_ms"]) / _median(model["batch_ms"])
    return result


def measure_engine(engine, inline, frames: list, size: tuple[int, int], settings: Settings) -> dict[str, Any]:
    """The engine alone: 1 torch thread against one per core, and ``engine`` (score resize
    on its own thread) against ``inline`` (at submit time), each pair in interleaved rounds."""
    import torch
    counts = sorted({1, len(os.sched_getaffinity(0))})
    samples: dict[int, list[float]] = {count: [] for count in counts}
    for index in range(settings.warmup + min(settings.frames, 20)):
        for count in counts if index % 2 == 0 else counts[::-1]:
            torch.set_num_threads(count)
            elapsed = _timed(engine.segment, frames[index % len(frames)])
            if index >= settings.warmup:
                samples[count].append(elapsed)
    torch.set_num_threads(settings.cpu_threads or counts[-1])
    summary = {str(count): stats(values) for count, values in samples.items()}

    def pipelined(which) -> None:
        for frame in batch:
            which.submit(frame)
            if which.pending() == which.pipeline_depth:
                which.collect()
        while which.pending():
            which.collect()
    batch = [frames[i % len(frames)] for i in range(8)]
    engines = {"at_submit": inline, "own_thread": engine}
    rates: dict[str, list[float]] = {mode: [] for mode in engines}
    for index in range(6):
        for mode in list(engines) if index % 2 == 0 else list(engines)[::-1]:
            rates[mode].append(len(batch) * 1e3 / _timed(pipelined, engines[mode]))
    return {"size": list(size), "model_ms": summary,
            "speedup_all_cores": summary["1"]["p50"] / summary[str(counts[-1])]["p50"],
            "overlap": {"fps": {mode: stats(values) for mode, values in rates.items()},
                        "pipeline_depth": engine.pipeline_depth,
                        "gain": _median(rates["own_thread"]) / _median(rates["at_submit"])}}


def cpu_parallelism(seconds: float = 0.25) -> float:
    """Cores this process gets right now: CPU time over wall time of two threads of
    (GIL-free) matrix products, each running for ``seconds``."""
    import torch
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    matrix = torch.randn(512, 512)

    def work() -> None:
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            matrix @ matrix
    workers = [threading.Thread(target=work) for _ in range(2)]
    wall, cpu = time.perf_counter(), time.process_time()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    torch.set_num_threads(threads)
    return (time.process_time() - cpu) / (time.perf_counter() - wall)


def _node_parameters(settings: Settings, weights: str, profile: str, warmup: tuple[int, int],
                     **extra: Any) -> dict[str, Any]:
    return {"weights": weights, "device": settings.device, "precision": settings.precision,
            "cpu_threads": settings.cpu_threads, "warmup_height": warmup[0], "warmup_width": warmup[1],
            "input_qos_reliability": "reliable" if profile == "default" else "best_effort", **extra}


def run_client(request: dict[str, Any]) -> dict[str, Any]:
    """Everything measured under one Fast DDS profile (this process's environment).

    Every node of every part starts at once (their start-ups overlap) and stays up until
    the end; the nodes of the parts not being measured sit idle. Single-camera nodes are
    ``/bench/node<n>``: ``node0`` serves the overhead and pipelining parts and is the
    first of the N separate nodes of the cameras part.
    """
    settings = Settings(**{**request["settings"], "sizes": [tuple(s) for s in request["settings"]["sizes"]],
                           "input_size": tuple(request["settings"]["input_size"]),
                           "camera_size": tuple(request["settings"]["camera_size"])})
    profile, weights, logs = request["profile"], request["weights"], Path(request["log_dir"])
    single = bool({"overhead", "pipelining"} & set(settings.parts))
    first = request["first"]  # the cameras and engine parts run under the first profile only
    counts = settings.cameras if "cameras" in settings.parts and first else []
    engine_part = "engine" in settings.parts and first
    qos = _node_parameters(settings, weights, profile, (0, 0))["input_qos_reliability"]
    sizes = list(settings.sizes if single else []) + ([settings.camera_size] if counts else [])
    largest = max(sizes, key=lambda s: s[0] * s[1], default=None)  # the nodes' warm-up size
    # The nodes first: they start while this process imports torch and warms up.
    processes: list[BenchProcess] = []

    def start(module: str, namespace: str, log: str, **parameters: Any) -> BenchProcess:
        process = BenchProcess(module, logs / f"{profile}_{log}.log", namespace=namespace,
                               parameters=parameters)
        processes.append(process)
        return process
    separate_processes = [start(NODE_MODULE, f"bench/node{n}", f"node{n}",
                                **_node_parameters(settings, weights, profile, largest))
                          for n in range(max(1 if single else 0, max(counts, default=0)))]
    if single:
        start("icnet_bench.echo_node", "bench/echo", "echo", input_qos_reliability=qos)
    multi_processes = {count: start(
        NODE_MODULE, f"bench/multi{count}", f"multi{count}",
        **_node_parameters(settings, weights, profile, settings.camera_size,
                           image_topics="[" + ", ".join(f"cam{n}/image" for n in range(count)) + "]"))
        for count in counts}
    client = None
    engine = None
    try:
        import numpy as np

        from icnet_bench.environment import machine_info
        from icnet_ros.runtime.engine import SegmentationEngine
        engine = SegmentationEngine(weights, device=settings.device, precision=settings.precision,
                                    cpu_threads=settings.cpu_threads or None)
        result: dict[str, Any] = {
            "machine": machine_info([engine.device.type]), "versions": versions(),
            "profile": profile, "fastdds_profile": profile_in(os.environ) or None,
            "input_qos": qos, "engine_setup": {"device": str(engine.device), "input_size": list(engine.input_size)},
            "overhead": [], "pipelining": [], "cameras": [], "engine": [], "cores_available": []}
        client = Client()
        separate = [(client.target(f"/bench/node{n}/image", f"/bench/node{n}/", timing=True), process)
                    for n, process in enumerate(separate_processes)]
        targets = [target for target, _ in separate]
        if single:
            node = separate[0][0]
            echo = client.target("/bench/echo/image", "/bench/echo/", timing=False)
            targets.append(echo)
        multi = {count: [client.target(f"/bench/multi{count}/cam{n}/image", f"/bench/multi{count}/cam{n}/",
                                       timing=True) for n in range(count)] for count in counts}
        targets += [target for group in multi.values() for target in group]
        # While the nodes start: the frames and the model alone's warm-up.
        frames = {size: street_frames(*size, count=4) for size in settings.sizes} if single or engine_part else {}
        for size in frames:
            engine.warmup(size)
        camera_frames = street_frames(*settings.camera_size, count=max(counts)) if counts else []
        _log(f"[{profile}] waiting for {len(processes)} nodes")
        _wait_ready(targets, processes, _image(np.zeros((8, 8, 3), np.uint8)))
        result["cores_available"].append(cpu_parallelism())
        for size in settings.sizes if single else []:
            model_ms = None
            if "overhead" in settings.parts:
                _log(f"[{profile}] overhead at {size[0]}x{size[1]}")
                overhead = measure_overhead(node, echo, engine, frames[size], size, settings)
                result["overhead"].append(overhead)
                model_ms = (overhead["summary"]["model_ms"] or {}).get("p50")
            if "pipelining" in settings.parts:
                if model_ms is None:
                    model_ms = _median([_timed(engine.segment, frames[size][0]) for _ in range(3)])
                _log(f"[{profile}] pipelining at {size[0]}x{size[1]}")
                result["pipelining"].append(measure_pipelining(
                    node, frames[size], size, model_ms, settings, engine.device.type))
        result["cores_available"].append(cpu_parallelism())
        for count in counts:
            _log(f"[{profile}] {count} cameras at {settings.camera_size[0]}x{settings.camera_size[1]}")
            engine.warmup(settings.camera_size, batch_size=count)
            result["cameras"].append(measure_cameras(
                multi[count], [t for t, _ in separate[:count]], engine, camera_frames, settings,
                {"one_node": [multi_processes[count]], "separate_nodes": [p for _, p in separate[:count]]}))
        if engine_part:
            inline = SegmentationEngine(weights, device=settings.device, precision=settings.precision,
                                        postprocess_thread=False)
            for size in frames:
                inline.warmup(size)
                _log(f"[{profile}] engine alone at {size[0]}x{size[1]}")
                result["engine"].append(measure_engine(engine, inline, frames[size], size, settings))
            inline.close()
            result["cores_available"].append(cpu_parallelism())
    finally:
        _log(f"[{profile}] stopping the nodes")
        stop_all(processes)
        if client is not None:
            client.close()
        if engine is not None:
            engine.close()
        _log(f"[{profile}] done")
    return result


def versions() -> dict[str, str | None]:
    """Python and the installed distributions that matter here (read, not imported)."""
    import platform
    from importlib.metadata import PackageNotFoundError, version

    def installed(name: str) -> str | None:
        try:
            return version(name)
        except PackageNotFoundError:
            return None
    found = {name: installed(name) for name in (
        "torch", "numpy", "opencv-python-headless", "opencv-python", "ros-rclpy", "ros-rmw-fastrtps-cpp",
        "ros-fastdds")}
    return {"python": platform.python_version(), "ros_distro": os.environ.get("ROS_DISTRO"),
            **{name: value for name, value in found.items() if value is not None}}


def _timed(function, *args) -> float:
    start = time.perf_counter()
    function(*args)
    return (time.perf_counter() - start) * 1e3


def _log(message: str) -> None:
    print(f"icnet-bench-node {time.strftime('%H:%M:%S')}: {message}", file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------- orchestration


def _profile_environment(profile: str, shm_profile: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update({"ROS_DOMAIN_ID": str(private_domain_id()),
                "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST", "RCUTILS_COLORIZED_OUTPUT": "0",
                "PYTHONUNBUFFERED": "1"})
    for variable in PROFILE_VARIABLES:
        env.pop(variable, None)
    if profile == "shm":
        env.update(profile_environment(shm_profile))
    return env


def run_benchmark(settings: Settings) -> tuple[dict[str, Any], Path, Path]:
    """Run every profile's measuring process; return the report and the JSON and Markdown paths."""
    shm = shm_profile_path(settings.fastdds_profile)
    now = datetime.datetime.now(datetime.timezone.utc)
    load_before = [round(v, 2) for v in os.getloadavg()]
    with tempfile.TemporaryDirectory(prefix="icnet-bench-node-") as tmp:
        workdir = Path(tmp)
        weights, weights_note = prepare_weights(settings.weights, settings.width, settings.input_size, workdir)
        report: dict[str, Any] = {
            "schema": SCHEMA, "date": now.isoformat(timespec="seconds"), "machine": None,
            "versions": None, "settings": asdict(settings), "weights": weights_note,
            "targets": {"overhead_ratio_max": OVERHEAD_TARGET, "pipelining_ratio_min": PIPELINING_TARGET},
            "shm_profile": str(shm), "profiles": {}}
        for number, profile in enumerate(settings.profiles):
            request = {"settings": asdict(settings), "profile": profile, "weights": str(weights),
                       "log_dir": str(workdir), "first": number == 0}
            request_path, result_path = workdir / f"{profile}_request.json", workdir / f"{profile}_result.json"
            request_path.write_text(json.dumps(request))
            code = subprocess.call([sys.executable, "-m", "icnet_bench.node_bench", "_client",
                                    str(request_path), str(result_path)],
                                   env=_profile_environment(profile, shm))
            if code != 0 or not result_path.is_file():
                raise BenchError(f"the measuring process for profile {profile!r} failed (status {code})")
            result = json.loads(result_path.read_text())
            report["machine"], report["versions"] = result.pop("machine"), result.pop("versions")
            report["profiles"][profile] = result
    report["machine"]["load_average"] = load_before
    report["machine"]["load_average_after"] = [round(v, 2) for v in os.getloadavg()]
    json_path, md_path = result_paths(Path(settings.out_dir),
                                      f"node_{report['machine']['kind']}_{now.strftime('%Y-%m-%d')}")
    json_path.write_text(json.dumps(report, indent=1) + "\n")
    md_path.write_text(markdown(report))
    return report, json_path, md_path


def result_paths(out_dir: Path, stem: str) -> tuple[Path, Path]:
    """``out_dir/stem.json`` and ``.md``, or ``stem_2``, ``stem_3``... where taken (``out_dir`` created)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    name, index = stem, 1
    while (out_dir / f"{name}.json").exists():
        index += 1
        name = f"{stem}_{index}"
    return out_dir / f"{name}.json", out_dir / f"{name}.md"


# ---------------------------------------------------------------------------------- Markdown


def _ms(summary: dict | None, key: str = "p50") -> str:
    return "-" if not summary else f"{summary[key]:.1f}"


def _f(value: float | None, digits: int = 2) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def markdown(report: dict[str, Any]) -> str:
    machine, settings = report["machine"], report["settings"]
    lines = [f"# icnet-bench-node, {report['date']}", "",
             f"Machine: {machine['cpu']}, {machine['cores']} cores, GPU: {', '.join(machine['gpu'] or ['none'])}; "
             f"load average {machine['load_average']} before, {machine.get('load_average_after')} after. "
             f"torch {report['versions']['torch']}, Python {report['versions']['python']}.", "",
             f"Weights: {report['weights']}. Device {settings['device']}, {settings['precision']}, "
             f"cpu_threads {settings['cpu_threads']}. Times in ms.", ""]
    profiles = report["profiles"]
    cores = "; ".join(f"{name} {', '.join(f'{v:.2f}' for v in p['cores_available'])}"
                      for name, p in profiles.items())
    lines += ["Cores this benchmark could use (two threads of matrix products; 2.0 = two free cores), "
              f"measured during each profile's run: {cores}", ""]
    if any(p["overhead"] for p in profiles.values()):
        lines += ["## Node overhead (one frame at a time, interleaved rounds)", "",
                  "| profile | input QoS | camera | frames (lost node/echo) | model only p50 | transport floor "
                  "p50 | sum | node end to end p50 (p90) | node / sum | overhead | node / (its engine + floor) |",
                  "|---|---|---|---|---|---|---|---|---|---|---|"]
        for name, profile in profiles.items():
            for run in profile["overhead"]:
                s = run["summary"]
                lines.append(
                    f"| {name} | {profile['input_qos']} | {run['size'][0]}x{run['size'][1]} | {run['frames']} "
                    f"({run['lost']['node']}/{run['lost']['echo']}) | {_ms(s['model_ms'])} | "
                    f"{_ms(s['echo_ms'])} | "
                    f"{_f(s.get('sum_p50_ms'), 1)} | {_ms(s['node_ms'])} ({_ms(s['node_ms'], 'p90')}) | "
                    f"{_f(s.get('ratio'))} | {_f(s.get('overhead_ms'), 1)} | {_f(s.get('ratio_node_engine'))} |")
        lines += ["", "Inside the node (p50 of its `timing` topic) and the model alone (p50 of the engine's "
                  "stages):", "", "| profile | camera | where | " + " | ".join(NODE_STAGES) + " | age |",
                  "|---|---|---|" + "---|" * (len(NODE_STAGES) + 1)]
        for name, profile in profiles.items():
            for run in profile["overhead"]:
                s = run["summary"]
                size = f"{run['size'][0]}x{run['size'][1]}"
                lines.append(f"| {name} | {size} | node | " + " | ".join(
                    _f(s["node_stages_ms"].get(k), 1) for k in NODE_STAGES + ("age",)) + " |")
                lines.append(f"| {name} | {size} | model only | " + " | ".join(
                    _f(s["model_stages_ms"].get(k), 1) for k in ENGINE_STAGES) + " | - | - |")
        lines.append("")
    if any(p["pipelining"] for p in profiles.values()):
        lines += ["## Pipelining (camera faster than the model)", "",
                  "| profile | camera | camera Hz | output Hz | slowest unit | its ms | 1 / slowest (Hz) | "
                  "output / bound | 1 / sum of units (Hz) | answered / sent | latency p50 | "
                  "per-stage pipeline bound (Hz) |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for name, profile in profiles.items():
            for run in profile["pipelining"]:
                lines.append(
                    f"| {name} | {run['size'][0]}x{run['size'][1]} | {_f(run['camera_hz'], 1)} | "
                    f"{_f(run['output_hz'], 1)} | {run['slowest_unit']} | {_f(run['slowest_ms'], 1)} | "
                    f"{_f(run['bound_hz'], 1)} | {_f(run['ratio'])} | {_f(run['serial_bound_hz'], 1)} | "
                    f"{run['answered']}/{run['sent']} | "
                    f"{_ms(run['latency_ms'])} | {_f(run['stage_pipeline_bound_hz'], 1)} |")
        lines.append("")
    for name, profile in profiles.items():
        if not profile["cameras"]:
            continue
        lines += [f"## Many cameras ({name} profile): one node for N cameras vs N nodes", "",
                  "| N | camera | setup | throughput (frames/s) | frame latency p50 (p90), N sent together | "
                  "set latency p50 | batch size (together / loaded) | memory PSS (MiB) | GPU memory (MiB) |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for run in profile["cameras"]:
            size = f"{run['size'][0]}x{run['size'][1]}"
            for mode, label in (("one_node", "one node, batched"), ("separate_nodes", f"{run['cameras']} nodes")):
                r = run[mode]
                batch = "-"
                if mode == "one_node":
                    batch = f"{_ms(r['batch_size_together'], 'mean')} / {_ms(r['batch_size_loaded'], 'mean')}"
                lines.append(
                    f"| {run['cameras']} | {size} | {label} | {_f(r['throughput_fps_mean'], 1)} | "
                    f"{_ms(r['frame_latency_ms'])} ({_ms(r['frame_latency_ms'], 'p90')}) | "
                    f"{_ms(r['set_latency_ms'])} | {batch} | {_f(r['pss_mib'], 0)} | {_f(r.get('gpu_mib'), 0)} |")
        lines += ["", "Model only, in one process: N single forward passes vs one batch of N (p50 ms):", "",
                  "| N | N x single | one batch | gain |", "|---|---|---|---|"]
        for run in profile["cameras"]:
            model = run["model_only"]
            lines.append(f"| {run['cameras']} | {_ms(model['single_ms'])} | {_ms(model['batch_ms'])} | "
                         f"{_f(run['model_batch_gain'])} |")
        lines.append("")
    for name, profile in profiles.items():
        if not profile["engine"]:
            continue
        lines += [f"## The engine alone ({name} run)", "", "Torch threads (`cpu_threads`), ms per frame:", "",
                  "| camera | 1 thread p50 (p90) | one per core p50 (p90) | speed-up |", "|---|---|---|---|"]
        for run in profile["engine"]:
            ordered = sorted(run["model_ms"].items(), key=lambda item: int(item[0]))
            one, every = ordered[0], ordered[-1]
            lines.append(f"| {run['size'][0]}x{run['size'][1]} | {_ms(one[1])} ({_ms(one[1], 'p90')}) | "
                         f"{_ms(every[1])} ({_ms(every[1], 'p90')}) [{every[0]} threads] | "
                         f"{_f(run['speedup_all_cores'])} |")
        lines += ["", "Score resize and argmax at submit time against on their own thread (overlapping "
                  "the next frame's inference), frames/s, pipelined:", "",
                  "| camera | at submit p50 | own thread p50 | gain |", "|---|---|---|---|"]
        for run in profile["engine"]:
            fps = run["overlap"]["fps"]
            lines.append(f"| {run['size'][0]}x{run['size'][1]} | {_ms(fps['at_submit'])} | "
                         f"{_ms(fps['own_thread'])} | {_f(run['overlap']['gain'])} |")
        lines.append("")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------- CLI


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="icnet-bench-node", description=__doc__.split("\n\n")[0],
        epilog="icnet-bench-node ros2-benchmark BAG [...]: the node in the form NVIDIA ros2_benchmark "
               "reports (peak rate, 10/30/60 Hz); icnet-bench-node ros2-benchmark --help")
    parser.add_argument("--parts", default=",".join(PARTS), help=f"comma list of {', '.join(PARTS)}")
    parser.add_argument("--profiles", default=",".join(PROFILES),
                        help="comma list of shm (the project's shared-memory profile), default (Fast DDS's)")
    parser.add_argument("--sizes", default="1024x2048,512x1024", help="camera sizes HEIGHTxWIDTH (comma list)")
    parser.add_argument("--frames", type=int, default=30, help="measured rounds per size (overhead)")
    parser.add_argument("--warmup", type=int, default=3, help="rounds left out of the figures")
    parser.add_argument("--weights", default=None,
                        help="weight file, or 'random' (default: the project's demo weights, else random weights)")
    parser.add_argument("--width", type=float, default=0.25, help="network width of random weights")
    parser.add_argument("--input-size", default="257x513", help="network input of random weights")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto (node and model alone)")
    parser.add_argument("--precision", default="fp32", choices=("fp32", "fp16", "bf16"))
    parser.add_argument("--cpu-threads", type=int, default=1,
                        help="torch threads of every node and of the model alone (0: torch's default)")
    parser.add_argument("--pipeline-seconds", type=float, default=10.0)
    parser.add_argument("--camera-factor", type=float, default=2.0,
                        help="camera rate as a multiple of the model-only rate (pipelining, cameras)")
    parser.add_argument("--cameras", default="2,4", help="camera counts N (comma list)")
    parser.add_argument("--camera-size", default="512x1024", help="camera size of the cameras part")
    parser.add_argument("--rounds", type=int, default=15, help="latency rounds of the cameras part")
    parser.add_argument("--throughput-seconds", type=float, default=6.0,
                        help="length of each alternating throughput block (cameras)")
    parser.add_argument("--throughput-blocks", type=int, default=6,
                        help="alternating throughput blocks, half per setup (cameras; even, at least 2)")
    parser.add_argument("--answer-timeout", type=float, default=30.0,
                        help="seconds before a frame counts as lost")
    parser.add_argument("--fastdds-profile", default=None,
                        help="the shared-memory profile (default: the project's)")
    parser.add_argument("--out-dir", default="bench/results", help="where the JSON and Markdown go")
    return parser


def settings_from_args(args: argparse.Namespace) -> Settings:
    for name in ("frames", "rounds"):
        if getattr(args, name) < 1:
            raise BenchError(f"--{name} must be at least 1")
    if args.throughput_blocks < 2 or args.throughput_blocks % 2:
        raise BenchError("--throughput-blocks must be even and at least 2")
    if args.warmup < 0 or args.cpu_threads < 0 or args.camera_factor <= 0:
        raise BenchError("--warmup and --cpu-threads must be >= 0, --camera-factor positive")
    if min(args.pipeline_seconds, args.throughput_seconds, args.answer_timeout) <= 0:
        raise BenchError("--pipeline-seconds, --throughput-seconds and --answer-timeout must be positive")
    try:
        cameras = [int(n) for n in comma_list(args.cameras)]
    except ValueError:
        raise BenchError(f"--cameras must be a comma list of counts, got {args.cameras!r}") from None
    if any(n < 1 for n in cameras):
        raise BenchError("camera counts must be at least 1")
    parts = choices(args.parts, PARTS, "--parts")
    if "cameras" in parts and not cameras:
        raise BenchError("the cameras part needs --cameras")
    return Settings(parts=parts, profiles=choices(args.profiles, PROFILES, "--profiles"),
                    sizes=[parse_size(s) for s in comma_list(args.sizes)], frames=args.frames, warmup=args.warmup,
                    weights=args.weights, width=args.width, input_size=parse_size(args.input_size),
                    device=args.device, precision=args.precision, cpu_threads=args.cpu_threads,
                    pipeline_seconds=args.pipeline_seconds, camera_factor=args.camera_factor, cameras=cameras,
                    camera_size=parse_size(args.camera_size), rounds=args.rounds,
                    throughput_seconds=args.throughput_seconds, throughput_blocks=args.throughput_blocks,
                    answer_timeout=args.answer_timeout,
                    fastdds_profile=args.fastdds_profile, out_dir=args.out_dir)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv[:1] == ["ros2-benchmark"]:  # the ros2_benchmark form: its own options
            from icnet_bench.ros2_benchmark_form import main as form_main
            return form_main(argv[1:])
        if argv[:1] == ["_client"]:  # the measuring process of one profile (internal)
            Path(argv[2]).write_text(json.dumps(run_client(json.loads(Path(argv[1]).read_text()))))
            return 0
        settings = settings_from_args(build_parser().parse_args(argv))
        if not settings.sizes and ({"overhead", "pipelining"} & set(settings.parts)):
            raise BenchError("--sizes is empty")
        report, json_path, md_path = run_benchmark(settings)
    except BenchError as error:
        print(f"icnet-bench-node: error: {error}", file=sys.stderr)
        return 2
    print(markdown(report))
    print(f"wrote {json_path} and {md_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
