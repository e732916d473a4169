"""``segmentation_node`` with faults injected, for the failure-isolation tests.

    python faulty_node.py FAULT[,FAULT...] --ros-args ...

The real node (its ``main``, real DDS, real weights) with some of its collaborators made
to fail, the way they fail in the field:

- ``diagnostics_report``: computing the diagnostics report raises on every second tick;
- ``diagnostics_publish``: publishing ``/diagnostics`` raises RCLError on every third tick;
- ``output_publish``: publishing the class mask of a frame with frame_id ``publish_fails``
  raises RCLError;
- ``decode``: a frame with frame_id ``decode_fails`` raises cv2.error in decoding, one
  with ``decode_oom`` MemoryError;
- ``subscription_count``: every fifth ``get_subscription_count`` of an output raises
  RCLError (as it does once the context shuts down);
- ``engine_close``: the first ``engine.close()`` raises (a sticky CUDA error in
  ``torch.cuda.synchronize``);
- ``stall``: a frame with frame_id ``stall`` holds the submitter in the engine for 4 s
  (it prints ``injected: stalling`` as it starts), and deactivate waits only 1 s for the
  threads (its join times out); each worker thread prints ``injected: <kind> ended`` as
  it ends; ``stall_long``: 30 s, and deactivate waits 10 s (to signal the node inside
  that wait);
- ``publisher_creation``: the third output publisher of the first configure cannot be
  created; the engine says when it is closed;
- ``batch_fails``: the batch of a frame with frame_id ``fail`` fails in ``collect``;
- ``slow_warmup``: warming up takes 3 s more (to signal the node while it warms up).
"""

from __future__ import annotations

import itertools
import sys
import time

import cv2
from rclpy._rclpy_pybind11 import RCLError
from rclpy.lifecycle.publisher import LifecyclePublisher
from rclpy.publisher import Publisher

from icnet_ros.ros import diagnostics, node_main, segmentation_node
from icnet_ros.runtime.engine import SegmentationEngine


def _every(n: int):
    calls = itertools.count(1)
    return lambda: next(calls) % n == 0


def _frame_id(msg) -> str:
    return msg.header.frame_id


def diagnostics_report() -> None:
    report, fail = diagnostics.report, _every(2)

    def failing(*args, **kwargs):
        if fail():
            raise ZeroDivisionError("injected: the report cannot be computed")
        return report(*args, **kwargs)
    diagnostics.report = failing


def diagnostics_publish() -> None:
    publish, fail = Publisher.publish, _every(3)

    def failing(self, msg):
        if self.topic_name == "/diagnostics" and fail():
            raise RCLError("injected: Failed to publish")
        return publish(self, msg)
    Publisher.publish = failing


def output_publish() -> None:
    publish = LifecyclePublisher.publish

    def failing(self, msg):
        if self.topic_name.endswith("class_mask") and _frame_id(msg) == "publish_fails":
            raise RCLError("injected: Failed to publish")
        return publish(self, msg)
    LifecyclePublisher.publish = failing


def decode() -> None:
    raw_frame = segmentation_node.raw_frame

    def failing(msg, max_pixels):
        if _frame_id(msg) == "decode_fails":
            raise cv2.error("injected: OpenCV(5.0.0) error: (-4:Insufficient memory)")
        if _frame_id(msg) == "decode_oom":
            raise MemoryError("injected")
        return raw_frame(msg, max_pixels)
    segmentation_node.raw_frame = failing


def subscription_count() -> None:
    count, fail = LifecyclePublisher.get_subscription_count, _every(5)

    def failing(self):
        if fail():
            raise RCLError("injected: failed to get subscription count")
        return count(self)
    LifecyclePublisher.get_subscription_count = failing


def engine_close() -> None:
    close, first = SegmentationEngine.close, itertools.count()

    def failing(self):
        close(self)
        if next(first) == 0:
            raise RuntimeError("injected: CUDA error: an illegal memory access was encountered")
    SegmentationEngine.close = failing


def stall(stall_s: float = 4.0, stop_timeout_s: float = 1.0) -> None:
    submit = SegmentationEngine.submit
    run_worker = segmentation_node.SegmentationNode._run_worker
    segmentation_node.STOP_TIMEOUT_S = stop_timeout_s

    def stalling(self, frame, *, tag=None, **options):
        if tag is not None and tag.header.frame_id == "stall":
            print("injected: stalling", flush=True)
            time.sleep(stall_s)
        return submit(self, frame, tag=tag, **options)

    def reporting_end(self, kind, round_of_work, workers):
        run_worker(self, kind, round_of_work, workers)
        print(f"injected: {kind} ended", flush=True)
    SegmentationEngine.submit = stalling
    segmentation_node.SegmentationNode._run_worker = reporting_end


def stall_long() -> None:
    stall(stall_s=30.0, stop_timeout_s=10.0)


def publisher_creation() -> None:
    create, calls = segmentation_node.SegmentationNode.create_lifecycle_publisher, itertools.count(1)
    close = SegmentationEngine.close

    def failing(self, *args, **kwargs):
        if next(calls) == 3:
            raise RuntimeError("injected: cannot create publisher")
        return create(self, *args, **kwargs)

    def closing(self):
        print("injected: engine closed", flush=True)
        close(self)
    segmentation_node.SegmentationNode.create_lifecycle_publisher = failing
    SegmentationEngine.close = closing


def batch_fails() -> None:
    collect = SegmentationEngine.collect

    def failing(self, timeout=None):
        result = collect(self, timeout)
        if result is not None and getattr(result.tag, "header", None) is not None \
                and result.tag.header.frame_id == "fail":
            raise RuntimeError("injected: the batch failed")
        return result
    SegmentationEngine.collect = failing


def slow_warmup() -> None:
    warmup = SegmentationEngine.warmup

    def slow(self, *args, **kwargs):
        time.sleep(3.0)
        return warmup(self, *args, **kwargs)
    SegmentationEngine.warmup = slow


FAULTS = {function.__name__: function for function in (
    diagnostics_report, diagnostics_publish, output_publish, decode, subscription_count,
    engine_close, stall, stall_long, publisher_creation, batch_fails, slow_warmup)}

if __name__ == "__main__":
    for name in sys.argv[1].split(","):
        FAULTS[name]()
    sys.exit(node_main.main([sys.argv[0], *sys.argv[2:]]))
