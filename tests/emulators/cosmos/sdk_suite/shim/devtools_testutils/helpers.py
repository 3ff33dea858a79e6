"""``is_live``: the suite runs live against the emulator (no recordings)."""

from __future__ import annotations


def is_live() -> bool:
    return True
