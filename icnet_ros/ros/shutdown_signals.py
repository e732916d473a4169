"""SIGINT and SIGTERM end the node at any moment, with status 0.

rclpy's own handlers shut its context down, which ends ``spin`` but not start-up: a
signal while the weights load or the model warms up made the lifecycle transition fail
and the node exit 1 seconds later. :class:`ShutdownSignals`, installed before
``rclpy.init`` (rclpy then calls it after its own handler, for both signals), raises
:class:`ShutdownRequested` in the main thread at the first signal, wherever it is;
during the clean-up that follows, further signals are only noted, so the clean-up runs
to its end.
"""

from __future__ import annotations

import signal


class ShutdownRequested(KeyboardInterrupt):
    """SIGINT or SIGTERM arrived (a KeyboardInterrupt, so rclpy's callbacks let it pass)."""


class ShutdownSignals:
    """Turns the first SIGINT/SIGTERM into :class:`ShutdownRequested`; notes the others."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.received: int | None = None
        self._holding = False

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
            raise ShutdownRequested(signal.Signals(signum).name)
