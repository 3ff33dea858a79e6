"""Pages of a feed and their continuation tokens: what every read of many documents answers with.

Tokens are opaque to the SDKs and survive restarts: a read feed resumes after an insertion sequence
number, a filter-and-project query after the last document it read (``{"seq": n}``), and a computed result
(ORDER BY, aggregates, DISTINCT, ...) at an offset (``{"offset": n}``).
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

from .errors import bad_request


def dumps(value: Any) -> str:
    """The one JSON encoding of stored and returned documents (compact, UTF-8 kept)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


@dataclass
class FeedPage:
    """One page of a feed: documents (already serialised), an optional continuation, the container LSN."""

    documents: list[str]
    continuation: str | None
    lsn: int
    etag: str | None = None
    not_modified: bool = False
    rid: str = ""  # the container's _rid, so the protocol layer never touches the store from the loop


def paginate(serialised: list[str], max_items: int, continuation: str | None, lsn: int) -> FeedPage:
    """Offset paging over a computed result (at least one item past the page when more exist)."""
    start = page_start(continuation)
    end = len(serialised) if max_items <= 0 else start + max_items
    token = None
    if end < len(serialised):
        token = _token({"offset": end})
    return FeedPage(serialised[start:end], token, lsn)


def seq_token(seq: int) -> str:
    return _token({"seq": seq})


def _token(value: dict[str, int]) -> str:
    return base64.b64encode(dumps(value).encode()).decode()


def _token_field(continuation: str, key: str) -> int:
    try:
        return int(json.loads(base64.b64decode(continuation))[key])
    except (ValueError, KeyError, TypeError):
        raise malformed(continuation) from None


def malformed(continuation: str) -> Exception:
    return bad_request(f"The continuation token '{continuation[:60]}' is malformed.")


def seq_after(continuation: str | None) -> int:
    return -1 if not continuation else _token_field(continuation, "seq")


def page_start(continuation: str | None) -> int:
    if not continuation:
        return 0
    start = _token_field(continuation, "offset")
    if start < 0:
        raise malformed(continuation)
    return start
