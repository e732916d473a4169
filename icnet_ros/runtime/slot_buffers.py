"""Pinned host and device buffers of one CUDA pipeline slot, reused across submissions.

Buffers are keyed by what they hold (role, shape, dtype), not by a frame's position in a
batch: when a camera misses a batch the other frames still find their buffers, and a
batch composition that comes back finds its own. A key is kept however long it goes
unused (frames of many encodings, sizes and batch compositions in turn allocate nothing
once each was seen); what bounds the memory is the number of distinct keys: past
``max_keys`` the least recently used key's free buffers are released. A slot is reused
only once its last submission is done (collected, or synchronised on failure), so handing
its buffers out again, allocating new ones or dropping old ones never needs a device
synchronisation.
"""

from __future__ import annotations

from collections import OrderedDict

import torch

BufferKey = tuple[str, tuple[int, ...], torch.dtype]


class SlotBuffers:
    """The buffers of one slot. ``begin`` starts a submission; ``host``/``on_device`` hand out
    a buffer of that key not yet used by this submission (allocating one if none is free)."""

    def __init__(self, device: torch.device, max_keys: int = 64) -> None:
        if max_keys < 1:
            raise ValueError(f"max_keys must be at least 1, got {max_keys}")
        self.device = device
        self.max_keys = max_keys
        self._free: OrderedDict[BufferKey, list[torch.Tensor]] = OrderedDict()  # least recently used first
        self._used: dict[BufferKey, list[torch.Tensor]] = {}
        self.allocations = 0  # buffers allocated so far (a steady state allocates none)

    def begin(self) -> None:
        """Start a submission: the previous one is done, its buffers are free again."""
        for key, tensors in self._used.items():
            self._free.setdefault(key, []).extend(tensors)
            self._free.move_to_end(key)
        self._used = {}
        while len(self._free) > self.max_keys:
            self._free.popitem(last=False)

    def host(self, role: str, shape: tuple[int, ...], dtype: torch.dtype = torch.uint8) -> torch.Tensor:
        """A pinned host buffer."""
        return self._take((f"host:{role}", tuple(shape), dtype))

    def on_device(self, role: str, shape: tuple[int, ...], dtype: torch.dtype = torch.uint8) -> torch.Tensor:
        """A buffer on the slot's device."""
        return self._take((f"device:{role}", tuple(shape), dtype))

    def keys(self) -> int:
        """Distinct keys held (free or in use)."""
        return len(self._free.keys() | self._used.keys())

    def _take(self, key: BufferKey) -> torch.Tensor:
        free = self._free.get(key)
        if free:
            tensor = free.pop()
        else:
            _, shape, dtype = key
            pinned = key[0].startswith("host:")
            tensor = (torch.empty(shape, dtype=dtype, pin_memory=True) if pinned
                      else torch.empty(shape, dtype=dtype, device=self.device))
            self.allocations += 1
        self._used.setdefault(key, []).append(tensor)
        return tensor

    def clear(self) -> None:
        """Release every buffer (the slot's work must be done)."""
        self._free.clear()
        self._used.clear()
