"""Cosmos DB and SignalR bindings and the Cosmos DB trigger, against the real emulators in-process."""

from __future__ import annotations

import asyncio
import logging
import uuid

import aiohttp
import jwt
import pytest
from azure.cosmos.aio import CosmosClient
from fnhost_helpers import DB, read_all, start_host, wait_until

from emulators.cosmos import WELL_KNOWN_KEY
from emulators.signalr import WELL_KNOWN_ACCESS_KEY
from emulators.smoke import Listener


@pytest.fixture
async def stack(services):
    cosmos, signalr = services
    host = await start_host(cosmos, signalr)
    try:
        yield cosmos, signalr, host
    finally:
        await host.close()


@pytest.fixture
async def http():
    async with aiohttp.ClientSession() as s:
        yield s


async def test_output_single_and_list_then_input_by_query_and_by_id(stack, http):
    cosmos, _, host = stack
    u = host.url
    async with http.post(f"{u}/save/r1", json={"id": "b", "text": "first"}) as r:
        assert r.status == 201
    async with http.post(f"{u}/save/r1", json={"id": "b", "text": "overwritten"}) as r:
        assert r.status == 201  # upsert: same id, same partition → replaced, not a conflict
    async with http.post(f"{u}/save-many/r1", json=[{"id": "a", "text": "x"}, {"id": "c", "text": "y"}]) as r:
        assert r.status == 201
    async with http.post(f"{u}/save/r2", json={"id": "z", "text": "other room"}) as r:
        assert r.status == 201
    assert len(await read_all(cosmos)) == 4
    async with http.get(f"{u}/list/r1") as r:
        body = await r.json(content_type=None)
    assert body == {"type": "DocumentList", "items": [
        {"id": "a", "text": "x"}, {"id": "b", "text": "overwritten"}, {"id": "c", "text": "y"}]}
    # A route value that looks like SQL is only ever a parameter value.
    async with http.get(f"{u}/list/r1'%20OR%20'1'='1") as r:
        assert (await r.json(content_type=None))["items"] == []
    async with http.get(f"{u}/doc/r1/b") as r:
        assert await r.json(content_type=None) == {"text": "overwritten", "count": 1}
    async with http.get(f"{u}/doc/r2/b") as r:
        assert r.status == 404


async def test_connection_info_is_a_token_for_the_configured_service(stack, http):
    _, signalr, host = stack
    async with http.post(f"{host.url}/negotiate?user=ann") as r:
        assert r.status == 200
        info = await r.json()
    assert info["url"] == f"{signalr.url}/client/?hub=chat"
    claims = jwt.decode(info["accessToken"], WELL_KNOWN_ACCESS_KEY, algorithms=["HS256"],
                        options={"verify_aud": False})
    assert claims["asrs.s.uid"] == "ann"
    assert claims["aud"] == "http://127.0.0.1/client/?hub=chat"  # the port is dropped, as the SDK does


async def test_rand_guid_in_a_binding_is_fresh_per_invocation(stack, http):
    _, _, host = stack
    users = []
    for _ in range(2):
        async with http.post(f"{host.url}/negotiate-anonymous") as r:
            token = (await r.json())["accessToken"]
        claims = jwt.decode(token, WELL_KNOWN_ACCESS_KEY, algorithms=["HS256"], options={"verify_aud": False})
        users.append(str(uuid.UUID(claims["asrs.s.uid"])))
    assert users[0] != users[1]


async def test_group_action_and_trigger_deliver_to_the_room_once(stack, http):
    _, _, host = stack
    async with http.post(f"{host.url}/negotiate?user=u1") as r:
        info = await r.json()
    inside, outside = Listener(info["url"], info["accessToken"]), Listener(info["url"], info["accessToken"])
    await inside.start()
    await outside.start()
    try:
        async with http.post(f"{host.url}/join/r1", json={"connectionId": inside.connection_id}) as r:
            assert r.status == 202
        async with http.post(f"{host.url}/join/r2", json={"connectionId": outside.connection_id}) as r:
            assert r.status == 202
        for i in range(5):
            async with http.post(f"{host.url}/save/r1", json={"id": f"m{i}", "text": f"t{i}"}) as r:
                assert r.status == 201
        assert await inside.wait_for(lambda ms: len(ms) >= 5, 5)
        await asyncio.sleep(0.3)
        assert [m["id"] for m in inside.messages] == [f"m{i}" for i in range(5)]
        assert outside.messages == []
        seen = host.imported.module.SEEN
        assert all(len(batch) <= 3 for batch in seen)  # max_items_per_invocation
    finally:
        await inside.stop()
        await outside.stop()


async def test_a_failing_group_action_fails_the_invocation(stack, http):
    _, _, host = stack
    async with http.post(f"{host.url}/bad-action") as r:
        assert r.status == 500


async def test_a_failing_batch_is_logged_with_its_ids_and_later_batches_still_flow(stack, http, caplog):
    """No retry policy on this app's trigger: a failing batch is invoked once (test_fnhost_trigger.py has
    the retry policies), and the lease keeps its checkpoint moving."""
    caplog.set_level(logging.INFO, logger="emulators.functions")
    cosmos, _, host = stack
    module = host.imported.module
    module.FAILURES["flaky"] = 2
    async with http.post(f"{host.url}/save/r0", json={"id": "x0", "text": "flaky"}) as r:
        assert r.status == 201
    assert await wait_until(lambda: any("(Failed" in r.getMessage() for r in caplog.records))
    for i, text in enumerate(["a", "b"], start=1):
        async with http.post(f"{host.url}/save/r{i}", json={"id": f"x{i}", "text": text}) as r:
            assert r.status == 201
    assert await wait_until(lambda: sum(len(b) for b in module.SEEN) >= 2, timeout=8)
    assert sorted(t for b in module.SEEN for t in b) == ["a", "b"]
    failed = [r.getMessage() for r in caplog.records if "(Failed" in r.getMessage()]
    assert len(failed) == 1 and "injected failure" in failed[0] and "ids: x0" in failed[0]
    assert module.FAILURES["flaky"] == 1
    leases = await read_all(cosmos, "leases")
    assert len(leases) == 1
    lease = leases[0]
    assert lease["Owner"] and lease["ContinuationToken"] and lease["timestamp"]


async def test_restart_resumes_from_the_checkpoint(services, http):
    cosmos, signalr = services
    host = await start_host(cosmos, signalr)
    async with http.post(f"{host.url}/save/r1", json={"id": "before", "text": "before"}) as r:
        assert r.status == 201
    assert await wait_until(lambda: host.imported.module.SEEN == [["before"]])
    url = host.url
    await host.close()
    async with CosmosClient(cosmos.url, credential=WELL_KNOWN_KEY) as client:
        c = client.get_database_client(DB).get_container_client("messages")
        for i in range(4):
            await c.upsert_item({"id": f"down{i}", "room": "r1", "text": f"down{i}"})
    host = await start_host(cosmos, signalr, notify=False)  # also exercises the feed_poll_delay path
    try:
        module = host.imported.module
        assert await wait_until(lambda: sum(len(b) for b in module.SEEN) >= 4, timeout=8)
        await asyncio.sleep(0.6)
        assert module.SEEN == [["down0", "down1", "down2"], ["down3"]]  # max_items_per_invocation=3
        assert url  # (the first host's URL is gone; the second listens elsewhere)
    finally:
        await host.close()


async def test_missing_lease_container_is_reported_not_created(services, caplog):
    caplog.set_level(logging.INFO, logger="emulators.functions")
    cosmos, signalr = services
    async with CosmosClient(cosmos.url, credential=WELL_KNOWN_KEY) as client:
        await client.get_database_client(DB).delete_container("leases")
    host = await start_host(cosmos, signalr)
    try:
        assert await wait_until(lambda: any("unavailable" in r.getMessage() for r in caplog.records))
        async with CosmosClient(cosmos.url, credential=WELL_KNOWN_KEY) as client:
            names = [c["id"] async for c in client.get_database_client(DB).list_containers()]
        assert "leases" not in names
    finally:
        await host.close()


async def put_lease(cosmos, owner: str, age_seconds: float, continuation: str | None = None) -> None:
    from datetime import UTC, datetime, timedelta

    stamp = (datetime.now(UTC) - timedelta(seconds=age_seconds)).isoformat().replace("+00:00", "Z")
    async with CosmosClient(cosmos.url, credential=WELL_KNOWN_KEY) as client:
        db = client.get_database_client(DB)
        await db.get_container_client("leases").upsert_item(
            {"id": f"{DB}.messages..0", "LeaseToken": "0", "ContinuationToken": continuation,
             "Owner": owner, "timestamp": stamp, "version": 1})
        await db.get_container_client("messages").upsert_item({"id": "w", "room": "r", "text": "waiting"})


async def put_doc(cosmos, document: dict) -> None:
    async with CosmosClient(cosmos.url, credential=WELL_KNOWN_KEY) as client:
        await client.get_database_client(DB).get_container_client("messages").upsert_item(document)


async def test_a_live_lease_of_another_owner_is_respected(services):
    cosmos, signalr = services
    await put_lease(cosmos, "another-host:feed", age_seconds=0)
    host = await start_host(cosmos, signalr)
    try:
        await asyncio.sleep(1.5)
        assert host.imported.module.SEEN == []
        lease = (await read_all(cosmos, "leases"))[0]
        assert lease["Owner"] == "another-host:feed"
    finally:
        await host.close()


async def test_an_expired_lease_is_taken_over_and_read_from_its_position(services):
    cosmos, signalr = services
    # A position: a host delivers one document and stops, leaving its checkpoint in the lease.
    host = await start_host(cosmos, signalr)
    try:
        await put_doc(cosmos, {"id": "before", "room": "r", "text": "before"})
        assert await wait_until(lambda: host.imported.module.SEEN == [["before"]])
    finally:
        await host.close()
    position = (await read_all(cosmos, "leases"))[0]["ContinuationToken"]
    assert position
    await put_lease(cosmos, "another-host:feed", age_seconds=300, continuation=position)
    host = await start_host(cosmos, signalr)
    try:
        module = host.imported.module
        assert await wait_until(lambda: module.SEEN == [["waiting"]])
        lease = (await read_all(cosmos, "leases"))[0]
        assert lease["Owner"] == host.consumers[0].owner != "another-host:feed"
        assert lease["ContinuationToken"]
    finally:
        await host.close()


async def test_signalr_output_messages_and_group_actions_single_or_lists(stack, http):
    """Every target of a message (connection > user > group > everyone) and every group action
    (add/remove/removeAll by connection or user), one at a time or as a list, keys in any case."""
    _, _, host = stack
    listeners = {}
    for user in ("ua", "ub", "uc"):
        async with http.post(f"{host.url}/negotiate?user={user}") as r:
            info = await r.json()
        listeners[user] = Listener(info["url"], info["accessToken"])
        await listeners[user].start()
    a, b, c = listeners["ua"], listeners["ub"], listeners["uc"]

    async def signal(payload):
        async with http.post(f"{host.url}/signal", json=payload) as r:
            return r.status

    def texts(listener):
        return list(listener.messages)

    try:
        assert await signal({"action": "add", "groupName": "g", "userId": "ua"}) == 202
        assert await signal([
            {"action": "add", "groupName": "g", "connectionId": b.connection_id},
            {"target": "newMessage", "arguments": ["to-g"], "groupName": "g"},
            {"target": "newMessage", "arguments": ["to-c"], "connectionId": c.connection_id,
             "userId": "ua", "groupName": "g"},  # connectionId wins over userId and groupName
            {"target": "newMessage", "arguments": ["to-ub"], "userId": "ub", "groupName": "g"},
            {"target": "newMessage", "arguments": ["everyone"]},
        ]) == 202
        for listener in (a, b, c):
            assert await listener.wait_for(lambda ms: "everyone" in ms, 5)
        assert texts(a) == ["to-g", "everyone"]
        assert texts(b) == ["to-g", "to-ub", "everyone"]
        assert texts(c) == ["to-c", "everyone"]
        assert await signal([
            {"Action": "remove", "GroupName": "g", "UserId": "ua"},
            {"action": "removeAll", "connectionId": b.connection_id},
            {"Target": "newMessage", "Arguments": ["to-g-again"], "GroupName": "g"},
            {"target": "newMessage", "arguments": ["end"]},
        ]) == 202
        for listener in (a, b, c):
            assert await listener.wait_for(lambda ms: "end" in ms, 5)
        assert "to-g-again" not in texts(a) + texts(b) + texts(c)
        # Malformed items fail the invocation instead of being dropped, and nothing of a list that
        # holds one is sent.
        assert await signal([{"target": "newMessage", "arguments": ["never"]}, {"target": ""}]) == 500
        assert await signal({"target": "newMessage", "arguments": ["last"]}) == 202
        for listener in (a, b, c):
            assert await listener.wait_for(lambda ms: "last" in ms, 5)
        assert "never" not in texts(a) + texts(b) + texts(c)
        assert await signal({"target": "", "arguments": []}) == 500
        assert await signal({"action": "add", "groupName": "g"}) == 500
        assert await signal({"action": "shout", "groupName": "g", "userId": "ua"}) == 500
    finally:
        for listener in listeners.values():
            await listener.stop()
