"""The middleware error a failed take leaves behind in the executor's thread.

rcutils keeps one error state per thread. When Fast DDS cannot deserialize an incoming
message (malformed CDR on the wire), ``rmw_fastrtps`` sets that state ("Fast CDR exception
deserializing message of type sensor_msgs::msg::dds_::Image_") and the take reports
"nothing taken" without resetting it. The state then sits in the executor's thread until
some later rcl call that fails there reads it: a publish that times out on a loaded
machine raised ``RCLError: Failed to publish: Fast CDR exception deserializing ...``,
blaming the wrong message. :func:`take_stale_error` reads and clears that state at the
start of each executor callback, so every later error names its own cause and the
undeliverable messages are counted (as failed takes) instead.
"""

from __future__ import annotations

import ctypes
import functools
import os


class _ErrorString(ctypes.Structure):
    _fields_ = [("text", ctypes.c_char * 1024)]   # rcutils_error_string_t


@functools.cache
def _rcutils() -> ctypes.CDLL | None:
    """librcutils as rclpy loaded it (never loads another copy); None where unavailable."""
    try:
        library = ctypes.CDLL("librcutils.so", mode=os.RTLD_NOLOAD)
        library.rcutils_error_is_set.restype = ctypes.c_bool
        library.rcutils_get_error_string.restype = _ErrorString
        library.rcutils_reset_error.restype = None
    except (OSError, AttributeError):
        return None
    return library


def take_stale_error() -> str | None:
    """The error state pending in this thread (then cleared), None if there is none."""
    library = _rcutils()
    if library is None or not library.rcutils_error_is_set():
        return None
    text = library.rcutils_get_error_string().text.decode(errors="replace")
    library.rcutils_reset_error()
    return text
