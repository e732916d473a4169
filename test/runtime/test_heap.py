"""Freed heap memory goes back to the operating system."""

from __future__ import annotations

import platform
import subprocess
import sys
import textwrap

import psutil
import pytest

from icnet_ros.runtime.heap import resident_bytes

# In a fresh process: what earlier tests left in this one (arenas, glibc's dynamic mmap
# threshold, raised by every large block freed) decides where small blocks land.
SCRIPT = textwrap.dedent("""
    import ctypes, ctypes.util
    import psutil
    from icnet_ros.runtime.heap import release_free_heap

    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    libc.malloc.restype = ctypes.c_void_p
    libc.free.argtypes = [ctypes.c_void_p]
    process = psutil.Process()
    # 40 MB in blocks below glibc's mmap threshold, then one more block above them so that
    # the heap's top cannot shrink by itself: freeing the blocks leaves the pages resident.
    blocks = [libc.malloc(100_000) for _ in range(400)]
    for block in blocks:
        ctypes.memset(block, 1, 100_000)
    sentinel = libc.malloc(90_000)  # large enough to come from the top of the heap
    for block in blocks:
        libc.free(block)
    freed_but_resident = process.memory_info().rss
    trimmed = release_free_heap()
    released = freed_but_resident - process.memory_info().rss
    libc.free(sentinel)
    print(trimmed, released)
""")


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="needs glibc's malloc_trim")
def test_release_free_heap_shrinks_the_resident_set() -> None:
    run = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    trimmed, released = run.stdout.split()
    assert trimmed == "True"
    assert int(released) > 30e6, f"only {int(released) / 1e6:.1f} MB went back"


def test_resident_bytes_agree_with_psutil() -> None:
    """The node's process memory without psutil: /proc/self/statm and getrusage."""
    now, peak = resident_bytes()
    rss = psutil.Process().memory_info().rss
    assert abs(now - rss) < 0.05 * rss
    assert peak >= now
