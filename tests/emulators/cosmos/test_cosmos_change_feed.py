"""Change feed (all start modes, PK scope, continuation tokens), durability and wake-ups."""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from azure.cosmos import CosmosClient, PartitionKey
from cosmos_testkit import EmulatorProcess, raw

from emulators.cosmos import WELL_KNOWN_KEY, start


def ids(it: Any) -> list[str]:
    return [d["id"] for d in it]


def test_from_beginning_latest_version_only_no_deletes(container: Any) -> None:
    container.create_item({"id": "a", "pk": "p1", "v": 1})
    container.create_item({"id": "b", "pk": "p2"})
    container.create_item({"id": "c", "pk": "p1"})
    container.upsert_item({"id": "a", "pk": "p1", "v": 2})
    container.delete_item("b", "p2")
    feed = list(container.query_items_change_feed(start_time="Beginning"))
    assert ids(feed) == ["c", "a"]  # strict LSN order; 'a' once, latest version, at its last write
    assert feed[1]["v"] == 2
    lsns = [d["_lsn"] for d in feed]
    assert lsns == sorted(lsns)


def test_from_now_sees_only_later_writes(container: Any) -> None:
    container.create_item({"id": "old", "pk": "p"})
    it = container.query_items_change_feed()  # default start = Now
    assert list(it) == []
    token = container.client_connection.last_response_headers["etag"]
    container.create_item({"id": "new", "pk": "p"})
    assert ids(container.query_items_change_feed(continuation=token)) == ["new"]


def test_from_point_in_time(container: Any) -> None:
    container.create_item({"id": "before", "pk": "p"})
    time.sleep(1.1)
    cut = datetime.now(UTC)
    time.sleep(0.05)
    container.create_item({"id": "after", "pk": "p"})
    assert ids(container.query_items_change_feed(start_time=cut - timedelta(milliseconds=1))) in (["after"],)
    assert list(container.query_items_change_feed(start_time=cut + timedelta(hours=1))) == []


def test_partition_scoped_feed_uses_effective_partition_keys(container: Any) -> None:
    for i in range(6):
        container.create_item({"id": f"i{i}", "pk": "p1" if i % 2 else "p2"})
    assert ids(container.query_items_change_feed(start_time="Beginning", partition_key="p1")) == [
        "i1",
        "i3",
        "i5",
    ]
    assert ids(container.query_items_change_feed(start_time="Beginning", partition_key="p2")) == [
        "i0",
        "i2",
        "i4",
    ]
    # feed_range of one partition key goes through x-ms-start-epk/x-ms-end-epk as well
    fr = container.feed_range_from_partition_key("p1")
    assert ids(container.query_items_change_feed(start_time="Beginning", feed_range=fr)) == ["i1", "i3", "i5"]


def test_continuation_tokens_and_paging(container: Any) -> None:
    for i in range(5):
        container.create_item({"id": f"i{i}", "pk": "p"})
    pager = container.query_items_change_feed(start_time="Beginning", max_item_count=2).by_page()
    seen = []
    for page in pager:
        seen += ids(page)
    assert seen == [f"i{i}" for i in range(5)]
    token = pager.continuation_token
    assert list(container.query_items_change_feed(continuation=token)) == []
    container.upsert_item({"id": "i1", "pk": "p", "x": 1})
    assert ids(container.query_items_change_feed(continuation=token)) == ["i1"]


def test_304_etag_and_lsn_wire(emulator: Any, container: Any) -> None:
    link = f"dbs/compat/colls/{container.id}"
    h = {"A-IM": "Incremental Feed", "x-ms-documentdb-partitionkeyrangeid": "0"}
    r = raw(emulator.url, "GET", f"/{link}/docs/", "docs", link, headers={**h, "If-None-Match": "*"})
    assert r.status_code == 304 and r.headers["etag"] == '"0"'
    container.create_item({"id": "x", "pk": "p"})
    r = raw(emulator.url, "GET", f"/{link}/docs/", "docs", link, headers={**h, "If-None-Match": '"0"'})
    assert r.status_code == 200 and r.headers["etag"] == '"1"' and r.json()["_count"] == 1
    r = raw(emulator.url, "GET", f"/{link}/docs/", "docs", link, headers={**h, "If-None-Match": '"1"'})
    assert r.status_code == 304 and r.headers["etag"] == '"1"'
    r = raw(emulator.url, "GET", f"/{link}/docs/", "docs", link, headers={**h, "If-None-Match": "garbage"})
    assert r.status_code == 400
    r = raw(emulator.url, "GET", f"/{link}/docs/", "docs", link, headers={**h, "A-IM": "Full-Fidelity Feed"})
    assert r.status_code == 400 and "Incremental Feed" in r.json()["message"]


def test_continuation_survives_restart_and_kill_9(emulator_process: EmulatorProcess) -> None:
    client = CosmosClient(emulator_process.url, credential=WELL_KNOWN_KEY)
    c = client.create_database_if_not_exists("d").create_container_if_not_exists(
        "c", PartitionKey(path="/pk")
    )
    for i in range(3):
        c.create_item({"id": f"i{i}", "pk": "p"})
    pager = c.query_items_change_feed(start_time="Beginning").by_page()
    assert [d["id"] for page in pager for d in page] == ["i0", "i1", "i2"]
    token = pager.continuation_token
    c.create_item({"id": "acked", "pk": "p"})  # acknowledged, then the process dies without warning
    emulator_process.kill()
    emulator_process.start()
    client2 = CosmosClient(emulator_process.url, credential=WELL_KNOWN_KEY)
    c2 = client2.get_database_client("d").get_container_client("c")
    assert c2.read_item("acked", "p")["id"] == "acked"
    assert ids(c2.query_items_change_feed(continuation=token)) == ["acked"]  # same RIDs, same LSNs
    assert emulator_process.terminate() == 0  # SIGTERM shuts down cleanly


def test_concurrent_writers_lose_nothing(emulator: Any, container: Any) -> None:
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            cl = CosmosClient(emulator.url, credential=WELL_KNOWN_KEY)
            cc = cl.get_database_client("compat").get_container_client(container.id)
            for i in range(25):
                cc.create_item({"id": f"w{n}-{i}", "pk": f"p{i % 3}"})
                cc.upsert_item({"id": "shared", "pk": "s", "by": n, "i": i})
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    feed = list(container.query_items_change_feed(start_time="Beginning"))
    assert len(feed) == 101 and len({d["id"] for d in feed}) == 101
    lsns = [d["_lsn"] for d in feed]
    assert lsns == sorted(lsns) and len(set(lsns)) == len(lsns)
    assert list(container.query_items("SELECT VALUE COUNT(1) FROM c", enable_cross_partition_query=True)) == [
        101
    ]


async def test_subscription_wakes_on_write_and_never_misses_one() -> None:
    emu = await start(port=0, data_dir=None)
    try:
        from azure.cosmos.aio import CosmosClient as AsyncClient

        async with AsyncClient(emu.url, credential=WELL_KNOWN_KEY) as cl:
            db = await cl.create_database_if_not_exists("n")
            c = await db.create_container_if_not_exists("c", PartitionKey(path="/pk"))
            other = await db.create_container_if_not_exists("other", PartitionKey(path="/pk"))
            sub = emu.subscribe("n", "c")
            assert await sub.wait(0.05) is False
            waiter = asyncio.create_task(sub.wait(5))
            await asyncio.sleep(0.01)
            t0 = time.perf_counter()
            await c.create_item({"id": "1", "pk": "p"})
            assert await waiter is True
            assert time.perf_counter() - t0 < 1
            await other.create_item({"id": "1", "pk": "p"})  # another container: no wake-up
            assert await sub.wait(0.05) is False
            await c.upsert_item({"id": "2", "pk": "p"})  # a write between two waits is remembered
            await c.patch_item("2", "p", [{"op": "set", "path": "/x", "value": 1}])
            assert await sub.wait(0) is True
            assert await sub.wait(0.05) is False
            sub.close()
            with pytest.raises(RuntimeError):
                await sub.wait(0)
    finally:
        await emu.close()


def test_a_batch_shares_one_lsn_and_is_never_split_across_pages(container: Any) -> None:
    container.create_item({"id": "before", "pk": "p"})
    container.execute_item_batch(
        [("create", ({"id": f"b{i}", "pk": "p"},)) for i in range(3)], partition_key="p"
    )
    container.create_item({"id": "after", "pk": "p"})
    pages = [
        ids(p) for p in container.query_items_change_feed(start_time="Beginning", max_item_count=2).by_page()
    ]
    seen = [i for p in pages for i in p]
    assert seen == ["before", "b0", "b1", "b2", "after"]
    lsns = {d["id"]: d["_lsn"] for d in container.query_items_change_feed(start_time="Beginning")}
    assert lsns["b0"] == lsns["b1"] == lsns["b2"] == lsns["before"] + 1 == lsns["after"] - 1
