"""The two feeds of a container: the read feed (every item, in insertion order) and the change feed.

The change feed is "latest version" mode, as the service's default: each changed item once, at the LSN of
its last write, in LSN order; deletes are not in it. A page never splits the writes of one LSN (one
transactional batch), and an empty answer is a 304 with the LSN to ask from next, as the SDK expects.
"""

from __future__ import annotations

import sqlite3
import time
from typing import Any

from .containers import Container, live, scope_sql
from .pages import FeedPage, malformed


def read_feed(
    db: sqlite3.Connection,
    c: Container,
    pk: list[Any] | None,
    epk_range: tuple[str, str] | None,
    max_items: int,
    continuation: str | None,
) -> FeedPage:
    """One page of the items in scope, resuming after the insertion sequence number in the token."""
    where, args = scope_sql(c, pk, epk_range)
    after = 0
    if continuation:
        try:
            after = int(continuation)
        except ValueError:
            raise malformed(continuation) from None
    limit = max_items if max_items > 0 else -1
    rows = db.execute(
        f"SELECT wts, ttl, seq, body FROM docs WHERE {where} AND seq > ? ORDER BY seq LIMIT ?",  # noqa: S608
        (*args, after, limit + 1 if limit > 0 else -1),
    ).fetchall()
    more = limit > 0 and len(rows) > limit
    rows = rows[:limit] if limit > 0 else rows
    docs = [r["body"] for r in live(c, rows, time.time())]
    return FeedPage(docs, str(rows[-1]["seq"]) if more else None, c.lsn, rid=c.rid)


def change_feed(
    db: sqlite3.Connection,
    c: Container,
    *,
    after_lsn: int | None,
    since_ts: int | None,
    pk: list[Any] | None,
    epk_range: tuple[str, str] | None,
    max_items: int,
) -> FeedPage:
    """Latest version of each changed item with ``lsn > after_lsn`` (None = now), in LSN order."""
    if after_lsn is None:
        return FeedPage([], None, c.lsn, etag=f'"{c.lsn}"', not_modified=True, rid=c.rid)
    where, args = scope_sql(c, pk, epk_range)
    where += " AND lsn > ?"
    args.append(after_lsn)
    if since_ts is not None:
        where += " AND ts >= ?"
        args.append(since_ts)
    limit = max_items if max_items > 0 else -1
    select = f"SELECT wts, ttl, lsn, body FROM docs WHERE {where}"  # noqa: S608 - fixed fragments
    rows = db.execute(f"{select} ORDER BY lsn LIMIT ?", (*args, limit)).fetchall()
    full = limit > 0 and len(rows) == limit
    if full:
        # Never split the writes of one LSN (a batch) across pages: the next page starts after it.
        last_lsn = rows[-1]["lsn"]
        rows = [r for r in rows if r["lsn"] < last_lsn]
        rows += db.execute(f"{select} AND lsn = ? ORDER BY seq", (*args, last_lsn)).fetchall()
    changed = list(live(c, rows, time.time()))
    if full:  # more may follow: a 200 (even if every row had expired) keeps the SDK reading
        return FeedPage([r["body"] for r in changed], None, c.lsn, etag=f'"{rows[-1]["lsn"]}"', rid=c.rid)
    if not changed:
        last = max(c.lsn, after_lsn)
        return FeedPage([], None, c.lsn, etag=f'"{last}"', not_modified=True, rid=c.rid)
    return FeedPage([r["body"] for r in changed], None, c.lsn, etag=f'"{changed[-1]["lsn"]}"', rid=c.rid)
