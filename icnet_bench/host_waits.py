"""What sync debug mode misses: host waits for the device, and allocations, counted.

``torch.cuda.set_sync_debug_mode`` sees the synchronising calls inside torch's operations
(blocking copies, ``.item()``) but not ``torch.cuda.synchronize()``, ``Stream.synchronize()``,
``Event.synchronize()`` nor a ``non_blocking`` copy from or to unpinned host memory (silently
synchronous). :class:`HostWaits` counts those, by thread, by patching them while active;
:func:`device_allocations` reads the CUDA caching allocator's requests to the device. Used by
the CUDA tests and ``icnet_bench.gpu_check``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import torch

_MISSING = object()
WAITING_THREAD = "icnet-cuda-wait"  # the engine's thread that waits for each submission's last event


class HostWaits:
    """While active (a context manager): ``calls`` lists (what, thread name) of each device,
    stream or event synchronisation; ``unpinned_copies`` counts non-blocking host<->device
    copies whose host side is not pinned."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []
        self.unpinned_copies = 0
        self._restore: list[tuple[Any, str, Any]] = []

    def __enter__(self) -> HostWaits:
        for owner, name in ((torch.cuda, "synchronize"), (torch.cuda.Stream, "synchronize"),
                            (torch.cuda.Event, "synchronize")):
            self._patch(owner, name, self._counting(f"{owner.__name__}.{name}", getattr(owner, name)))
        copy = torch.Tensor.copy_

        def checked_copy(tensor: torch.Tensor, source: torch.Tensor, non_blocking: bool = False) -> torch.Tensor:
            if non_blocking and tensor.device.type != source.device.type:
                host = tensor if tensor.device.type == "cpu" else source
                self.unpinned_copies += not host.is_pinned()
            return copy(tensor, source, non_blocking)

        self._patch(torch.Tensor, "copy_", checked_copy)
        return self

    def __exit__(self, *exc) -> None:
        for owner, name, original in reversed(self._restore):
            if original is _MISSING:  # inherited (Tensor.copy_ from TensorBase): uncover it
                delattr(owner, name)
            else:
                setattr(owner, name, original)
        self._restore.clear()

    def outside_the_waiting_thread(self) -> list[tuple[str, str]]:
        """Every wait but the engine's waiting thread's ``Event.synchronize``."""
        return [call for call in self.calls
                if not (call[0] == "Event.synchronize" and call[1].startswith(WAITING_THREAD))]

    def _patch(self, owner: Any, name: str, replacement: Any) -> None:
        self._restore.append((owner, name, vars(owner).get(name, _MISSING)))
        setattr(owner, name, replacement)

    def _counting(self, what: str, function: Callable) -> Callable:
        def counted(*args, **kwargs):
            self.calls.append((what, threading.current_thread().name))
            return function(*args, **kwargs)
        return counted


def device_allocations() -> dict[str, int]:
    """The caching allocator's requests to the device (cudaMalloc calls, retries), not its cache hits."""
    stats = torch.cuda.memory_stats()
    return {key: stats.get(key, 0) for key in ("segment.all.allocated", "num_device_alloc", "num_alloc_retries")}
