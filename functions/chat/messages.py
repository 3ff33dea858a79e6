"""The message document and the shapes derived from it (public message, history window, SignalR payloads)."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from .identity import ID_RE
from .validation import MessageInput, valid_created_at

PUBLIC_FIELDS = ("id", "room", "user", "text", "createdAt")
# The author's identity id (chat/identity.py). Messages stored before identities existed have none: they
# are shown without a tag and are nobody's "mine".
AUTHOR_FIELD = "authorId"
NEW_MESSAGE_TARGET = "newMessage"
HISTORY_WINDOW = 200  # the TOP of both History queries; see docs/api.md "History"

log = logging.getLogger(__name__)


def utc_timestamp(now: datetime | None = None) -> str:
    """ISO-8601 UTC with milliseconds and `Z`; this fixed width makes string order equal time order."""
    now = now or datetime.now(UTC)
    return now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


def new_message(room: str, data: MessageInput, author_id: str, now: datetime | None = None) -> dict[str, str]:
    """The stored document: the client's id when given, so that a retried POST finds its first copy
    (chat/saving.py) instead of storing a second one."""
    return {
        "id": data.id or str(uuid.uuid4()),
        "room": room,
        "user": data.user,
        AUTHOR_FIELD: author_id,
        "text": data.text,
        "createdAt": utc_timestamp(now),
    }


def public_message(document: Mapping[str, Any]) -> dict[str, str] | None:
    """The public fields, never Cosmos system properties; None when the document is not a message."""
    out: dict[str, str] = {}
    for field in PUBLIC_FIELDS:
        value = document.get(field)
        if not isinstance(value, str):
            return None
        out[field] = value
    if not valid_created_at(out["createdAt"]):
        return None
    author = document.get(AUTHOR_FIELD)
    if isinstance(author, str) and ID_RE.fullmatch(author):
        out[AUTHOR_FIELD] = author
    return out


def _order(message: Mapping[str, str]) -> tuple[str, str]:
    return (message["createdAt"], message["id"])


def history_window(
    documents: Iterable[Mapping[str, Any]], limit: int, after: str | None
) -> list[dict[str, str]] | None:
    """History's answer from the room's newest-200 window, oldest first: the latest `limit`, or the first
    `limit` newer than `after` -- or None when the window cannot prove it holds every message newer than
    `after` (it is full and its oldest message is newer than `after`), so HistoryAfter must answer."""
    documents = list(documents)
    messages = sorted((m for m in map(public_message, documents) if m is not None), key=_order)
    if after is None:
        return messages[-limit:]
    if len(documents) >= HISTORY_WINDOW and (not messages or messages[0]["createdAt"] > after):
        return None
    return [m for m in messages if m["createdAt"] > after][:limit]


def first_after(documents: Iterable[Mapping[str, Any]], limit: int) -> list[dict[str, str]]:
    """HistoryAfter's answer: its query already holds the first 200 messages newer than `after`."""
    return sorted((m for m in map(public_message, documents) if m is not None), key=_order)[:limit]


def feed_messages(documents: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One SignalR message per changed document, sent to the group of its room (the 2018 sample sent one per
    batch with a double-encoded argument). Documents that are not chat messages are skipped with a warning
    rather than failing the batch: a failure would hold the whole batch back through the retry policy and
    then drop it from live delivery (function_app.py)."""
    out: list[dict[str, Any]] = []
    for document in documents:
        message = public_message(document)
        if message is None:
            log.warning(
                "FeedToSignalR skipped a document that is not a chat message (id=%r)", document.get("id")
            )
            continue
        out.append({"target": NEW_MESSAGE_TARGET, "arguments": [message], "groupName": message["room"]})
    return out


def log_retried_batch(documents: Iterable[Mapping[str, Any]], retry_count: int, max_retry_count: int) -> None:
    """One line naming every document of a batch whose previous attempt failed (a batch is at most
    maxItemsPerInvocation = 100 documents)."""
    ids = [str(document.get("id")) for document in documents]
    last = max_retry_count != -1 and retry_count >= max_retry_count
    note = " (the last: if it fails too, they are not sent live; clients get them from History)"
    log.warning(
        "FeedToSignalR retry %d of %s for a batch whose previous attempt failed%s: %d documents, ids=%s",
        retry_count,
        "unlimited" if max_retry_count == -1 else max_retry_count,
        note if last else "",
        len(ids),
        ",".join(ids),
    )


def group_action(action: str, room: str, user_id: str) -> dict[str, str]:
    """By SignalR user id (= the caller's identity id), never by a connection id the caller names: a caller
    can only ever move their own connections (docs/api.md "Rooms")."""
    return {"action": action, "groupName": room, "userId": user_id}


def signalr_value(items: list[dict[str, Any]]) -> str:
    """The signalR output binding takes a JSON array of messages or group actions; serialised once per
    invocation."""
    return json.dumps(items, ensure_ascii=False, separators=(",", ":"))
