"""Logical names that carry the project and stack, so Pulumi's auto-naming yields recognisable Azure names.

Pulumi appends a random suffix to the logical name (up to 9 characters here, counted as reserve), which keeps
globally unique names (Cosmos DB, SignalR, storage) free of collisions between stacks and re-creations. Each
resource type has its own character rules, applied here so a long or odd stack name cannot break `pulumi up`.
"""

from __future__ import annotations

import re

from infra.config import StackConfig

SUFFIX_RESERVE = 9

# Azure's limits for the auto-named resources (total length, characters allowed).
MAX_LENGTH = {
    "identity": 128,
    "cosmos": 44,
    "signalr": 63,
    "logs": 63,
    "appi": 260,
    "plan": 60,
}


def _slug(text: str) -> str:
    return re.sub(r"-{2,}", "-", re.sub(r"[^a-z0-9-]+", "-", text.lower())).strip("-")


def logical_name(cfg: StackConfig, kind: str) -> str:
    """`<project>-<stack>-<kind>`, shortened to leave room for the random suffix; starts with a letter."""
    budget = MAX_LENGTH[kind] - SUFFIX_RESERVE
    base = _slug(f"{cfg.project}-{cfg.stack}")
    keep = max(1, budget - len(kind) - 1)
    name = f"{base[:keep].rstrip('-')}-{kind}"
    return name if name[0].isalpha() else f"x{name}"[:budget]


def storage_logical_name(cfg: StackConfig) -> str:
    """Storage accounts: 3-24 lowercase letters and digits only, so no hyphens."""
    compact = re.sub(r"[^a-z0-9]", "", f"{cfg.project}{cfg.stack}".lower())
    return f"st{compact}"[: 24 - SUFFIX_RESERVE]
