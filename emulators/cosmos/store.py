"""The state: databases, containers and items in SQLite, with a per-container LSN and change feed.

Why SQLite in WAL mode: each write is one committed transaction before the response leaves. With the
default ``synchronous=NORMAL`` the commit is in the WAL file (the OS has it) when we answer, so an
acknowledged write survives ``kill -9`` of the emulator; ``fsync=True`` selects ``synchronous=FULL`` so it
also survives an OS crash or power loss, at ~1.5 ms per write on this machine (see README).
The store is synchronous and single-threaded by design: the server runs every call on one dedicated
thread (see ``runner.py``), which serialises writes without locks and keeps the event loop free.
"""

from __future__ import annotations

import base64
import json
import sqlite3
import struct
import time
import uuid
from collections.abc import Generator, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import ordered, partition
from .epk import UNDEFINED
from .errors import CosmosError, bad_request, not_found
from .patch import apply_patch
from .query import compile_query

MAX_ITEM_BYTES = 2 * 1024 * 1024
MAX_BATCH_OPERATIONS = 100
MAX_ITEM_ID_BYTES = 1023
FULL_RANGE = ("", "FF")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS dbs (
  id TEXT PRIMARY KEY, seq INTEGER NOT NULL, rid TEXT NOT NULL UNIQUE, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS colls (
  db TEXT NOT NULL, id TEXT NOT NULL, seq INTEGER NOT NULL, rid TEXT NOT NULL UNIQUE, body TEXT NOT NULL,
  lsn INTEGER NOT NULL DEFAULT 0, doc_seq INTEGER NOT NULL DEFAULT 0, last_ts INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (db, id));
CREATE TABLE IF NOT EXISTS docs (
  coll TEXT NOT NULL, pk TEXT NOT NULL, id TEXT NOT NULL, seq INTEGER NOT NULL, lsn INTEGER NOT NULL,
  epk TEXT NOT NULL, ts INTEGER NOT NULL, wts REAL NOT NULL, ttl INTEGER, etag TEXT NOT NULL,
  body TEXT NOT NULL, PRIMARY KEY (coll, pk, id));
CREATE INDEX IF NOT EXISTS docs_by_lsn ON docs (coll, lsn);
CREATE INDEX IF NOT EXISTS docs_by_seq ON docs (coll, seq);
"""

_SYSTEM_PROPS = ("_rid", "_self", "_etag", "_ts", "_attachments", "_lsn")
_INVALID_ID_CHARS = ("/", "\\", "?", "#", "\n", "\r", "\t")


def _rid(raw: bytes) -> str:
    return base64.b64encode(raw).decode().replace("/", "-")


def _etag() -> str:
    return f'"{uuid.uuid4()}"'


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


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


@dataclass
class ItemResult:
    status: int
    body: str | None
    etag: str | None
    lsn: int


@dataclass
class FeedPage:
    """One page of a feed: documents (already serialised), an optional continuation, the container LSN."""

    documents: list[str]
    continuation: str | None
    lsn: int
    etag: str | None = None
    not_modified: bool = False
    rid: str = ""  # the container's _rid, so the protocol layer never touches the store from the loop


def _precondition_failed() -> CosmosError:
    return CosmosError(
        412, "Operation cannot be performed because one of the specified precondition is not met."
    )


def _pk_required() -> CosmosError:
    return bad_request(
        "The partition key header 'x-ms-documentdb-partitionkey' is required for this operation.", 1001
    )


def validate_id(value: Any, max_length: int = 255) -> str:
    """Resource ids: databases and containers up to 255 characters, items up to 1023 (UTF-8 bytes)."""
    if value is None or not isinstance(value, str):
        raise bad_request(
            "The input content is invalid because the required property 'id' is missing or not a string."
        )
    size = len(value.encode("utf-8")) if max_length > 255 else len(value)
    if not value or size > max_length:
        raise bad_request(
            "The 'id' is invalid. Ensure to provide a unique non-empty string less than "
            f"'{max_length + 1 if max_length > 255 else max_length}' characters."
        )
    if value[-1] in " \n\r\t":
        raise bad_request("Id ends with a space or newline.")
    if any(ch in value for ch in _INVALID_ID_CHARS):
        raise bad_request(
            "Id contains illegal chars. It must not contain '/', '\\\\', '?', '#' or control characters."
        )
    return value


def _validate_ttl(value: Any, what: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value == 0 or value < -1:
        raise bad_request(f"The '{what}' value must be -1 (never expire) or a positive integer of seconds.")
    return value


class Store:
    """All persistent state. Not thread-safe on purpose: exactly one thread may call it."""

    def __init__(self, data_dir: Path | None, fsync: bool = False, *, indexed_order: bool = True) -> None:
        self.data_dir = data_dir
        if data_dir is None:
            target = ":memory:"
        else:
            data_dir.mkdir(parents=True, exist_ok=True)
            target = str(data_dir / "cosmos.sqlite3")
        self.db = sqlite3.connect(target, isolation_level=None, check_same_thread=False)
        if data_dir is not None:
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute(f"PRAGMA synchronous={'FULL' if fsync else 'NORMAL'}")
        self.db.executescript(_SCHEMA)
        self._containers: dict[tuple[str, str], Container] = {}
        # Inside a transactional batch every write shares one LSN, as one service transaction does.
        self._pinned_lsn: int | None = None
        # ORDER BY over plain paths streams rows from expression indexes (``ordered.py``); False forces
        # the in-Python sort of the whole scope (kept for equivalence tests and benchmarks).
        self.indexed_order = indexed_order
        self.order_indexes = ordered.OrderIndexes(self.db)
        self.rows_decoded = 0  # documents json-decoded by queries: what the index path saves
        for row in self.db.execute("SELECT db, id, seq, rid, body, lsn, doc_seq, last_ts FROM colls"):
            self._cache_container(Container(row[0], row[1], row[2], row[3], json.loads(row[4]), *row[5:]))

    def close(self) -> None:
        self.db.close()

    # -- helpers ---------------------------------------------------------------------------------

    def _cache_container(self, c: Container) -> None:
        c.pk_parts = partition.split_path(c.body["partitionKey"]["paths"][0])
        self._containers[(c.db, c.id)] = c

    def _next(self, name: str) -> int:
        row = self.db.execute("SELECT v FROM meta WHERE k = ?", (name,)).fetchone()
        value = (row[0] if row else 0) + 1
        self.db.execute("INSERT OR REPLACE INTO meta (k, v) VALUES (?, ?)", (name, value))
        return value

    def _tx(self) -> _Transaction:
        return _Transaction(self.db)

    def container(self, db: str, coll: str) -> Container:
        c = self._containers.get((db, coll))
        if c is None:
            if self.db.execute("SELECT 1 FROM dbs WHERE id = ?", (db,)).fetchone() is None:
                raise not_found(f"Owner resource does not exist: database '{db}'.", 1003)
            raise not_found(f"Resource Not Found: container '{coll}' does not exist in database '{db}'.")
        return c

    def _expired(self, c: Container, wts: float, ttl: int | None, now: float) -> bool:
        default = c.default_ttl
        if default is None:
            return False
        effective = ttl if ttl is not None else default
        return effective > 0 and wts + effective <= now

    # -- databases -------------------------------------------------------------------------------

    def create_database(self, body: dict[str, Any]) -> dict[str, Any]:
        db_id = validate_id(body.get("id"))
        with self._tx():
            if self.db.execute("SELECT 1 FROM dbs WHERE id = ?", (db_id,)).fetchone():
                raise CosmosError(
                    409, f"Resource with specified id or name already exists: database '{db_id}'."
                )
            seq = self._next("db_seq")
            rid = _rid(struct.pack("<I", seq))
            doc = {
                "id": db_id,
                "_rid": rid,
                "_self": f"dbs/{rid}/",
                "_etag": _etag(),
                "_colls": "colls/",
                "_users": "users/",
                "_ts": int(time.time()),
            }
            self.db.execute(
                "INSERT INTO dbs (id, seq, rid, body) VALUES (?, ?, ?, ?)", (db_id, seq, rid, _dumps(doc))
            )
        return doc

    def get_database(self, db_id: str) -> dict[str, Any]:
        row = self.db.execute("SELECT body FROM dbs WHERE id = ?", (db_id,)).fetchone()
        if row is None:
            raise not_found(f"Resource Not Found: database '{db_id}' does not exist.")
        return json.loads(row[0])

    def list_databases(self) -> list[dict[str, Any]]:
        return [json.loads(r[0]) for r in self.db.execute("SELECT body FROM dbs ORDER BY seq")]

    def delete_database(self, db_id: str) -> None:
        self.get_database(db_id)
        with self._tx():
            rids = [r[0] for r in self.db.execute("SELECT rid FROM colls WHERE db = ?", (db_id,))]
            for rid in rids:
                self.db.execute("DELETE FROM docs WHERE coll = ?", (rid,))
            self.db.execute("DELETE FROM colls WHERE db = ?", (db_id,))
            self.db.execute("DELETE FROM dbs WHERE id = ?", (db_id,))
        for key in [k for k in self._containers if k[0] == db_id]:
            del self._containers[key]

    # -- containers ------------------------------------------------------------------------------

    def _check_container_body(self, body: dict[str, Any]) -> dict[str, Any]:
        pk = body.get("partitionKey")
        if pk is None:
            raise bad_request(
                "The 'partitionKey' definition is required: "
                "the emulator has no legacy non-partitioned containers."
            )
        if not isinstance(pk, dict) or not isinstance(pk.get("paths"), list) or not pk["paths"]:
            raise bad_request("'partitionKey.paths' must be a non-empty array of paths such as [\"/pk\"].")
        kind = pk.get("kind", "Hash")
        if kind == "MultiHash" or len(pk["paths"]) > 1:
            raise bad_request(
                "Hierarchical partition keys (kind 'MultiHash') are not supported by the emulator."
            )
        if kind != "Hash":
            raise bad_request(f"Partition key kind '{kind}' is not supported; use 'Hash'.")
        version = pk.get("version", 1)
        if version not in (1, 2):
            raise bad_request("'partitionKey.version' must be 1 or 2.")
        partition.split_path(pk["paths"][0])
        _validate_ttl(body.get("defaultTtl"), "defaultTtl")
        return body

    def create_container(self, db_id: str, body: dict[str, Any]) -> dict[str, Any]:
        coll_id = validate_id(body.get("id"))
        self._check_container_body(body)
        db = self.get_database(db_id)
        with self._tx():
            if (db_id, coll_id) in self._containers:
                raise CosmosError(
                    409, f"Resource with specified id or name already exists: container '{coll_id}'."
                )
            seq = self._next("coll_seq")
            db_raw = base64.b64decode(db["_rid"].replace("-", "/"))
            rid = _rid(db_raw + struct.pack(">I", 0x80000000 | seq))
            doc = dict(body)
            doc.setdefault(
                "indexingPolicy",
                {
                    "indexingMode": "consistent",
                    "automatic": True,
                    "includedPaths": [{"path": "/*"}],
                    "excludedPaths": [{"path": '/"_etag"/?'}],
                },
            )
            doc["partitionKey"] = {"kind": "Hash", "version": 2, **body["partitionKey"]}
            doc.update(
                {
                    "_rid": rid,
                    "_self": f"dbs/{db['_rid']}/colls/{rid}/",
                    "_etag": _etag(),
                    "_ts": int(time.time()),
                    "_docs": "docs/",
                    "_sprocs": "sprocs/",
                    "_triggers": "triggers/",
                    "_udfs": "udfs/",
                    "_conflicts": "conflicts/",
                }
            )
            self.db.execute(
                "INSERT INTO colls (db, id, seq, rid, body) VALUES (?, ?, ?, ?, ?)",
                (db_id, coll_id, seq, rid, _dumps(doc)),
            )
        self._cache_container(Container(db_id, coll_id, seq, rid, doc, 0, 0, 0))
        return doc

    def get_container(self, db_id: str, coll_id: str) -> dict[str, Any]:
        return self.container(db_id, coll_id).body

    def list_containers(self, db_id: str) -> list[dict[str, Any]]:
        self.get_database(db_id)
        return [c.body for c in sorted(self._containers.values(), key=lambda c: c.seq) if c.db == db_id]

    def replace_container(self, db_id: str, coll_id: str, body: dict[str, Any]) -> dict[str, Any]:
        c = self.container(db_id, coll_id)
        if body.get("id") != coll_id:
            raise bad_request("The 'id' in the body must match the container being replaced.")
        self._check_container_body(body)
        if body["partitionKey"].get("paths") != c.body["partitionKey"]["paths"]:
            raise bad_request("The partition key of an existing container cannot be changed.")
        doc = {k: v for k, v in body.items() if not k.startswith("_")}
        for k, v in c.body.items():
            if k.startswith("_"):
                doc[k] = v
        doc["partitionKey"] = c.body["partitionKey"]
        doc.setdefault("indexingPolicy", c.body.get("indexingPolicy"))
        doc["_etag"] = _etag()
        doc["_ts"] = int(time.time())
        with self._tx():
            self.db.execute("UPDATE colls SET body = ? WHERE rid = ?", (_dumps(doc), c.rid))
        c.body = doc
        return doc

    def delete_container(self, db_id: str, coll_id: str) -> None:
        c = self.container(db_id, coll_id)
        with self._tx():
            self.db.execute("DELETE FROM docs WHERE coll = ?", (c.rid,))
            self.db.execute("DELETE FROM colls WHERE rid = ?", (c.rid,))
        del self._containers[(db_id, coll_id)]

    # -- items -----------------------------------------------------------------------------------

    def _pk_for_write(self, c: Container, doc: dict[str, Any], header: list[Any] | None) -> list[Any]:
        from_doc = partition.from_document(doc, c.pk_parts)
        if header is not None and partition.canonical(header) != partition.canonical(from_doc):
            raise bad_request(
                "PartitionKey extracted from document doesn't match the one specified in the header.", 1001
            )
        return from_doc

    def _existing(self, c: Container, pk_key: str, item_id: str, now: float) -> tuple[Any, ...] | None:
        row = self.db.execute(
            "SELECT seq, etag, wts, ttl, body FROM docs WHERE coll = ? AND pk = ? AND id = ?",
            (c.rid, pk_key, item_id),
        ).fetchone()
        if row is not None and self._expired(c, row[2], row[3], now):
            self.db.execute("DELETE FROM docs WHERE coll = ? AND pk = ? AND id = ?", (c.rid, pk_key, item_id))
            return None
        return row

    def _write(
        self, c: Container, doc: dict[str, Any], pk: list[Any], seq: int | None, now: float
    ) -> tuple[str, str, int]:
        """Stamp system properties, store the row and advance the container LSN (inside a transaction)."""
        if "ttl" in doc and doc["ttl"] is None:
            raise bad_request("The 'ttl' value must be -1 (never expire) or a positive integer of seconds.")
        ttl = _validate_ttl(doc.get("ttl"), "ttl")
        lsn = self._pinned_lsn or c.lsn + 1
        ts = max(int(now), c.last_ts)
        new_seq = seq
        doc_seq = c.doc_seq
        if new_seq is None:
            doc_seq += 1
            new_seq = doc_seq
        coll_raw = base64.b64decode(c.rid.replace("-", "/"))
        rid = _rid(coll_raw + struct.pack(">Q", new_seq))
        etag = _etag()
        for key in _SYSTEM_PROPS:
            doc.pop(key, None)
        doc.update(
            {
                "_rid": rid,
                "_self": f"{c.self_link}docs/{rid}/",
                "_etag": etag,
                "_attachments": "attachments/",
                "_ts": ts,
                "_lsn": lsn,
            }
        )
        body = _dumps(doc)
        if len(body.encode()) > MAX_ITEM_BYTES:
            raise CosmosError(413, "Request size is too large: an item may be at most 2 MB (2097152 bytes).")
        if "\\u0000" in body:  # see _has_nul_strings (errs on the safe side for a literal backslash-u0000)
            self.db.execute("INSERT OR REPLACE INTO meta (k, v) VALUES (?, 1)", (f"nul:{c.rid}",))
        self.db.execute(
            "INSERT OR REPLACE INTO docs (coll, pk, id, seq, lsn, epk, ts, wts, ttl, etag, body) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                c.rid,
                partition.canonical(pk),
                doc["id"],
                new_seq,
                lsn,
                partition.epk(pk),
                ts,
                now,
                ttl,
                etag,
                body,
            ),
        )
        self.db.execute(
            "UPDATE colls SET lsn = ?, doc_seq = ?, last_ts = ? WHERE rid = ?", (lsn, doc_seq, ts, c.rid)
        )
        return body, etag, lsn

    def upsert_item(
        self,
        db_id: str,
        coll_id: str,
        doc: dict[str, Any],
        pk_header: list[Any] | None,
        *,
        upsert: bool,
        if_match: str | None = None,
        if_none_match: str | None = None,
    ) -> ItemResult:
        c = self.container(db_id, coll_id)
        item_id, pk, pk_key = self._checked_write(c, doc, pk_header)
        now = time.time()
        with self._tx():
            row = self._existing(c, pk_key, item_id, now)
            if row is not None and (not upsert or if_none_match == "*"):
                raise CosmosError(
                    409, f"Entity with the specified id already exists in the system. id '{item_id}'."
                )
            if row is not None and if_match not in (None, "*") and if_match != row[1]:
                raise _precondition_failed()
            if row is None and if_match not in (None,) and upsert:
                raise _precondition_failed()
            doc_seq_before = c.doc_seq
            body, etag, lsn = self._write(c, doc, pk, row[0] if row else None, now)
        c.lsn = lsn
        c.last_ts = doc["_ts"]
        if row is None:
            c.doc_seq = doc_seq_before + 1
        return ItemResult(200 if row is not None else 201, body, etag, lsn)

    def _checked_write(
        self, c: Any, doc: Any, pk_header: list[Any] | None
    ) -> tuple[str, Any, str]:
        """Every write checks the body, the id and the partition key the same way, before any SQL runs."""
        if not isinstance(doc, dict):
            raise bad_request("The request body must be a JSON object.")
        item_id = validate_id(doc.get("id"), MAX_ITEM_ID_BYTES)
        pk = self._pk_for_write(c, doc, pk_header)
        return item_id, pk, partition.canonical(pk)

    def replace_item(
        self,
        db_id: str,
        coll_id: str,
        item_id: str,
        doc: dict[str, Any],
        pk_header: list[Any] | None,
        if_match: str | None,
    ) -> ItemResult:
        c = self.container(db_id, coll_id)
        new_id, pk, pk_key = self._checked_write(c, doc, pk_header)
        now = time.time()
        with self._tx():
            row = self._existing(c, pk_key, item_id, now)
            if row is None:
                raise not_found(f"Entity with the specified id does not exist in the system. id '{item_id}'.")
            if if_match not in (None, "*") and if_match != row[1]:
                raise _precondition_failed()
            if new_id != item_id:
                # The service lets a replace rename an item (same _rid); the new id must be free.
                if self._existing(c, pk_key, new_id, now) is not None:
                    raise CosmosError(
                        409, f"Entity with the specified id already exists in the system. id '{new_id}'."
                    )
                self.db.execute(
                    "DELETE FROM docs WHERE coll = ? AND pk = ? AND id = ?", (c.rid, pk_key, item_id)
                )
            body, etag, lsn = self._write(c, doc, pk, row[0], now)
        c.lsn = lsn
        c.last_ts = doc["_ts"]
        return ItemResult(200, body, etag, lsn)

    def patch_item(
        self,
        db_id: str,
        coll_id: str,
        item_id: str,
        pk_header: list[Any] | None,
        patch: Any,
        if_match: str | None,
    ) -> ItemResult:
        c = self.container(db_id, coll_id)
        if pk_header is None:
            raise bad_request("The partition key header is required for patch.", 1001)
        if not isinstance(patch, dict) or not isinstance(patch.get("operations"), list):
            raise bad_request("The patch body must be an object with an 'operations' array.")
        condition = patch.get("condition")
        now = time.time()
        with self._tx():
            row = self._existing(c, partition.canonical(pk_header), item_id, now)
            if row is None:
                raise not_found(f"Entity with the specified id does not exist in the system. id '{item_id}'.")
            if if_match not in (None, "*") and if_match != row[1]:
                raise _precondition_failed()
            doc = json.loads(row[4])
            if condition is not None:
                if not isinstance(condition, str) or not condition.strip().lower().startswith("from"):
                    raise bad_request("The patch 'condition' must be a filter of the form 'FROM c WHERE …'.")
                predicate = compile_query("SELECT * " + condition)
                if not predicate.execute([doc], {}):
                    raise CosmosError(412, "Precondition of the patch condition is not met.")
            protected = {"/id", "/" + "/".join(c.pk_parts)}
            new_doc = apply_patch(doc, patch["operations"], protected)
            body, etag, lsn = self._write(c, new_doc, pk_header, row[0], now)
        c.lsn = lsn
        c.last_ts = new_doc["_ts"]
        return ItemResult(200, body, etag, lsn)

    def read_item(self, db_id: str, coll_id: str, item_id: str, pk_header: list[Any] | None) -> ItemResult:
        c = self.container(db_id, coll_id)
        if pk_header is None:
            raise _pk_required()
        row = self.db.execute(
            "SELECT etag, wts, ttl, body FROM docs WHERE coll = ? AND pk = ? AND id = ?",
            (c.rid, partition.canonical(pk_header), item_id),
        ).fetchone()
        if row is None or self._expired(c, row[1], row[2], time.time()):
            raise not_found(f"Entity with the specified id does not exist in the system. id '{item_id}'.")
        return ItemResult(200, row[3], row[0], c.lsn)

    def delete_item(
        self, db_id: str, coll_id: str, item_id: str, pk_header: list[Any] | None, if_match: str | None
    ) -> ItemResult:
        c = self.container(db_id, coll_id)
        if pk_header is None:
            raise _pk_required()
        pk_key = partition.canonical(pk_header)
        with self._tx():
            row = self._existing(c, pk_key, item_id, time.time())
            if row is None:
                raise not_found(f"Entity with the specified id does not exist in the system. id '{item_id}'.")
            if if_match not in (None, "*") and if_match != row[1]:
                raise _precondition_failed()
            self.db.execute("DELETE FROM docs WHERE coll = ? AND pk = ? AND id = ?", (c.rid, pk_key, item_id))
            lsn = self._pinned_lsn or c.lsn + 1
            self.db.execute("UPDATE colls SET lsn = ? WHERE rid = ?", (lsn, c.rid))
        c.lsn = lsn
        return ItemResult(204, None, None, lsn)

    def resolve_rids(self, seg: list[str]) -> list[str]:
        """Translate a RID-addressed path (``dbs/<rid>/colls/<rid>/docs/<rid>``) to names."""
        out = list(seg)
        row = self.db.execute("SELECT id FROM dbs WHERE rid = ?", (seg[1],)).fetchone()
        if row is None:
            return out
        out[1] = row[0]
        if len(seg) >= 4 and seg[2] == "colls":
            crow = self.db.execute("SELECT id FROM colls WHERE rid = ?", (seg[3],)).fetchone()
            if crow is not None:
                out[3] = crow[0]
                if len(seg) >= 6 and seg[4] == "docs":
                    try:
                        raw = base64.b64decode(seg[5].replace("-", "/"))
                    except ValueError:
                        return out
                    if len(raw) == 16:
                        drow = self.db.execute(
                            "SELECT id FROM docs WHERE coll = ? AND seq = ?",
                            (seg[3], struct.unpack(">Q", raw[8:])[0]),
                        ).fetchone()
                        if drow is not None:
                            out[5] = drow[0]
        return out

    def delete_partition(self, db_id: str, coll_id: str, pk: list[Any] | None) -> int:
        """Delete every item of one logical partition (``delete_all_items_by_partition_key``)."""
        c = self.container(db_id, coll_id)
        if pk is None:
            raise _pk_required()
        with self._tx():
            self.db.execute("DELETE FROM docs WHERE coll = ? AND pk = ?", (c.rid, partition.canonical(pk)))
            lsn = self._pinned_lsn or c.lsn + 1
            self.db.execute("UPDATE colls SET lsn = ? WHERE rid = ?", (lsn, c.rid))
        c.lsn = lsn
        return lsn

    def batch(
        self, db_id: str, coll_id: str, pk_header: list[Any] | None, operations: Any
    ) -> tuple[int, list[dict[str, Any]], int]:
        """Transactional batch: all operations commit together or none does.

        Returns (HTTP status, per-operation results, LSN): 200 when all succeed; otherwise 207 with the
        failing operation's status and 424 (failed dependency) for every other one, and nothing written.
        """
        c = self.container(db_id, coll_id)
        if pk_header is None:
            raise _pk_required()
        if not isinstance(operations, list) or not operations:
            raise bad_request("Batch request has no operations.")
        if len(operations) > MAX_BATCH_OPERATIONS:
            raise bad_request(
                "Batch request has more operations than what is supported. "
                f"The limit is {MAX_BATCH_OPERATIONS}."
            )
        saved = (c.lsn, c.doc_seq, c.last_ts)
        results: list[dict[str, Any]] = []
        failed: tuple[int, CosmosError] | None = None
        self._pinned_lsn = c.lsn + 1
        try:
            with self._tx():
                for i, op in enumerate(operations):
                    try:
                        results.append(self._batch_operation(db_id, coll_id, pk_header, op))
                    except CosmosError as err:
                        failed = (i, err)
                        raise _BatchAborted from err
        except _BatchAborted:
            pass
        finally:
            self._pinned_lsn = None
        if failed is None:
            return 200, results, c.lsn
        c.lsn, c.doc_seq, c.last_ts = saved
        index, err = failed
        out = [{"statusCode": 424, "requestCharge": 0} for _ in operations]
        out[index] = {"statusCode": err.status, "requestCharge": 0, "message": err.message}
        if err.substatus is not None:
            out[index]["subStatusCode"] = err.substatus
        return 207, out, c.lsn

    def _batch_operation(self, db_id: str, coll_id: str, pk: list[Any], op: Any) -> dict[str, Any]:
        if not isinstance(op, dict):
            raise bad_request("Each batch operation must be an object.")
        kind = str(op.get("operationType", ""))
        body = op.get("resourceBody")
        if_match, if_none_match = op.get("ifMatch"), op.get("ifNoneMatch")
        if kind in ("Create", "Upsert"):
            result = self.upsert_item(
                db_id,
                coll_id,
                body,
                pk,
                upsert=kind == "Upsert",
                if_match=if_match,
                if_none_match="*" if kind == "Create" else if_none_match,
            )
        elif kind == "Replace":
            result = self.replace_item(db_id, coll_id, str(op.get("id")), body, pk, if_match)
        elif kind == "Patch":
            result = self.patch_item(db_id, coll_id, str(op.get("id")), pk, body, if_match)
        elif kind == "Read":
            result = self.read_item(db_id, coll_id, str(op.get("id")), pk)
            if if_none_match is not None and if_none_match == result.etag:
                return {"statusCode": 304, "requestCharge": 1, "eTag": result.etag}
        elif kind == "Delete":
            result = self.delete_item(db_id, coll_id, str(op.get("id")), pk, if_match)
        else:
            raise bad_request(
                f"Batch operationType '{kind}' is not one of Create, Upsert, Replace, Patch, Read, Delete."
            )
        out: dict[str, Any] = {"statusCode": result.status, "requestCharge": 1}
        if result.etag:
            out["eTag"] = result.etag
        if result.body is not None:
            out["resourceBody"] = json.loads(result.body)
        return out

    # -- feeds -----------------------------------------------------------------------------------

    def _scope_sql(
        self, c: Container, pk: list[Any] | None, epk_range: tuple[str, str] | None
    ) -> tuple[str, list[Any]]:
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

    def _live(self, c: Container, rows: Iterable[tuple[Any, ...]], now: float) -> Iterator[tuple[Any, ...]]:
        """Rows whose TTL has not run out (wts, ttl are the first two columns)."""
        if c.default_ttl is None:
            yield from rows
            return
        for row in rows:
            if not self._expired(c, row[0], row[1], now):
                yield row

    def read_feed(
        self,
        db_id: str,
        coll_id: str,
        pk: list[Any] | None,
        epk_range: tuple[str, str] | None,
        max_items: int,
        continuation: str | None,
    ) -> FeedPage:
        c = self.container(db_id, coll_id)
        where, args = self._scope_sql(c, pk, epk_range)
        after = 0
        if continuation:
            try:
                after = int(continuation)
            except ValueError:
                raise bad_request(f"The continuation token '{continuation[:60]}' is malformed.") from None
        limit = max_items if max_items > 0 else -1
        rows = self.db.execute(
            f"SELECT wts, ttl, seq, body FROM docs WHERE {where} AND seq > ? ORDER BY seq LIMIT ?",  # noqa: S608
            (*args, after, limit + 1 if limit > 0 else -1),
        ).fetchall()
        more = limit > 0 and len(rows) > limit
        rows = rows[:limit] if limit > 0 else rows
        docs = [r[3] for r in self._live(c, rows, time.time())]
        return FeedPage(docs, str(rows[-1][2]) if more else None, c.lsn, rid=c.rid)

    def query(
        self,
        db_id: str,
        coll_id: str,
        text: str,
        params: dict[str, Any],
        pk: list[Any] | None,
        epk_range: tuple[str, str] | None,
        max_items: int,
        continuation: str | None,
    ) -> FeedPage:
        c = self.container(db_id, coll_id)
        compiled = compile_query(text)
        if pk is None and compiled.aggregates and not compiled.aggregate_value:
            # A real account answers this through the SDK's query-plan path, which refuses it.
            raise bad_request(
                "Cross-partition aggregates must use SELECT VALUE (e.g. SELECT VALUE COUNT(1) FROM c); "
                "non-VALUE aggregates need a partition key."
            )
        where, args = self._scope_sql(c, pk, epk_range)
        shape = None
        if self.indexed_order and not self._has_nul_strings(c):
            shape = ordered.shape_for(compiled.order_paths, pk is not None)
        if shape is not None and self.order_indexes.ensure(shape):
            start = _page_start(continuation)
            bound = compiled.result_bound(params, start + max_items + 1 if max_items > 0 else None)
            seek_where, seek_args = ordered.seek_sql(shape, compiled.order_seeks, params)
            groups = self._ordered_groups(c, shape, where + seek_where, args + seek_args)
            try:
                results: list[Any] | None = compiled.run_ordered(groups, params, bound)
            except sqlite3.Error:  # the planner refused the index (INDEXED BY) or SQLite could not read
                results = None  # a body: answer the same thing the slow way
            finally:
                groups.close()
            if results is not None:
                page = paginate([_dumps(r) for r in results], max_items, continuation, c.lsn)
                page.rid = c.rid
                return page
        if compiled.streamable and max_items > 0:
            return self._stream_page(c, compiled, params, where, args, max_items, continuation)
        rows = self.db.execute(
            f"SELECT wts, ttl, body FROM docs WHERE {where} ORDER BY seq",  # noqa: S608 - fixed fragments
            args,
        ).fetchall()
        docs = [json.loads(r[2]) for r in self._live(c, rows, time.time())]
        self.rows_decoded += len(docs)
        results = compiled.execute(docs, params, cross_partition=pk is None)
        page = paginate([_dumps(r) for r in results], max_items, continuation, c.lsn)
        page.rid = c.rid
        return page

    def _stream_page(
        self,
        c: Container,
        compiled: Any,
        params: dict[str, Any],
        where: str,
        args: list[Any],
        max_items: int,
        continuation: str | None,
    ) -> FeedPage:
        """A page of a filter-and-project query (no ORDER BY, aggregate, DISTINCT, TOP/OFFSET or JOIN),
        resumed after the last document the previous page read: the token is that document's insertion
        order, so reading a container page by page costs each document once, not once per page (a
        55,000-message read-back took many minutes when every page re-ran the query from the start)."""
        after = _seq_after(continuation)
        cursor = self.db.execute(
            f"SELECT wts, ttl, body, seq FROM docs WHERE {where} AND seq > ? ORDER BY seq",  # noqa: S608
            [*args, after],
        )
        results: list[str] = []
        last_seq, more, now = after, False, time.time()
        try:
            while not more and (batch := cursor.fetchmany(256)):
                live = {id(row) for row in self._live(c, batch, now)}
                for row in batch:
                    if len(results) >= max_items:  # full, and another document follows: not the end
                        more = True
                        break
                    last_seq = row[3]
                    if id(row) in live:
                        self.rows_decoded += 1
                        results.extend(_dumps(r) for r in compiled.execute([json.loads(row[2])], params))
        finally:
            cursor.close()
        token = base64.b64encode(_dumps({"seq": last_seq}).encode()).decode() if more else None
        page = FeedPage(results, token, c.lsn)
        page.rid = c.rid
        return page

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
                for row in self._live(c, batch, now):
                    row_key = ordered.run_key(row[3:])
                    if group and row_key != key:
                        yield group
                        group = []
                    key = row_key
                    self.rows_decoded += 1
                    group.append(json.loads(row[2]))
            if group:
                yield group
        finally:
            cursor.close()

    def change_feed(
        self,
        db_id: str,
        coll_id: str,
        *,
        after_lsn: int | None,
        since_ts: int | None,
        pk: list[Any] | None,
        epk_range: tuple[str, str] | None,
        max_items: int,
    ) -> FeedPage:
        """Latest version of each changed item with ``lsn > after_lsn`` (None = now), in LSN order."""
        c = self.container(db_id, coll_id)
        if after_lsn is None:
            return FeedPage([], None, c.lsn, etag=f'"{c.lsn}"', not_modified=True, rid=c.rid)
        where, args = self._scope_sql(c, pk, epk_range)
        where += " AND lsn > ?"
        args.append(after_lsn)
        if since_ts is not None:
            where += " AND ts >= ?"
            args.append(since_ts)
        limit = max_items if max_items > 0 else -1
        rows = self.db.execute(
            f"SELECT wts, ttl, lsn, body FROM docs WHERE {where} ORDER BY lsn LIMIT ?",  # noqa: S608
            (*args, limit),
        ).fetchall()
        full = limit > 0 and len(rows) == limit
        if full:
            # Never split the writes of one LSN (a batch) across pages: the next page starts after it.
            last_lsn = rows[-1][2]
            rows = [r for r in rows if r[2] < last_lsn] + self.db.execute(
                f"SELECT wts, ttl, lsn, body FROM docs WHERE {where} AND lsn = ? ORDER BY seq",  # noqa: S608
                (*args, last_lsn),
            ).fetchall()
        live = list(self._live(c, rows, time.time()))
        if full:  # more may follow: a 200 (even if every row had expired) keeps the SDK reading
            return FeedPage([r[3] for r in live], None, c.lsn, etag=f'"{rows[-1][2]}"', rid=c.rid)
        if not live:
            last = max(c.lsn, after_lsn)
            return FeedPage([], None, c.lsn, etag=f'"{last}"', not_modified=True, rid=c.rid)
        return FeedPage([r[3] for r in live], None, c.lsn, etag=f'"{live[-1][2]}"', rid=c.rid)

    # -- account-level queries (query_databases / query_containers) -------------------------------

    def query_resources(
        self,
        resources: list[dict[str, Any]],
        text: str,
        params: dict[str, Any],
        max_items: int,
        continuation: str | None,
    ) -> FeedPage:
        results = compile_query(text).execute(resources, params)
        return paginate([_dumps(r) for r in results], max_items, continuation, 0)


def paginate(serialised: list[str], max_items: int, continuation: str | None, lsn: int) -> FeedPage:
    """Offset paging over a computed result (at least one item past the page when more exist); the
    token is opaque to the SDK and survives restarts."""
    start = _page_start(continuation)
    end = len(serialised) if max_items <= 0 else start + max_items
    token = None
    if end < len(serialised):
        token = base64.b64encode(_dumps({"offset": end}).encode()).decode()
    return FeedPage(serialised[start:end], token, lsn)


def _seq_after(continuation: str | None) -> int:
    if not continuation:
        return -1
    try:
        return int(json.loads(base64.b64decode(continuation))["seq"])
    except (ValueError, KeyError, TypeError):
        raise bad_request(f"The continuation token '{continuation[:60]}' is malformed.") from None


def _page_start(continuation: str | None) -> int:
    if not continuation:
        return 0
    try:
        start = int(json.loads(base64.b64decode(continuation))["offset"])
    except (ValueError, KeyError, TypeError):
        raise bad_request(f"The continuation token '{continuation[:60]}' is malformed.") from None
    if start < 0:
        raise bad_request(f"The continuation token '{continuation[:60]}' is malformed.")
    return start


class _BatchAborted(Exception):
    """Unwinds a batch's transaction (rollback) after one operation failed."""


class _Transaction:
    """One SQLite transaction; nested uses join the outer one (a batch runs item operations inside it)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db
        self.outer = False

    def __enter__(self) -> None:
        if not self.db.in_transaction:
            self.outer = True
            self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if not self.outer:
            return
        if exc_type is None:
            self.db.execute("COMMIT")
        else:
            self.db.execute("ROLLBACK")


__all__ = ["UNDEFINED", "FeedPage", "ItemResult", "Store"]
