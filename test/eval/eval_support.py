"""Constants shared by the evaluation tests (a uniquely named module: every test folder has a conftest)."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
FRAMES = 6
RATE = 10.0
SIZE = (64, 128)
