"""Index-backed ORDER BY: SQLite expression indexes that hand rows over already in Cosmos order.

Why: a query like History's ``SELECT TOP 200 … WHERE c.room = @room ORDER BY c.createdAt DESC, c.id DESC``
used to load, decode and sort every document of the partition, so its time grew with the room. A real
account answers it from its range index; here an expression index per ORDER BY shape plays that part and
the store stops reading as soon as the page is full.

Each ORDER BY path becomes two index columns: a *rank* (Cosmos cross-type order: undefined 0, null 1,
booleans 2, numbers 3, strings 4, arrays 5, objects 6, as ``query/values.py``) and the scalar value
(``json_extract``; booleans read as 0/1, strings compare as UTF-8 bytes = code points). Arrays and objects
get NULL, so they tie in the index. Then ``seq`` (insertion order), which is how the in-Python sort breaks
ties. The index key is only *monotone* with the exact Cosmos order (integers beyond int64 round to doubles,
arrays/objects tie), so the store cuts the stream into runs (``run_key``) and the compiler re-sorts each
run with the exact keys: results are identical to the in-Python evaluator. json_extract cuts strings at
U+0000, which is not monotone in a multi-path key: a container that ever stored one sorts in Python.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

MAX_INDEXES = 16  # each index costs every write a little; beyond this, ORDER BY shapes sort in Python
_PREFIX = "docs_ord_"

_RANKS = (
    ("null", 1),
    ("true", 2),
    ("false", 2),
    ("integer", 3),
    ("real", 3),
    ("text", 4),
    ("array", 5),
    ("object", 6),
)


def json_path(keys: tuple[str, ...]) -> str | None:
    """SQLite JSON path for a key chain, or None when SQLite could not address a key exactly.

    SQLite matches a quoted path label against the key's raw text in the stored JSON, so keys that the
    stored text escapes (``"``, ``\\``, control characters) cannot be addressed: those shapes stay in Python.
    """
    parts = ["$"]
    for key in keys:
        if any(ch in key for ch in '"\\') or any(ord(ch) < 0x20 for ch in key):
            return None
        parts.append(f'."{key}"')
    return "".join(parts)


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


@dataclass(frozen=True)
class OrderShape:
    """One ORDER BY shape: paths with directions, scoped to one partition key or not."""

    paths: tuple[tuple[tuple[str, ...], bool], ...]
    scoped: bool

    def key_sql(self) -> list[tuple[str, bool]]:
        """(SQL expression, descending) per index key column, in order; identical text in index and query
        (SQLite only uses an expression index for the very same expression)."""
        out: list[tuple[str, bool]] = []
        for keys, desc in self.paths:
            path = _literal(json_path(keys) or "")
            kind = f"json_type(body, {path})"
            cases = " ".join(f"WHEN '{name}' THEN {rank}" for name, rank in _RANKS)
            out.append((f"(CASE {kind} {cases} ELSE 0 END)", desc))
            value = f"json_extract(body, {path})"
            scalar = f"(CASE WHEN {kind} IN ('array', 'object') THEN NULL ELSE {value} END)"
            out.append((scalar, desc))
        return out

    @property
    def index_name(self) -> str:
        digest = hashlib.sha256(repr((self.paths, self.scoped)).encode()).hexdigest()[:16]
        return _PREFIX + digest

    def index_columns(self) -> str:
        cols = ["coll"] + (["pk"] if self.scoped else [])
        cols += [f"{sql}{' DESC' if desc else ''}" for sql, desc in self.key_sql()]
        return ", ".join([*cols, "seq"])

    def order_by(self) -> str:
        return ", ".join([*(f"{sql}{' DESC' if desc else ''}" for sql, desc in self.key_sql()), "seq"])


_EXACT_DOUBLE = float(2**63)  # beyond int64, SQLite reads JSON integers as (rounded) doubles


def run_key(columns: tuple[Any, ...]) -> tuple[Any, ...]:
    """The part of a row's index key that decides its run: every (rank, value) pair up to and including
    the first one that may stand for several exact values (array/object, or a number too big to be
    exact). Rows equal on that prefix may be in the wrong order by the later pairs, so they form one run
    that the compiler re-sorts with the exact keys; anything after an exact prefix is already right."""
    for i in range(0, len(columns), 2):
        rank, value = columns[i], columns[i + 1]
        if rank >= 5 or (isinstance(value, float) and abs(value) >= _EXACT_DOUBLE):
            return columns[: i + 2]
    return columns


_EXACT_SEEK = float(2**53)  # a seek bound this small compares the same as a double and as an integer


def seek_sql(
    shape: OrderShape, seeks: list[tuple[str, Callable[[dict[str, Any], dict[str, Any]], Any]]],
    params: dict[str, Any],
) -> tuple[str, list[Any]]:
    """Extra WHERE SQL (and its arguments) that starts the ORDER BY index scan at a range bound of its
    first path: ``c.createdAt > @after`` reads from the first row after ``@after`` instead of walking the
    partition from its oldest row. Cosmos compares only within a type (``"a" > 1`` is undefined, so the
    row is refused), hence the rank equality; strings compare by code point, as SQLite's BINARY collation
    does on UTF-8. Bounds it cannot express exactly (other types, huge numbers) add nothing."""
    if not seeks:
        return "", []
    rank_sql, value_sql = (sql for sql, _ in shape.key_sql()[:2])
    parts: list[str] = []
    args: list[Any] = []
    for op, value_expr in seeks:
        value = value_expr({}, params)
        if isinstance(value, str):
            rank = 4
        elif isinstance(value, int | float) and not isinstance(value, bool) and abs(value) < _EXACT_SEEK:
            rank = 3
        else:
            continue
        parts.append(f" AND {rank_sql} = {rank} AND {value_sql} {op} ?")
        args.append(value)
    return "".join(parts), args


def shape_for(order_paths: list[tuple[tuple[str, ...], bool]] | None, scoped: bool) -> OrderShape | None:
    """The index shape for a compiled query's ORDER BY, or None when it must be sorted in Python."""
    if not order_paths or any(json_path(keys) is None for keys, _ in order_paths):
        return None
    return OrderShape(tuple(order_paths), scoped)


class OrderIndexes:
    """Creates expression indexes on first use (they persist in the database file) up to MAX_INDEXES."""

    def __init__(self, db: sqlite3.Connection, limit: int = MAX_INDEXES) -> None:
        self.db = db
        self.limit = limit
        self.known = {
            row[0]
            for row in db.execute(
                "SELECT name FROM sqlite_master WHERE type = 'index' AND name LIKE ?", (_PREFIX + "%",)
            )
        }

    def ensure(self, shape: OrderShape) -> bool:
        """True when the shape's index exists (creating it now if allowed)."""
        name = shape.index_name
        if name in self.known:
            return True
        if len(self.known) >= self.limit or self.db.in_transaction:
            return False
        try:
            self.db.execute(f"CREATE INDEX IF NOT EXISTS {name} ON docs ({shape.index_columns()})")
        except sqlite3.Error:  # e.g. a stored body SQLite's JSON parser refuses: keep sorting in Python
            return False
        self.known.add(name)
        return True
