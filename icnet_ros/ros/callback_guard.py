"""Failure isolation: no failure in a callback, timer or worker thread ends the node.

Every entry point the executor or a worker thread calls into is wrapped by
:meth:`FaultLog.guard` (or records its failures with :meth:`FaultLog.record`): the
exception is counted per kind (``diagnostics timer``, ``image callback``, ``submitter
thread``...; the counts go to ``/diagnostics``), logged with its reason at most once per
``period_s`` per kind, and the caller goes on. Before the call, the guard clears the
middleware error a failed take left in the thread (:mod:`stale_errors`) and counts it as
a failed ``take``. :class:`LogThrottle` is the same
once-per-period rule for the node's other repeated messages.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from icnet_ros.ros.stale_errors import take_stale_error

R = TypeVar("R")
LOG_PERIOD_S = 5.0      # at most one log line per problem kind in this period


class LogThrottle:
    """``allow(key)`` is True at most once per ``period_s`` for each key (thread-safe)."""

    def __init__(self, period_s: float = LOG_PERIOD_S) -> None:
        self.period_s = period_s
        self._lock = threading.Lock()
        self._logged_at: dict[str, float] = {}

    def allow(self, key: str) -> bool:
        now = time.monotonic()
        with self._lock:
            if now - self._logged_at.get(key, -self.period_s) < self.period_s:
                return False
            self._logged_at[key] = now
            return True


class FailedTake(RuntimeError):
    """A message the middleware received but could not deserialize (malformed CDR)."""


class FaultLog:
    """Failures survived, counted per kind, logged throttled with the reason."""

    def __init__(self, logger: Any, throttle: LogThrottle | None = None) -> None:
        self._logger = logger
        self.throttle = throttle or LogThrottle()
        self._lock = threading.Lock()
        self._counts: dict[str, int] = {}
        self._last = ""

    def record(self, kind: str, error: BaseException) -> None:
        """Count ``error`` under ``kind`` and log it (throttled); never raises."""
        message = f"{kind} failed: {type(error).__name__}: {error}"
        with self._lock:
            self._counts[kind] = self._counts.get(kind, 0) + 1
            self._last = message
            count = self._counts[kind]
        if self.throttle.allow(f"fault:{kind}"):
            try:
                self._logger.error(f"{message} [{count} so far; the node goes on]")
            except Exception:  # noqa: BLE001 - a logger that fails must not end the caller
                pass

    def guard(self, kind: str, function: Callable[..., R], default: R | None = None) -> Callable[..., R | None]:
        """``function`` that records what it raises under ``kind`` and returns ``default``."""
        @functools.wraps(function)
        def guarded(*args, **kwargs):
            stale = take_stale_error()
            if stale is not None:
                self.record("take", FailedTake(stale))
            try:
                return function(*args, **kwargs)
            except Exception as error:  # noqa: BLE001 - counted, logged, survived
                self.record(kind, error)
                return default
        return guarded

    def counts(self) -> dict[str, int]:
        """Failures per kind since start, sorted by kind."""
        with self._lock:
            return dict(sorted(self._counts.items()))

    @property
    def last(self) -> str:
        with self._lock:
            return self._last
