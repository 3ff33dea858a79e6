"""One container as the store holds it in memory, and which of its rows a read may see (scope and TTL).

Shared by the item operations (``store.py``), the feeds (``feeds.py``) and the queries (``queries.py``):
each reads ``docs`` rows through the same scope (partition key, effective-partition-key range) and drops
rows whose time to live has run out, as the service never returns an expired item.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from . import partition
from .errors import bad_request

FULL_RANGE = ("", "FF")


@dataclass
class Container:
    """In-memory view of one container row; kept in step with SQLite after every commit."""

    db: str
    id: str
    seq: int
    rid: str
    body: dict[str, Any]
    lsn: int
    doc_seq: int
    last_ts: int
    pk_parts: list[str] = field(default_factory=list)

    @property
    def default_ttl(self) -> int | None:
        return self.body.get("defaultTtl")

    @property
    def self_link(self) -> str:
        return self.body["_self"]


def expired(c: Container, wts: float, ttl: int | None, now: float) -> bool:
    """TTL applies only when the container sets a default; an item's own ttl overrides it (-1 = never)."""
    default = c.default_ttl
    if default is None:
        return False
    effective = ttl if ttl is not None else default
    return effective > 0 and wts + effective <= now


def live(c: Container, rows: Iterable[sqlite3.Row], now: float) -> Iterator[sqlite3.Row]:
    """The rows (with ``wts`` and ``ttl`` columns) whose time to live has not run out."""
    if c.default_ttl is None:
        yield from rows
        return
    for row in rows:
        if not expired(c, row["wts"], row["ttl"], now):
            yield row


def scope_sql(c: Container, pk: list[Any] | None, epk_range: tuple[str, str] | None) -> tuple[str, list[Any]]:
    """The WHERE clause (and its arguments) of a read scoped to a partition key or an EPK range."""
    sql, args = "coll = ?", [c.rid]
    if pk is not None:
        sql += " AND pk = ?"
        args.append(partition.canonical(pk))
    if epk_range is not None and epk_range != FULL_RANGE:
        if c.body["partitionKey"].get("version", 2) != 2:
            # Stored EPKs are hash v2; answering a v1 range would be silently wrong.
            raise bad_request(
                "Effective-partition-key ranges (partition_key / feed_range scoped reads) need a "
                "container with partition key version 2; this container uses version 1."
            )
        sql += " AND epk >= ? AND epk < ?"
        args.extend(epk_range)
    return sql, args
