"""Fan-out benchmark: one ~200-byte message to N WebSocket connections, emulator beside a floor.

The floor is the smallest broadcast server one can write on the same WebSocket library (aiohttp):
a set of WebSocketResponses and ``for ws in clients: await ws.send_str(text)``. Both servers run
as separate processes, started fresh for every size, and are driven by the same client process
(plain sockets in one epoll loop, so the measuring side stays cheap) in the same run:

* latency: one message at a time; per delivery, time from the REST/HTTP trigger to arrival (p50, p99);
* throughput: a burst of messages back to back; deliveries per second until the last one arrived;
* memory: the server's RSS growth per idle connection after all N are connected and handshaken.

    .venv/bin/python bench/signalr_fanout.py [--sizes 1000,5000] [--rounds 30] [--burst 20]

Not a test: it asserts nothing, it prints a table (and --json writes the figures).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import resource
import select
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import jwt

ROOT = Path(__file__).resolve().parent.parent
KEY = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789ABCDEFGH"
HUB = "bench"
MARK = b"newMessage"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def message_body() -> dict[str, Any]:
    """A REST body whose JSON hub record on the wire is 200 bytes."""
    body: dict[str, Any] = {"target": "newMessage", "arguments": [""]}
    record = json.dumps({"type": 1, **body}, separators=(",", ":")) + "\x1e"
    body["arguments"] = ["x" * (200 - len(record))]
    return body


# -- the floor server (runs in its own process) ---------------------------------------------------


async def serve_floor(port: int) -> None:
    from aiohttp import web

    clients: set[web.WebSocketResponse] = set()

    async def ws_handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(compress=False)
        await ws.prepare(request)
        clients.add(ws)
        try:
            async for _ in ws:
                pass
        finally:
            clients.discard(ws)
        return ws

    async def broadcast(request: web.Request) -> web.Response:
        body = await request.json()
        text = json.dumps({"type": 1, **body}, separators=(",", ":")) + "\x1e"
        for ws in list(clients):
            await ws.send_str(text)
        return web.Response(status=202)

    app = web.Application()
    app.router.add_get("/ws", ws_handler)
    app.router.add_post("/broadcast", broadcast)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port, backlog=4096).start()
    print("ready", flush=True)
    await asyncio.Event().wait()


# -- the client side: plain sockets and one epoll loop, so the measuring side costs little per event ------


def masked_text(text: str) -> bytes:
    payload = text.encode()
    mask = os.urandom(4)
    return bytes([0x81, 0x80 | len(payload)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def read_until(sock: socket.socket, marker: bytes) -> bytes:
    data = b""
    while marker not in data:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("closed")
        data += chunk
    return data


def open_websocket(port: int, path: str, headers: dict[str, str], hub_handshake: bool) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    sock.sendall((f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                  f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                  f"{extra}\r\n").encode())
    head = read_until(sock, b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 101"):
        raise RuntimeError(head.split(b"\r\n")[0].decode())
    if hub_handshake:
        sock.sendall(masked_text('{"protocol":"json","version":1}\x1e'))
        read_until(sock, b"{}\x1e")
    sock.setblocking(False)
    return sock


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def wait_listening(port: int, proc: subprocess.Popen[bytes], timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("server exited")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("server did not start")


def start_server(kind: str, port: int) -> subprocess.Popen[bytes]:
    if kind == "floor":
        cmd = [sys.executable, __file__, "--serve-floor", str(port)]
    else:
        cmd = [sys.executable, "-m", "emulators.signalr", "--port", str(port), "--log-level", "ERROR"]
    return subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


class Fanout:
    """N open WebSockets plus one keep-alive HTTP connection that triggers the broadcast."""

    def __init__(self, port: int, sockets: list[socket.socket], request: bytes) -> None:
        self.sockets = sockets
        self.request = request
        self.trigger = socket.create_connection(("127.0.0.1", port))
        self.trigger.setblocking(False)
        self.poller = select.epoll()
        self.by_fd = {s.fileno(): s for s in sockets}
        for fd in self.by_fd:
            self.poller.register(fd, select.EPOLLIN)
        self.poller.register(self.trigger.fileno(), select.EPOLLIN)
        self.response_buffer = b""

    def send(self, messages: int, timeout: float = 60.0) -> tuple[float, list[float]]:
        """Trigger ``messages`` broadcasts (pipelined); returns t0 and every delivery's arrival time."""
        expected = len(self.sockets) * messages
        arrivals: list[float] = []
        responses = 0
        trigger_fd = self.trigger.fileno()
        t0 = time.perf_counter()
        self.trigger.sendall(self.request * messages)
        deadline = t0 + timeout
        while len(arrivals) < expected or responses < messages:
            if time.perf_counter() > deadline:
                raise TimeoutError(f"{len(arrivals)}/{expected} deliveries, {responses}/{messages} responses")
            for fd, _ in self.poller.poll(1.0):
                if fd == trigger_fd:
                    self.response_buffer += self.trigger.recv(65536)
                    while b"\r\n\r\n" in self.response_buffer:
                        head, _, self.response_buffer = self.response_buffer.partition(b"\r\n\r\n")
                        if b" 202 " not in head.split(b"\r\n")[0]:
                            raise RuntimeError(head.split(b"\r\n")[0].decode())
                        responses += 1
                    continue
                data = self.by_fd[fd].recv(65536)
                hits = data.count(MARK)
                if hits:
                    now = time.perf_counter()
                    arrivals.extend([now] * hits)
        return t0, arrivals

    def close(self) -> None:
        self.poller.close()
        self.trigger.close()
        for sock in self.sockets:
            sock.close()


def run_one(kind: str, n: int, rounds: int, burst: int) -> dict[str, Any]:
    port = free_port()
    proc = start_server(kind, port)
    sockets: list[socket.socket] = []
    fanout = None
    try:
        wait_listening(port, proc)
        time.sleep(0.5)
        base_rss = rss_kib(proc.pid)
        body = json.dumps(message_body()).encode()
        if kind == "floor":
            path, headers, handshake = "/ws", {}, False
            target, auth = "/broadcast", ""
        else:
            now = int(time.time())
            client = jwt.encode({"aud": f"http://127.0.0.1/client/?hub={HUB}", "exp": now + 3600},
                                KEY.encode(), algorithm="HS256")
            path, headers, handshake = f"/client/?hub={HUB}", {"Authorization": f"Bearer {client}"}, True
            target = f"/api/hubs/{HUB}/:send?api-version=2022-06-01"
            rest = jwt.encode({"aud": f"http://127.0.0.1{target}", "exp": now + 3600}, KEY.encode(),
                              algorithm="HS256")
            auth = f"Authorization: Bearer {rest}\r\n"
        request = (f"POST {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{auth}"
                   f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body
        for _ in range(n):
            sockets.append(open_websocket(port, path, headers, handshake))
        time.sleep(1.0)
        idle_rss = rss_kib(proc.pid)
        fanout = Fanout(port, sockets, request)
        for _ in range(3):  # warm-up
            fanout.send(1)
        latencies: list[float] = []
        fanout_rates: list[float] = []
        for _ in range(rounds):
            t0, arrivals = fanout.send(1)
            latencies.extend((t - t0) * 1000 for t in arrivals)
            fanout_rates.append(n / (max(arrivals) - t0))
            time.sleep(0.02)
        burst_rates = []
        for _ in range(3):
            t0, arrivals = fanout.send(burst)
            burst_rates.append(n * burst / (max(arrivals) - t0))
            time.sleep(0.1)
        latencies.sort()
        return {
            "server": kind, "connections": n,
            "p50_ms": round(latencies[len(latencies) // 2], 2),
            "p99_ms": round(latencies[int(len(latencies) * 0.99)], 2),
            "fanout_deliveries_per_s": round(statistics.median(fanout_rates)),
            "burst_deliveries_per_s": round(statistics.median(burst_rates)),
            "idle_kib_per_connection": round((idle_rss - base_rss) / n, 2),
        }
    finally:
        if fanout is not None:
            fanout.close()
        else:
            for sock in sockets:
                sock.close()
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def raise_file_limit(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(needed, hard), hard))  # children inherit it


def main(sizes: list[int], rounds: int, burst: int, repeats: int, out: str | None) -> None:
    raise_file_limit(max(sizes) * 2 + 1024)
    runs: list[dict[str, Any]] = []
    for n in sizes:
        for _ in range(repeats):  # interleaved, so background load hits both servers alike
            for kind in ("floor", "emulator"):
                result = run_one(kind, n, rounds, burst)
                runs.append(result)
                print(json.dumps(result), flush=True)
    fields = ["p50_ms", "p99_ms", "fanout_deliveries_per_s", "burst_deliveries_per_s",
              "idle_kib_per_connection"]
    results = []
    for n in sizes:
        for kind in ("floor", "emulator"):
            mine = [r for r in runs if r["server"] == kind and r["connections"] == n]
            results.append({"server": kind, "connections": n,
                            **{f: statistics.median(r[f] for r in mine) for f in fields}})
    print(f"\nmedians of {repeats} interleaved runs per server "
          f"({rounds} single messages, bursts of {burst})")
    print(f"{'connections':>11} {'server':>9} {'p50 ms':>8} {'p99 ms':>8} {'fan-out/s':>11} "
          f"{'burst/s':>10} {'KiB/conn':>9}")
    for r in results:
        print(f"{r['connections']:>11} {r['server']:>9} {r['p50_ms']:>8.2f} {r['p99_ms']:>8.2f} "
              f"{r['fanout_deliveries_per_s']:>11.0f} {r['burst_deliveries_per_s']:>10.0f} "
              f"{r['idle_kib_per_connection']:>9.2f}")
    for n in sizes:
        floor = next(r for r in results if r["server"] == "floor" and r["connections"] == n)
        emu = next(r for r in results if r["server"] == "emulator" and r["connections"] == n)
        print(f"{n} connections: emulator/floor throughput "
              f"{emu['burst_deliveries_per_s'] / floor['burst_deliveries_per_s']:.0%} (bursts), "
              f"{emu['fanout_deliveries_per_s'] / floor['fanout_deliveries_per_s']:.0%} (single messages)")
    if out:
        Path(out).write_text(json.dumps({"runs": runs, "medians": results}, indent=2) + "\n")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000,5000")
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--burst", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", dest="out")
    parser.add_argument("--serve-floor", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_floor:
        asyncio.run(serve_floor(args.serve_floor))
    else:
        main([int(s) for s in args.sizes.split(",")], args.rounds, args.burst, args.repeats, args.out)
