"""Items, databases, containers and errors through the real azure-cosmos SDK (sync and async)."""

from __future__ import annotations

import base64
import json
import uuid
from email.utils import formatdate
from typing import Any

import pytest
from azure.core import MatchConditions
from azure.cosmos import CosmosClient, PartitionKey, exceptions
from azure.cosmos.aio import CosmosClient as AsyncCosmosClient
from cosmos_testkit import raw

from emulators.cosmos import WELL_KNOWN_KEY


def test_account_databases_and_containers(client: CosmosClient) -> None:
    name = f"db{uuid.uuid4().hex[:8]}"
    db = client.create_database(name)
    with pytest.raises(exceptions.CosmosResourceExistsError):
        client.create_database(name)
    assert name in [d["id"] for d in client.list_databases()]
    assert [
        d["id"]
        for d in client.query_databases(
            "SELECT * FROM r WHERE r.id = @id", parameters=[{"name": "@id", "value": name}]
        )
    ] == [name]
    c = db.create_container("things", PartitionKey(path="/tenant"), default_ttl=-1)
    props = c.read()
    assert props["partitionKey"]["paths"] == ["/tenant"] and props["defaultTtl"] == -1
    assert props["_self"].startswith(f"dbs/{db.read()['_rid']}/colls/")
    with pytest.raises(exceptions.CosmosResourceExistsError):
        db.create_container("things", PartitionKey(path="/tenant"))
    assert [x["id"] for x in db.list_containers()] == ["things"]
    db.replace_container(c, PartitionKey(path="/tenant"), default_ttl=60)
    assert db.get_container_client("things").read()["defaultTtl"] == 60
    db.delete_container("things")
    with pytest.raises(exceptions.CosmosResourceNotFoundError):
        db.get_container_client("things").read()
    client.delete_database(name)
    with pytest.raises(exceptions.CosmosResourceNotFoundError):
        client.get_database_client(name).read()


def test_hierarchical_partition_keys_are_refused_clearly(client: CosmosClient) -> None:
    db = client.create_database_if_not_exists("compat")
    with pytest.raises(exceptions.CosmosHttpResponseError) as err:
        db.create_container("hier", PartitionKey(path=["/a", "/b"], kind="MultiHash"))
    assert err.value.status_code == 400 and "Hierarchical" in err.value.message


def test_item_crud_upsert_and_headers(container: Any) -> None:
    created = container.create_item({"id": "a", "pk": "p1", "n": 1})
    for prop in ("_rid", "_self", "_etag", "_ts", "_attachments", "_lsn"):
        assert prop in created
    headers = container.client_connection.last_response_headers
    assert headers["x-ms-documentdb-partitionkeyrangeid"] == "0"
    assert headers["x-ms-session-token"].startswith("0:-1#")
    assert float(headers["x-ms-request-charge"]) > 0
    assert headers["etag"] == created["_etag"]
    with pytest.raises(exceptions.CosmosResourceExistsError):
        container.create_item({"id": "a", "pk": "p1"})
    container.create_item({"id": "a", "pk": "p2"})  # id is unique per logical partition only
    upserted = container.upsert_item({"id": "a", "pk": "p1", "n": 2})
    assert (
        upserted["n"] == 2 and upserted["_etag"] != created["_etag"] and upserted["_rid"] == created["_rid"]
    )
    assert upserted["_lsn"] > created["_lsn"]
    assert container.read_item("a", "p1")["n"] == 2
    replaced = container.replace_item("a", {"id": "a", "pk": "p1", "n": 3})
    assert replaced["n"] == 3
    with pytest.raises(exceptions.CosmosResourceNotFoundError):
        container.replace_item("nope", {"id": "nope", "pk": "p1"})
    container.delete_item("a", "p1")
    with pytest.raises(exceptions.CosmosResourceNotFoundError):
        container.read_item("a", "p1")
    with pytest.raises(exceptions.CosmosResourceNotFoundError):
        container.delete_item("a", "p1")
    assert container.read_item("a", "p2")["pk"] == "p2"


def test_partition_key_types_and_read_feed(container: Any) -> None:
    for i, pk in enumerate(["s", 5, 5.5, True, None, "ü日本"]):
        container.create_item({"id": f"i{i}", "pk": pk})
    container.create_item({"id": "nopk"})
    assert container.read_item("i1", 5)["pk"] == 5
    assert container.read_item("i3", True)["pk"] is True
    assert container.read_item("i4", None)["pk"] is None
    assert container.read_item("i5", "ü日本")["id"] == "i5"
    from azure.cosmos.partition_key import NonePartitionKeyValue

    assert container.read_item("nopk", NonePartitionKeyValue)["id"] == "nopk"
    pages = container.read_all_items(max_item_count=2).by_page()
    sizes = [len(list(p)) for p in pages]
    assert sum(sizes) == 7 and max(sizes) == 2


def test_etags_and_conditions(container: Any) -> None:
    doc = container.create_item({"id": "e", "pk": "p"})
    newer = container.replace_item(
        "e", {"id": "e", "pk": "p", "v": 1}, etag=doc["_etag"], match_condition=MatchConditions.IfNotModified
    )
    with pytest.raises(exceptions.CosmosAccessConditionFailedError):
        container.replace_item(
            "e",
            {"id": "e", "pk": "p", "v": 2},
            etag=doc["_etag"],
            match_condition=MatchConditions.IfNotModified,
        )
    with pytest.raises(exceptions.CosmosAccessConditionFailedError):
        container.delete_item("e", "p", etag=doc["_etag"], match_condition=MatchConditions.IfNotModified)
    assert container.read_item("e", "p")["v"] == 1
    container.delete_item("e", "p", etag=newer["_etag"], match_condition=MatchConditions.IfNotModified)


def test_patch_operations_and_condition(container: Any) -> None:
    container.create_item({"id": "p", "pk": "k", "n": 1, "tags": ["a"], "gone": 1, "old": "x"})
    out = container.patch_item(
        "p",
        "k",
        [
            {"op": "incr", "path": "/n", "value": 5},
            {"op": "add", "path": "/tags/-", "value": "b"},
            {"op": "set", "path": "/nested", "value": {"x": 1}},
            {"op": "remove", "path": "/gone"},
            {"op": "replace", "path": "/old", "value": "y"},
        ],
    )
    assert out["n"] == 6 and out["tags"] == ["a", "b"] and out["nested"] == {"x": 1}
    assert "gone" not in out and out["old"] == "y"
    with pytest.raises(exceptions.CosmosAccessConditionFailedError):
        container.patch_item(
            "p", "k", [{"op": "set", "path": "/n", "value": 0}], filter_predicate="FROM c WHERE c.n = 1"
        )
    container.patch_item(
        "p", "k", [{"op": "set", "path": "/n", "value": 0}], filter_predicate="FROM c WHERE c.n = 6"
    )
    with pytest.raises(exceptions.CosmosHttpResponseError) as err:
        container.patch_item("p", "k", [{"op": "replace", "path": "/missing", "value": 1}])
    assert err.value.status_code == 400
    with pytest.raises(exceptions.CosmosHttpResponseError) as err:
        container.patch_item("p", "k", [{"op": "set", "path": "/pk", "value": "other"}])
    assert err.value.status_code == 400
    assert container.read_item("p", "k")["n"] == 0  # failed patches changed nothing
    with pytest.raises(exceptions.CosmosResourceNotFoundError):
        container.patch_item("nope", "k", [{"op": "set", "path": "/n", "value": 0}])


def test_ttl_expires_items(client: CosmosClient) -> None:
    import time

    db = client.create_database_if_not_exists("compat")
    c = db.create_container(f"ttl{uuid.uuid4().hex[:6]}", PartitionKey(path="/pk"), default_ttl=1)
    c.create_item({"id": "short", "pk": "p"})
    c.create_item({"id": "forever", "pk": "p", "ttl": -1})
    assert c.read_item("short", "p")
    time.sleep(1.3)
    with pytest.raises(exceptions.CosmosResourceNotFoundError):
        c.read_item("short", "p")
    assert [d["id"] for d in c.query_items("SELECT * FROM c", partition_key="p")] == ["forever"]
    with pytest.raises(exceptions.CosmosHttpResponseError) as err:
        c.create_item({"id": "bad", "pk": "p", "ttl": 0})
    assert err.value.status_code == 400
    db.delete_container(c.id)


def test_item_size_limit_is_413(container: Any) -> None:
    with pytest.raises(exceptions.CosmosHttpResponseError) as err:
        container.create_item({"id": "big", "pk": "p", "blob": "x" * (2 * 1024 * 1024 + 10)})
    assert err.value.status_code == 413
    with pytest.raises(exceptions.CosmosResourceNotFoundError):
        container.read_item("big", "p")


def test_wrong_key_is_401_with_cosmos_body(emulator: Any) -> None:
    bad = "A" * 86 + "=="
    with pytest.raises(exceptions.CosmosHttpResponseError) as err:
        CosmosClient(emulator.url, credential=bad).create_database_if_not_exists("x")
    assert err.value.status_code == 401


def test_raw_protocol_errors(emulator: Any, container: Any) -> None:
    db, coll = "compat", container.id
    link = f"dbs/{db}/colls/{coll}"
    path = f"/{link}/docs/"
    r = raw(
        emulator.url,
        "POST",
        path,
        "docs",
        link,
        body=b"{not json",
        headers={"x-ms-documentdb-partitionkey": '["p"]', "Content-Type": "application/json"},
    )
    assert r.status_code == 400 and r.json()["code"] == "BadRequest" and "JSON" in r.json()["message"]
    r = raw(
        emulator.url,
        "POST",
        path,
        "docs",
        link,
        body=json.dumps({"id": "x", "pk": "p"}),
        headers={"x-ms-documentdb-partitionkey": "p", "Content-Type": "application/json"},
    )
    assert r.status_code == 400 and "partition key" in r.json()["message"].lower()
    r = raw(
        emulator.url,
        "POST",
        path,
        "docs",
        link,
        body=json.dumps({"id": "x", "pk": "p"}),
        headers={"x-ms-documentdb-partitionkey": '["other"]', "Content-Type": "application/json"},
    )
    assert r.status_code == 400
    r = raw(emulator.url, "POST", path, "docs", link, body="id=x", headers={"Content-Type": "text/plain"})
    assert r.status_code == 415 and r.json()["code"] == "UnsupportedMediaType"
    deep = b'{"id":"deep","pk":"p","x":' + b"[" * 5000 + b"]" * 5000 + b"}"  # RecursionError bait
    r = raw(
        emulator.url,
        "POST",
        path,
        "docs",
        link,
        body=deep,
        headers={"x-ms-documentdb-partitionkey": '["p"]', "Content-Type": "application/json"},
    )
    assert r.status_code == 400 and "128 levels" in r.json()["message"]
    r = raw(emulator.url, "GET", f"/{link}/sprocs/", "sprocs", link)
    assert r.status_code == 400 and "sprocs" in r.json()["message"]
    stale = formatdate(usegmt=True, timeval=__import__("time").time() - 3600)
    r = raw(emulator.url, "GET", "/dbs", "dbs", "", date=stale)
    assert r.status_code == 401 and r.json()["code"] == "Unauthorized"
    r = raw(emulator.url, "GET", "/dbs", "dbs", "", key="A" * 86 + "==")
    assert r.status_code == 401
    r = raw(emulator.url, "GET", "/dbs", "colls", "")  # signed for another resource type
    assert r.status_code == 401
    assert list(container.read_all_items()) == []  # nothing was created by the bad requests


def test_pkranges_answers_304_to_its_etag(emulator: Any, container: Any) -> None:
    link = f"dbs/compat/colls/{container.id}"
    r = raw(emulator.url, "GET", f"/{link}/pkranges/", "pkranges", link, headers={"A-IM": "Incremental Feed"})
    assert r.status_code == 200 and r.json()["PartitionKeyRanges"][0]["maxExclusive"] == "FF"
    r2 = raw(
        emulator.url,
        "GET",
        f"/{link}/pkranges/",
        "pkranges",
        link,
        headers={"If-None-Match": r.headers["etag"]},
    )
    assert r2.status_code == 304 and r2.headers["etag"] == r.headers["etag"]


def test_names_with_spaces_and_escapes(container: Any) -> None:
    odd = "a b+c%é"
    container.create_item({"id": odd, "pk": "p q"})
    assert container.read_item(odd, "p q")["id"] == odd
    container.delete_item(odd, "p q")


async def test_async_client_round_trip(emulator: Any) -> None:
    async with AsyncCosmosClient(emulator.url, credential=WELL_KNOWN_KEY) as aclient:
        db = await aclient.create_database_if_not_exists("compat-async")
        c = await db.create_container_if_not_exists("items", PartitionKey(path="/pk"))
        await c.upsert_item({"id": "x", "pk": "p", "n": 1})
        assert (await c.read_item("x", "p"))["n"] == 1
        with pytest.raises(exceptions.CosmosResourceExistsError):
            await c.create_item({"id": "x", "pk": "p"})
        with pytest.raises(exceptions.CosmosResourceNotFoundError):
            await c.read_item("y", "p")
        items = [i async for i in c.query_items("SELECT VALUE c.n FROM c WHERE c.pk = 'p'")]
        assert items == [1]
        feed = [i["id"] async for i in c.query_items_change_feed(start_time="Beginning")]
        assert feed == ["x"]
        await aclient.delete_database("compat-async")


async def test_read_only_key_reads_but_cannot_write() -> None:
    from emulators.cosmos import start

    ro_key = base64.b64encode(b"r" * 64).decode()
    emu = await start(port=0, data_dir=None, read_only_key=ro_key)
    try:
        async with AsyncCosmosClient(emu.url, credential=WELL_KNOWN_KEY) as admin:
            db = await admin.create_database_if_not_exists("ro")
            c = await db.create_container_if_not_exists("c", PartitionKey(path="/pk"))
            await c.create_item({"id": "1", "pk": "p"})
        async with AsyncCosmosClient(emu.url, credential=ro_key) as reader:
            c = reader.get_database_client("ro").get_container_client("c")
            assert (await c.read_item("1", "p"))["id"] == "1"
            with pytest.raises(exceptions.CosmosHttpResponseError) as err:
                await c.upsert_item({"id": "2", "pk": "p"})
            assert err.value.status_code == 403
    finally:
        await emu.close()


def test_transactional_batch_is_all_or_nothing(container: Any) -> None:
    ok = container.execute_item_batch(
        [
            ("create", ({"id": "a", "pk": "p"},)),
            ("upsert", ({"id": "b", "pk": "p", "n": 1},)),
            ("read", ("a",)),
            ("patch", ("b", [{"op": "incr", "path": "/n", "value": 1}])),
        ],
        partition_key="p",
    )
    assert [r["statusCode"] for r in ok] == [201, 201, 200, 200] and ok[3]["resourceBody"]["n"] == 2
    with pytest.raises(exceptions.CosmosBatchOperationError) as err:
        container.execute_item_batch(
            [("create", ({"id": "c", "pk": "p"},)), ("create", ({"id": "a", "pk": "p"},))], partition_key="p"
        )
    assert err.value.error_index == 1 and err.value.status_code == 409
    assert [r["statusCode"] for r in err.value.operation_responses] == [424, 409]
    assert sorted(d["id"] for d in container.read_all_items()) == ["a", "b"]  # 'c' was rolled back


def test_conflicts_feed_is_empty_on_a_single_region_account(container: Any) -> None:
    assert list(container.list_conflicts()) == []
    assert list(container.query_conflicts("SELECT * FROM c", partition_key="p")) == []
    with pytest.raises(exceptions.CosmosResourceNotFoundError):
        container.get_conflict("nope", partition_key="p")


def test_epk_scoped_reads_on_a_hash_v1_container_are_refused(client: CosmosClient) -> None:
    db = client.create_database_if_not_exists("compat")
    c = db.create_container(f"v1{uuid.uuid4().hex[:6]}", PartitionKey(path="/pk", version=1))
    c.create_item({"id": "a", "pk": "p"})
    assert [d["id"] for d in c.query_items_change_feed(start_time="Beginning")] == [
        "a"
    ]  # whole container: fine
    with pytest.raises(exceptions.CosmosHttpResponseError) as err:
        list(c.query_items_change_feed(start_time="Beginning", partition_key="p"))
    assert err.value.status_code == 400 and "version 2" in err.value.message
    db.delete_container(c.id)


def test_replace_can_rename_an_item_and_ids_are_validated(container: Any) -> None:
    old = container.create_item({"id": "old", "pk": "p", "v": 1})
    container.create_item({"id": "taken", "pk": "p"})
    renamed = container.replace_item("old", {"id": "new", "pk": "p", "v": 2})
    assert renamed["_rid"] == old["_rid"] and renamed["v"] == 2
    with pytest.raises(exceptions.CosmosResourceNotFoundError):
        container.read_item("old", "p")
    with pytest.raises(exceptions.CosmosResourceExistsError):
        container.replace_item("new", {"id": "taken", "pk": "p"})
    assert container.read_item("new", "p")["v"] == 2
    for bad in ("x" * 1024, "trailing ", "tab\tinside"):
        with pytest.raises((exceptions.CosmosHttpResponseError, ValueError)):
            container.create_item({"id": bad, "pk": "p"})
    container.create_item({"id": "y" * 1023, "pk": "p"})  # item ids may be up to 1023 bytes
