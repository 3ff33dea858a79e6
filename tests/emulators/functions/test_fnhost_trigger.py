"""The Cosmos DB trigger's contract: where it starts, what wakes it, when it checkpoints, and how
the lease moves between hosts. Against the real Cosmos DB emulator in-process."""

from __future__ import annotations

import asyncio
import logging

from azure.cosmos.aio import CosmosClient
from fnhost_helpers import DB, read_all, start_host, upsert, wait_until

from emulators.cosmos import WELL_KNOWN_KEY
from emulators.functions.cosmos_trigger import _age, _now_iso

FEED_READ = "GET /dbs/testdb/colls/messages/docs"


def doc(i: int | str, room: str = "r") -> dict:
    return {"id": f"d{i}", "room": room, "text": f"d{i}"}


async def test_start_from_beginning_reads_what_was_there_before_in_batches(services, caplog):
    caplog.set_level(logging.INFO, logger="emulators.functions")
    cosmos, signalr = services
    await upsert(cosmos, *(doc(i) for i in range(5)))
    # Without start_from_beginning a new lease starts now (to the second): earlier documents are
    # not delivered.
    await asyncio.sleep(1.1)
    host = await start_host(cosmos, signalr, "bindings")
    try:
        await asyncio.sleep(1.0)
        assert host.imported.module.SEEN == []
    finally:
        await host.close()
    host = await start_host(cosmos, signalr, "feed_options")
    try:
        module = host.imported.module
        assert await wait_until(lambda: sum(map(len, module.SEEN)) >= 5)
        assert module.SEEN == [["d0", "d1"], ["d2", "d3"], ["d4"]]  # max_items_per_invocation=2
    finally:
        await host.close()
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("feed_options ")]
    # One line per invocation: function, trigger, size, duration, outcome.
    assert len(lines) == 3
    assert lines[0].startswith("feed_options cosmosDBTrigger testdb/messages (2 docs) in ")
    assert " ms (Succeeded, id=" in lines[0]


async def test_the_change_notification_wakes_the_idle_consumer(services, caplog):
    """feed_poll_delay is 60 s in this app: only the emulator's notification can deliver quickly,
    and while idle the consumer does not read the feed per message or on a timer."""
    cosmos, signalr = services
    host = await start_host(cosmos, signalr, "feed_options", notify=True)
    try:
        module = host.imported.module
        assert await wait_until(lambda: host.consumers[0]._lease is not None)
        await asyncio.sleep(0.2)  # the start-up read is done
        caplog.set_level(logging.INFO, logger="emulators.cosmos")
        caplog.clear()
        for i in range(3):
            await upsert(cosmos, doc(i))
            assert await wait_until(lambda i=i: [f"d{i}"] in module.SEEN, timeout=2.0), f"d{i} not delivered"
            await asyncio.sleep(0.2)
        reads = [r for r in caplog.records if r.getMessage().startswith(FEED_READ)]
        # One read per change: none to find out that a short batch caught up, none per timer.
        assert len(reads) <= 4, f"{len(reads)} change-feed reads for 3 single-document changes"
        caplog.clear()
        await asyncio.sleep(1.5)
        reads = [r for r in caplog.records if r.getMessage().startswith(FEED_READ)]
        assert len(reads) <= 1, f"{len(reads)} change-feed reads while idle"
    finally:
        await host.close()


async def test_feed_poll_delay_is_the_idle_poll_without_a_notifier(services):
    cosmos, signalr = services
    host = await start_host(cosmos, signalr, "feed_options", notify=False)
    try:
        module = host.imported.module
        await upsert(cosmos, doc(0))
        assert await wait_until(lambda: module.SEEN == [["d0"]])  # the first poll, at start
        await upsert(cosmos, doc(1))
        await asyncio.sleep(1.5)
        assert module.SEEN == [["d0"]]  # the next poll is 60 s away
    finally:
        await host.close()


async def test_the_checkpoint_moves_only_after_a_successful_invocation(services, http, caplog):
    caplog.set_level(logging.INFO, logger="emulators.functions")
    cosmos, signalr = services
    host = await start_host(cosmos, signalr)
    try:
        module = host.imported.module
        module.FAILURES["stuck"] = 10_000
        async with http.post(f"{host.url}/save/r1", json={"id": "ok", "text": "ok"}) as r:
            assert r.status == 201
        assert await wait_until(lambda: module.SEEN == [["ok"]])
        checkpoint = (await read_all(cosmos, "leases"))[0]["ContinuationToken"]
        async with http.post(f"{host.url}/save/r1", json={"id": "stuck", "text": "stuck"}) as r:
            assert r.status == 201
        assert await wait_until(lambda: any("retrying the same batch" in r.getMessage()
                                            for r in caplog.records))
        assert (await read_all(cosmos, "leases"))[0]["ContinuationToken"] == checkpoint
    finally:
        await host.close()
    # After a restart (a fresh app module: no injected failures) the failed batch comes again,
    # and the delivered one does not.
    host = await start_host(cosmos, signalr)
    try:
        module = host.imported.module
        assert await wait_until(lambda: module.SEEN == [["stuck"]])
        await asyncio.sleep(0.5)
        assert module.SEEN == [["stuck"]]
    finally:
        await host.close()


async def test_a_clean_stop_releases_the_lease_so_a_new_machine_resumes_at_once(services, monkeypatch):
    cosmos, signalr = services
    host = await start_host(cosmos, signalr)
    try:
        await upsert(cosmos, doc("a"))
        assert await wait_until(lambda: host.imported.module.SEEN == [["da"]])
    finally:
        await host.close()
    lease = (await read_all(cosmos, "leases"))[0]
    assert lease["Owner"] is None and lease["ContinuationToken"]
    await upsert(cosmos, doc("b"))
    # A different host name (a new container, a renamed machine) is a different owner: it must not
    # wait the 60 s a live lease would need to expire.
    monkeypatch.setattr("emulators.functions.cosmos_trigger.socket.gethostname", lambda: "another-machine")
    host = await start_host(cosmos, signalr)
    try:
        assert await wait_until(lambda: host.imported.module.SEEN == [["db"]], timeout=3.0)
        assert (await read_all(cosmos, "leases"))[0]["Owner"] == "another-machine:feed"
    finally:
        await host.close()



async def test_the_lease_is_renewed_while_idle_even_with_a_long_poll_delay(services):
    """leaseRenewInterval 1 s, leaseExpirationInterval 3 s, feedPollDelay 60 s: a poll delay longer
    than the expiry must not let the lease lapse (another host would take it over)."""
    cosmos, signalr = services
    host = await start_host(cosmos, signalr, "feed_options", notify=False)
    try:
        assert await wait_until(lambda: host.consumers[0]._lease is not None)
        await asyncio.sleep(3.5)
        lease = (await read_all(cosmos, "leases"))[0]
        assert lease["Owner"] == host.consumers[0].owner
        assert _age(lease["timestamp"]) < 2.0, "the lease was not renewed while idle"
    finally:
        await host.close()


async def test_a_live_lease_is_taken_over_after_the_trigger_s_expiration_interval(services):
    cosmos, signalr = services
    loop = asyncio.get_running_loop()
    async with CosmosClient(cosmos.url, credential=WELL_KNOWN_KEY) as client:
        await client.get_database_client(DB).get_container_client("leases").upsert_item(
            {"id": f"opts-{DB}.messages..0", "LeaseToken": "0", "ContinuationToken": None,
             "Owner": "crashed-host:feed_options", "timestamp": _now_iso(), "version": 1})
    written = loop.time()
    await upsert(cosmos, doc("waiting"))
    host = await start_host(cosmos, signalr, "feed_options")
    try:
        module = host.imported.module
        while loop.time() - written < 2.5:  # the crashed host's lease is still live
            assert module.SEEN == []
            await asyncio.sleep(0.05)
        assert await wait_until(lambda: module.SEEN == [["dwaiting"]], timeout=5.0)  # expired after 3 s
        assert (await read_all(cosmos, "leases"))[0]["Owner"] == host.consumers[0].owner
    finally:
        await host.close()


async def test_a_lease_created_late_still_starts_when_the_host_did(services, http):
    """The lease container appears only after a message was acknowledged: the new lease must start
    from the host's start, not from its own creation, or that message would never be delivered."""
    from azure.cosmos import PartitionKey

    cosmos, signalr = services
    async with CosmosClient(cosmos.url, credential=WELL_KNOWN_KEY) as client:
        await client.get_database_client(DB).delete_container("leases")
    host = await start_host(cosmos, signalr)
    try:
        async with http.post(f"{host.url}/save/r1", json={"id": "early", "text": "early"}) as r:
            assert r.status == 201
        await asyncio.sleep(1.2)  # the lease will be created in a later second than the save
        async with CosmosClient(cosmos.url, credential=WELL_KNOWN_KEY) as client:
            await client.get_database_client(DB).create_container("leases", partition_key=PartitionKey("/id"))
        assert await wait_until(lambda: host.imported.module.SEEN == [["early"]], timeout=8.0)
    finally:
        await host.close()
