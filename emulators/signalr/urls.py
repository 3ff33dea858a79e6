"""The data-plane REST operations under one hub, as a table a reader can scan.

Paths are what follows ``/api/v1/hubs/{hub}`` or ``/api/hubs/{hub}`` (``rest.py`` parses that prefix, the
api-version and the token). Segments are decoded before matching, since group and user names may hold an
escaped ``/``; literals match in any case, as the service's routes do. Like the official emulator, every
membership operation answers in both path orders (``groups/g/users/u`` and ``users/u/groups/g``) and GET
wherever HEAD is documented. The first row whose method, path and ``:action`` suffix match wins.
"""

from __future__ import annotations

from dataclasses import dataclass

# Which ``:action`` suffix a row takes: a send is also the bare POST.
SEND = frozenset({None, "send"})
CLOSE = frozenset({"closeConnections"})
ANY: frozenset[str | None] | None = None  # the suffix is not looked at


@dataclass(frozen=True)
class Route:
    methods: str  # space-separated HTTP methods
    path: str  # "{name}" captures one segment
    handler: str  # a function name in rest.py, called with the captures as keyword arguments
    actions: frozenset[str | None] | None = ANY


USER_GROUP = "User-group membership takes PUT, DELETE, HEAD or GET."
CONNECTION_GROUP = "Connection-group membership takes PUT, DELETE, HEAD or GET."

ROUTES: tuple[Route, ...] = (
    Route("POST", "", "close_hub", CLOSE),
    Route("POST", "", "broadcast", SEND),
    Route("POST", "users/{user}", "close_user", CLOSE),
    Route("POST", "users/{user}", "send_to_user", SEND),
    Route("GET HEAD", "users/{user}", "user_exists"),
    Route("DELETE", "users/{user}/groups", "remove_user_from_all_groups"),
    Route("PUT", "users/{user}/groups/{group}", "add_user_to_group"),
    Route("DELETE", "users/{user}/groups/{group}", "remove_user_from_group"),
    Route("GET HEAD", "users/{user}/groups/{group}", "user_in_group"),
    Route("PUT", "groups/{group}/users/{user}", "add_user_to_group"),
    Route("DELETE", "groups/{group}/users/{user}", "remove_user_from_group"),
    Route("GET HEAD", "groups/{group}/users/{user}", "user_in_group"),
    Route("POST", "groups/{group}", "close_group", CLOSE),
    Route("POST", "groups/{group}", "send_to_group", SEND),
    Route("GET HEAD", "groups/{group}", "group_exists"),
    Route("PUT", "groups/{group}/connections/{connection}", "add_connection_to_group"),
    Route("DELETE", "groups/{group}/connections/{connection}", "remove_connection_from_group"),
    Route("GET HEAD", "groups/{group}/connections/{connection}", "connection_in_group"),
    Route("PUT", "connections/{connection}/groups/{group}", "add_connection_to_group"),
    Route("DELETE", "connections/{connection}/groups/{group}", "remove_connection_from_group"),
    Route("GET HEAD", "connections/{connection}/groups/{group}", "connection_in_group"),
    Route("POST", "connections/{connection}", "send_to_connection", SEND),
    Route("GET HEAD", "connections/{connection}", "connection_exists"),
    Route("DELETE", "connections/{connection}", "close_connection"),
    Route("DELETE", "connections/{connection}/groups", "remove_connection_from_all_groups"),
)

# A membership path asked with another method: the service's 405 says which methods it takes.
WRONG_METHOD: dict[str, str] = {
    "users/{user}/groups/{group}": USER_GROUP,
    "groups/{group}/users/{user}": USER_GROUP,
    "groups/{group}/connections/{connection}": CONNECTION_GROUP,
    "connections/{connection}/groups/{group}": CONNECTION_GROUP,
}


def _captures(pattern: str, segments: list[str]) -> dict[str, str] | None:
    parts = pattern.split("/") if pattern else []
    if len(parts) != len(segments):
        return None
    captured: dict[str, str] = {}
    for part, segment in zip(parts, segments, strict=True):
        if part.startswith("{"):
            captured[part[1:-1]] = segment
        elif part != segment.lower():
            return None
    return captured


def match(method: str, segments: list[str], action: str | None) -> tuple[str, dict[str, str]] | None:
    """(handler name, captures) of the first row that serves the request; None if no row does."""
    for route in ROUTES:
        captured = _captures(route.path, segments)
        if captured is None:
            continue
        if method in route.methods.split() and (route.actions is ANY or action in route.actions):
            return route.handler, captured
    return None


def wrong_method(segments: list[str]) -> str | None:
    """The 405 message when the path is a membership but the method is not one it takes."""
    return next((m for path, m in WRONG_METHOD.items() if _captures(path, segments) is not None), None)
