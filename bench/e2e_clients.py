"""A load-generator process: N chat clients (WebSocket, SignalR JSON protocol) that time every delivery.

Each client does what the web client does — `POST /api/identities` for an identity of its own,
`POST /api/negotiate/{userId}` as it on the app, the SignalR negotiate with the returned url and token, a
WebSocket with the hub handshake, `POST /api/rooms/{room}/join` as it (calls of `emulators.smoke`) —
but the socket is a small `asyncio.Protocol` rather than an aiohttp WebSocket: at 30,000 deliveries/s
the measuring side must cost a few microseconds per frame, or the load generator, not the server,
sets the figure. HTTP (identity, negotiate, join) goes through aiohttp.

A posted message carries its own send time: its text is ``b<phase>:<seq>:<monotonic_ns>:xxx…``.
CLOCK_MONOTONIC is one clock for every process on the machine, so arrival minus send time is the
end-to-end latency however many processes are involved. Every delivery is counted per connection
in a byte map indexed by seq (duplicates and misses fall out of it).

Driven over stdin/stdout, one JSON object per line (see `bench.e2e_load.Workers`):
``{"cmd": "start", "phase": 3}`` resets the counters; ``{"cmd": "count"}`` answers the deliveries so
far; ``{"cmd": "stop", "acked": {room: [seq, ...]}, "out": path}`` writes the latencies (float32 ms)
to ``path`` and answers deliveries, duplicates and misses; ``{"cmd": "quit"}``.

    python -m bench.e2e_clients --base http://127.0.0.1:7071 --clients 500 --rooms r0,r1 --first 0
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import resource
import sys
import time
from array import array
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from emulators.smoke import group_action, negotiate, new_identity

RS = b"\x1e"
TEXT_MARK = b'"text":"b'
PING_RECORD = b'{"type":6}\x1e'


def raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def mask_frame(payload: bytes, opcode: int = 0x1) -> bytes:
    """A client frame must be masked (RFC 6455 5.3); the mask is random per frame."""
    mask = os.urandom(4)
    n = len(payload)
    if n < 126:
        head = bytes([0x80 | opcode, 0x80 | n])
    elif n < 65536:
        head = bytes([0x80 | opcode, 0x80 | 126]) + n.to_bytes(2, "big")
    else:
        head = bytes([0x80 | opcode, 0x80 | 127]) + n.to_bytes(8, "big")
    if not n:
        return head + mask
    keystream = (mask * (n // 4 + 1))[:n]
    masked = int.from_bytes(payload, "big") ^ int.from_bytes(keystream, "big")
    return head + mask + masked.to_bytes(n, "big")


class Tally:
    """The counters of the current phase, shared by every connection of this process."""

    def __init__(self) -> None:
        self.phase = -1
        self.latencies = array("f")
        self.deliveries = 0
        self.stray = 0  # deliveries of another phase (stragglers), not counted

    def reset(self, phase: int) -> None:
        self.phase = phase
        self.latencies = array("f")
        self.deliveries = 0
        self.stray = 0


class ChatSocket(asyncio.Protocol):
    """One client's WebSocket: upgrade, SignalR handshake, then frames parsed in place."""

    def __init__(self, tally: Tally, request: bytes) -> None:
        self.tally = tally
        self.request = request
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.state = "upgrade"
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.closed = False
        self.seen = bytearray()
        self.duplicates = 0
        self.fragments = bytearray()

    # -- asyncio.Protocol -------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        transport.write(self.request)  # type: ignore[attr-defined]

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if not self.ready.done():
            self.ready.set_exception(ConnectionError(f"closed during {self.state}: {exc}"))

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if self.state == "upgrade":
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            status = bytes(self.buf[: self.buf.find(b"\r\n")])
            if b" 101 " not in status + b" ":
                self._fail(f"upgrade refused: {status.decode(errors='replace')}")
                return
            del self.buf[: end + 4]
            self.state = "handshake"
            self.send(b'{"protocol":"json","version":1}\x1e')
        self._frames()

    # -- frames -----------------------------------------------------------------------------------

    def _fail(self, why: str) -> None:
        if not self.ready.done():
            self.ready.set_exception(ConnectionError(why))
        if self.transport is not None:
            self.transport.close()

    def send(self, payload: bytes, opcode: int = 0x1) -> None:
        if self.transport is not None and not self.closed:
            self.transport.write(mask_frame(payload, opcode))

    def _frames(self) -> None:
        buf = self.buf
        pos = 0
        size = len(buf)
        while size - pos >= 2:
            b0 = buf[pos]
            n = buf[pos + 1] & 0x7F
            head = 2
            if n == 126:
                if size - pos < 4:
                    break
                n = int.from_bytes(buf[pos + 2 : pos + 4], "big")
                head = 4
            elif n == 127:
                if size - pos < 10:
                    break
                n = int.from_bytes(buf[pos + 2 : pos + 10], "big")
                head = 10
            if size - pos < head + n:
                break
            payload = bytes(buf[pos + head : pos + head + n])
            pos += head + n
            opcode = b0 & 0x0F
            if opcode in (0x1, 0x2, 0x0):
                if not b0 & 0x80:  # fragment: keep until FIN
                    self.fragments += payload
                    continue
                if self.fragments:
                    payload = bytes(self.fragments) + payload
                    self.fragments.clear()
                self._records(payload)
            elif opcode == 0x9:
                self.send(payload, 0xA)
            elif opcode == 0x8:
                self.closed = True
                if self.transport is not None:
                    self.transport.close()
        if pos:
            del buf[:pos]

    def _records(self, payload: bytes) -> None:
        if self.state == "handshake":
            end = payload.find(RS)
            first = payload[:end]
            if first != b"{}":
                self._fail(f"handshake refused: {first[:200].decode(errors='replace')}")
                return
            self.state = "open"
            self.ready.set_result(None)
            payload = payload[end + 1 :]
        start = 0
        while True:
            at = payload.find(TEXT_MARK, start)
            if at < 0:
                return
            end = payload.find(b'"', at + 9)
            start = end
            self._delivery(payload[at + 9 : end], time.monotonic_ns())

    def _delivery(self, text: bytes, now_ns: int) -> None:
        parts = text.split(b":", 3)
        tally = self.tally
        if len(parts) < 3 or int(parts[0]) != tally.phase:
            tally.stray += 1
            return
        seq = int(parts[1])
        seen = self.seen
        if seq >= len(seen):
            seen.extend(bytes(seq + 1024 - len(seen)))
        if seen[seq]:
            self.duplicates += 1
            return
        seen[seq] = 1
        tally.deliveries += 1
        tally.latencies.append((now_ns - int(parts[2])) / 1e6)


class Client:
    """One chat client: its socket, its room and its SignalR connection id (for the report)."""

    def __init__(self, room: str, sock: ChatSocket, connection_id: str) -> None:
        self.room = room
        self.sock = sock
        self.connection_id = connection_id


def negotiate_url(url: str) -> str:
    """As the SignalR clients do: `<path>/negotiate?<query>&negotiateVersion=1`."""
    parts = urlsplit(url)
    query = f"{parts.query}&negotiateVersion=1" if parts.query else "negotiateVersion=1"
    return f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}/negotiate?{query}"


async def open_client(http: aiohttp.ClientSession, base: str, room: str, tally: Tally) -> Client:
    """Every client is its own identity, so the app's default negotiate limit (per identity) holds."""
    who = await new_identity(http, base)
    info = await negotiate(http, base, who)
    url, token = info["url"], info["accessToken"]
    async with http.post(negotiate_url(url), headers={"Authorization": f"Bearer {token}"}) as r:
        if r.status != 200:
            raise RuntimeError(f"SignalR negotiate answered {r.status}: {(await r.text())[:200]}")
        conn = await r.json(content_type=None)
    parts = urlsplit(url)
    conn_token = conn.get("connectionToken") or conn["connectionId"]
    path = f"{parts.path or '/'}?{parts.query}&id={conn_token}&access_token={token}"
    key = base64.b64encode(os.urandom(16)).decode()
    request = (
        f"GET {path} HTTP/1.1\r\nHost: {parts.netloc}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    ).encode()
    loop = asyncio.get_running_loop()
    host, _, port = parts.netloc.partition(":")
    _, sock = await loop.create_connection(lambda: ChatSocket(tally, request), host, int(port or 80))
    await asyncio.wait_for(sock.ready, 30)
    await group_action(http, base, room, who, "join")
    return Client(room, sock, conn["connectionId"])


async def open_all(
    base: str, count: int, rooms: list[str], first: int, concurrency: int, tally: Tally
) -> list[Client]:
    """Client i (counting from `first` across processes) joins rooms[i % len(rooms)]."""
    http = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=concurrency), timeout=aiohttp.ClientTimeout(total=60)
    )
    gate = asyncio.Semaphore(concurrency)

    async def one(i: int) -> Client:
        async with gate:
            for attempt in range(3):
                try:
                    return await open_client(http, base, rooms[(first + i) % len(rooms)], tally)
                except (OSError, RuntimeError, aiohttp.ClientError, TimeoutError):
                    if attempt == 2:
                        raise
                    await asyncio.sleep(0.5 * (attempt + 1))
            raise AssertionError("unreachable")

    try:
        return list(await asyncio.gather(*(one(i) for i in range(count))))
    finally:
        await http.close()


async def keep_alive(clients: list[Client], interval: float = 10.0) -> None:
    """SignalR servers drop a client silent for 30 s: a ping record every `interval`, spread out."""
    chunk = 100
    while True:
        n = len(clients)
        for start in range(0, max(n, 1), chunk):
            for c in clients[start : start + chunk]:
                c.sock.send(PING_RECORD)
            await asyncio.sleep(interval * min(chunk, n) / max(n, 1) if n else interval)


def report(
    clients: list[Client], tally: Tally, acked: dict[str, list[int]], out: str | None
) -> dict[str, Any]:
    missing = 0
    dups = 0
    closed = 0
    examples: list[str] = []
    for c in clients:
        dups += c.sock.duplicates
        closed += c.sock.closed
        seen = c.sock.seen
        for seq in acked.get(c.room, ()):
            if seq >= len(seen) or not seen[seq]:
                missing += 1
                if len(examples) < 5:
                    examples.append(f"{c.connection_id} {c.room} seq {seq}")
    if out:
        with open(out, "wb") as f:
            tally.latencies.tofile(f)
    return {
        "deliveries": tally.deliveries,
        "missing": missing,
        "duplicates": dups,
        "stray": tally.stray,
        "closed": closed,
        "examples": examples,
    }


def cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system


async def serve(args: argparse.Namespace) -> None:
    raise_fd_limit()
    tally = Tally()
    started = time.perf_counter()
    rooms = args.rooms.split(",")
    clients = await open_all(args.base, args.clients, rooms, args.first, args.concurrency, tally)
    pinger = asyncio.create_task(keep_alive(clients))
    out = sys.stdout
    out.write(json.dumps({"ready": len(clients), "setup_s": round(time.perf_counter() - started, 2)}) + "\n")
    out.flush()
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 26)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    try:
        while line := await reader.readline():
            cmd = json.loads(line)
            if cmd["cmd"] == "start":
                for c in clients:
                    c.sock.seen = bytearray()
                    c.sock.duplicates = 0
                tally.reset(cmd["phase"])
                answer: dict[str, Any] = {"ok": True, "cpu_s": cpu_seconds()}
            elif cmd["cmd"] == "count":
                answer = {"deliveries": tally.deliveries}
            elif cmd["cmd"] == "stop":
                answer = report(clients, tally, cmd.get("acked", {}), cmd.get("out"))
                answer["cpu_s"] = cpu_seconds()
            elif cmd["cmd"] == "quit":
                break
            else:
                answer = {"error": f"unknown command {cmd['cmd']!r}"}
            out.write(json.dumps(answer) + "\n")
            out.flush()
    finally:
        pinger.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await pinger
        for c in clients:
            if c.sock.transport is not None:
                c.sock.transport.close()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.e2e_clients", description=__doc__.splitlines()[0])
    p.add_argument("--base", required=True, help="the chat's base URL (the app that answers /api/negotiate)")
    p.add_argument("--clients", type=int, required=True)
    p.add_argument("--rooms", required=True, help="comma-separated room names")
    p.add_argument("--first", type=int, default=0, help="index of this process's first client (room spread)")
    p.add_argument("--concurrency", type=int, default=32, help="clients being set up at once")
    args = p.parse_args(argv)
    try:
        asyncio.run(serve(args))
    except Exception as e:  # one line for the driver, not a trace
        sys.stdout.write(json.dumps({"error": f"{type(e).__name__}: {e}"}) + "\n")
        sys.stdout.flush()
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
