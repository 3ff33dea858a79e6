"""Index-backed ORDER BY (``emulators/cosmos/ordered.py``): same answers as the in-Python sort, from an
index, reading only as many documents as the page needs."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from emulators.cosmos import ordered
from emulators.cosmos.errors import CosmosError
from emulators.cosmos.query import compile_query
from emulators.cosmos.server import parse_json_body
from emulators.cosmos.store import Store

DB, COLL = "db", "c"
PARTITIONS = ["p0", "p1", "p2"]


def _value(rng: random.Random) -> Any:
    """A mix that exercises every rank and the index's lossy spots (huge ints, 1 vs 1.0, -0.0 vs 0)."""
    return rng.choice(
        [
            lambda: None,
            lambda: True,
            lambda: False,
            lambda: rng.randint(-3, 3),
            lambda: rng.choice([1.0, 2.5, -0.0, 0.5, 1e300]),
            lambda: 2**64 + rng.randint(0, 3),
            lambda: 2**53 + rng.randint(0, 2),
            lambda: float(2**53),
            lambda: rng.choice(["", "a", "b", "ab", "é", "😀", "Z", "a\x7fb", "\uffff", "a b"]),
            lambda: [rng.randint(0, 2), rng.choice(["x", None])],
            lambda: {"k": rng.randint(0, 2), "j": rng.choice([True, "s"])},
        ]
    )()


def _doc(rng: random.Random, i: int) -> dict[str, Any]:
    doc: dict[str, Any] = {"id": f"d{i:04d}-{rng.randint(0, 9)}", "pk": rng.choice(PARTITIONS)}
    for field in ("a", "b", "weird key", "it's"):
        if rng.random() < 0.8:
            doc[field] = _value(rng)
    if rng.random() < 0.7:
        doc["n"] = {"x": _value(rng)} if rng.random() < 0.8 else _value(rng)
    doc["small"] = rng.randint(0, 4)
    return doc


@pytest.fixture(scope="module")
def store() -> Store:
    s = Store(None)
    s.queries.order_indexes.limit = 64  # every shape below gets its index
    s.create_database({"id": DB})
    s.create_container(DB, {"id": COLL, "partitionKey": {"paths": ["/pk"]}})
    rng = random.Random(20261127)
    for i in range(400):
        doc = _doc(rng, i)
        s.upsert_item(DB, COLL, doc, [doc["pk"]], upsert=True)
    for i in range(0, 400, 7):  # replaced documents keep their insertion order (seq)
        doc = _doc(rng, i)
        s.upsert_item(DB, COLL, doc, [doc["pk"]], upsert=True)
    return s


QUERIES: list[tuple[str, dict[str, Any]]] = [
    ("SELECT * FROM c ORDER BY c.a", {}),
    ("SELECT * FROM c ORDER BY c.a DESC", {}),
    ("SELECT TOP 25 c.id, c.a FROM c ORDER BY c.a DESC, c.id DESC", {}),
    ("SELECT TOP 40 c.id FROM c ORDER BY c.a, c.b DESC", {}),
    ("SELECT TOP 40 c.id FROM c ORDER BY c.a DESC, c.b", {}),
    ("SELECT VALUE c.b FROM c ORDER BY c.b", {}),
    ("SELECT VALUE c.n.x FROM c ORDER BY c.n.x DESC OFFSET 5 LIMIT 30", {}),
    ('SELECT c.id FROM c ORDER BY c["weird key"] ASC', {}),
    ('SELECT c.id, c["it\'s"] FROM c ORDER BY c["it\'s"] DESC', {}),
    ("SELECT TOP @n c.id FROM c WHERE c.small = @s ORDER BY c.a", {"@n": 17, "@s": 2}),
    ("SELECT c.id FROM c WHERE c.small > 1 ORDER BY c.small DESC, c.a OFFSET 3 LIMIT 11", {}),
    ("SELECT TOP 10 * FROM c WHERE IS_STRING(c.a) ORDER BY c.a DESC", {}),
    ("SELECT TOP 5 c.id FROM c WHERE c.small = 99 ORDER BY c.a", {}),
    ("SELECT TOP 30 VALUE c.n FROM c ORDER BY c.n", {}),
    ("SELECT * FROM c ORDER BY c.id OFFSET 390 LIMIT 20", {}),
    ("SELECT TOP 0 c.id FROM c ORDER BY c.a", {}),
    # range bounds on the first ORDER BY path: the store seeks the index there (ordered.seek_sql)
    ("SELECT TOP 20 c.id, c.a FROM c WHERE c.a > @after ORDER BY c.a, c.id", {"@after": "a"}),
    ("SELECT c.id FROM c WHERE c.a >= @lo AND c.small != 3 AND @hi > c.a ORDER BY c.a DESC",
     {"@lo": -1, "@hi": 2.5}),
    ("SELECT c.id FROM c WHERE c.a < 'é' ORDER BY c.a DESC, c.b", {}),
    ("SELECT c.id FROM c WHERE c.a <= 0 OR c.a > 'a' ORDER BY c.a", {}),  # OR: no seek, same answer
    ("SELECT c.id FROM c WHERE c.a > @big ORDER BY c.a", {"@big": 2**53}),  # too big to seek exactly
    ("SELECT c.id FROM c WHERE c.a > @t ORDER BY c.a", {"@t": False}),  # a type the seek leaves alone
    ("SELECT c.id FROM c WHERE c.b > 'a' ORDER BY c.a", {}),  # not the first ORDER BY path
]


def _all_pages(store: Store, text: str, params: dict[str, Any], pk: Any, max_items: int) -> list[list[str]]:
    pages, token = [], None
    for _ in range(1000):
        page = store.query(DB, COLL, text, params, pk, None, max_items, token)
        pages.append(page.documents)
        token = page.continuation
        if token is None:
            return pages
    raise AssertionError("paging did not end")


@pytest.mark.parametrize(("text", "params"), QUERIES)
def test_indexed_order_matches_in_python_sort(store: Store, text: str, params: dict[str, Any]) -> None:
    for pk in (["p0"], ["p2"], None):
        for max_items in (-1, 7, 100):
            store.queries.indexed_order = False
            expected = _all_pages(store, text, params, pk, max_items)
            store.queries.indexed_order = True
            assert _all_pages(store, text, params, pk, max_items) == expected, (pk, max_items)
    for scoped in (True, False):  # and the answers above really came from the index
        shape = ordered.shape_for(compile_query(text).order_paths, scoped)
        assert shape is not None and shape.index_name in store.queries.order_indexes.known
    assert expected != [[]] or "99" in text or "TOP 0" in text  # the data really exercises the query


def test_shapes_the_index_cannot_serve_fall_back(store: Store) -> None:
    for text in (
        "SELECT DISTINCT VALUE c.a FROM c ORDER BY c.a",
        "SELECT c.id FROM c JOIN t IN c.tags ORDER BY c.a",
        "SELECT * FROM c ORDER BY c",
        "SELECT * FROM c ORDER BY c.n[0]",
        "SELECT * FROM c ORDER BY LOWER(c.a)",
        'SELECT * FROM c ORDER BY c["say \\"hi\\""]',
    ):
        shape = ordered.shape_for(compile_query(text).order_paths, True)
        assert shape is None, text
    text = "SELECT DISTINCT VALUE c.small FROM c ORDER BY c.small DESC"
    assert [p for p in _all_pages(store, text, {}, None, -1)] == [["4", "3", "2", "1", "0"]]


def test_query_plan_walks_the_index_without_a_sort(store: Store) -> None:
    text = "SELECT TOP 200 c.id, c.a FROM c WHERE c.small = 1 ORDER BY c.a DESC, c.id DESC"
    store.query(DB, COLL, text, {}, ["p1"], None, -1, None)
    for scoped, where in (
        (True, "coll = ? AND pk = ?"),
        (False, "coll = ?"),
        (False, "coll = ? AND epk >= ? AND epk < ?"),  # a feed_range / EPK-range scoped query
    ):
        shape = ordered.shape_for(compile_query(text).order_paths, scoped)
        assert shape is not None and store.queries.order_indexes.ensure(shape)
        args = ["x"] * where.count("?")
        sql = "EXPLAIN QUERY PLAN " + store.queries.ordered_sql(shape, where)
        plan = " | ".join(r[3] for r in store.db.execute(sql, args))
        assert f"USING INDEX {shape.index_name}" in plan, plan
        assert "TEMP B-TREE" not in plan, plan


def test_top_reads_only_what_the_page_needs() -> None:
    s = Store(None)
    s.create_database({"id": DB})
    s.create_container(DB, {"id": COLL, "partitionKey": {"paths": ["/room"]}})
    s.db.execute("BEGIN")  # one transaction (the store's writes join it): 20,000 documents quickly
    for i in range(20_000):
        doc = {"id": f"m{i:05d}", "room": "big", "user": "u", "text": "hi", "createdAt": 1_000_000 + i}
        s.upsert_item(DB, COLL, doc, ["big"], upsert=True)
    s.db.execute("COMMIT")
    s.upsert_item(DB, COLL, {"id": "other", "room": "small", "createdAt": 5}, ["small"], upsert=True)
    text = (
        "SELECT TOP 200 c.id, c.room, c.user, c.text, c.createdAt FROM c WHERE c.room = @room "
        "ORDER BY c.createdAt DESC, c.id DESC"
    )
    before = s.queries.rows_decoded
    page = s.query(DB, COLL, text, {"@room": "big"}, ["big"], None, -1, None)
    assert len(page.documents) == 200 and '"m19999"' in page.documents[0]
    assert s.queries.rows_decoded - before <= 201
    s.queries.indexed_order = False
    before = s.queries.rows_decoded
    assert s.query(DB, COLL, text, {"@room": "big"}, ["big"], None, -1, None).documents == page.documents
    assert s.queries.rows_decoded - before == 20_000


def test_after_a_point_deep_in_a_partition_reads_from_there() -> None:
    """History's catch-up shape (`WHERE c.room = @room AND c.createdAt > @after ORDER BY c.createdAt,
    c.id`, TOP 200): with 20,000 older messages before `after`, it decodes about a page, not the room."""
    s = Store(None)
    s.create_database({"id": DB})
    s.create_container(DB, {"id": COLL, "partitionKey": {"paths": ["/room"]}})
    s.db.execute("BEGIN")
    for i in range(20_300):
        created = f"2026-11-28T00:00:{i // 1000:02d}.{i % 1000:03d}Z"
        doc = {"id": f"m{i:05d}", "room": "big", "createdAt": created}
        s.upsert_item(DB, COLL, doc, ["big"], upsert=True)
    s.db.execute("COMMIT")
    text = (
        "SELECT TOP 200 c.id, c.createdAt FROM c WHERE c.room = @room AND c.createdAt > @after "
        "ORDER BY c.createdAt, c.id"
    )
    params = {"@room": "big", "@after": "2026-11-28T00:00:20.049Z"}  # message m20049
    before = s.queries.rows_decoded
    page = s.query(DB, COLL, text, params, ["big"], None, -1, None)
    assert [json.loads(d)["id"] for d in page.documents] == [f"m{i:05d}" for i in range(20_050, 20_250)]
    assert s.queries.rows_decoded - before <= 201
    s.queries.indexed_order = False
    assert s.query(DB, COLL, text, params, ["big"], None, -1, None).documents == page.documents


def test_nan_and_infinity_are_refused_as_invalid_json() -> None:
    for raw in (b'{"id": "x", "v": NaN}', b'{"id": "x", "v": -Infinity}'):
        with pytest.raises(CosmosError) as err:
            parse_json_body(raw)
        assert err.value.status == 400 and "not valid JSON" in err.value.message


def test_a_container_that_stored_u0000_sorts_in_python() -> None:
    """SQLite's json_extract cuts strings at U+0000; such containers must not use the index."""
    s = Store(None)
    s.create_database({"id": DB})
    s.create_container(DB, {"id": COLL, "partitionKey": {"paths": ["/pk"]}})
    docs = [("1", "a\x00b", 1), ("2", "a", 2), ("3", "a\x00a", 3), ("4", "a", 0)]
    for item_id, a, b in docs:
        s.upsert_item(DB, COLL, {"id": item_id, "pk": "p", "a": a, "b": b}, ["p"], upsert=True)
    text = "SELECT TOP 2 VALUE c.id FROM c ORDER BY c.a DESC, c.b"
    before = s.queries.rows_decoded
    assert s.query(DB, COLL, text, {}, ["p"], None, -1, None).documents == ['"1"', '"3"']
    assert s.queries.rows_decoded - before == 4  # the whole partition: the in-Python sort


def test_past_the_index_limit_new_shapes_sort_in_python() -> None:
    s = Store(None)
    s.queries.order_indexes.limit = 1
    s.create_database({"id": DB})
    s.create_container(DB, {"id": COLL, "partitionKey": {"paths": ["/pk"]}})
    for i in range(30):
        s.upsert_item(DB, COLL, {"id": f"i{i:02d}", "pk": "p", "a": i % 4, "b": -i}, ["p"], upsert=True)
    first = s.query(
        DB, COLL, "SELECT TOP 3 VALUE c.id FROM c ORDER BY c.a DESC, c.id", {}, ["p"], None, -1, None
    )
    assert first.documents == ['"i03"', '"i07"', '"i11"']
    before = s.queries.rows_decoded
    second = s.query(DB, COLL, "SELECT TOP 3 VALUE c.id FROM c ORDER BY c.b", {}, ["p"], None, -1, None)
    assert second.documents == ['"i29"', '"i28"', '"i27"']
    assert s.queries.rows_decoded - before == 30 and len(s.queries.order_indexes.known) == 1


def test_expired_documents_are_left_out_like_the_in_python_path() -> None:
    s = Store(None)
    s.create_database({"id": DB})
    s.create_container(DB, {"id": COLL, "partitionKey": {"paths": ["/pk"]}, "defaultTtl": -1})
    for i in range(10):
        doc = {"id": f"i{i}", "pk": "p", "n": i, **({"ttl": 10} if i % 3 == 0 else {})}
        s.upsert_item(DB, COLL, doc, ["p"], upsert=True)
    s.db.execute("UPDATE docs SET wts = wts - 100 WHERE ttl = 10")  # their 10 s ran out long ago
    text = "SELECT TOP 4 VALUE c.n FROM c ORDER BY c.n DESC"
    indexed = s.query(DB, COLL, text, {}, ["p"], None, -1, None).documents
    s.queries.indexed_order = False
    assert indexed == s.query(DB, COLL, text, {}, ["p"], None, -1, None).documents == ["8", "7", "5", "4"]
