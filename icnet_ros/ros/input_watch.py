"""Why frames do not arrive: a publisher is matched on the input, yet nothing comes from it.

The most common first-day failure with large images: without the shared-memory profile
on both ends, Fast DDS fragments a multi-megabyte frame over UDP and a best-effort
reader loses every one of them, silently. :class:`InputWatch` notices a matched
publisher that delivered nothing for ``stale_after_s`` and says what to check, naming the
profile file; the node logs it once and puts it into the input status.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from icnet_ros.ros.fastdds_profile import export_line, profile_in


def profile_file() -> str:
    """The shipped shared-memory profile: the installed one, else this checkout's."""
    for candidate in (Path(sys.prefix) / "share" / "icnet_ros" / "config" / "fastdds_shm.xml",
                      Path(__file__).resolve().parents[2] / "config" / "fastdds_shm.xml"):
        if candidate.is_file():
            return str(candidate)
    return "<share>/icnet_ros/config/fastdds_shm.xml"


def likely_causes() -> str:
    """The causes and their fixes, for the log line and the input status."""
    current = profile_in(os.environ)
    profile = (f"this node uses the profile {current}; the camera driver must use it too: {export_line(current)}"
               if current else f"{export_line(profile_file())} for BOTH the camera driver and this node")
    return (f"large frames need the shared-memory transport on both ends ({profile}); across "
            f"hosts, raise the socket buffers (sysctl net.core.rmem_max); check that the "
            f"publisher's QoS offers what the input asks for")


class InputWatch:
    """One input: since when a publisher has been matched, and whether we said so already."""

    def __init__(self, logger: Any, grace_s: float) -> None:
        """``grace_s``: how late a match may be noticed (one diagnostics period); a frame
        that came that much before it counts as delivered by the new publisher."""
        self._logger = logger
        self._grace_s = grace_s
        self._publishers = 0
        self._matched_at: float | None = None
        self._reported = False

    def silent_for(self, now: float, publishers: int, last_frame: float | None) -> float:
        """Seconds since a publisher was last matched, while no frame came after that (0
        once one did, or while none is matched). A camera that pauses is not silent."""
        if publishers > self._publishers:
            self._matched_at = now
        self._publishers = publishers
        if publishers == 0 or self._matched_at is None or (
                last_frame is not None and last_frame >= self._matched_at - self._grace_s):
            return 0.0
        return now - self._matched_at

    def hint(self, now: float, topic: str, publishers: int, last_frame: float | None, stale_after_s: float) -> str:
        """The likely causes while one of the ``publishers`` matched on ``topic`` has been
        silent for ``stale_after_s`` (logged once per silence), else ''."""
        if self.silent_for(now, publishers, last_frame) < stale_after_s:
            self._reported = False
            return ""
        causes = likely_causes()
        if not self._reported:
            self._reported = True
            self._logger.warning(f"{publishers} publisher(s) matched on {topic}, but no "
                                 f"frame arrived for {stale_after_s:g} s: {causes}")
        return causes
