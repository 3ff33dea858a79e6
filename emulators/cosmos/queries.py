"""Query execution over one container: three strategies, picked per query, that answer alike.

1. **Index order**: ORDER BY over plain paths streams rows from an SQLite expression index
   (``ordered.py``) and stops once the page (plus TOP/OFFSET) is full, decoding only what it returns.
2. **Streaming**: filter-and-project queries (no ORDER BY, aggregate, DISTINCT, TOP/OFFSET or JOIN) read
   in insertion order and resume after the last document read, so paging a container costs each document
   once, not once per page (a 55,000-message read-back took many minutes when every page re-ran the query).
3. **Whole scope**: everything else decodes the scope and runs the compiled query in Python, paged by
   offset.
``rows_decoded`` counts the documents json-decoded, which is what the faster strategies save.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Generator
from typing import Any

from . import ordered
from .containers import Container, live, scope_sql
from .errors import bad_request
from .pages import FeedPage, dumps, page_start, paginate, seq_after, seq_token
from .query import CompiledQuery, compile_query


class QueryEngine:
    """Runs queries on the store's connection (same thread as the store; no locking of its own)."""

    def __init__(self, db: sqlite3.Connection, indexed_order: bool = True) -> None:
        self.db = db
        # False forces the in-Python sort of the whole scope (kept for equivalence tests and benchmarks).
        self.indexed_order = indexed_order
        self.order_indexes = ordered.OrderIndexes(db)
        self.rows_decoded = 0

    def query(
        self,
        c: Container,
        text: str,
        params: dict[str, Any],
        pk: list[Any] | None,
        epk_range: tuple[str, str] | None,
        max_items: int,
        continuation: str | None,
    ) -> FeedPage:
        compiled = compile_query(text)
        if pk is None and compiled.aggregates and not compiled.aggregate_value:
            # A real account answers this through the SDK's query-plan path, which refuses it.
            raise bad_request(
                "Cross-partition aggregates must use SELECT VALUE (e.g. SELECT VALUE COUNT(1) FROM c); "
                "non-VALUE aggregates need a partition key."
            )
        where, args = scope_sql(c, pk, epk_range)
        page = self._in_index_order(c, compiled, params, pk, where, args, max_items, continuation)
        if page is None and compiled.streamable and max_items > 0:
            page = self._stream_page(c, compiled, params, where, args, max_items, continuation)
        if page is None:
            page = self._whole_scope(c, compiled, params, pk, where, args, max_items, continuation)
        page.rid = c.rid
        return page

    def query_resources(
        self,
        resources: list[dict[str, Any]],
        text: str,
        params: dict[str, Any],
        max_items: int,
        continuation: str | None,
    ) -> FeedPage:
        """Account-level queries (databases, containers): small in-memory lists."""
        results = compile_query(text).execute(resources, params)
        return paginate([dumps(r) for r in results], max_items, continuation, 0)

    # -- strategy 1: index order --------------------------------------------------------------------

    def _in_index_order(
        self,
        c: Container,
        compiled: CompiledQuery,
        params: dict[str, Any],
        pk: list[Any] | None,
        where: str,
        args: list[Any],
        max_items: int,
        continuation: str | None,
    ) -> FeedPage | None:
        if not self.indexed_order or self._has_nul_strings(c):
            return None
        shape = ordered.shape_for(compiled.order_paths, pk is not None)
        if shape is None or not self.order_indexes.ensure(shape):
            return None
        start = page_start(continuation)
        bound = compiled.result_bound(params, start + max_items + 1 if max_items > 0 else None)
        seek_where, seek_args = ordered.seek_sql(shape, compiled.order_seeks, params)
        groups = self._ordered_groups(c, shape, where + seek_where, args + seek_args)
        try:
            results = compiled.run_ordered(groups, params, bound)
        except sqlite3.Error:  # the planner refused the index (INDEXED BY) or SQLite could not read
            return None  # a body: answer the same thing the slow way
        finally:
            groups.close()
        if results is None:
            return None
        return paginate([dumps(r) for r in results], max_items, continuation, c.lsn)

    def _has_nul_strings(self, c: Container) -> bool:
        """SQLite's json_extract cuts a string at U+0000, so such documents would be misordered by the
        ORDER BY indexes: once a container ever stored one, its ORDER BY queries sort in Python."""
        return self.db.execute("SELECT 1 FROM meta WHERE k = ?", (f"nul:{c.rid}",)).fetchone() is not None

    def ordered_sql(self, shape: ordered.OrderShape, where: str) -> str:
        """The streaming SELECT for one ORDER BY shape (also what the EXPLAIN QUERY PLAN test checks)."""
        keys = ", ".join(sql for sql, _ in shape.key_sql())
        return (
            f"SELECT wts, ttl, body, {keys} FROM docs INDEXED BY {shape.index_name} "  # noqa: S608
            f"WHERE {where} ORDER BY {shape.order_by()}"
        )

    def _ordered_groups(
        self, c: Container, shape: ordered.OrderShape, where: str, args: list[Any]
    ) -> Generator[list[dict[str, Any]], None, None]:
        """Live documents in index order, in runs whose index keys tie (decoded lazily, run by run)."""
        cursor = self.db.execute(self.ordered_sql(shape, where), args)
        now = time.time()
        try:
            group: list[dict[str, Any]] = []
            key: tuple[Any, ...] | None = None
            while batch := cursor.fetchmany(256):
                for row in live(c, batch, now):
                    row_key = ordered.run_key(row[3:])
                    if group and row_key != key:
                        yield group
                        group = []
                    key = row_key
                    self.rows_decoded += 1
                    group.append(json.loads(row["body"]))
            if group:
                yield group
        finally:
            cursor.close()

    # -- strategy 2: streaming -------------------------------------------------------------------------

    def _stream_page(
        self,
        c: Container,
        compiled: CompiledQuery,
        params: dict[str, Any],
        where: str,
        args: list[Any],
        max_items: int,
        continuation: str | None,
    ) -> FeedPage:
        """A page resumed after the last document the previous page read (its insertion order)."""
        after = seq_after(continuation)
        cursor = self.db.execute(
            f"SELECT wts, ttl, body, seq FROM docs WHERE {where} AND seq > ? ORDER BY seq",  # noqa: S608
            [*args, after],
        )
        results: list[str] = []
        last_seq, more, now = after, False, time.time()
        try:
            while not more and (batch := cursor.fetchmany(256)):
                alive = {id(row) for row in live(c, batch, now)}
                for row in batch:
                    if len(results) >= max_items:  # full, and another document follows: not the end
                        more = True
                        break
                    last_seq = row["seq"]
                    if id(row) in alive:
                        self.rows_decoded += 1
                        results.extend(dumps(r) for r in compiled.execute([json.loads(row["body"])], params))
        finally:
            cursor.close()
        return FeedPage(results, seq_token(last_seq) if more else None, c.lsn)

    # -- strategy 3: the whole scope -----------------------------------------------------------------

    def _whole_scope(
        self,
        c: Container,
        compiled: CompiledQuery,
        params: dict[str, Any],
        pk: list[Any] | None,
        where: str,
        args: list[Any],
        max_items: int,
        continuation: str | None,
    ) -> FeedPage:
        rows = self.db.execute(
            f"SELECT wts, ttl, body FROM docs WHERE {where} ORDER BY seq",  # noqa: S608 - fixed fragments
            args,
        ).fetchall()
        docs = [json.loads(r["body"]) for r in live(c, rows, time.time())]
        self.rows_decoded += len(docs)
        results = compiled.execute(docs, params, cross_partition=pk is None)
        return paginate([dumps(r) for r in results], max_items, continuation, c.lsn)
