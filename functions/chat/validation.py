"""The input rules of the chat API, as pure functions: each returns clean data or raises ApiError.

Rules follow the contract in docs/api.md. Lengths count Unicode code points after trimming, because that is
what a person counts; control characters are refused because they corrupt logs and terminals and hide text."""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from .errors import ApiError

MAX_BODY_BYTES = 8 * 1024
MAX_USER = 32
MAX_TEXT = 2000
DEFAULT_LIMIT = 50
MAX_LIMIT = 200

ROOM_RE = re.compile(r"[a-z0-9][a-z0-9-]{0,31}")
UUID_RE = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
# ASCII digits only: `\d` also matches other scripts' digits ("２０２６"), which sort after every real time.
CREATED_AT_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z")

MESSAGE_FIELDS = frozenset({"user", "text", "id"})


@dataclass(frozen=True)
class MessageInput:
    user: str
    text: str
    id: str | None


@dataclass(frozen=True)
class HistoryQuery:
    limit: int
    after: str | None


def validate_room(room: str | None) -> str:
    # fullmatch, not `$`: `$` would let "general\n" through.
    if not isinstance(room, str) or not ROOM_RE.fullmatch(room):
        raise ApiError(
            400,
            "invalid_room",
            "room must be 1-32 characters of a-z, 0-9 and '-', starting with a letter or digit",
            "room",
        )
    return room


def _json_object(body: bytes, allowed: frozenset[str]) -> dict[str, object]:
    if len(body) > MAX_BODY_BYTES:
        raise ApiError(413, "body_too_large", f"the body is over {MAX_BODY_BYTES} bytes", "body")
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        # RecursionError: 8 KiB of "[" nests deeper than the parser's stack; bad input, not a server fault.
        raise ApiError(400, "invalid_json", "the body must be a JSON object in UTF-8", "body") from None
    if not isinstance(data, dict):
        raise ApiError(400, "not_an_object", "the body must be a JSON object", "body")
    for key in data:
        if key not in allowed:
            raise ApiError(
                400, "unknown_field", f"unknown field {key!r}; allowed: {', '.join(sorted(allowed))}", key
            )
    return data


def _has_control(value: str, allow_newline: bool) -> bool:
    return any(unicodedata.category(ch) == "Cc" and not (allow_newline and ch == "\n") for ch in value)


def _required_text(data: dict[str, object], field: str, limit: int, allow_newline: bool) -> str:
    if field not in data:
        raise ApiError(400, "required", f"{field} is required", field)
    value = data[field]
    if not isinstance(value, str):
        raise ApiError(400, "not_a_string", f"{field} must be a string", field)
    value = value.strip()
    if not value:
        raise ApiError(400, "empty", f"{field} must not be empty", field)
    if len(value) > limit:
        raise ApiError(400, "too_long", f"{field} must be at most {limit} characters", field)
    if any(unicodedata.category(ch) == "Cs" for ch in value):
        # A lone surrogate (JSON "\ud800") is not a character and cannot be stored as UTF-8.
        raise ApiError(400, "invalid_unicode", f"{field} must not contain unpaired surrogates", field)
    if _has_control(value, allow_newline):
        rule = "control characters other than newline" if allow_newline else "control characters"
        raise ApiError(400, "control_character", f"{field} must not contain {rule}", field)
    return value


def parse_message(body: bytes) -> MessageInput:
    """Validate a SaveChat body; the returned user and text are trimmed, everything else byte-exact."""
    data = _json_object(body, MESSAGE_FIELDS)
    user = _required_text(data, "user", MAX_USER, allow_newline=False)
    text = _required_text(data, "text", MAX_TEXT, allow_newline=True)
    message_id = data.get("id")
    if "id" in data:
        if not isinstance(message_id, str) or not UUID_RE.fullmatch(message_id):
            raise ApiError(
                400, "invalid_id", "id must be a UUID like 3f2b8c1e-5d4a-4c2b-9a61-0e7f5b9d2c44", "id"
            )
        message_id = message_id.lower()  # one spelling per UUID, so a retry in other case still overwrites
    return MessageInput(user=user, text=text, id=message_id)


def parse_room_action(body: bytes) -> None:
    """A join/leave body: empty or `{}`. The caller's identity says whose connections move, so a body
    naming a connection (the old `connectionId`) is refused, not ignored."""
    if body.strip():
        _json_object(body, frozenset())


def require_json(headers: Mapping[str, str]) -> None:
    """Every write's body is JSON, declared as such. A cross-site page can POST `text/plain` (or a form)
    without a preflight; `application/json` needs one, which the app's CORS policy refuses (415 otherwise,
    naming the header)."""
    media = (headers.get("content-type") or "").split(";", 1)[0].strip().lower()
    if media != "application/json":
        raise ApiError(
            415,
            "unsupported_media_type",
            "send the body as Content-Type: application/json",
            "Content-Type",
        )


def valid_created_at(value: str) -> bool:
    """The exact shape, and a real date and time. Checked for every stored message History returns, so the
    date check is `fromisoformat` (C, ~0.3 µs), not `strptime` (~10 µs, most of History's handler time)."""
    if not CREATED_AT_RE.fullmatch(value):
        return False
    try:
        datetime.fromisoformat(value[:-1])
    except ValueError:
        return False
    return True


def parse_history_query(params: dict[str, str] | object) -> HistoryQuery:
    """`limit` is 1..200 (default 50); `after` is a createdAt value, same format as the messages carry."""
    get = params.get  # type: ignore[attr-defined]
    raw_limit = get("limit")
    limit = DEFAULT_LIMIT
    if raw_limit is not None:
        if not re.fullmatch(r"[0-9]{1,4}", raw_limit) or not 1 <= int(raw_limit) <= MAX_LIMIT:
            raise ApiError(400, "invalid_limit", f"limit must be an integer from 1 to {MAX_LIMIT}", "limit")
        limit = int(raw_limit)
    after = get("after")
    if after is not None and not valid_created_at(after):
        raise ApiError(
            400,
            "invalid_after",
            "after must be a createdAt value: UTC ISO-8601 with milliseconds, e.g. 2026-11-27T21:05:03.120Z",
            "after",
        )
    return HistoryQuery(limit=limit, after=after)
