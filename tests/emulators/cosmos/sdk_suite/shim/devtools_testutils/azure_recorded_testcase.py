"""``get_credential`` for the SDK suite: the emulator takes the master key, never an AAD token."""

from __future__ import annotations

import os


def get_credential(is_async: bool = False, **_: object) -> str:
    return os.environ["ACCOUNT_KEY"]
