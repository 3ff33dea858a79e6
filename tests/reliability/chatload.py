"""Load and fault kit shared by the reliability tests and `make soak` (bench/soak.py).

Why a kit of our own instead of pysignalr: hundreds of clients in one test process must stay cheap, so a
client here is one aiohttp WebSocket speaking the SignalR JSON hub protocol (negotiate, handshake,
`newMessage` invocations, pings) and one reader task. It behaves like the web client: an identity of its own
(kept across reconnects, as a browser keeps it), negotiate as it through the app, join the room through the
app, de-duplicate by id and, after any reconnect, catch up through History `after=`. The app calls are
`emulators.smoke`'s.

Rate limits: every client and every Writer is its own identity, but a Writer posts far faster than a person,
so the stacks started here get `LOAD_LIMITS` (a post limit that fits the load). The limiter stays on: each
post still pays its Cosmos DB patch, so the figures keep its cost. Negotiation keeps the app's default limit
(a client negotiates once per (re)connect).

The stack always runs in other processes (`python -m emulators`, or the three emulators as separate processes)
so that faults are real: SIGKILL, restart on the same ports and data directory.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
import sys
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp

from emulators.smoke import Identity, SmokeFailure, group_action, negotiate, new_identity

ROOT = Path(__file__).resolve().parent.parent.parent
RS = "\x1e"
COSMOS_KEY = "C2y6yDjf5/R+ob0N8A7Cgv30VRDJIWEHLM+4QDU5DE2nQ9nDuVTqobD4b8mGGyPMbIZnqyMsEcaGQy67XIw/Jw=="
SIGNALR_KEY = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789ABCDEFGH"
#: How far before the newest createdAt a client has seen it asks History for after a reconnect: createdAt is
#: stamped before the write, so concurrent writers' messages can be delivered slightly out of createdAt order.
CATCH_UP_MARGIN = timedelta(seconds=5)
#: App settings for the Functions host of every stack here: a Writer posts up to ~15 messages/s (the load
#: test, unthrottled, about 12/s each), against the default of 20 per 20 s per identity. 6,000 per minute is
#: well above any of them, so no acknowledged-message count is cut by the limiter, which still counts every
#: post.
LOAD_LIMITS = {"CHAT_POST_LIMIT": "6000/60s"}


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# --------------------------------------------------------------------------------------------- processes


class Proc:
    """One emulator process: started, waited for its ready line, SIGKILLed or stopped, restarted alike."""

    def __init__(self, name: str, argv: list[str], ready: bytes, env: dict[str, str] | None = None) -> None:
        self.name = name
        self.argv = argv
        self.ready = ready
        self.env = env
        self.proc: asyncio.subprocess.Process | None = None
        self._drain: asyncio.Task[None] | None = None
        self.log: list[bytes] = []
        self._logged = asyncio.Event()

    async def start(self, timeout: float = 40.0) -> None:
        env = {**os.environ, **(self.env or {})}
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            *self.argv,
            cwd=ROOT,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        assert self.proc.stdout is not None
        self.log = []
        deadline = time.monotonic() + timeout
        seen: list[bytes] = []
        while True:
            left = deadline - time.monotonic()
            line = await asyncio.wait_for(self.proc.stdout.readline(), max(left, 0.01))
            if not line:
                raise RuntimeError(f"{self.name} exited before ready: {b''.join(seen[-20:]).decode()}")
            seen.append(line)
            if self.ready in line:
                break
        # Keep reading its log so a chatty process never blocks on a full pipe; remember what it said.
        self._drain = asyncio.create_task(self._read_log(self.proc.stdout))

    async def _read_log(self, stream: asyncio.StreamReader) -> None:
        with contextlib.suppress(Exception):
            while line := await stream.readline():
                self.log.append(line)
                self._logged.set()

    async def wait_for_log(self, needle: bytes, count: int = 1, timeout: float = 20.0) -> int:
        """Wait until `needle` has appeared in `count` log lines of this run; returns how many have."""
        deadline = time.monotonic() + timeout
        while (n := sum(needle in line for line in self.log)) < count and time.monotonic() < deadline:
            self._logged.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._logged.wait(), max(deadline - time.monotonic(), 0.01))
        return n

    async def kill(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGKILL)
            await self.proc.wait()
        if self._drain is not None:
            self._drain.cancel()

    async def stop(self) -> int | None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), 15)
            except TimeoutError:
                await self.kill()
        if self._drain is not None:
            self._drain.cancel()
        return None if self.proc is None else self.proc.returncode

    async def restart(self) -> None:
        await self.kill()
        await self.start()


class WholeStack:
    """`python -m emulators`, as `make run` starts it: Cosmos DB emulator and Functions host in one
    process, the SignalR emulator in its child process."""

    def __init__(self, data_dir: Path | None, settings: dict[str, str] | None = None) -> None:
        self.app_port, self.cosmos_port, self.signalr_port = free_port(), free_port(), free_port()
        where = ["--in-memory"] if data_dir is None else ["--data-dir", str(data_dir)]
        # App settings through the environment (it wins over local.settings.json; docs: emulators/functions/
        # settings.py), read by the app when the host imports it.
        self.proc = Proc(
            "python -m emulators",
            [
                "-m",
                "emulators",
                *where,
                "--port",
                str(self.app_port),
                "--cosmos-port",
                str(self.cosmos_port),
                "--signalr-port",
                str(self.signalr_port),
            ],
            b"Cosmic Chat is running at",
            {**LOAD_LIMITS, **(settings or {})},
        )
        self.base = f"http://127.0.0.1:{self.app_port}"
        self.cosmos_url = f"http://127.0.0.1:{self.cosmos_port}/"

    async def start(self) -> None:
        await self.proc.start()

    async def close(self) -> None:
        await self.proc.stop()


#: The SignalR emulator alone, with some of its `hub.Limits` changed (the CLI keeps the service's defaults).
SIGNALR_WITH_LIMITS = """
import asyncio, json, signal, sys
from emulators.signalr import WELL_KNOWN_ACCESS_KEY, start
async def main():
    limits = json.loads(sys.argv[2])
    emu = await start(host="127.0.0.1", port=int(sys.argv[1]), key=WELL_KNOWN_ACCESS_KEY, **limits)
    print("SignalR emulator on", emu.url, flush=True)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await emu.close()
asyncio.run(main())
"""


class SplitStack:
    """The three emulators as three processes, so one can be killed or restarted while the others run.

    The Functions host gets its connection settings from the environment (which wins over
    local.settings.json) and, with the Cosmos DB emulator in another process, polls the change feed every
    `feedPollDelay` (500 ms) as it would in Azure."""

    def __init__(
        self,
        data_dir: Path,
        signalr_limits: dict[str, Any] | None = None,
        functions_settings: dict[str, str] | None = None,
    ) -> None:
        self.app_port, self.cosmos_port, self.signalr_port = free_port(), free_port(), free_port()
        self.cosmos_url = f"http://127.0.0.1:{self.cosmos_port}/"
        self.base = f"http://127.0.0.1:{self.app_port}"
        self.cosmos = Proc(
            "cosmos",
            [
                "-m",
                "emulators.cosmos",
                "--port",
                str(self.cosmos_port),
                "--data-dir",
                str(data_dir / "cosmos"),
                "--log-level",
                "WARNING",
            ],
            b"Cosmos DB emulator listening",
        )
        self.signalr = Proc(
            "signalr",
            ["-m", "emulators.signalr", "--port", str(self.signalr_port), "--log-level", "WARNING"],
            b"SignalR emulator",
        )
        if signalr_limits:
            limits = json.dumps(signalr_limits)
            self.signalr.argv = ["-c", SIGNALR_WITH_LIMITS, str(self.signalr_port), limits]
        env = {
            "CosmosDBConnection": f"AccountEndpoint={self.cosmos_url};AccountKey={COSMOS_KEY};",
            "AzureSignalRConnectionString": f"Endpoint=http://127.0.0.1;Port={self.signalr_port};AccessKey={SIGNALR_KEY};Version=1.0;",
            **LOAD_LIMITS,
            **(functions_settings or {}),  # app settings for the Functions host (the environment wins)
        }
        self.functions = Proc(
            "functions",
            ["-m", "emulators.functions", "--port", str(self.app_port), "--log-level", "WARNING"],
            b"Functions host running at",
            env,
        )

    async def start(self) -> None:
        await self.cosmos.start()
        from emulators.__main__ import ensure_containers

        await ensure_containers(self.cosmos_url, COSMOS_KEY)
        await self.signalr.start()
        await self.functions.start()

    async def close(self) -> None:
        for p in (self.functions, self.signalr, self.cosmos):
            await p.stop()


async def stored_messages(cosmos_url: str, room: str | None = None) -> list[dict[str, Any]]:
    """Every message document, read with the real Cosmos SDK (not through our own History function)."""
    from azure.cosmos.aio import CosmosClient

    async with CosmosClient(cosmos_url, credential=COSMOS_KEY) as client:
        container = client.get_database_client("chat").get_container_client("messages")
        if room is None:
            items = container.query_items("SELECT c.id, c.room, c.user, c.createdAt FROM c")
        else:
            items = container.query_items(
                "SELECT c.id, c.room, c.user, c.createdAt FROM c WHERE c.room = @r",
                parameters=[{"name": "@r", "value": room}],
                partition_key=room,
            )
        return [item async for item in items]


# --------------------------------------------------------------------------------------------- clients


def _minus(created_at: str, delta: timedelta) -> str:
    moment = datetime.strptime(created_at, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC) - delta
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


@dataclass
class ClientStats:
    deliveries: int = 0  # every newMessage frame, duplicates included
    duplicates: int = 0
    reconnects: int = 0
    caught_up: int = 0  # messages first seen through History after a reconnect
    closes: list[str] = field(default_factory=list)


class ChatWs:
    """One chat client: identity → app negotiate → service negotiate → WebSocket → JSON handshake → app join.

    `seen` maps id → createdAt (the client's de-duplication; only what catch-up needs, so long soaks stay
    small); `order` keeps (user, createdAt) of live first arrivals in order, for the per-writer order check
    (off with `keep_order=False`). `latencies` holds post-to-arrival seconds for messages
    whose text carries the post time (see Writer)."""

    def __init__(
        self,
        http: aiohttp.ClientSession,
        base: str,
        room: str,
        *,
        reconnect: bool = True,
        keep_order: bool = True,
    ) -> None:
        self.http = http
        self.base = base
        self.room = room
        self.reconnect = reconnect
        self.keep_order = keep_order
        self.seen: dict[str, str] = {}
        self.order: list[tuple[str, str]] = []
        self.latencies: list[float] = []
        self.stats = ClientStats()
        self.connected = asyncio.Event()
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.who: Identity | None = None
        self.connection_id: str | None = None
        self.changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self.ping_every = 5.0

    # ---- connection

    async def _connect_once(self) -> None:
        if self.who is None:
            self.who = await new_identity(self.http, self.base)
        info = await negotiate(self.http, self.base, self.who)
        url, token = info["url"], info["accessToken"]
        auth = {"Authorization": f"Bearer {token}"}
        service_negotiate = url.replace("/client/?", "/client/negotiate?", 1) + "&negotiateVersion=1"
        async with self.http.post(service_negotiate, headers=auth) as r:
            r.raise_for_status()
            neg = await r.json()
        ws_url = url.replace("http", "ws", 1) + f"&id={neg['connectionToken']}"
        ws = await self.http.ws_connect(ws_url, headers=auth, autoping=True, max_msg_size=0)
        try:
            await ws.send_str(json.dumps({"protocol": "json", "version": 1}) + RS)
            first = await ws.receive(timeout=10)
            if first.type != aiohttp.WSMsgType.TEXT or json.loads(first.data.rstrip(RS)).get("error"):
                raise ConnectionError(f"handshake refused: {first.data!r}")
            await group_action(self.http, self.base, self.room, self.who, "join")
        except BaseException:
            await ws.close()
            raise
        self.ws, self.connection_id = ws, neg["connectionId"]

    async def start(self, timeout: float = 30.0) -> None:
        await asyncio.wait_for(self._connect_with_retries(), timeout)
        self._task = asyncio.create_task(self._run())

    async def _connect_with_retries(self) -> None:
        delay = 0.1
        while True:
            try:
                await self._connect_once()
                self.connected.set()
                return
            except (aiohttp.ClientError, OSError, ConnectionError, TimeoutError, ValueError, SmokeFailure):
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)

    async def _run(self) -> None:
        while True:
            await self._read_until_closed()
            self.connected.clear()
            if self._closing or not self.reconnect:
                return
            await self._connect_with_retries()
            self.stats.reconnects += 1
            await self.catch_up()

    async def _read_until_closed(self) -> None:
        ws = self.ws
        assert ws is not None
        last_ping = time.monotonic()
        while True:
            try:
                msg = await ws.receive(timeout=self.ping_every)
            except TimeoutError:
                msg = None
            except (aiohttp.ClientError, OSError):
                break
            if time.monotonic() - last_ping >= self.ping_every:  # the service closes clients silent for 30 s
                with contextlib.suppress(Exception):
                    await ws.send_str('{"type":6}' + RS)
                last_ping = time.monotonic()
            if msg is None:
                continue
            if msg.type != aiohttp.WSMsgType.TEXT:
                break
            for record in msg.data.split(RS):
                if record:
                    self._on_record(json.loads(record))
        with contextlib.suppress(Exception):
            await ws.close()

    def _on_record(self, record: dict[str, Any]) -> None:
        kind = record.get("type")
        if kind == 1 and record.get("target") == "newMessage":
            for message in record.get("arguments", []):
                self.stats.deliveries += 1
                self._remember(message, live=True)
        elif kind == 7:
            self.stats.closes.append(str(record.get("error")))

    def _remember(self, message: dict[str, Any], live: bool) -> None:
        if message["id"] in self.seen:
            self.stats.duplicates += 1
            return
        self.seen[message["id"]] = message["createdAt"]
        if live:
            if self.keep_order:
                self.order.append((message["user"], message["createdAt"]))
            sent = message["text"].partition("@")[2]
            with contextlib.suppress(ValueError):
                self.latencies.append(time.time() - float(sent))
        else:
            self.stats.caught_up += 1
        self.changed.set()

    async def catch_up(self) -> None:
        """What the web client does after a reconnect (www/js/api.js fetchMissed): History `after=` the
        newest createdAt it has (less a margin, see CATCH_UP_MARGIN), page by page while pages come back full,
        each next page after the page's second-newest timestamp so that same-millisecond messages split
        across pages all arrive (an `after` older than History's newest 200 is answered by HistoryAfter, 307);
        de-duplicated by id."""
        limit = 200
        if not self.seen:  # nothing yet: the room's latest page, as the web client's first visit
            for message in await self._history_page(None, limit):
                self._remember(message, live=False)
            return
        after = _minus(max(self.seen.values()), CATCH_UP_MARGIN)
        for _ in range(50):  # pages; a client more than 10,000 messages behind stops here
            page = await self._history_page(after, limit)
            for message in page:
                self._remember(message, live=False)
            if len(page) < limit:
                return
            last = page[-1]["createdAt"]
            earlier = [m["createdAt"] for m in page if m["createdAt"] < last]
            after = max(earlier) if earlier else last

    async def _history_page(self, after: str | None, limit: int) -> list[dict[str, Any]]:
        params = {"limit": str(limit)}
        if after is not None:
            params["after"] = after
        delay = 0.2
        for _ in range(40):  # bounded; with the back-off below that is several minutes
            try:
                async with self.http.get(
                    f"{self.base}/api/rooms/{self.room}/messages",
                    params=params,
                    timeout=aiohttp.ClientTimeout(total=60),
                ) as r:
                    if r.status == 200:
                        return (await r.json())["messages"]
            except (aiohttp.ClientError, OSError, TimeoutError):
                pass
            # Exponential back-off with jitter: a hundred clients retrying in step would keep a busy server
            # busy (a retry storm), which is what a real client must not do either.
            await asyncio.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, 10.0)
        return []

    async def stall(self) -> None:
        """Stop reading (and so pinging), as a frozen tab would: aiohttp stops taking bytes off the socket
        once its own buffer is full; a small receive buffer keeps the kernel from absorbing much first."""
        import socket

        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None
        sock = self.ws.get_extra_info("socket") if self.ws is not None else None
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)

    def resume(self) -> None:
        """Read again: whatever was buffered, then the service's Close, then reconnect and catch up."""
        self._task = asyncio.create_task(self._run())

    async def close(self) -> None:
        self._closing = True
        if self.ws is not None:
            with contextlib.suppress(Exception):
                await self.ws.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task

    async def wait_for(self, ids: set[str], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not ids <= self.seen.keys():
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), min(left, 1.0))
        return True


# --------------------------------------------------------------------------------------------- writers


@dataclass
class Writer:
    """Posts to one room, one message at a time, as an identity of its own; remembers exactly the ids that got
    a 201.

    Each message carries its client-chosen id (so a retried POST finds its first copy, never duplicates) and,
    in its text, the writer's sequence number and the wall-clock time of posting (for latency). A 429 (the
    stack's post limit, see LOAD_LIMITS) counts as refused, in `limited` too."""

    http: aiohttp.ClientSession
    base: str
    room: str
    name: str
    acknowledged: list[dict[str, Any]] = field(default_factory=list)
    failed: int = 0
    refused: int = 0
    limited: int = 0
    who: Identity | None = None
    pad: int = 0  # emoji (4 UTF-8 bytes each) before the sequence number, for big messages

    async def post_one(self, seq: int) -> bool:
        msg_id = str(uuid.uuid4())
        body = {"id": msg_id, "user": self.name, "text": "😀" * self.pad + f"{seq}@{time.time():.6f}"}
        try:
            if self.who is None:
                self.who = await new_identity(self.http, self.base)
            raw = json.dumps(body, ensure_ascii=False).encode()  # emoji: 4 UTF-8 bytes, not 12
            headers = {**self.who.headers, "Content-Type": "application/json"}
            async with self.http.post(
                f"{self.base}/api/rooms/{self.room}/messages", data=raw, headers=headers
            ) as r:
                if r.status == 201:
                    self.acknowledged.append(await r.json())
                    return True
                if 400 <= r.status < 500:
                    self.refused += 1
                    self.limited += r.status == 429
        except (aiohttp.ClientError, OSError, TimeoutError, SmokeFailure):
            pass
        self.failed += 1
        return False

    async def run(self, count: int | None, stop: asyncio.Event, rate: float | None = None) -> None:
        """Post `count` messages (None: until `stop`), at most `rate` per second."""
        seq = 0
        next_at = time.monotonic()
        while (count is None or len(self.acknowledged) < count) and not stop.is_set():
            if not await self.post_one(seq):
                await asyncio.sleep(0.1)  # server down or restarting: do not spin
            seq += 1
            if rate:
                next_at += 1 / rate
                delay = next_at - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                else:
                    next_at = time.monotonic()


def acknowledged_by_room(writers: Iterable[Writer]) -> dict[str, dict[str, dict[str, Any]]]:
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for w in writers:
        for m in w.acknowledged:
            out.setdefault(w.room, {})[m["id"]] = m
    return out


def order_violations(client: ChatWs) -> int:
    """Live arrivals from one writer that came before an earlier-stamped message of the same writer."""
    last: dict[str, str] = {}
    bad = 0
    for user, created_at in client.order:
        if created_at < last.get(user, ""):
            bad += 1
        last[user] = max(last.get(user, ""), created_at)
    return bad


def missing(clients: Iterable[ChatWs], acked: dict[str, dict[str, dict[str, Any]]]) -> dict[int, int]:
    """Client index → how many acknowledged messages of its room it never got."""
    return {
        i: len(acked.get(c.room, {}).keys() - c.seen.keys())
        for i, c in enumerate(clients)
        if acked.get(c.room, {}).keys() - c.seen.keys()
    }


async def wait_all(
    clients: list[ChatWs], acked: dict[str, dict[str, dict[str, Any]]], timeout: float
) -> dict[int, int]:
    deadline = time.monotonic() + timeout
    for c in clients:
        await c.wait_for(set(acked.get(c.room, {})), max(deadline - time.monotonic(), 0.01))
    return missing(clients, acked)
