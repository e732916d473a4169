"""How long ``activate`` takes after ``deactivate``: model kept warm against released.

One ``segmentation_node`` per setting of ``release_on_deactivate`` (false: the default,
the model stays loaded and warm; true: deactivate frees it and activate reloads and
warms it up), started as users start it in a private ROS domain; then ``--rounds``
times: deactivate, and activate, timing the ``change_state`` call of the activation
and, from the moment it was requested, the first class mask answered to probe frames
(64x128, sent every 5 ms from the activation on). Prints the figures, and with
``--output`` writes them (every round's, the machine, versions and settings) as JSON.

    python -m icnet_bench.lifecycle_bench [--weights FILE] [--rounds 10] [--warmup 1024x2048] [--output FILE]
"""

from __future__ import annotations

import argparse
import datetime
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState
from std_msgs.msg import Header

from icnet_bench.node_session import Client, NodeUnderTest, isolate, stamp_ns
from icnet_ros.ros.image_messages import image_msg
from icnet_ros.ros.parameters import DEFAULT_WEIGHTS

PROBE_PERIOD_S = 0.005
PROBE_SIZE = (64, 128)   # small probes: the time measured is the node's, not the frame's transport


def change_state(client: Client, service: str, transition_id: int, timeout: float = 120.0) -> float:
    """Request the transition and wait for its answer; the seconds it took."""
    ros_client = client.in_executor(lambda: client.node.create_client(ChangeState, service))
    try:
        if not ros_client.wait_for_service(timeout_sec=20.0):
            raise RuntimeError(f"service {service} not available")
        start = time.perf_counter()
        future = ros_client.call_async(ChangeState.Request(transition=Transition(id=transition_id)))
        while not future.done():
            if time.perf_counter() - start > timeout:
                raise RuntimeError(f"{service} did not answer within {timeout:.0f} s")
            time.sleep(0.0005)
        if not future.result().success:
            raise RuntimeError(f"{service}: transition {transition_id} failed")
        return time.perf_counter() - start
    finally:
        client.in_executor(lambda: client.node.destroy_client(ros_client))


def first_answer(client: Client, link, probe, start: float, timeout: float = 300.0) -> float:
    """Probe every PROBE_PERIOD_S until any probe is answered; seconds from ``start`` (monotonic)."""
    sent: set[int] = set()
    while time.monotonic() - start < timeout:
        stamp = client.next_stamp()
        sent.add(stamp_ns(stamp))
        link.publish(probe(stamp))
        with link.condition:
            link.condition.wait_for(lambda: not sent.isdisjoint(link.answers), PROBE_PERIOD_S)
            if not sent.isdisjoint(link.answers):
                arrived = min(link.answers[s].arrived for s in sent & link.answers.keys())
                link.answers.clear()
                return arrived - start
    raise RuntimeError(f"no answer within {timeout:.0f} s of activation")


def measure(weights: Path, release: bool, rounds: int, warmup: tuple[int, int], folder: Path) -> dict:
    """Activation call and first answer after it, in ms, over ``rounds`` deactivate/activate cycles."""
    namespace = "release" if release else "keep"
    node = NodeUnderTest(namespace, weights, folder / f"{namespace}.log", parameters={
        "release_on_deactivate": release, "warmup_height": warmup[0], "warmup_width": warmup[1]})
    client = Client(f"lifecycle_bench_{namespace}")
    try:
        link = client.link(node)
        frame = np.zeros((*PROBE_SIZE, 3), np.uint8)

        def probe(stamp):
            return image_msg(Header(stamp=stamp, frame_id="probe"), frame)
        first_answer(client, link, probe, time.monotonic())   # started, warmed up, matched
        service = f"{node.namespace}/icnet_segmenter/change_state"
        calls, answers = [], []
        for _ in range(rounds):
            change_state(client, service, Transition.TRANSITION_DEACTIVATE)
            start = time.monotonic()   # the clock of the answers' arrival times
            calls.append(change_state(client, service, Transition.TRANSITION_ACTIVATE))
            answers.append(first_answer(client, link, probe, start))
            time.sleep(0.5)   # let late answers to the other probes arrive before the next round
        return {"activate_ms": [c * 1e3 for c in calls], "first_mask_ms": [a * 1e3 for a in answers]}
    finally:
        node.stop()
        client.close()


def summary(values: list[float]) -> str:
    return (f"median {statistics.median(values):.0f} ms (min {min(values):.0f}, max {max(values):.0f}, "
            f"n={len(values)})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", type=Path, default=DEFAULT_WEIGHTS, help="weight file (default: demo)")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--warmup", default="1024x2048", help="camera size HxW: warm-up and probe frames")
    parser.add_argument("--output", type=Path, help="write the figures to this JSON file")
    args = parser.parse_args(argv)
    warmup = tuple(int(v) for v in args.warmup.lower().split("x"))
    isolate()
    folder = Path(tempfile.mkdtemp(prefix="icnet_lifecycle_bench_"))
    print(f"weights {args.weights}, camera {warmup[0]}x{warmup[1]}, {args.rounds} rounds (logs: {folder})")
    results = {}
    for release in (False, True):
        result = measure(args.weights, release, args.rounds, warmup, folder)
        label = "release_on_deactivate:=true (reload)" if release else "default (model kept warm)"
        print(f"{label}: activate call {summary(result['activate_ms'])}; "
              f"first mask after activate {summary(result['first_mask_ms'])}")
        results["released" if release else "kept"] = {
            key: {"median": round(statistics.median(values), 1), "min": round(min(values), 1),
                  "max": round(max(values), 1), "samples": [round(v, 3) for v in values]}
            for key, values in result.items()}
    if args.output:
        from icnet_bench.environment import machine_info, versions

        now = datetime.datetime.now(datetime.timezone.utc)  # noqa: UP017 - datetime.UTC is 3.11+ (Humble: 3.10)
        report = {"tool": "python -m icnet_bench.lifecycle_bench", "date": now.isoformat(timespec="seconds"),
                  "machine": machine_info(["cpu"]), "versions": versions(),
                  "settings": {"weights": args.weights.name, "rounds": args.rounds, "warmup": list(warmup),
                               "probe": list(PROBE_SIZE), "probe_period_s": PROBE_PERIOD_S},
                  "results": results}
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(report, indent=1) + "\n")
        print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
