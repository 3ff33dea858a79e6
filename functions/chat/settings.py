"""Names the bindings and the code must agree on."""

from __future__ import annotations

HUB = "chat"
