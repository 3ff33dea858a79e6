"""Binding options that depend on how the app is deployed, decided once when the worker indexes the app."""

from __future__ import annotations

import os

HUB = "chat"
PRINCIPAL_ID_EXPRESSION = "{headers.x-ms-client-principal-id}"


def auth_required() -> bool:
    """True when App Service authentication is on AND requires sign-in (set `CHAT_REQUIRE_AUTH=true`).

    Only then is `x-ms-client-principal-id` present on every request (App Service strips client-sent
    copies). A binding expression naming an absent header fails the whole invocation ("Error while
    accessing 'x-ms-client-principal-id': property doesn't exist",
    Azure/azure-functions-signalrservice-extension#58), so without required sign-in the negotiate binding
    must not mention the header at all."""
    return os.environ.get("CHAT_REQUIRE_AUTH", "").strip().lower() in ("1", "true", "yes")


def signalr_identity() -> dict[str, str]:
    """Extra fields for the signalRConnectionInfo binding: the user id claim when sign-in is required."""
    return {"user_id": PRINCIPAL_ID_EXPRESSION} if auth_required() else {}
