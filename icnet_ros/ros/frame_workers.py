"""What the node's worker threads share: the tag a frame carries through the engine, and
one activation's threads with their stop flag, tokens and frames in flight."""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from std_msgs.msg import Header

if TYPE_CHECKING:
    from icnet_ros.runtime.engine import SegmentationEngine


@dataclass(frozen=True)
class FrameTag:
    """What the publisher thread needs about a submitted frame."""

    camera: int
    header: Header
    color_mask: bool
    overlay: bool
    confidence: bool


@dataclass
class Workers:
    """One activation's threads and what only they share: a thread that outlives its
    deactivate (a join that timed out) sees its own stop flag and tokens, never the next
    activation's. ``in_flight``: the submitted batches' tags in order, for the accounting."""

    engine: SegmentationEngine
    stopping: threading.Event = field(default_factory=threading.Event)
    submitted: threading.Semaphore = field(default_factory=lambda: threading.Semaphore(0))
    in_flight: deque[list[FrameTag]] = field(default_factory=deque)
    lock: threading.Lock = field(default_factory=threading.Lock)
    threads: list[threading.Thread] = field(default_factory=list)
    abandoned: bool = False

    def track(self, tags: list[FrameTag]) -> bool:
        """Note a batch the engine accepted; False once ``abandon`` ran (count them dropped)."""
        with self.lock:
            if not self.abandoned:
                self.in_flight.append(tags)
            return not self.abandoned

    def finished(self, tag: FrameTag) -> None:
        """``tag``'s frame left the engine (answered or dropped)."""
        with self.lock:
            if self.in_flight and tag in self.in_flight[0]:
                self.in_flight[0].remove(tag)
                if not self.in_flight[0]:
                    self.in_flight.popleft()

    def failed_batch(self) -> list[FrameTag]:
        """The oldest batch's frames still in flight (its job failed), removed."""
        with self.lock:
            return self.in_flight.popleft() if self.in_flight else []

    def abandon(self) -> list[FrameTag]:
        """Every frame still in flight (the engine is about to drop them), removed."""
        with self.lock:
            tags = [tag for batch in self.in_flight for tag in batch]
            self.in_flight.clear()
            self.abandoned = True
            return tags
