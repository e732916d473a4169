"""One-slot buffers: the newest frame waits for the worker, older ones are replaced.

Several cameras: one slot each, sharing one condition, and :func:`take_together` takes
the frames that arrived together (one per camera) as a batch.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Generic, TypeVar

T = TypeVar("T")


class LatestSlot(Generic[T]):
    """Holds at most one item; ``put`` replaces an item not yet taken.

    The subscription callback puts, the inference worker takes. Nothing ever queues, so
    the worker always gets the newest frame and a slow worker costs dropped frames, not
    latency.
    """

    def __init__(self, condition: threading.Condition | None = None) -> None:
        """``condition``: one shared by the slots of several cameras (:func:`take_together`)."""
        self._condition = condition or threading.Condition()
        self._item: T | None = None
        self._closed = False

    def put(self, item: T) -> bool:
        """Store ``item``; True when it replaced one that was never taken (a dropped frame)."""
        with self._condition:
            replaced = self._item is not None
            self._item = item
            self._condition.notify_all()
            return replaced

    def take(self, timeout: float | None = None) -> T | None:
        """The waiting item (emptying the slot), or None after ``timeout`` or once closed."""
        with self._condition:
            self._condition.wait_for(lambda: self._item is not None or self._closed, timeout)
            if self._closed:
                return None
            item, self._item = self._item, None
            return item

    def close(self) -> bool:
        """Wake every waiting ``take`` (they return None) and refuse to hand out items;
        True when an item was waiting (it is discarded: the caller counts it)."""
        with self._condition:
            self._closed = True
            discarded, self._item = self._item is not None, None
            self._condition.notify_all()
            return discarded

    def reopen(self) -> None:
        with self._condition:
            self._closed = False
            self._item = None


def take_together(slots: Sequence[LatestSlot[T]], timeout: float | None,
                  gather_s: float = 0.0) -> list[tuple[int, T]]:
    """The items of ``slots`` (which share one condition) that arrived together.

    Waits up to ``timeout`` s for an item in any slot, then up to ``gather_s`` s more
    until every slot holds one, and takes them all: ``(slot index, item)`` pairs in slot
    order; [] after ``timeout`` or once a slot is closed.
    """
    condition = slots[0]._condition
    if any(slot._condition is not condition for slot in slots):
        raise ValueError("take_together needs slots that share one condition")

    def closed() -> bool:
        return any(slot._closed for slot in slots)
    with condition:
        condition.wait_for(lambda: closed() or any(slot._item is not None for slot in slots), timeout)
        if gather_s > 0 and len(slots) > 1:
            condition.wait_for(lambda: closed() or all(slot._item is not None for slot in slots), gather_s)
        if closed():
            return []
        taken = [(index, slot._item) for index, slot in enumerate(slots) if slot._item is not None]
        for slot in slots:
            slot._item = None
        return taken
