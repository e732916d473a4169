"""The callback guard on its own: counts per kind, one log line per kind per period, the
caller goes on; the middleware error a failed take leaves is read, cleared and counted."""

from __future__ import annotations

import ctypes
import threading

import rclpy  # noqa: F401 - loads librcutils, as in the node

from icnet_ros.ros.callback_guard import FaultLog, LogThrottle
from icnet_ros.ros.stale_errors import _rcutils, take_stale_error


class Logger:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def error(self, message: str) -> None:
        self.lines.append(message)


def test_guard_counts_logs_once_per_period_and_goes_on():
    logger = Logger()
    faults = FaultLog(logger, LogThrottle(period_s=3600))
    calls = []

    def tick(value: int) -> int:
        calls.append(value)
        if value % 2:
            raise RuntimeError(f"tick {value} failed")
        return value
    guarded = faults.guard("timer", tick, default=-1)
    assert [guarded(v) for v in range(5)] == [0, -1, 2, -1, 4]
    assert calls == [0, 1, 2, 3, 4]
    faults.guard("thread", lambda: 1 / 0)()
    assert faults.counts() == {"thread": 1, "timer": 2}
    assert logger.lines == ["timer failed: RuntimeError: tick 1 failed [1 so far; the node goes on]",
                            "thread failed: ZeroDivisionError: division by zero [1 so far; the node goes on]"]
    assert faults.last.startswith("thread failed")


def test_a_stale_middleware_error_is_cleared_and_counted_as_a_failed_take():
    library = _rcutils()
    assert library is not None, "librcutils is loaded with rclpy"
    set_error = library.rcutils_set_error_state
    set_error.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_size_t]
    faults = FaultLog(Logger())

    def in_a_thread() -> None:   # the state is per thread: another thread's is its own
        set_error(b"Fast CDR exception deserializing message of type sensor_msgs::msg::dds_::Image_.",
                  b"type_support_common.cpp", 139)
        faults.guard("timer", lambda: None)()
        assert take_stale_error() is None      # cleared by the guard
    thread = threading.Thread(target=in_a_thread)
    thread.start()
    thread.join()
    assert faults.counts() == {"take": 1}
    assert "take failed: FailedTake: Fast CDR exception deserializing" in faults.last
    assert take_stale_error() is None          # this thread's state was never set
