"""SIGINT and SIGTERM end the node at any moment, with status 0.

rclpy's own handlers shut its context down, which ends ``spin`` but not start-up: a
signal while the weights load or the model warms up made the lifecycle transition fail
and the node exit 1 seconds later. :class:`ShutdownSignals`, installed before
``rclpy.init`` (rclpy then calls it after its own handler, for both signals), raises
:class:`ShutdownRequested` in the main thread at the first signal, wherever it is;
during the clean-up that follows, further signals are only noted, so the clean-up runs
to its end. Python drops an exception raised inside a finaliser (a ``__del__`` that runs
when the signal lands, as rclpy's ``Future.__del__`` can on a loaded machine), so the first
signal also calls ``on_first`` (the node: shut the rclpy context down, which ends ``spin``)
before it raises: the node ends either way.
"""

from __future__ import annotations

import signal
from collections.abc import Callable


class ShutdownRequested(KeyboardInterrupt):
    """SIGINT or SIGTERM arrived (a KeyboardInterrupt, so rclpy's callbacks let it pass)."""


class ShutdownSignals:
    """Turns the first SIGINT/SIGTERM into :class:`ShutdownRequested`; notes the others."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, on_first: Callable[[], object] = lambda: None) -> None:
        self.received: int | None = None
        self._holding = False
        self._on_first = on_first

    def install(self) -> ShutdownSignals:
        for signum in self.SIGNALS:
            signal.signal(signum, self._handle)
        return self

    def hold(self) -> None:
        """From now on a signal is only noted (the clean-up must not be interrupted)."""
        self._holding = True

    def _handle(self, signum: int, frame) -> None:
        first = self.received is None
        self.received = self.received or signum
        if first and not self._holding:
            try:
                self._on_first()
            except Exception:  # noqa: BLE001 - e.g. no context yet: the exception below ends start-up
                pass
            raise ShutdownRequested(signal.Signals(signum).name)
