"""Command-line values shared by the benchmark tools (icnet-bench, icnet-bench-node)."""

from __future__ import annotations

import re
from collections.abc import Sequence


class BenchError(Exception):
    """A benchmark setting that cannot be used, with the reason."""


def comma_list(text: str) -> list[str]:
    """``a, b,c`` -> ``["a", "b", "c"]`` (empty items dropped)."""
    return [item.strip() for item in text.split(",") if item.strip()]


def choices(text: str, allowed: Sequence[str], what: str) -> list[str]:
    """A non-empty comma list whose items all come from ``allowed``."""
    items = comma_list(text)
    unknown = [item for item in items if item not in allowed]
    if unknown or not items:
        raise BenchError(f"unknown {what} {unknown or text!r}: choose from {', '.join(allowed)}")
    return items


def parse_size(text: str, minimum: int = 8) -> tuple[int, int]:
    """``HxW`` (e.g. ``1025x2049``) -> (height, width), each at least ``minimum``."""
    match = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", text)
    if not match:
        raise BenchError(f"size {text!r} is not HEIGHTxWIDTH (e.g. 1025x2049)")
    height, width = int(match.group(1)), int(match.group(2))
    if height < minimum or width < minimum:
        raise BenchError(f"size {text!r} is too small: at least {minimum}x{minimum}")
    return height, width
