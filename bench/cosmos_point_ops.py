"""Benchmark: azure-cosmos SDK point writes/reads against the emulator vs a do-nothing endpoint (the floor).

Same process, same run, interleaved operation by operation: the floor is an aiohttp server that
answers every call with a canned document, so ``emulator - floor`` is what the emulator itself adds
per operation. Also measures write → ``Subscription.wait()`` wake-up latency, the write issued by a
client in another process. Not a test: prints medians, ratios and percentiles.

    .venv/bin/python bench/cosmos_point_ops.py [--ops 400] [--rounds 3] [--notify 500]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from aiohttp import web
from azure.cosmos import CosmosClient, PartitionKey

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from emulators.cosmos import WELL_KNOWN_KEY, start
from emulators.cosmos.server import CosmosApp

ARRIVALS: list[float] = []  # when the emulator received each item write (instrumentation for the bench only)
_original_documents = CosmosApp.documents


async def _timed_documents(self: CosmosApp, request: web.Request, db: str, coll: str) -> web.Response:
    if request.method == "POST" and db == "bench" and coll == "c":
        ARRIVALS.append(time.perf_counter())
    return await _original_documents(self, request, db, coll)


CosmosApp.documents = _timed_documents  # type: ignore[method-assign]


def background_loop() -> asyncio.AbstractEventLoop:
    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, daemon=True).start()
    return loop


def floor_app() -> web.Application:
    """Answers what the SDK needs with canned bodies; does no work at all."""
    doc = json.dumps(
        {
            "id": "x",
            "pk": "p",
            "n": 1,
            "_rid": "AQAAAIAAAAEAAAAAAAAAAQ==",
            "_self": "dbs/AQAAAA==/colls/AQAAAIAAAAE=/docs/AQAAAIAAAAEAAAAAAAAAAQ==/",
            "_etag": '"e"',
            "_ts": 1,
            "_attachments": "attachments/",
        }
    ).encode()
    coll = json.dumps(
        {
            "id": "c",
            "_rid": "AQAAAIAAAAE=",
            "_self": "dbs/AQAAAA==/colls/AQAAAIAAAAE=/",
            "_etag": '"c"',
            "partitionKey": {"paths": ["/pk"], "kind": "Hash", "version": 2},
        }
    ).encode()
    db = json.dumps({"id": "d", "_rid": "AQAAAA==", "_self": "dbs/AQAAAA==/", "_etag": '"d"'}).encode()
    ranges = json.dumps(
        {
            "_rid": "AQAAAIAAAAE=",
            "PartitionKeyRanges": [{"id": "0", "minInclusive": "", "maxExclusive": "FF", "parents": []}],
            "_count": 1,
        }
    ).encode()
    headers = {
        "Content-Type": "application/json",
        "x-ms-session-token": "0:-1#1",
        "x-ms-request-charge": "1",
        "x-ms-documentdb-partitionkeyrangeid": "0",
        "x-ms-alt-content-path": "dbs/d/colls/c",
        "etag": '"e"',
    }

    async def handle(request: web.Request) -> web.Response:
        path = request.path.strip("/")
        if not path:
            host = f"http://{request.host}/"
            loc = [{"name": "local", "databaseAccountEndpoint": host}]
            body = json.dumps(
                {
                    "id": "floor",
                    "writableLocations": loc,
                    "readableLocations": loc,
                    "userConsistencyPolicy": {"defaultConsistencyLevel": "Session"},
                }
            ).encode()
            return web.Response(body=body, headers=headers)
        if path.endswith("pkranges"):
            if request.headers.get("If-None-Match") == '"r"':
                return web.Response(status=304, headers={"etag": '"r"'})
            return web.Response(body=ranges, headers={**headers, "etag": '"r"'})
        if path.count("/") == 1:
            return web.Response(body=db, headers=headers)
        if path.count("/") == 3:
            return web.Response(body=coll, headers=headers)
        await request.read()
        return web.Response(status=201 if request.method == "POST" else 200, body=doc, headers=headers)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    return app


async def start_floor() -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(floor_app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}/"


def container_for(url: str, create: bool) -> Any:
    client = CosmosClient(url, credential=WELL_KNOWN_KEY)
    if create:
        db = client.create_database_if_not_exists("bench")
        return db.create_container_if_not_exists("c", PartitionKey(path="/pk"))
    return client.get_database_client("d").get_container_client("c")


def time_ops(container: Any, ops: int, tag: str) -> tuple[list[float], list[float]]:
    writes, reads = [], []
    for i in range(ops):
        body = {"id": f"{tag}-{i % 50}", "pk": "p", "n": i, "text": "hello world " * 4}
        t0 = time.perf_counter()
        container.upsert_item(body)
        writes.append(time.perf_counter() - t0)
    for i in range(ops):
        t0 = time.perf_counter()
        container.read_item(f"{tag}-{i % 50}", "p")
        reads.append(time.perf_counter() - t0)
    return writes, reads


def ms(v: float) -> str:
    return f"{v * 1000:.3f} ms"


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, round(p / 100 * (len(s) - 1)))]


WRITER = r"""
import sys, time
from azure.cosmos import CosmosClient
c = CosmosClient(sys.argv[1], credential=sys.argv[2]).get_database_client("bench").get_container_client("c")
c.upsert_item({"id": "warm", "pk": "n"})
print("ready", flush=True)
for i, line in enumerate(sys.stdin):
    t0 = time.perf_counter()
    c.upsert_item({"id": f"notify-{i}", "pk": "n"})
    print(t0, flush=True)
"""


def notification_latency(
    loop: asyncio.AbstractEventLoop, emu: Any, n: int
) -> tuple[list[float], list[float]]:
    """A writer in ANOTHER process issues a write at t0 (CLOCK_MONOTONIC is system-wide); a subscriber on
    the emulator's loop records when it wakes. One write in flight at a time. A separate process keeps the
    writer's SDK CPU from holding this process's GIL, as with a real client."""
    import subprocess

    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, emu.url, WELL_KNOWN_KEY],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert writer.stdin is not None and writer.stdout is not None
    assert writer.stdout.readline().strip() == "ready"
    sub = emu.subscribe("bench", "c")
    asyncio.run_coroutine_threadsafe(sub.wait(0), loop).result()  # consume the warm-up write
    lat, server_side = [], []
    for _ in range(n):
        fut = asyncio.run_coroutine_threadsafe(_wake_time(sub), loop)
        writer.stdin.write("w\n")
        writer.stdin.flush()
        t0 = float(writer.stdout.readline())
        woke = fut.result(10)
        lat.append(woke - t0)
        server_side.append(woke - ARRIVALS[-1])
    writer.stdin.close()
    writer.wait(10)
    sub.close()
    return lat, server_side


async def _wake_time(sub: Any) -> float:
    if not await sub.wait(5):
        raise RuntimeError("no wake-up within 5 s")
    return time.perf_counter()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ops", type=int, default=400)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--notify", type=int, default=500)
    args = ap.parse_args()

    loop = background_loop()
    floor_loop = background_loop()
    tmp = tempfile.TemporaryDirectory()
    disk = asyncio.run_coroutine_threadsafe(start(port=0, data_dir=Path(tmp.name) / "a"), loop).result()
    synced = asyncio.run_coroutine_threadsafe(
        start(port=0, data_dir=Path(tmp.name) / "b", fsync=True), loop
    ).result()
    mem = asyncio.run_coroutine_threadsafe(start(port=0, data_dir=None), loop).result()
    floor_runner, floor_url = asyncio.run_coroutine_threadsafe(start_floor(), floor_loop).result()
    targets = {
        "floor (canned answers)": container_for(floor_url, create=False),
        "emulator, in memory": container_for(mem.url, create=True),
        "emulator, on disk (default: WAL, synchronous=NORMAL)": container_for(disk.url, create=True),
        "emulator, on disk --fsync (synchronous=FULL)": container_for(synced.url, create=True),
    }
    results: dict[str, tuple[list[float], list[float]]] = {k: ([], []) for k in targets}
    for c in targets.values():  # warm-up: connection, routing map, caches
        time_ops(c, 20, "warm")
    # Interleaved per operation (target A, B, C, D, A, B, …) so load swings on this shared box hit
    # every target alike; each round does all writes, then all reads.
    for r in range(args.rounds):
        for i in range(args.ops):
            for name, c in targets.items():
                body = {"id": f"r{r}-{i % 50}", "pk": "p", "n": i, "text": "hello world " * 4}
                t0 = time.perf_counter()
                c.upsert_item(body)
                results[name][0].append(time.perf_counter() - t0)
        for i in range(args.ops):
            for name, c in targets.items():
                t0 = time.perf_counter()
                c.read_item(f"r{r}-{i % 50}", "p")
                results[name][1].append(time.perf_counter() - t0)

    print(
        f"azure-cosmos sync SDK, {args.rounds} rounds x {args.ops} ops per target, interleaved per operation "
        f"(upsert ~200 B docs, point reads)\n"
    )
    floor_w = statistics.median(results["floor (canned answers)"][0])
    floor_r = statistics.median(results["floor (canned answers)"][1])
    print(
        f"{'target':50} {'write p50':>10} {'read p50':>10} {'writes/s':>9} {'reads/s':>8} "
        f"{'+write':>9} {'+read':>9} {'ratio w/r':>10}"
    )
    for name, (w, rd) in results.items():
        mw, mr = statistics.median(w), statistics.median(rd)
        print(
            f"{name:50} {ms(mw):>10} {ms(mr):>10} {len(w) / sum(w):9.0f} {len(rd) / sum(rd):8.0f} "
            f"{ms(mw - floor_w):>9} {ms(mr - floor_r):>9} {mw / floor_w:5.2f}/{mr / floor_r:4.2f}"
        )

    lat, server_side = notification_latency(loop, disk, args.notify)
    print(
        f"\nwrite issued by a client process -> sub.wait() wakes (on-disk emulator, {len(lat)} writes): "
        f"p50 {ms(pct(lat, 50))}, p99 {ms(pct(lat, 99))}, max {ms(max(lat))}"
    )
    print(
        f"request received by the emulator -> sub.wait() wakes: p50 {ms(pct(server_side, 50))}, "
        f"p99 {ms(pct(server_side, 99))}, max {ms(max(server_side))}"
    )
    lat_w = results["emulator, on disk (default: WAL, synchronous=NORMAL)"][0]
    print(
        f"(for scale: the SDK upsert round trip itself on that target: p50 {ms(pct(lat_w, 50))}, "
        f"p99 {ms(pct(lat_w, 99))})"
    )

    asyncio.run_coroutine_threadsafe(disk.close(), loop).result()
    asyncio.run_coroutine_threadsafe(synced.close(), loop).result()
    asyncio.run_coroutine_threadsafe(mem.close(), loop).result()
    asyncio.run_coroutine_threadsafe(floor_runner.cleanup(), floor_loop).result()
    tmp.cleanup()


if __name__ == "__main__":
    main()
