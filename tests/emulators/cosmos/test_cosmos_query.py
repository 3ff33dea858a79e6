"""Query semantics, table-driven, through the SDK; expected results follow the Cosmos DB for NoSQL docs.

Sources (learn.microsoft.com/azure/cosmos-db/nosql/query/…):
- equality-comparison-operators: comparing different JSON types (or anything with undefined) is *undefined*,
  and an item is returned only when the filter is exactly true;
- order-by: ORDER BY returns items whose sort property is undefined too; null sorts lowest among values;
  ascending cross-type order is undefined < null < boolean < number < string;
- sum / avg: a string, boolean or null argument makes the whole aggregate undefined; undefined is skipped;
- max / min: mixed types allowed, ordered string > number > boolean > null;
- select / value: undefined properties are left out of projected objects.
"""

from __future__ import annotations

from typing import Any

import pytest
from azure.cosmos import CosmosClient, PartitionKey, exceptions

DOCS = [
    {
        "id": "1",
        "pk": "a",
        "n": 1,
        "s": "apple",
        "b": True,
        "arr": [1, 2],
        "o": {"x": 1},
        "room": "r1",
        "createdAt": "2024-01-01T00:00:01Z",
    },
    {
        "id": "2",
        "pk": "a",
        "n": 2.5,
        "s": "Banana",
        "b": False,
        "nul": None,
        "room": "r1",
        "createdAt": "2024-01-01T00:00:02Z",
    },
    {"id": "3", "pk": "b", "n": "7", "s": "cherry", "room": "r2", "createdAt": "2024-01-01T00:00:03Z"},
    {"id": "4", "pk": "b", "n": None, "room": "r1", "createdAt": "2024-01-01T00:00:02Z"},
    {"id": "5", "pk": "c", "n": 10, "tags": ["x", "y"], "room": "r2"},
]

CASES: list[tuple[str, list[Any]]] = [
    # filters: same-type comparisons only; cross-type is undefined → not returned
    ("SELECT VALUE c.id FROM c WHERE c.n = 1", ["1"]),
    ("SELECT VALUE c.id FROM c WHERE c.n = '7'", ["3"]),
    ("SELECT VALUE c.id FROM c WHERE c.n > 1", ["2", "5"]),
    ("SELECT VALUE c.id FROM c WHERE c.n = null", ["4"]),
    ("SELECT VALUE c.id FROM c WHERE c.missing = null", []),
    ("SELECT VALUE c.id FROM c WHERE NOT (c.n = 1)", ["2", "5"]),
    ("SELECT VALUE c.id FROM c WHERE c.n != 1", ["2", "5"]),
    ("SELECT VALUE c.id FROM c WHERE c.b = true OR c.n = 10", ["1", "5"]),
    ("SELECT VALUE c.id FROM c WHERE c.b = false AND c.n > 2", ["2"]),
    ("SELECT VALUE c.id FROM c WHERE IS_DEFINED(c.nul)", ["2"]),
    ("SELECT VALUE c.id FROM c WHERE IS_NULL(c.n)", ["4"]),
    ("SELECT VALUE c.id FROM c WHERE NOT IS_DEFINED(c.s)", ["4", "5"]),
    ("SELECT VALUE c.id FROM c WHERE c.n IN (1, '7')", ["1", "3"]),
    ("SELECT VALUE c.id FROM c WHERE c.n BETWEEN 1 AND 3", ["1", "2"]),
    ("SELECT VALUE c.id FROM c WHERE STARTSWITH(c.s, 'b', true)", ["2"]),
    ("SELECT VALUE c.id FROM c WHERE STARTSWITH(c.s, 'b')", []),
    ("SELECT VALUE c.id FROM c WHERE ENDSWITH(c.s, 'rry')", ["3"]),
    ("SELECT VALUE c.id FROM c WHERE CONTAINS(LOWER(c.s), 'an')", ["2"]),
    ("SELECT VALUE UPPER(c.s) FROM c WHERE c.id = '1'", ["APPLE"]),
    ("SELECT VALUE LENGTH(c.s) FROM c WHERE c.pk = 'a'", [5, 6]),
    ("SELECT VALUE c.id FROM c WHERE ARRAY_CONTAINS(c.tags, 'x')", ["5"]),
    ("SELECT VALUE c.id FROM c WHERE c.s LIKE '%an%'", ["2"]),
    ("SELECT VALUE c.id FROM c WHERE c['o'].x = 1", ["1"]),
    ("SELECT VALUE c.n * 2 FROM c WHERE c.pk = 'a'", [2, 5]),
    ("SELECT VALUE c.n + 1 FROM c WHERE c.id = '3'", []),  # arithmetic on a string is undefined
    ("SELECT VALUE c.s || '!' FROM c WHERE c.id = '1'", ["apple!"]),
    # ORDER BY: all items, cross-type order, multiple keys
    ("SELECT VALUE c.n FROM c ORDER BY c.n", [None, 1, 2.5, 10, "7"]),
    ("SELECT VALUE c.n FROM c ORDER BY c.n DESC", ["7", 10, 2.5, 1, None]),
    ("SELECT VALUE c.id FROM c ORDER BY c.s, c.id", ["4", "5", "2", "1", "3"]),
    (
        "SELECT TOP 200 c.id, c.createdAt FROM c WHERE c.room = 'r1' ORDER BY c.createdAt DESC, c.id DESC",
        [
            {"id": "4", "createdAt": "2024-01-01T00:00:02Z"},
            {"id": "2", "createdAt": "2024-01-01T00:00:02Z"},
            {"id": "1", "createdAt": "2024-01-01T00:00:01Z"},
        ],
    ),
    ("SELECT TOP 2 c.id FROM c ORDER BY c.id DESC", [{"id": "5"}, {"id": "4"}]),
    ("SELECT c.id FROM c ORDER BY c.id OFFSET 1 LIMIT 2", [{"id": "2"}, {"id": "3"}]),
    # projections
    ("SELECT DISTINCT VALUE c.room FROM c", ["r1", "r2"]),
    ("SELECT c.id, c.o.x AS ox FROM c WHERE c.id = '1'", [{"id": "1", "ox": 1}]),
    ("SELECT c.id, c.missing FROM c WHERE c.id = '1'", [{"id": "1"}]),
    (
        "SELECT VALUE {'id': c.id, 'big': c.n > 5} FROM c WHERE c.id IN ('3', '5')",
        [{"id": "3"}, {"id": "5", "big": True}],
    ),
    ("SELECT c.id, c.n > 5 FROM c WHERE c.id = '5'", [{"id": "5", "$1": True}]),
    ("SELECT VALUE t FROM c JOIN t IN c.tags", ["x", "y"]),
    # aggregates
    ("SELECT VALUE COUNT(1) FROM c", [5]),
    ("SELECT VALUE COUNT(c.s) FROM c", [3]),
    # a string and a null make SUM undefined; the SDK shows an undefined cross-partition VALUE aggregate
    # as null
    ("SELECT VALUE SUM(c.n) FROM c", [None]),
    ("SELECT VALUE SUM(c.n) FROM c WHERE IS_NUMBER(c.n)", [13.5]),
    ("SELECT VALUE AVG(c.n) FROM c WHERE IS_NUMBER(c.n)", [4.5]),
    ("SELECT VALUE MAX(c.n) FROM c", ["7"]),  # string > number
    ("SELECT VALUE MIN(c.n) FROM c", [None]),  # null is lowest
    ("SELECT VALUE MIN(c.b) FROM c", [False]),
    ("SELECT VALUE AVG(c.missing) FROM c", [None]),
]


@pytest.fixture(scope="module")
def seeded(client: CosmosClient) -> Any:
    db = client.create_database_if_not_exists("compat")
    c = db.create_container_if_not_exists("query-table", PartitionKey(path="/pk"))
    for d in DOCS:
        c.upsert_item(d)
    yield c
    db.delete_container("query-table")


@pytest.mark.parametrize(("query", "expected"), CASES, ids=[q for q, _ in CASES])
def test_query_semantics(seeded: Any, query: str, expected: list[Any]) -> None:
    got = list(seeded.query_items(query, enable_cross_partition_query=True))
    assert got == expected


def test_partition_scoped_query_with_parameters_and_paging(seeded: Any) -> None:
    q = "SELECT TOP 200 c.id FROM c WHERE c.room = @room ORDER BY c.createdAt DESC, c.id DESC"
    got = list(seeded.query_items(q, parameters=[{"name": "@room", "value": "r1"}], partition_key="a"))
    assert got == [{"id": "2"}, {"id": "1"}]
    # single partition: an undefined aggregate is simply no result
    assert list(seeded.query_items("SELECT VALUE SUM(c.n) FROM c", partition_key="a")) == [3.5]
    assert list(seeded.query_items("SELECT VALUE SUM(c.s) FROM c", partition_key="a")) == []
    got = list(seeded.query_items("SELECT COUNT(1) AS n, MAX(c.id) AS top FROM c", partition_key="a"))
    assert got == [{"n": 2, "top": "2"}]
    with pytest.raises(exceptions.CosmosHttpResponseError) as err:  # as a real account (SDK query plan) does
        list(seeded.query_items("SELECT COUNT(1) FROM c", enable_cross_partition_query=True))
    assert err.value.status_code == 400
    pager = seeded.query_items(
        "SELECT VALUE c.id FROM c ORDER BY c.id", enable_cross_partition_query=True, max_item_count=2
    ).by_page()
    pages = [list(p) for p in pager]
    assert pages == [["1", "2"], ["3", "4"], ["5"]]


@pytest.mark.parametrize(
    ("query", "fragment"),
    [
        ("SELECT c.room, COUNT(1) FROM c GROUP BY c.room", "GROUP BY"),
        ("SELECT * FROM c WHERE UDF.f(c.x)", "UDF"),
        ("SELECT * FROM c WHERE FOO(c.x)", "FOO"),
        ("SELECT * FROM c WHERE x.y = 1", "'x'"),
        ("SELECT * FROM c WHERE EXISTS(SELECT VALUE 1)", "EXISTS"),
        ("SELEC * FROM c", "SELEC"),
        ("SELECT * FROM c WHERE c.id = @nope", "@nope"),
    ],
)
def test_unsupported_or_invalid_queries_are_400_naming_the_construct(
    seeded: Any, query: str, fragment: str
) -> None:
    with pytest.raises(exceptions.CosmosHttpResponseError) as err:
        list(seeded.query_items(query, enable_cross_partition_query=True))
    assert err.value.status_code == 400
    assert fragment in err.value.message


def test_paging_a_plain_query_reads_each_document_once() -> None:
    """Filter-and-project queries resume after the last document read (queries.py, streaming): the
    pages add up to the one-shot answer, and reading them all decodes each document about once."""
    from emulators.cosmos.store import Store

    s = Store(None)
    s.create_database({"id": "db"})
    s.create_container("db", {"id": "c", "partitionKey": {"paths": ["/pk"]}})
    s.db.execute("BEGIN")
    for i in range(1000):
        s.upsert_item("db", "c", {"id": f"d{i:04d}", "pk": f"p{i % 3}", "n": i}, [f"p{i % 3}"], upsert=True)
    s.db.execute("COMMIT")
    text, params = "SELECT VALUE c.id FROM c WHERE c.n % @m = 0", {"@m": 2}
    whole = s.query("db", "c", text, params, None, None, -1, None).documents
    assert len(whole) == 500
    pages, token, before = [], None, s.queries.rows_decoded
    while True:
        page = s.query("db", "c", text, params, None, None, 7, token)
        assert len(page.documents) <= 7
        pages += page.documents
        token = page.continuation
        if token is None:
            break
    assert pages == whole
    assert s.queries.rows_decoded - before <= 1000 + 7  # once each (was: the whole container once per page)
    in_partition = s.query("db", "c", "SELECT VALUE c.n FROM c", {}, ["p1"], None, 100, None)
    assert len(in_partition.documents) == 100 and in_partition.continuation is not None
