"""Benchmark: the chat's History query on the Cosmos emulator, in-Python sort vs index-backed ORDER BY.

For 1k / 10k / 100k messages in one room (plus 1,000 in another room), on the default on-disk store:

1. ``Store.query`` called directly (the time the single store thread is busy), the two paths interleaved
   query by query (old, new, old, new, …) in the same run; medians and documents decoded per query;
2. the same through the azure-cosmos SDK (``query_items`` with the partition key, as the Functions
   binding sends it) against the running emulator, toggling ``Store.queries.indexed_order`` between calls;
3. what the index costs: the one-off CREATE INDEX on the first History query of a room of that size, and
   the median upsert before vs after the index exists.

Not a test: prints Markdown tables.

    .venv/bin/python bench/cosmos_history_query.py [--sizes 1000 10000 100000] [--rounds 7]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from azure.cosmos import CosmosClient

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from emulators.cosmos import start
from emulators.cosmos.store import Store

HISTORY = (
    "SELECT TOP 200 c.id, c.room, c.user, c.text, c.createdAt FROM c WHERE c.room = @room "
    "ORDER BY c.createdAt DESC, c.id DESC"
)
DB, COLL, ROOM = "chat", "messages", "big"
T0 = datetime(2026, 11, 27, tzinfo=UTC)


def message(i: int, room: str) -> dict[str, Any]:
    stamp = (T0 + timedelta(milliseconds=37 * i)).isoformat(timespec="microseconds").replace("+00:00", "Z")
    return {
        "id": f"{room}-{i:07d}",
        "room": room,
        "user": f"user{i % 50}",
        "text": f"message {i} " * 4,
        "createdAt": stamp,
    }


def populate(data_dir: Path, size: int) -> None:
    store = Store(data_dir)
    store.create_database({"id": DB})
    store.create_container(DB, {"id": COLL, "partitionKey": {"paths": ["/room"]}})
    store.db.execute("BEGIN")
    for i in range(size):
        store.upsert_item(DB, COLL, message(i, ROOM), [ROOM], upsert=True)
    for i in range(1000):
        store.upsert_item(DB, COLL, message(i, "other"), ["other"], upsert=True)
    store.db.execute("COMMIT")
    store.close()


def upsert_median(store: Store, start: int, count: int) -> float:
    times = []
    for i in range(start, start + count):
        t = time.perf_counter()
        store.upsert_item(DB, COLL, message(i, "writes"), ["writes"], upsert=True)  # the big room stays as is
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e3


def store_level(data_dir: Path, size: int, rounds: int) -> dict[str, Any]:
    store = Store(data_dir)
    params = {"@room": ROOM}
    out: dict[str, Any] = {"upsert_before_ms": upsert_median(store, size, 200)}
    t = time.perf_counter()
    first = store.query(DB, COLL, HISTORY, params, [ROOM], None, -1, None)
    out["first_query_ms"] = (time.perf_counter() - t) * 1e3  # includes CREATE INDEX
    out["upsert_after_ms"] = upsert_median(store, size + 200, 200)
    times: dict[bool, list[float]] = {False: [], True: []}
    decoded: dict[bool, int] = {}
    answers: dict[bool, list[str]] = {}
    for _ in range(rounds):
        for indexed in (False, True):
            store.queries.indexed_order = indexed
            before = store.queries.rows_decoded
            t = time.perf_counter()
            page = store.query(DB, COLL, HISTORY, params, [ROOM], None, -1, None)
            times[indexed].append(time.perf_counter() - t)
            decoded[indexed] = store.queries.rows_decoded - before
            answers[indexed] = page.documents
    assert answers[False] == answers[True] and len(first.documents) == 200
    out.update(
        old_ms=statistics.median(times[False]) * 1e3,
        new_ms=statistics.median(times[True]) * 1e3,
        old_decoded=decoded[False],
        new_decoded=decoded[True],
    )
    store.close()
    return out


def sdk_level(data_dir: Path, rounds: int) -> tuple[float, float]:
    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, daemon=True).start()
    emu = asyncio.run_coroutine_threadsafe(start(port=0, data_dir=data_dir), loop).result(30)
    store: Store = emu._store_runner.store  # bench-only: flip the path between calls
    try:
        container = CosmosClient.from_connection_string(emu.connection_string).get_database_client(DB)
        container = container.get_container_client(COLL)
        params = [{"name": "@room", "value": ROOM}]
        times: dict[bool, list[float]] = {False: [], True: []}
        for _ in range(rounds):
            for indexed in (False, True):
                store.queries.indexed_order = indexed
                t = time.perf_counter()
                items = list(container.query_items(HISTORY, parameters=params, partition_key=ROOM))
                times[indexed].append(time.perf_counter() - t)
                assert len(items) == 200
        return statistics.median(times[False]) * 1e3, statistics.median(times[True]) * 1e3
    finally:
        asyncio.run_coroutine_threadsafe(emu.close(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 100000])
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args()
    rows = []
    for size in args.sizes:
        with tempfile.TemporaryDirectory(prefix="cosmos-history-") as tmp:
            data_dir = Path(tmp)
            t = time.perf_counter()
            populate(data_dir, size)
            print(f"# {size:,} messages stored in {time.perf_counter() - t:.1f} s", file=sys.stderr)
            s = store_level(data_dir, size, args.rounds)
            sdk_old, sdk_new = sdk_level(data_dir, args.rounds)
            rows.append((size, s, sdk_old, sdk_new))
    print(f"History query, TOP 200, one room; medians of {args.rounds} interleaved rounds\n")
    print(
        "| messages in room | Store.query in-Python sort | index-backed | ratio | docs decoded old / new "
        "| via SDK old | via SDK new | ratio |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for size, s, sdk_old, sdk_new in rows:
        print(
            f"| {size:,} | {s['old_ms']:.1f} ms | {s['new_ms']:.2f} ms | {s['old_ms'] / s['new_ms']:.0f}× "
            f"| {s['old_decoded']:,} / {s['new_decoded']:,} | {sdk_old:.1f} ms | {sdk_new:.1f} ms "
            f"| {sdk_old / sdk_new:.1f}× |"
        )
    print("\nCost of the index\n")
    print("| messages in room | first History query (CREATE INDEX + query) | upsert median before / after |")
    print("|---|---|---|")
    for size, s, _, _ in rows:
        print(
            f"| {size:,} | {s['first_query_ms']:.0f} ms | {s['upsert_before_ms'] * 1e3:.0f} / "
            f"{s['upsert_after_ms'] * 1e3:.0f} µs |"
        )


if __name__ == "__main__":
    main()
