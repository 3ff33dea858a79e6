"""Faults under load: each test asserts zero acknowledged messages lost.

- SIGKILL of the whole stack mid-load, restart on the same ports and data: clients reconnect and catch up
  through History `after=`.
- SIGKILL and restart of the SignalR emulator alone (the three emulators as three processes): clients
  reconnect, re-join and catch up; the store keeps accepting posts throughout.
- The delivery contract (docs/reliability.md): live at least once within FeedToSignalR's retry window, always
  recoverable through History. A SignalR outage shorter than the window: the same batch is retried, and a
  client that connects only after the service is back, and never reads History, receives every message of
  the outage live. Longer than the window (a short policy, so it takes seconds): the batch is given up on and
  not sent live, the feed moves on, and History has every message.

Writers are rate-limited so that, per room, fewer than 200 messages (History's window, docs/api.md) are
posted while a client is away: beyond that window catch-up cannot be complete by design.
"""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest
from chatload import (
    ChatWs,
    SplitStack,
    WholeStack,
    Writer,
    acknowledged_by_room,
    stored_messages,
    wait_all,
)

ROOMS = ["fault-a", "fault-b"]


async def start_clients(http: aiohttp.ClientSession, base: str, n: int, **kw) -> list[ChatWs]:
    clients = [ChatWs(http, base, ROOMS[i % len(ROOMS)], **kw) for i in range(n)]
    await asyncio.gather(*(c.start() for c in clients))
    return clients


async def until(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


def session() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0),
                                 timeout=aiohttp.ClientTimeout(total=5))


async def assert_store_holds(cosmos_url: str, writers: list[Writer]) -> None:
    """Every acknowledged id is stored; anything else stored was a POST in flight when the fault hit."""
    acked = {m["id"] for w in writers for m in w.acknowledged}
    stored = {d["id"] for d in await stored_messages(cosmos_url)}
    assert acked <= stored, f"{len(acked - stored)} acknowledged messages are not stored"
    assert len(stored - acked) <= sum(w.failed for w in writers)


@pytest.mark.slow
async def test_sigkill_of_the_stack_mid_load_then_restart(tmp_path):
    stack = WholeStack(tmp_path / "data")
    await stack.start()
    clients: list[ChatWs] = []
    try:
        async with session() as http:
            clients = await start_clients(http, stack.base, 20)
            writers = [Writer(http, stack.base, ROOMS[i % len(ROOMS)], f"w{i}") for i in range(6)]
            stop = asyncio.Event()
            tasks = [asyncio.create_task(w.run(None, stop, rate=15)) for w in writers]
            await until(lambda: sum(len(w.acknowledged) for w in writers) >= 150, 30, "150 posts")
            await stack.proc.kill()  # SIGKILL, requests and change feed in flight
            killed_at = sum(len(w.acknowledged) for w in writers)
            await asyncio.sleep(0.5)
            await stack.proc.start()
            await until(lambda: sum(len(w.acknowledged) for w in writers) >= killed_at + 150, 60,
                        "150 more posts after the restart")
            stop.set()
            await asyncio.gather(*tasks)
            acked = acknowledged_by_room(writers)
            lost = await wait_all(clients, acked, timeout=30)
            assert not lost, f"clients missing acknowledged messages: {lost}"
            assert all(c.stats.reconnects >= 1 for c in clients), "a client never reconnected"
            assert sum(w.failed for w in writers) >= 1, "the kill did not hit any post"
            await assert_store_holds(stack.cosmos_url, writers)
    finally:
        for c in clients:
            await c.close()
        await stack.close()


@pytest.mark.slow
async def test_signalr_restart_clients_reconnect_and_catch_up(tmp_path):
    stack = SplitStack(tmp_path)
    await stack.start()
    clients: list[ChatWs] = []
    try:
        async with session() as http:
            clients = await start_clients(http, stack.base, 20)
            writers = [Writer(http, stack.base, ROOMS[i % len(ROOMS)], f"w{i}") for i in range(4)]
            stop = asyncio.Event()
            tasks = [asyncio.create_task(w.run(None, stop, rate=15)) for w in writers]
            await until(lambda: sum(len(w.acknowledged) for w in writers) >= 60, 30, "60 acknowledged posts")
            await stack.signalr.kill()
            during = sum(len(w.acknowledged) for w in writers)
            await asyncio.sleep(2)
            await stack.signalr.start()
            assert sum(len(w.acknowledged) for w in writers) > during, "posts stored while SignalR is down"
            await until(lambda: all(c.connected.is_set() for c in clients), 30, "every client to reconnect")
            await asyncio.sleep(1.5)
            stop.set()
            await asyncio.gather(*tasks)
            lost = await wait_all(clients, acknowledged_by_room(writers), timeout=40)
            assert not lost, f"clients missing acknowledged messages: {lost}"
            assert all(c.stats.reconnects >= 1 for c in clients)
            assert sum(w.failed for w in writers) == 0, "SaveChat does not depend on SignalR"
            await assert_store_holds(stack.cosmos_url, writers)
    finally:
        for c in clients:
            await c.close()
        await stack.close()


@pytest.mark.slow
async def test_an_outage_shorter_than_the_retry_window_is_delivered_live(tmp_path):
    """FeedToSignalR's own policy (exponential back-off, 10 retries, 1 s to 30 s: ~2.5 minutes)."""
    stack = SplitStack(tmp_path)
    await stack.start()
    fresh: ChatWs | None = None
    try:
        async with session() as http:
            await stack.signalr.kill()  # FeedToSignalR's REST calls now fail: connection refused
            writer = Writer(http, stack.base, ROOMS[0], "during-outage")
            await writer.run(30, asyncio.Event())
            assert len(writer.acknowledged) == 30 and writer.failed == 0
            # Five failed attempts of a batch (waits 1, ~2, ~3, ~5 s between them): the wait before the sixth
            # is 7.4-10.6 s, time enough to bring the service back and let a client join first.
            waits = await stack.functions.wait_for_log(b"before retrying function execution", count=5,
                                                       timeout=40)
            assert waits >= 5
            assert b"Next attempt: '5'. Max retry count: '10'." in b"".join(stack.functions.log)
            await stack.signalr.start()
            fresh = ChatWs(http, stack.base, ROOMS[0], reconnect=False)  # never reads History
            await fresh.start()
            ids = {m["id"] for m in writer.acknowledged}
            assert await fresh.wait_for(ids, timeout=40), (
                f"{len(ids - fresh.seen.keys())} of the outage's messages were not retried within the window")
            assert fresh.stats.caught_up == 0  # all 30 came live, from the retried batch(es)
            given_up = await stack.functions.wait_for_log(b"Function execution failed after", timeout=0.1)
            assert not given_up, "a batch was given up on"
    finally:
        if fresh is not None:
            await fresh.close()
        await stack.close()


SHORT_POLICY = {  # the local host's test-only override of FeedToSignalR's retry policy: a 2 s window
    "LOCAL_RETRY_POLICY_OVERRIDE__FeedToSignalR":
        '{"strategy": "fixed_delay", "max_retry_count": "2", "delay_interval": "00:00:01"}',
}


@pytest.mark.slow
async def test_an_outage_longer_than_the_retry_window_loses_live_delivery_not_messages(tmp_path):
    stack = SplitStack(tmp_path, functions_settings=SHORT_POLICY)
    await stack.start()
    fresh: ChatWs | None = None
    try:
        async with session() as http:
            await stack.signalr.kill()
            writer = Writer(http, stack.base, ROOMS[0], "during-outage")
            await writer.run(30, asyncio.Event())
            assert len(writer.acknowledged) == 30 and writer.failed == 0
            ids = {m["id"] for m in writer.acknowledged}

            def given_up() -> set[str]:
                """Ids in the handler's line on a batch's last retry (one line per batch, every id)."""
                out: set[str] = set()
                for line in stack.functions.log:
                    if b"(the last:" in line:
                        out |= set(line.decode().rstrip().split("ids=")[1].split(","))
                return out

            await until(lambda: ids <= given_up(), 30, "every batch of the outage to reach its last retry")
            last_retries = sum(b"(the last:" in line for line in stack.functions.log)
            assert await stack.functions.wait_for_log(b"Function execution failed after '2' retries.",
                                                      count=last_retries, timeout=10) == last_retries
            assert b"Lease 0 encountered an unhandled user exception during processing." in b"".join(
                stack.functions.log)
            await stack.signalr.start()
            fresh = ChatWs(http, stack.base, ROOMS[0], reconnect=False)
            await fresh.start()
            # The feed moved on: a new message comes live, the given-up ones do not come again.
            after = Writer(http, stack.base, ROOMS[0], "after-outage")
            await after.run(1, asyncio.Event())
            assert await fresh.wait_for({after.acknowledged[0]["id"]}, timeout=20)
            await asyncio.sleep(1.0)
            assert not ids & fresh.seen.keys(), "a batch given up on was sent live after all"
            # Nothing acknowledged is lost: History has all of them (what the web client reads on a visit).
            await fresh.catch_up()
            missing = ids - fresh.seen.keys()
            assert not missing, f"{len(missing)} acknowledged messages are not in History"
            assert fresh.stats.caught_up >= 30
            await assert_store_holds(stack.cosmos_url, [writer, after])
    finally:
        if fresh is not None:
            await fresh.close()
        await stack.close()


async def signalr_stats(http: aiohttp.ClientSession, port: int) -> dict:
    async with http.get(f"http://127.0.0.1:{port}/stats") as r:
        return await r.json()


@pytest.mark.slow
async def test_a_stalled_client_is_dropped_others_unaffected_and_it_catches_up(tmp_path):
    # A client that stops reading is dropped by the service either when more than 1 MiB waits unsent for it
    # or when it has been silent for 30 s. On loopback the kernel's socket buffers absorb megabytes before
    # the first happens (more than History's 200-message window could give back), so the SignalR emulator
    # runs here with a 6 s silence timeout instead of 30 s (its `hub.Limits`; the same sweep, sooner). The
    # other clients ping every second.
    stack = SplitStack(tmp_path, signalr_limits={"client_timeout": 6})
    await stack.start()
    clients: list[ChatWs] = []
    try:
        async with session() as http:
            clients = await start_clients(http, stack.base, 6)
            for c in clients:
                c.ping_every = 1.0
            clients.sort(key=lambda c: c.room != ROOMS[0])
            stalled = clients[0]
            await stalled.stall()  # stops reading and so stops pinging, like a frozen tab
            writers = [Writer(http, stack.base, room, f"w-{room}", pad=500) for room in ROOMS]
            stop = asyncio.Event()
            tasks = [asyncio.create_task(w.run(190, stop, rate=15)) for w in writers]
            started = time.monotonic()
            while (await signalr_stats(http, stack.signalr_port))["connections"]["total"] == len(clients):
                assert time.monotonic() - started < 12, "the stalled client was never dropped"
                await asyncio.sleep(0.2)
            dropped_in = time.monotonic() - started
            await asyncio.sleep(1)
            stop.set()
            await asyncio.gather(*tasks)
            acked = acknowledged_by_room(writers)
            lost = await wait_all(clients[1:], acked, timeout=30)
            assert not lost, f"the stalled client held others back: {lost}"
            assert all(c.stats.reconnects == 0 for c in clients[1:]), "a reading client was dropped"
            assert (await signalr_stats(http, stack.signalr_port))["connections"]["total"] == len(clients) - 1

            stalled.resume()
            ok = await stalled.wait_for(set(acked[ROOMS[0]]), timeout=30)
            gap = acked[ROOMS[0]].keys() - stalled.seen.keys()
            assert ok, f"{len(gap)} messages never reached the returning client"
            assert stalled.stats.reconnects == 1 and stalled.stats.caught_up >= 1
            print(f"\nstalled client dropped after {dropped_in:.1f} s ({stalled.stats.closes}); on return "
                  f"caught up {stalled.stats.caught_up} of {len(acked[ROOMS[0]])} through History")
    finally:
        for c in clients:
            await c.close()
        await stack.close()
