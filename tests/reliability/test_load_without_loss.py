"""Load without loss: 200 WebSocket clients in 5 rooms while 20 concurrent writers post.

Every client must receive every acknowledged message of its room (exactly once after de-duplication by id,
nothing from other rooms), live arrivals from each writer in createdAt order, and the store (read with the
Cosmos SDK, not through our own History) must hold exactly the acknowledged messages, no more, no less.

Size: the issue's, 20,000 messages, in `make test` (the stack takes them in about a minute and a half on
this 2-core machine since it runs in two processes; see docs/reliability.md). `COSMIC_LOAD_MESSAGES=5000`
makes a quicker run."""

from __future__ import annotations

import asyncio
import os
import time

import aiohttp
import pytest
from chatload import (
    ChatWs,
    WholeStack,
    Writer,
    acknowledged_by_room,
    order_violations,
    percentile,
    stored_messages,
    wait_all,
)

CLIENTS, ROOMS, WRITERS = 200, 5, 20
MESSAGES = int(os.environ.get("COSMIC_LOAD_MESSAGES", "20000"))


@pytest.mark.slow
@pytest.mark.timeout(600)
async def test_200_clients_5_rooms_20_writers_lose_nothing(tmp_path):
    stack = WholeStack(tmp_path / "data")
    await stack.start()
    rooms = [f"load-{i}" for i in range(ROOMS)]
    clients: list[ChatWs] = []
    try:
        connector = aiohttp.TCPConnector(limit=0)
        timeout = aiohttp.ClientTimeout(total=30)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
            clients = [ChatWs(http, stack.base, rooms[i % ROOMS], reconnect=False) for i in range(CLIENTS)]
            for i in range(0, CLIENTS, 25):
                await asyncio.gather(*(c.start() for c in clients[i:i + 25]))

            writers = [Writer(http, stack.base, rooms[i % ROOMS], f"writer-{i}") for i in range(WRITERS)]
            started = time.monotonic()
            await asyncio.gather(*(w.run(MESSAGES // WRITERS, asyncio.Event()) for w in writers))
            posted_in = time.monotonic() - started
            acked = acknowledged_by_room(writers)
            assert sum(len(v) for v in acked.values()) == MESSAGES
            assert sum(w.failed for w in writers) == 0

            lost = await wait_all(clients, acked, timeout=120)
            delivered_in = time.monotonic() - started
            assert not lost, f"clients missing acknowledged messages (client index → count): {lost}"
            for c in clients:
                assert c.seen.keys() == acked[c.room].keys(), "a message of another room reached a client"
                assert c.stats.closes == [], c.stats.closes
            assert sum(order_violations(c) for c in clients) == 0, "a writer's messages arrived out of order"

            stored = await stored_messages(stack.cosmos_url)
            by_room: dict[str, set[str]] = {}
            for doc in stored:
                by_room.setdefault(doc["room"], set()).add(doc["id"])
            assert len(stored) == MESSAGES
            assert by_room == {room: set(ids) for room, ids in acked.items()}

            latencies = [x for c in clients for x in c.latencies]
            deliveries = sum(c.stats.deliveries for c in clients)
            duplicates = sum(c.stats.duplicates for c in clients)
            p50, p99 = percentile(latencies, 0.5) * 1000, percentile(latencies, 0.99) * 1000
            print(f"\n{MESSAGES} posts in {posted_in:.1f} s ({MESSAGES / posted_in:.0f}/s); {deliveries} "
                  f"deliveries ({duplicates} duplicates) complete after {delivered_in:.1f} s; post→client "
                  f"p50 {p50:.0f} ms p99 {p99:.0f} ms")
    finally:
        for c in clients:
            await c.close()
        await stack.close()
