"""Pinned host and device buffers of one CUDA pipeline slot, reused across submissions.

Buffers are keyed by what they hold (role, shape, dtype), not by a frame's position in a
batch: when a camera misses a batch the other frames still find their buffers, and a
batch composition that comes back finds its own. A slot is reused only once its last
submission is done (collected, or synchronised on failure), so handing its buffers out
again, allocating new ones or dropping old ones never needs a device synchronisation.
"""

from __future__ import annotations

import torch

BufferKey = tuple[str, tuple[int, ...], torch.dtype]


class SlotBuffers:
    """The buffers of one slot. ``begin`` starts a submission; ``host``/``on_device`` hand out
    a buffer of that key not yet used by this submission (allocating one if none is free).

    Buffers of a key that no submission used for ``keep_for`` submissions are released.
    """

    def __init__(self, device: torch.device, keep_for: int = 8) -> None:
        self.device = device
        self.keep_for = keep_for
        self._free: dict[BufferKey, list[torch.Tensor]] = {}
        self._used: dict[BufferKey, list[torch.Tensor]] = {}
        self._last_used: dict[BufferKey, int] = {}
        self._submission = 0
        self.allocations = 0  # buffers allocated so far (a steady state allocates none)

    def begin(self) -> None:
        """Start a submission: the previous one is done, its buffers are free again."""
        for key, tensors in self._used.items():
            self._free.setdefault(key, []).extend(tensors)
        self._used = {}
        self._submission += 1
        for key in [k for k, last in self._last_used.items() if self._submission - last > self.keep_for]:
            del self._last_used[key]
            self._free.pop(key, None)

    def host(self, role: str, shape: tuple[int, ...], dtype: torch.dtype = torch.uint8) -> torch.Tensor:
        """A pinned host buffer."""
        return self._take((f"host:{role}", tuple(shape), dtype))

    def on_device(self, role: str, shape: tuple[int, ...], dtype: torch.dtype = torch.uint8) -> torch.Tensor:
        """A buffer on the slot's device."""
        return self._take((f"device:{role}", tuple(shape), dtype))

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
        self._last_used[key] = self._submission
        return tensor

    def clear(self) -> None:
        """Release every buffer (the slot's work must be done)."""
        self._free.clear()
        self._used.clear()
        self._last_used.clear()
