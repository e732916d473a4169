"""How the weight readers refuse a file: one exception type, listings that stay short."""

from __future__ import annotations

LISTING_LIMIT = 12


class WeightsError(ValueError):
    """A weight file that cannot be used, with the reason."""


def listing(items: list[str], limit: int = LISTING_LIMIT, separator: str = ", ") -> str:
    """``items`` joined by ``separator``, those beyond ``limit`` counted: ``a, b, ... (40 more)``."""
    more = f"{separator}... ({len(items) - limit} more)" if len(items) > limit else ""
    return separator.join(items[:limit]) + more
