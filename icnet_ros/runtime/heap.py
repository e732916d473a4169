"""Handing freed heap memory back to the operating system (glibc's ``malloc_trim``)."""

from __future__ import annotations

import ctypes
import ctypes.util
import functools


@functools.cache
def _malloc_trim():
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to trim
        return None


def release_free_heap() -> bool:
    """Return free heap pages to the OS; False where the C library cannot.

    Multi-megabyte frames come and go every few milliseconds; glibc keeps some of the
    freed memory in its arenas, which shows as slow, step-wise growth of the resident
    set over long runs. Trimming once a diagnostics period keeps it flat for ~1 ms.
    """
    trim = _malloc_trim()
    return bool(trim is not None and trim(0))
