"""Soak the segmentation node: a camera stream for a long time, or many lifecycle cycles.

    python -m icnet_bench.soak stream --duration 600 --rate 30 --size 480 640 --output soak.json
    python -m icnet_bench.soak cycles --count 100 --output cycles.json

``stream`` starts ``segmentation_node`` in a private ROS domain (the shipped parameter
file and input QoS, best effort, depth 1) and publishes rgb8 frames at ``--rate`` for
``--duration`` seconds from a reliable publisher, as a camera driver does. Every
``--interval`` seconds it prints a row: frames sent, answered, unanswered (no class mask
within ``--timeout``), the node's own counters (received, processed, dropped in its
one-frame slot), end-to-end latency percentiles (publish to class mask received, this
host's monotonic clock), the node's age at publish, its resident memory and CPU use,
and GPU memory in use (the node's diagnostics, on CUDA). Memory growth is the node's
resident set at the end against the end of warm-up (``--warmup`` seconds); the target
is under 2 % (reported, not enforced: the exit status is 1 only if the node died).

``cycles`` deactivates and activates the node ``--count`` times through its lifecycle
services, with ``release_on_deactivate`` true (each deactivate releases the model, each
activate reloads the weights and warms up: the reloads are what may leak), checks that a frame is
answered after each, and reports the resident memory after each cycle: growth after
the first ``--settle`` cycles, same target.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from icnet_bench.summaries import stats

PROG = "python -m icnet_bench.soak"
SCHEMA = "icnet_ros.reliability.soak/1"
GROWTH_TARGET_PERCENT = 2.0
MIB = 1024 * 1024


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    stream = commands.add_parser("stream", help="frames at a fixed rate for a long time")
    stream.add_argument("--duration", type=float, default=600.0, help="seconds of streaming (default 600)")
    stream.add_argument("--rate", type=float, default=30.0, help="frames per second (default 30)")
    stream.add_argument("--size", type=int, nargs=2, default=(480, 640), metavar=("HEIGHT", "WIDTH"),
                        help="frame size (default 480 640)")
    stream.add_argument("--interval", type=float, default=60.0, help="seconds per table row (default 60)")
    stream.add_argument("--warmup", type=float, default=60.0,
                        help="seconds before the memory reference is taken (default 60)")
    stream.add_argument("--timeout", type=float, default=5.0,
                        help="a frame without a class mask after this many seconds is unanswered (default 5)")
    cycles = commands.add_parser("cycles", help="deactivate/activate cycles")
    cycles.add_argument("--count", type=int, default=100, help="cycles (default 100)")
    cycles.add_argument("--settle", type=int, default=10,
                        help="cycles before the memory reference is taken (default 10)")
    for sub in (stream, cycles):
        sub.add_argument("--weights", type=Path, help="weight file (default: random small weights)")
        sub.add_argument("--device", default="auto", help="the node's device parameter (default auto)")
        sub.add_argument("--threads", type=int, default=0, help="the node's cpu_threads (default 0: torch's)")
        sub.add_argument("--domain-id", type=int, help="ROS_DOMAIN_ID (default: a random one, this host only)")
        sub.add_argument("--output", type=Path, help="JSON report (default soak_<command>.json)")
        sub.add_argument("--log-dir", type=Path, help="node log folder (default: a temporary folder)")
    return parser


def _percentiles(values: list[float]) -> dict[str, float | None]:
    """p50, p90, p99 and max (:func:`summaries.stats`) to 0.1, None where there are no values."""
    summary = stats(values) or {}
    return {key: None if key not in summary else round(summary[key], 1) for key in ("p50", "p90", "p99", "max")}


def _gpu_mib(report) -> float | None:
    from icnet_ros.ros.diagnostics import DEVICE, GPU_MEMORY

    if report is None:
        return None
    values = report.values("pipeline")
    return float(values[GPU_MEMORY]) if values.get(DEVICE, "").startswith("cuda") else None


class Session:
    """The node, the client and their link, for either command."""

    def __init__(self, args: argparse.Namespace, parameters: dict[str, Any]) -> None:
        from icnet_bench.node_session import Client, NodeUnderTest, isolate, weights_or_random

        self.environment = isolate(args.domain_id)
        self.weights, self.weights_description = weights_or_random(args.weights)
        log_dir = args.log_dir or Path(tempfile.mkdtemp(prefix="icnet_soak_logs_"))
        log_dir.mkdir(parents=True, exist_ok=True)
        self.parameters = {"device": args.device, "cpu_threads": args.threads, **parameters}
        self.node = NodeUnderTest("/soak", self.weights, log_dir / "node.log", self.parameters)
        self.client = Client("icnet_soak")
        self.link = self.client.link(self.node, timing=True)

    def frame(self, image: np.ndarray, frame_id: str = "soak_camera"):
        """An rgb8 Image of ``image`` with a fresh stamp; and the stamp in ns."""
        import array

        from sensor_msgs.msg import Image
        from std_msgs.msg import Header

        stamp = self.client.next_stamp()
        data = array.array("B")
        data.frombytes(image.tobytes())
        msg = Image(header=Header(stamp=stamp, frame_id=frame_id), height=image.shape[0], width=image.shape[1],
                    encoding="rgb8", step=image.shape[1] * 3)
        msg.data = data
        return msg, stamp.sec * 1_000_000_000 + stamp.nanosec

    def wait_serving(self, image: np.ndarray) -> None:
        from icnet_bench.node_session import wait_serving

        def probe(stamp):
            msg, _ = self.frame(image, "probe")
            msg.header.stamp = stamp
            return msg
        wait_serving(self.link, probe, self.client)

    def close(self) -> dict:
        shutdown = self.node.shutdown()
        self.client.close()
        return shutdown

    def header(self, command: str) -> dict:
        return {"schema": SCHEMA, "tool": f"{PROG} {command}",
                "created_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                "host": {"platform": platform.platform(), "python": platform.python_version(),
                         "cpus": os.cpu_count()},
                "weights": self.weights_description, "node_parameters": self.parameters,
                "environment": self.environment, "node_log": str(self.node.log_path)}


# ---------------------------------------------------------------------------- stream

def stream(args: argparse.Namespace) -> dict:
    height, width = args.size
    session = Session(args, {"warmup_height": height, "warmup_width": width})
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (height, width, 3), dtype=np.uint8) for _ in range(8)]
    rows: list[dict] = []
    try:
        session.wait_serving(images[0])
        import psutil
        process = psutil.Process(session.node.pid)
        process.cpu_percent()
        period = 1.0 / args.rate
        start = time.monotonic()
        next_row = start + args.interval
        end = start + args.duration
        sent: dict[int, float] = {}
        latencies: list[float] = []
        ages: list[float] = []
        row_sent = row_answered = row_unanswered = 0
        index = 0
        before = session.link.report_after(time.time_ns(), 10.0).counters()
        warm_rss = None
        while True:
            now = time.monotonic()
            due = start + index * period
            if due < end and now >= due:
                msg, stamp = session.frame(images[index % len(images)])
                sent[stamp] = time.monotonic()
                session.link.publish(msg)
                index += 1
                row_sent += 1
            # Answers and timeouts.
            now = time.monotonic()
            for stamp in list(sent):
                answer = session.link.wait_answer(stamp, 0)
                if answer is not None:
                    latencies.append((answer.arrived - sent.pop(stamp)) * 1e3)
                    timing = session.link.take_timing(stamp)
                    if timing is not None:
                        ages.append(timing["age_ms"])
                    row_answered += 1
                elif now - sent[stamp] > args.timeout:
                    sent.pop(stamp)
                    row_unanswered += 1
            if (now >= next_row and now < end) or (now >= end and not sent):
                report = session.link.report_after(time.time_ns(), 10.0)
                counters = report.counters() if report is not None else before
                rss = session.node.rss_bytes()
                if warm_rss is None and now - start >= args.warmup:
                    warm_rss = rss
                rows.append({
                    "t_s": round(now - start, 1), "sent": row_sent, "answered": row_answered,
                    "unanswered": row_unanswered,
                    **{f"node_{key}": counters[key] - before[key] for key in
                       ("received", "processed", "dropped", "refused", "failures")},
                    "latency_ms": _percentiles(latencies), "node_age_ms": _percentiles(ages),
                    "rss_mib": round(rss / MIB, 1), "cpu_percent": round(process.cpu_percent(), 1),
                    "gpu_mib": _gpu_mib(report)})
                print(_row_text(rows[-1]), file=sys.stderr, flush=True)
                before = counters
                latencies, ages = [], []
                row_sent = row_answered = row_unanswered = 0
                next_row += args.interval
                if now >= end and not sent:
                    break
                if not session.node.alive():
                    break
            wait = min(start + index * period, next_row) - time.monotonic()
            time.sleep(max(0.0, min(wait, 0.002)) if wait > 0 else 0.0)
        alive = session.node.alive()
    finally:
        shutdown = session.close()
    final_rss = rows[-1]["rss_mib"] if rows else None
    reference = warm_rss / MIB if warm_rss else (rows[0]["rss_mib"] if rows else None)
    growth = (final_rss - reference) / reference * 100.0 if rows and reference else None
    totals = {key: sum(row[key] for row in rows) for key in
              ("sent", "answered", "unanswered", "node_received", "node_processed", "node_dropped", "node_refused",
               "node_failures")}
    # Every frame not answered was lost before the node (best-effort input), dropped in its
    # one-frame slot, refused or failed.
    totals["lost_before_node"] = totals["sent"] - totals["node_received"]
    return {**session.header("stream"),
            "settings": {"duration_s": args.duration, "rate_hz": args.rate, "size": [height, width],
                         "interval_s": args.interval, "warmup_s": args.warmup, "timeout_s": args.timeout},
            "rows": rows, "totals": totals,
            "memory": {"rss_after_warmup_mib": round(reference, 1) if reference else None, "rss_end_mib": final_rss,
                       "growth_percent": round(growth, 3) if growth is not None else None,
                       "target_percent": GROWTH_TARGET_PERCENT,
                       "target_met": growth is not None and growth < GROWTH_TARGET_PERCENT},
            "alive_at_end": alive, "shutdown": shutdown}


def _row_text(row: dict) -> str:
    latency = row["latency_ms"]
    gpu = f", GPU {row['gpu_mib']:.0f} MiB" if row["gpu_mib"] is not None else ""
    return (f"  t={row['t_s']:6.0f} s: sent {row['sent']}, answered {row['answered']}, unanswered "
            f"{row['unanswered']}; node received {row['node_received']}, processed {row['node_processed']}, dropped "
            f"{row['node_dropped']}; latency p50/p90/p99/max {latency['p50']}/{latency['p90']}/{latency['p99']}/"
            f"{latency['max']} ms; RSS {row['rss_mib']} MiB, CPU {row['cpu_percent']} %{gpu}")


def markdown_table(report: dict) -> str:
    """The per-interval rows as a Markdown table."""
    lines = ["| t (s) | sent | answered | unanswered | node dropped | latency p50 / p90 / p99 / max (ms) | "
             "node age p50 (ms) | RSS (MiB) | CPU (%) | GPU (MiB) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for row in report["rows"]:
        latency = row["latency_ms"]
        lines.append(f"| {row['t_s']:.0f} | {row['sent']} | {row['answered']} | {row['unanswered']} | "
                     f"{row['node_dropped']} | {latency['p50']} / {latency['p90']} / {latency['p99']} / "
                     f"{latency['max']} | {row['node_age_ms']['p50']} | {row['rss_mib']} | {row['cpu_percent']} | "
                     f"{'-' if row['gpu_mib'] is None else row['gpu_mib']} |")
    return "\n".join(lines)


# ---------------------------------------------------------------------------- cycles

def cycles(args: argparse.Namespace) -> dict:
    from lifecycle_msgs.msg import Transition
    from lifecycle_msgs.srv import ChangeState

    from icnet_bench.node_session import rss_summary

    session = Session(args, {"release_on_deactivate": True})
    image = np.random.default_rng(0).integers(0, 256, (120, 160, 3), dtype=np.uint8)
    samples: list[tuple[float, int]] = []
    failures: list[str] = []
    timings: list[float] = []
    try:
        session.wait_serving(image)
        service = f"{session.node.namespace}/icnet_segmenter/change_state"
        client = session.client.in_executor(lambda: session.client.node.create_client(ChangeState, service))
        if not client.wait_for_service(timeout_sec=30.0):
            raise RuntimeError(f"service {service} not available")

        def change(transition: int) -> bool:
            future = client.call_async(ChangeState.Request(transition=Transition(id=transition)))
            deadline = time.monotonic() + 60.0
            while not future.done() and time.monotonic() < deadline:
                time.sleep(0.005)
            return future.done() and future.result().success

        for cycle in range(args.count):
            start = time.monotonic()
            if not change(Transition.TRANSITION_DEACTIVATE) or not change(Transition.TRANSITION_ACTIVATE):
                failures.append(f"cycle {cycle}: a transition failed")
                break
            msg, stamp = session.frame(image, f"cycle_{cycle}")
            session.link.publish(msg)
            if session.link.wait_answer(stamp, 2.0) is None:
                # The input subscription is new: the first frame may go out before it matched.
                session.wait_serving(image)
            timings.append(time.monotonic() - start)
            samples.append((cycle + 1, session.node.rss_bytes()))
            if (cycle + 1) % 10 == 0:
                print(f"  {cycle + 1}/{args.count} cycles, RSS {samples[-1][1] / MIB:.1f} MiB", file=sys.stderr,
                      flush=True)
        alive = session.node.alive()
    finally:
        shutdown = session.close()
    memory = rss_summary(samples, warmup_fraction=args.settle / max(1, args.count))
    return {**session.header("cycles"), "settings": {"count": args.count, "settle": args.settle},
            "completed": len(samples), "failures": failures,
            "cycle_seconds": _percentiles(timings),
            "memory": {**memory, "target_percent": GROWTH_TARGET_PERCENT,
                       "target_met": abs(memory.get("growth_percent", 0.0)) < GROWTH_TARGET_PERCENT},
            "rss_mib_per_cycle": [round(r / MIB, 2) for _, r in samples],
            "alive_at_end": alive, "shutdown": shutdown}


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.weights is not None and not args.weights.is_file():
        print(f"{PROG}: error: --weights {args.weights} is not a file", file=sys.stderr)
        return 2
    output = args.output or Path(f"soak_{args.command}.json")
    try:
        report = stream(args) if args.command == "stream" else cycles(args)
    except (RuntimeError, OSError) as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(report, indent=1) + "\n")
    memory = report["memory"]
    if args.command == "stream":
        print(markdown_table(report))
        print(f"totals: {report['totals']}")
        print(f"RSS after warm-up {memory['rss_after_warmup_mib']} MiB, at the end {memory['rss_end_mib']} MiB: "
              f"growth {memory['growth_percent']} % (target < {GROWTH_TARGET_PERCENT} %: "
              f"{'met' if memory['target_met'] else 'NOT met'})")
    else:
        print(f"{report['completed']}/{args.count} cycles; RSS after {args.settle} cycles "
              f"{memory.get('after_warmup_mib')} MiB, at the end {memory.get('end_mib')} MiB: growth "
              f"{memory.get('growth_percent')} % (target < {GROWTH_TARGET_PERCENT} %: "
              f"{'met' if memory['target_met'] else 'NOT met'})")
    print(f"node: alive {report['alive_at_end']}, SIGINT exit {report['shutdown']['returncode']} in "
          f"{report['shutdown']['seconds']} s; report: {output}")
    return 0 if report["alive_at_end"] and not report.get("failures") else 1


if __name__ == "__main__":
    sys.exit(main())
