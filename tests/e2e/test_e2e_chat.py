"""End to end through the HTTP API: the real app on the local host, both emulators, pysignalr clients."""

from __future__ import annotations

import asyncio
import sys

import pytest
from e2e_helpers import ROOT, ChatClient, dedupe_in_order, fresh_room, history, post, settle

from emulators.smoke import new_identity

PUBLIC_FIELDS = {"id", "room", "user", "authorId", "text", "createdAt"}


async def test_clients_in_two_rooms_get_exactly_their_rooms_messages_in_order(stack, http):
    base = stack.functions.url
    room_a, room_b = fresh_room("a"), fresh_room("b")
    clients = {
        name: ChatClient(http, base, room)
        for name, room in [("a1", room_a), ("a2", room_a), ("a3", room_a), ("b1", room_b), ("b2", room_b)]
    }
    await asyncio.gather(*(c.connect() for c in clients.values()))
    try:
        sent: dict[str, list[dict]] = {room_a: [], room_b: []}
        for i in range(12):
            room = room_a if i % 3 else room_b
            sent[room].append(await post(http, base, room, f"user{i % 4}", f"line {i} ✨ <b>x</b>"))
        for c in clients.values():
            assert await c.wait_for_ids({m["id"] for m in sent[c.room]}), f"{c.room} client missed messages"
        await settle()
        for name, c in clients.items():
            got = dedupe_in_order(c.received)
            assert [m["id"] for m in got] == [m["id"] for m in sent[c.room]], name
            assert got == sent[c.room]  # exactly what the 201 said, field for field
            assert all(set(m) == PUBLIC_FIELDS for m in c.received)  # never Cosmos system properties
            # Live delivery order is the posting order (one partition, one feed), duplicates aside.
            assert [m["id"] for m in c.received if m["room"] == c.room] == [m["id"] for m in got]
    finally:
        await asyncio.gather(*(c.disconnect() for c in clients.values()))


async def test_history_limit_and_after_catch_up(stack, http):
    base = stack.functions.url
    room = fresh_room("h")
    sent = [await post(http, base, room, "ann", f"m{i}") for i in range(7)]
    assert await history(http, base, room) == sent
    assert await history(http, base, room, limit=3) == sent[-3:]
    assert await history(http, base, room, after=sent[2]["createdAt"]) == sent[3:]
    assert await history(http, base, room, after=sent[2]["createdAt"], limit=2) == sent[3:5]
    assert await history(http, base, room, after=sent[-1]["createdAt"]) == []
    async with http.get(f"{base}/api/rooms/{room}/messages", params={"limit": "0"}) as r:
        assert r.status == 400
        assert (await r.json())["error"]["field"] == "limit"


async def test_catch_up_from_behind_the_newest_200_is_exact(stack, http):
    """A client 250 messages behind pages through everything it missed: History answers what its
    newest-200 window proves, and sends older `after` values to HistoryAfter (307, followed)."""
    base = stack.functions.url
    room = fresh_room("deep")
    sent = await asyncio.gather(*(post(http, base, room, "ann", f"m{i}") for i in range(260)))
    ordered = sorted(sent, key=lambda m: (m["createdAt"], m["id"]))
    assert await history(http, base, room, limit=200) == ordered[-200:]
    async with http.get(
        f"{base}/api/rooms/{room}/messages", params={"after": ordered[9]["createdAt"]}, allow_redirects=False
    ) as r:
        assert r.status == 307
        after = ordered[9]["createdAt"].replace(":", "%3A")
        assert r.headers["Location"] == f"/api/rooms/{room}/messages/after/{after}?limit=50"
    # page as www/js/api.js fetchMissed does: the next page starts after the second-newest timestamp, so
    # messages of one millisecond split across pages all arrive (this run stores several per millisecond)
    caught_up, after = [], ordered[9]["createdAt"]
    while len(page := await history(http, base, room, after=after, limit=37)) == 37:
        caught_up += page
        after = max(m["createdAt"] for m in page if m["createdAt"] < page[-1]["createdAt"])
    caught_up += page
    by_id = {m["id"]: m for m in caught_up}
    assert sorted(by_id.values(), key=lambda m: (m["createdAt"], m["id"])) == [
        m for m in ordered if m["createdAt"] > ordered[9]["createdAt"]
    ]


async def test_a_retried_post_with_the_same_id_is_stored_once(stack, http):
    base = stack.functions.url
    room = fresh_room("i")
    ann = await new_identity(http, base)
    msg_id = "0b7c3c55-4bd3-4bd8-9df6-06fb1b1fe5c5"
    first = await post(http, base, room, "ann", "hello", msg_id=msg_id, who=ann)
    again = await post(http, base, room, "ann", "hello", msg_id=msg_id, who=ann, expect=200)
    assert again == first  # the stored message, createdAt included: nothing written again
    assert first["authorId"] == ann.id
    # the same id from anyone else (or with another text) is someone else's message: 409, nothing replaced
    async with http.post(
        f"{base}/api/rooms/{room}/messages",
        json={"id": msg_id, "user": "ann", "text": "hi"},
        headers=(await new_identity(http, base)).headers,
    ) as r:
        assert r.status == 409
        assert (await r.json())["error"]["field"] == "id"
    assert await history(http, base, room) == [first]


async def test_a_client_that_reconnects_misses_nothing(stack, http):
    base = stack.functions.url
    room = fresh_room("re")
    client = ChatClient(http, base, room)
    await client.connect()
    before = [await post(http, base, room, "ann", f"before {i}") for i in range(3)]
    assert await client.wait_for_ids({m["id"] for m in before})
    seen = dedupe_in_order(client.received)
    await client.disconnect()
    while_away = [await post(http, base, room, "bob", f"away {i}") for i in range(4)]
    # Reconnect as the web client does: fresh negotiate, new connection, re-join, then catch up
    # with after=<newest createdAt it has>.
    client = ChatClient(http, base, room, who=client.who)  # the same browser: the same identity
    await client.connect()
    try:
        caught_up = await history(http, base, room, after=seen[-1]["createdAt"])
        live = await post(http, base, room, "ann", "back")
        assert await client.wait_for_ids({live["id"]})
        timeline = dedupe_in_order(seen + caught_up + client.received)
        assert timeline == before + while_away + [live]
    finally:
        await client.disconnect()


async def test_leave_room_stops_delivery(stack, http):
    base = stack.functions.url
    room = fresh_room("l")
    client = ChatClient(http, base, room)
    await client.connect()
    try:
        first = await post(http, base, room, "ann", "one")
        assert await client.wait_for_ids({first["id"]})
        await client.leave()
        await post(http, base, room, "ann", "two")
        await settle(0.5)
        assert [m["id"] for m in client.received] == [first["id"]]
    finally:
        await client.disconnect()


async def test_group_actions_for_a_closed_connection_are_404_and_change_nothing(stack, http):
    base = stack.functions.url
    room = fresh_room("g")
    watcher = ChatClient(http, base, room)
    await watcher.connect()
    leaver = ChatClient(http, base, room)
    await leaver.connect()
    await leaver.disconnect()
    try:
        for action in ("join", "leave"):
            async with http.post(
                f"{base}/api/rooms/{room}/{action}", json={}, headers=leaver.who.headers
            ) as r:
                assert r.status == 404
                error = (await r.json())["error"]
                assert (error["code"], error["field"]) == ("not_connected", "Authorization")
        # the room still works for the connection that stayed
        message = await post(http, base, room, "ann", "still here")
        assert await watcher.wait_for_ids({message["id"]})
    finally:
        await watcher.disconnect()


async def test_bad_input_is_refused_and_nothing_is_written(stack, http):
    base = stack.functions.url
    room = fresh_room("v")
    auth = (await new_identity(http, base)).headers
    async with http.post(
        f"{base}/api/rooms/{room}/messages", json={"user": "", "text": "x"}, headers=auth
    ) as r:
        assert r.status == 400
        assert (await r.json())["error"]["field"] == "user"
    async with http.post(
        f"{base}/api/rooms/BAD_ROOM/messages", json={"user": "a", "text": "x"}, headers=auth
    ) as r:
        assert r.status == 400
    for headers, code in (
        ({}, "identity_required"),
        ({"Authorization": "Bearer v1.forged.x"}, "invalid_identity"),
    ):
        async with http.post(
            f"{base}/api/rooms/{room}/messages", json={"user": "a", "text": "x"}, headers=headers
        ) as r:
            assert r.status == 401
            error = (await r.json())["error"]
            assert (error["code"], error["field"]) == (code, "Authorization")
    assert await history(http, base, room) == []


async def test_site_is_served_from_the_function_app(stack, http):
    base = stack.functions.url
    async with http.get(f"{base}/") as r:
        assert r.status == 200
        assert "text/html" in r.headers["Content-Type"]
        assert "Cosmic Chat" in await r.text()
    async with http.get(f"{base}/lib/signalr.min.js") as r:
        assert r.status == 200
    async with http.get(f"{base}/%2e%2e/%2e%2e/etc/passwd") as r:
        assert r.status == 404


async def test_smoke_command_against_the_running_stack(stack):
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "emulators.smoke",
        stack.functions.url,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=ROOT,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    assert out.decode().startswith("smoke OK") and "round trip" in out.decode()


async def test_smoke_command_fails_with_a_reason(free_port):
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "emulators.smoke",
        f"http://127.0.0.1:{free_port}",
        "--timeout",
        "3",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=ROOT,
    )
    _, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 1
    assert err.decode().startswith("smoke FAILED: identity:")


async def test_smoke_command_fails_when_the_message_never_comes_back(stack):
    from emulators.smoke import SmokeFailure, run

    for consumer in stack.functions.consumers:  # FeedToSignalR stops: posts are stored, never delivered
        await consumer.stop()
    with pytest.raises(SmokeFailure, match="did not come back through the change feed"):
        await run(stack.functions.url, timeout=2)


async def test_smoke_command_against_a_server_that_never_answers_fails_in_one_line():
    held: list[asyncio.StreamWriter] = []

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)  # accept, read nothing, answer nothing

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "emulators.smoke",
            f"http://127.0.0.1:{port}",
            "--timeout",
            "1",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=ROOT,
        )
        _, err = await asyncio.wait_for(proc.communicate(), 60)
    finally:
        for w in held:
            w.close()
        server.close()
    assert proc.returncode == 1
    assert err.decode().splitlines() == [
        f"smoke FAILED: identity: POST http://127.0.0.1:{port}/api/identities did not answer within the "
        "step's time limit"
    ]
