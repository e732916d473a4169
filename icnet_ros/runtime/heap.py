"""The process's memory: its resident set (from ``/proc``) and handing freed heap back to
the operating system (glibc's ``malloc_trim``). Standard library only."""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
import resource


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


def resident_bytes() -> tuple[int, int]:
    """The process's resident set size now and its peak, in bytes.

    Now: ``/proc/self/statm`` (Linux); where it is missing, the peak stands in.
    Peak: ``getrusage`` (``ru_maxrss``, kibibytes on Linux).
    """
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    try:
        with open("/proc/self/statm", "rb") as statm:
            now = int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return peak, peak
    return now, max(now, peak)
