"""History query time as stored history grows: seed the Cosmos DB emulator's store, time `GET
/api/rooms/{room}/messages` through the whole stack, and profile the store's query at the largest size.

Seeding goes straight into the emulator's store (`emulators.cosmos.store.Store`, the very code the
server runs, in this process, while the stack is stopped) with SQLite's `synchronous=OFF` for the
seeding connection only: one million documents through HTTP upserts would take most of an hour, and
the documents are the same either way (SaveChat's five fields, system properties stamped by the store).
The stack then starts on that data directory; its change-feed lease is created at start-up with the
start time "now", so the seeded history is not replayed to anyone.

Layout: the history is spread evenly over `rooms` rooms; the timed room is one of them, so at
1,000,000 messages in 10 rooms it holds 100,000.

    python -m bench.e2e_history seed --data-dir DIR --count 100000 --rooms 10   (used by python -m bench)
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import json
import pstats
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp

from bench.e2e_load import Server
from emulators.smoke import Identity, new_identity

HISTORY_SQL = (  # the SQL the History binding sends (functions/function_app.py), parameter resolved
    "SELECT TOP 200 c.id, c.room, c.user, c.text, c.createdAt FROM c "
    "WHERE c.room = @room ORDER BY c.createdAt DESC, c.id DESC"
)


def room_name(i: int) -> str:
    return f"hist-{i}"


def seed(data_dir: Path, start: int, count: int, rooms: int) -> float:
    """Add documents `start`..`start+count-1` (room = index mod rooms); returns seconds taken."""
    from emulators.cosmos.store import Store

    store = Store(data_dir / "cosmos")
    store.db.execute("PRAGMA synchronous=OFF")
    base = datetime(2026, 1, 1, tzinfo=UTC)
    began = time.perf_counter()
    batch = 5000
    try:
        for lo in range(start, start + count, batch):
            for i in range(lo, min(lo + batch, start + count)):
                created = base + timedelta(milliseconds=i)
                stamp = created.strftime("%Y-%m-%dT%H:%M:%S.") + f"{created.microsecond // 1000:03d}Z"
                doc = {
                    "id": str(uuid.UUID(int=i + 1)),
                    "room": room_name(i % rooms),
                    "user": f"user{i % 97}",
                    "text": f"seeded message {i} " + "x" * 60,
                    "createdAt": stamp,
                }
                store.upsert_item("chat", "messages", doc, None, upsert=True)
        # Seeded history is not news: without this, the trigger's checkpoint from the previous size would
        # make FeedToSignalR replay every seeded document while History is being timed (it did: at
        # 1,000,000 that replay, not the query, made History 169 ms and a lone POST 147 ms). With no lease
        # the trigger starts from "now", as a new deployment would.
        leases = store.query("chat", "leases", "SELECT c.id FROM c", {}, None, None, -1, None)
        for lease in leases.documents:
            lease_id = json.loads(lease)["id"]
            store.delete_item("chat", "leases", lease_id, [lease_id], None)
    finally:
        store.close()
    return time.perf_counter() - began


def profile_query(data_dir: Path, room: str) -> dict[str, Any]:
    """The store's query for one History request, in-process, under cProfile: where the time goes."""
    from emulators.cosmos.store import Store

    store = Store(data_dir / "cosmos")
    try:
        began = time.perf_counter()
        page = store.query("chat", "messages", HISTORY_SQL, {"@room": room}, [room], None, 200, None)
        plain_s = time.perf_counter() - began
        prof = cProfile.Profile()
        prof.enable()
        store.query("chat", "messages", HISTORY_SQL, {"@room": room}, [room], None, 200, None)
        prof.disable()
        rows = store.db.execute(
            "SELECT COUNT(*) FROM docs d JOIN colls c ON d.coll = c.rid WHERE c.id = 'messages' AND d.pk = ?",
            (f'["{room}"]',),
        ).fetchone()
    finally:
        store.close()
    text = io.StringIO()
    pstats.Stats(prof, stream=text).sort_stats("tottime").print_stats(12)
    return {
        "store_query_s": round(plain_s, 4),
        "returned": len(page.documents) if hasattr(page, "documents") else None,
        "rows_in_partition": rows[0] if rows else None,
        "profile_top": "\n".join(line for line in text.getvalue().splitlines() if line.strip())[:4000],
    }


async def _timed_post(http: aiohttp.ClientSession, base: str, who: Identity) -> float:
    began = time.perf_counter()
    async with http.post(
        f"{base}/api/rooms/bench-probe/messages", json={"user": "bench", "text": "probe"}, headers=who.headers
    ) as r:
        if r.status != 201:
            raise RuntimeError(f"probe post answered {r.status}: {await r.text()}")
    return (time.perf_counter() - began) * 1000


async def time_history(base: str, room: str, requests: int, budget_s: float = 60.0) -> dict[str, float]:
    """`requests` timed GETs after one warm-up, fewer (at least 3) if they would take over `budget_s`."""
    times: list[float] = []
    began_all = time.perf_counter()
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=600)) as http:
        for i in range(requests + 1):
            if len(times) >= 3 and time.perf_counter() - began_all > budget_s:
                break
            began = time.perf_counter()
            async with http.get(f"{base}/api/rooms/{room}/messages") as r:
                body = await r.json()
                if r.status != 200:
                    raise RuntimeError(f"history answered {r.status}: {body}")
            if i:  # the first request warms the caches
                times.append((time.perf_counter() - began) * 1000)
        who = await new_identity(http, base)  # two probe posts: the default post limit holds
        post_alone = await _timed_post(http, base, who)
        # The same POST while a History query runs: the emulator's store serves every call on one
        # thread, so a long query holds up writes (and the change feed) for everyone.
        history = asyncio.create_task(http.get(f"{base}/api/rooms/{room}/messages"))
        await asyncio.sleep(0.02)
        post_during = await _timed_post(http, base, who)
        (await history).release()
    times.sort()
    return {
        "post_alone_ms": post_alone,
        "post_during_history_ms": post_during,
        "median_ms": statistics.median(times),
        "p90_ms": times[int(0.9 * (len(times) - 1))],
        "max_ms": times[-1],
        "requests": len(times),
        "returned": len(body["messages"]),
    }


async def run(
    sizes: list[int], rooms: int, requests: int, data_dir: Path, log: Any = print
) -> list[dict[str, Any]]:
    """For each total size: seed up to it (stack stopped), start the stack on the data, time History."""
    results: list[dict[str, Any]] = []
    have = 0
    timed_room = room_name(0)
    # The first start creates the database and containers the seeding writes into.
    server = Server("stack", data_dir=data_dir)
    server.start()
    server.stop()
    for size in sizes:
        seed_s = seed(data_dir, have, size - have, rooms) if size > have else 0.0
        have = max(have, size)
        server = Server("stack", data_dir=data_dir)
        server.start(timeout=300)
        try:
            t = await time_history(server.base, timed_room, requests)
        finally:
            server.stop()
        row = {"stored": size, "in_room": (size + rooms - 1) // rooms, "seed_s": round(seed_s, 1), **t}
        log(
            f"history: {size:>9,} stored ({row['in_room']:,} in the room): median {t['median_ms']:.1f} ms, "
            f"p90 {t['p90_ms']:.1f} ms; a POST meanwhile {t['post_during_history_ms']:.0f} ms "
            f"(alone {t['post_alone_ms']:.0f} ms) (seeded in {seed_s:.0f} s)"
        )
        results.append(row)
    return results


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.e2e_history", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("seed")
    s.add_argument("--data-dir", type=Path, required=True)
    s.add_argument("--start", type=int, default=0)
    s.add_argument("--count", type=int, required=True)
    s.add_argument("--rooms", type=int, default=10)
    pr = sub.add_parser("profile")
    pr.add_argument("--data-dir", type=Path, required=True)
    pr.add_argument("--room", default=room_name(0))
    args = p.parse_args(argv)
    if args.cmd == "seed":
        print(f"seeded {args.count} in {seed(args.data_dir, args.start, args.count, args.rooms):.1f} s")
    else:
        print(profile_query(args.data_dir, args.room)["profile_top"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
