"""The state: databases, containers and items in SQLite, with a per-container LSN and change feed.

Why SQLite in WAL mode: each write is one committed transaction before the response leaves. With the
default ``synchronous=NORMAL`` the commit is in the WAL file (the OS has it) when we answer, so an
acknowledged write survives ``kill -9`` of the emulator; ``fsync=True`` selects ``synchronous=FULL`` so it
also survives an OS crash or power loss, at ~1.5 ms per write on this machine (see README).
The store is synchronous and single-threaded by design: the server runs every call on one dedicated
thread (``server.StoreRunner``), which serialises writes without locks and keeps the event loop free.
"""

from __future__ import annotations

import base64
import json
import sqlite3
import struct
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import feeds, partition
from .containers import Container, expired
from .epk import UNDEFINED
from .errors import CosmosError, bad_request, not_found
from .pages import FeedPage, dumps
from .patch import apply_patch
from .queries import QueryEngine
from .query import compile_query

MAX_ITEM_BYTES = 2 * 1024 * 1024
MAX_BATCH_OPERATIONS = 100
MAX_ITEM_ID_BYTES = 1023

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


@dataclass
class ItemResult:
    status: int
    body: str | None
    etag: str | None
    lsn: int


def check_if_match(if_match: str | None, etag: str) -> None:
    """The one If-Match rule of every item write: absent or ``*`` matches, else the etag must be equal."""
    if if_match not in (None, "*") and if_match != etag:
        raise _precondition_failed()


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
        self.db.row_factory = sqlite3.Row  # every column is read by name
        if data_dir is not None:
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute(f"PRAGMA synchronous={'FULL' if fsync else 'NORMAL'}")
        self.db.executescript(_SCHEMA)
        self._containers: dict[tuple[str, str], Container] = {}
        # Inside a transactional batch every write shares one LSN, as one service transaction does.
        self._pinned_lsn: int | None = None
        self.queries = QueryEngine(self.db, indexed_order)
        for row in self.db.execute("SELECT db, id, seq, rid, body, lsn, doc_seq, last_ts FROM colls"):
            self._cache_container(Container(**{**dict(row), "body": json.loads(row["body"])}))

    def close(self) -> None:
        self.db.close()

    # -- helpers ---------------------------------------------------------------------------------

    def _cache_container(self, c: Container) -> None:
        c.pk_parts = partition.split_path(c.body["partitionKey"]["paths"][0])
        self._containers[(c.db, c.id)] = c

    def _next(self, name: str) -> int:
        row = self.db.execute("SELECT v FROM meta WHERE k = ?", (name,)).fetchone()
        value = (row["v"] if row else 0) + 1
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
                "INSERT INTO dbs (id, seq, rid, body) VALUES (?, ?, ?, ?)", (db_id, seq, rid, dumps(doc))
            )
        return doc

    def get_database(self, db_id: str) -> dict[str, Any]:
        row = self.db.execute("SELECT body FROM dbs WHERE id = ?", (db_id,)).fetchone()
        if row is None:
            raise not_found(f"Resource Not Found: database '{db_id}' does not exist.")
        return json.loads(row["body"])

    def list_databases(self) -> list[dict[str, Any]]:
        return [json.loads(r["body"]) for r in self.db.execute("SELECT body FROM dbs ORDER BY seq")]

    def delete_database(self, db_id: str) -> None:
        self.get_database(db_id)
        with self._tx():
            rids = [r["rid"] for r in self.db.execute("SELECT rid FROM colls WHERE db = ?", (db_id,))]
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
                (db_id, coll_id, seq, rid, dumps(doc)),
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
            self.db.execute("UPDATE colls SET body = ? WHERE rid = ?", (dumps(doc), c.rid))
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
        if row is not None and expired(c, row["wts"], row["ttl"], now):
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
        body = dumps(doc)
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
            if row is not None:
                check_if_match(if_match, row["etag"])
            elif if_match is not None and upsert:
                raise _precondition_failed()
            doc_seq_before = c.doc_seq
            body, etag, lsn = self._write(c, doc, pk, row["seq"] if row else None, now)
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
            check_if_match(if_match, row["etag"])
            if new_id != item_id:
                # The service lets a replace rename an item (same _rid); the new id must be free.
                if self._existing(c, pk_key, new_id, now) is not None:
                    raise CosmosError(
                        409, f"Entity with the specified id already exists in the system. id '{new_id}'."
                    )
                self.db.execute(
                    "DELETE FROM docs WHERE coll = ? AND pk = ? AND id = ?", (c.rid, pk_key, item_id)
                )
            body, etag, lsn = self._write(c, doc, pk, row["seq"], now)
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
            check_if_match(if_match, row["etag"])
            doc = json.loads(row["body"])
            if condition is not None:
                if not isinstance(condition, str) or not condition.strip().lower().startswith("from"):
                    raise bad_request("The patch 'condition' must be a filter of the form 'FROM c WHERE …'.")
                predicate = compile_query("SELECT * " + condition)
                if not predicate.execute([doc], {}):
                    raise CosmosError(412, "Precondition of the patch condition is not met.")
            protected = {"/id", "/" + "/".join(c.pk_parts)}
            new_doc = apply_patch(doc, patch["operations"], protected)
            body, etag, lsn = self._write(c, new_doc, pk_header, row["seq"], now)
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
        if row is None or expired(c, row["wts"], row["ttl"], time.time()):
            raise not_found(f"Entity with the specified id does not exist in the system. id '{item_id}'.")
        return ItemResult(200, row["body"], row["etag"], c.lsn)

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
            check_if_match(if_match, row["etag"])
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
        out[1] = row["id"]
        if len(seg) >= 4 and seg[2] == "colls":
            crow = self.db.execute("SELECT id FROM colls WHERE rid = ?", (seg[3],)).fetchone()
            if crow is not None:
                out[3] = crow["id"]
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
                            out[5] = drow["id"]
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

    # -- feeds and queries (feeds.py, queries.py) ------------------------------------------------

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
        return feeds.read_feed(self.db, c, pk, epk_range, max_items, continuation)

    def change_feed(self, db_id: str, coll_id: str, **options: Any) -> FeedPage:
        return feeds.change_feed(self.db, self.container(db_id, coll_id), **options)

    def query(self, db_id: str, coll_id: str, *args: Any) -> FeedPage:
        """See ``QueryEngine.query`` for the arguments."""
        return self.queries.query(self.container(db_id, coll_id), *args)

    def query_resources(self, *args: Any) -> FeedPage:
        return self.queries.query_resources(*args)


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
