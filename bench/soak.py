"""`make soak` (`python -m bench.soak`): mixed load on the local stack with periodic faults, for a long time.

The three emulators run as three processes on free ports with a temporary data directory, so each fault is
real: SIGKILL of the Functions host, of the SignalR emulator or of the Cosmos DB emulator followed by a
restart on the same port and data, and a client that stops reading (and pinging) until the service drops it,
then comes back. Clients behave like the web client (negotiate and join through the app, de-duplicate by id,
catch up through History `after=` after a reconnect).

Every 10 s one progress line: posts acknowledged (and refused while a fault was on), deliveries, post→client
p99 over the last 10 s, reconnects, and `lost` = acknowledged messages older than --grace seconds that some
connected client still lacks. At the end the writers stop, clients get --grace seconds to settle, and a
summary is printed; the exit status is 1 if anything acknowledged was lost (a client or the store lacks it).

`--exact-load` instead runs the issue's load-without-loss check at full size (200 clients, 5 rooms, 20
writers, 20,000 messages) against `python -m emulators`.

Writers are rate-limited so that fewer than 200 messages per room (History's window, docs/api.md) can pass
while a client is away; the stalled client sits in a quiet room (one writer, 1 message/s) because the service
drops a silent client only after 30 s.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from tests.reliability.chatload import (
    ChatWs,
    SplitStack,
    WholeStack,
    Writer,
    acknowledged_by_room,
    missing,
    order_violations,
    percentile,
    stored_messages,
    wait_all,
)

QUIET_ROOM = "soak-quiet"
FAULTS = ("functions", "signalr", "cosmos", "stall")


@dataclass
class Soak:
    args: argparse.Namespace
    stack: SplitStack
    clients: list[ChatWs] = field(default_factory=list)
    writers: list[Writer] = field(default_factory=list)
    faults: list[str] = field(default_factory=list)
    stalled: ChatWs | None = None
    window: list[float] = field(default_factory=list)
    all_latencies: list[float] = field(default_factory=list)

    def ack_times(self) -> dict[str, tuple[str, float]]:
        """id → (room, monotonic-ish wall time of posting), from the text the writer stamped."""
        out: dict[str, tuple[str, float]] = {}
        for w in self.writers:
            for m in w.acknowledged:
                out[m["id"]] = (w.room, float(m["text"].rpartition("@")[2]))
        return out

    def lost_now(self, grace: float) -> int:
        """Acknowledged more than `grace` s ago and still missing at a connected, reading client."""
        cutoff = time.time() - grace
        old: dict[str, set[str]] = {}
        for msg_id, (room, posted) in self.ack_times().items():
            if posted < cutoff:
                old.setdefault(room, set()).add(msg_id)
        lost = set()
        for c in self.clients:
            if c is self.stalled or not c.connected.is_set():
                continue
            lost |= old.get(c.room, set()) - c.seen.keys()
        return len(lost)

    def progress(self, elapsed: float) -> str:
        for c in self.clients:
            self.window.extend(c.latencies)
            c.latencies.clear()
        p99 = percentile(self.window, 0.99) * 1000
        self.all_latencies.extend(self.window)
        self.window = []
        acked = sum(len(w.acknowledged) for w in self.writers)
        failed = sum(w.failed for w in self.writers)
        deliveries = sum(c.stats.deliveries for c in self.clients)
        reconnects = sum(c.stats.reconnects for c in self.clients)
        last = self.faults[-1] if self.faults else "none yet"
        return (f"[{elapsed:6.0f} s] posts {acked} (+{failed} refused during faults)  "
                f"deliveries {deliveries}  p99 {p99:.0f} ms  reconnects {reconnects}  "
                f"lost={self.lost_now(self.args.grace)}  "
                f"faults {len(self.faults)} (last: {last})")

    async def inject(self, kind: str, http: aiohttp.ClientSession) -> None:
        started = time.monotonic()
        if kind == "stall":
            quiet = [c for c in self.clients if c.room == QUIET_ROOM and c.connected.is_set()]
            self.stalled = random.choice(quiet)
            await self.stalled.stall()
            # Silent for longer than the service's 30 s client timeout: it is dropped.
            await asyncio.sleep(self.args.stall_seconds)
            self.stalled.resume()
            await asyncio.wait_for(self.stalled.connected.wait(), 60)
            self.stalled = None
        else:
            proc = getattr(self.stack, kind)
            await proc.kill()
            await asyncio.sleep(self.args.down_seconds)
            await proc.start()
        self.faults.append(f"{kind} {time.monotonic() - started:.1f} s")


async def exact_load() -> int:
    """The issue's load-without-loss numbers, full size, on `python -m emulators`."""
    clients_n, rooms_n, writers_n, messages = 200, 5, 20, 20_000
    with tempfile.TemporaryDirectory(prefix="cosmic-soak-") as tmp:
        stack = WholeStack(Path(tmp))
        await stack.start()
        rooms = [f"load-{i}" for i in range(rooms_n)]
        clients: list[ChatWs] = []
        try:
            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0),
                                             timeout=aiohttp.ClientTimeout(total=30)) as http:
                clients = [ChatWs(http, stack.base, rooms[i % rooms_n], reconnect=False)
                           for i in range(clients_n)]
                for i in range(0, clients_n, 25):
                    await asyncio.gather(*(c.start() for c in clients[i:i + 25]))
                writers = [Writer(http, stack.base, rooms[i % rooms_n], f"writer-{i}")
                           for i in range(writers_n)]
                started = time.monotonic()
                await asyncio.gather(*(w.run(messages // writers_n, asyncio.Event()) for w in writers))
                posted_in = time.monotonic() - started
                acked = acknowledged_by_room(writers)
                print(f"posted {messages} in {posted_in:.1f} s ({messages / posted_in:.0f}/s), "
                      f"{sum(w.failed for w in writers)} failed; waiting for deliveries", flush=True)
                lost = await wait_all(clients, acked, timeout=600)
                delivered_in = time.monotonic() - started
                stored = {d["id"] for d in await stored_messages(stack.cosmos_url)}
                acked_ids = {i for room in acked.values() for i in room}
                lat = [x for c in clients for x in c.latencies]
                p50, p99 = percentile(lat, 0.5) * 1000, percentile(lat, 0.99) * 1000
                print(f"{clients_n} clients, {rooms_n} rooms, {writers_n} writers: {len(acked_ids)} "
                      f"acknowledged, {sum(c.stats.deliveries for c in clients)} deliveries "
                      f"({sum(c.stats.duplicates for c in clients)} duplicates) complete after "
                      f"{delivered_in:.1f} s; post→client p50 {p50:.0f} ms p99 {p99:.0f} ms; "
                      f"out-of-order {sum(order_violations(c) for c in clients)}; clients missing messages "
                      f"{len(lost)}; stored {len(stored)} (== acknowledged: {stored == acked_ids})")
                return 0 if not lost and stored == acked_ids else 1
        finally:
            for c in clients:
                await c.close()
            await stack.close()


async def soak(args: argparse.Namespace) -> int:
    random.seed(args.seed)
    with tempfile.TemporaryDirectory(prefix="cosmic-soak-") as tmp:
        stack = SplitStack(Path(tmp))
        t0 = time.monotonic()
        await stack.start()
        print(f"stack up in {time.monotonic() - t0:.1f} s: chat {stack.base}, Cosmos DB {stack.cosmos_url}, "
              f"SignalR :{stack.signalr_port} (three processes, data in {tmp})", flush=True)
        state = Soak(args, stack)
        rooms = [f"soak-{i}" for i in range(args.rooms)]
        stop = asyncio.Event()
        tasks: list[asyncio.Task[None]] = []
        try:
            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0),
                                             timeout=aiohttp.ClientTimeout(total=10)) as http:
                state.clients = [ChatWs(http, stack.base, rooms[i % args.rooms], keep_order=False)
                                 for i in range(args.clients)]
                state.clients += [ChatWs(http, stack.base, QUIET_ROOM, keep_order=False) for _ in range(4)]
                for i in range(0, len(state.clients), 25):
                    await asyncio.gather(*(c.start() for c in state.clients[i:i + 25]))
                per_writer = args.rate / args.writers
                state.writers = [Writer(http, stack.base, rooms[i % args.rooms], f"w{i}")
                                 for i in range(args.writers)]
                state.writers.append(Writer(http, stack.base, QUIET_ROOM, "quiet"))
                tasks = [asyncio.create_task(w.run(None, stop, rate=per_writer)) for w in state.writers[:-1]]
                tasks.append(asyncio.create_task(state.writers[-1].run(None, stop, rate=1.0)))
                print(f"{len(state.clients)} clients in {args.rooms + 1} rooms, {args.writers} writers at "
                      f"{args.rate:g} posts/s (+1/s in {QUIET_ROOM}); a fault every {args.fault_every:g} s; "
                      f"running {args.minutes:g} min", flush=True)

                started = time.monotonic()
                end = started + args.minutes * 60
                next_line = started + 10
                next_fault = started + args.fault_every
                fault_task: asyncio.Task[None] | None = None
                n = 0
                # Past the end, a fault still under way (a stall lasts 40 s) is seen through, with progress.
                while time.monotonic() < end or (fault_task is not None and not fault_task.done()):
                    await asyncio.sleep(0.25)
                    now = time.monotonic()
                    if now < end and now >= next_fault and (fault_task is None or fault_task.done()):
                        if fault_task is not None:
                            fault_task.result()
                        fault_task = asyncio.create_task(state.inject(FAULTS[n % len(FAULTS)], http))
                        n += 1
                        next_fault = now + args.fault_every
                    if now >= next_line:
                        print(state.progress(now - started), flush=True)
                        next_line += 10
                if fault_task is not None:
                    await fault_task
                stop.set()
                await asyncio.gather(*tasks)
                acked = acknowledged_by_room(state.writers)
                lost_clients = await wait_all(state.clients, acked, timeout=args.grace)
                lost_ids = set()
                for c in state.clients:
                    lost_ids |= acked.get(c.room, {}).keys() - c.seen.keys()
                acked_ids = {i for room in acked.values() for i in room}
                stored = {d["id"] for d in await stored_messages(stack.cosmos_url)}
                not_stored = acked_ids - stored
                print(state.progress(time.monotonic() - started), flush=True)
                lat = state.all_latencies
                print("summary: "
                      f"{args.minutes:g} min, {len(acked_ids)} messages acknowledged, "
                      f"{sum(w.failed for w in state.writers)} posts refused or failed during faults (not "
                      f"acknowledged, so not owed), {sum(c.stats.deliveries for c in state.clients)} "
                      "deliveries "
                      f"({sum(c.stats.duplicates for c in state.clients)} duplicates dropped by id), "
                      f"{sum(c.stats.caught_up for c in state.clients)} caught up through History, "
                      f"{sum(c.stats.reconnects for c in state.clients)} reconnects; post→client p50 "
                      f"{percentile(lat, 0.5) * 1000:.0f} ms p99 {percentile(lat, 0.99) * 1000:.0f} ms max "
                      f"{max(lat, default=0) * 1000:.0f} ms; faults: {', '.join(state.faults) or 'none'}; "
                      f"stored {len(stored)} ({len(stored - acked_ids)} unacknowledged in-flight writes); "
                      f"lost={len(lost_ids) + len(not_stored)} ({len(lost_clients)} clients missing "
                      f"{len(lost_ids)} messages, {len(not_stored)} acknowledged messages not stored)",
                      flush=True)
                return 1 if lost_ids or not_stored or missing(state.clients, acked) else 0
        finally:
            stop.set()
            for t in tasks:
                t.cancel()
            for c in state.clients:
                await c.close()
            await stack.close()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, default=30, help="how long to run (default 30)")
    p.add_argument("--clients", type=int, default=100, help="clients in the busy rooms (default 100)")
    p.add_argument("--rooms", type=int, default=5, help="busy rooms (default 5)")
    p.add_argument("--writers", type=int, default=10, help="concurrent writers (default 10)")
    p.add_argument("--rate", type=float, default=30, help="posts/s over all writers (default 30)")
    p.add_argument("--fault-every", type=float, default=60, help="seconds between faults (default 60)")
    p.add_argument("--down-seconds", type=float, default=2, help="a killed process stays down this long")
    p.add_argument("--stall-seconds", type=float, default=40, help="a stalled client stops reading this long")
    p.add_argument("--grace", type=float, default=60,
                   help="seconds a message may take to arrive before it counts as lost (default 60)")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--exact-load", action="store_true",
                   help="instead: the issue's load check at full size (200 clients, 5 rooms, 20 writers, "
                        "20,000 messages)")
    args = p.parse_args(argv)
    try:
        code = asyncio.run(exact_load() if args.exact_load else soak(args))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    verdict = "PASSED: nothing acknowledged was lost" if code == 0 else "FAILED: acknowledged messages lost"
    print(f"soak {verdict}", flush=True)
    return code


if __name__ == "__main__":
    with contextlib.suppress(BrokenPipeError):
        sys.exit(main())
