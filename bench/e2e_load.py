"""The parts of an end-to-end run: a server process (the stack or the floor), load-generator processes
holding the clients, and a poster that posts at a steady rate; one `Phase` measures one rate.

Three kinds of process, so no two share an event loop: the server under test, two client processes
(`bench.e2e_clients`) and this one, which posts and collects. Latency is per delivery: from the
moment the POST is sent to the moment a client's socket has the frame.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from array import array
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from emulators.smoke import Identity, new_identity

ROOT = Path(__file__).resolve().parent.parent
CLK_TCK = os.sysconf("SC_CLK_TCK")
TEXT_PAD = 80  # a chat line of ~100 characters
# App settings of the stack under test. The poster is ONE identity posting at the ladder's rate (up to
# thousands/s), far over a person's default (20 per 20 s): its limit is raised to the most the setting can
# say (6 digits per minute, ~16,000/s), above any rate measured here, and never lowered to "off": every post
# still pays its rate-limit patch in Cosmos DB, so the figures include the limiter. Clients are an identity
# each, so negotiation keeps its default limit.
BENCH_SETTINGS = {"CHAT_POST_LIMIT": "999999/60s"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def process_tree(pid: int) -> list[int]:
    """`pid` and its descendants (from /proc/<pid>/task/*/children), so a server that runs a part in a
    child process (the SignalR emulator under `python -m emulators`) is measured whole."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for task in Path(f"/proc/{p}/task").iterdir():
                with contextlib.suppress(OSError):
                    todo.extend(int(c) for c in (task / "children").read_text().split())
        except OSError:
            continue
    return out


def tree_cpu_seconds(pid: int) -> float:
    """cpu_seconds summed over the process and its descendants (those alive now)."""
    total = 0.0
    for p in process_tree(pid):
        with contextlib.suppress(OSError):
            total += cpu_seconds(p)
    return total


def process_label(pid: int) -> str:
    """A short name for a server process: "signalr" for the SignalR emulator's child, else "main"."""
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return "gone"
    return "signalr" if "emulators.signalr" in cmd else "main"


def tree_cpu_by_process(pid: int) -> dict[int, float]:
    out: dict[int, float] = {}
    for p in process_tree(pid):
        with contextlib.suppress(OSError):
            out[p] = cpu_seconds(p)
    return out


def machine_busy_seconds() -> float:
    """CPU seconds all cores spent not idle since boot (/proc/stat), to tell what else ran meanwhile."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / CLK_TCK


def rss_mib(pid: int) -> float:
    """Resident memory of the process and its descendants."""
    total = 0.0
    for p in process_tree(pid):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) / 1024
    return total


class Server:
    """The system under test in its own process: `python -m emulators --in-memory` ("stack"; "stack1"
    adds `--one-process`, the layout before the SignalR emulator got a process of its own) or the floor."""

    def __init__(self, kind: str, data_dir: Path | None = None) -> None:
        self.kind = kind
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = tempfile.NamedTemporaryFile(prefix=f"bench-{kind}-", suffix=".log", delete=False)
        if kind in ("stack", "stack1"):  # stack1: `--one-process`, all three servers on one event loop
            storage = ["--in-memory"] if data_dir is None else ["--data-dir", str(data_dir)]
            if kind == "stack1":
                storage.append("--one-process")
            self.cmd = [
                sys.executable,
                "-m",
                "emulators",
                "--port",
                str(self.port),
                "--cosmos-port",
                str(free_port()),
                "--signalr-port",
                str(free_port()),
                *storage,
            ]
        elif kind == "floor":
            self.cmd = [sys.executable, "-m", "bench.e2e_floor", "--port", str(self.port)]
        else:
            raise ValueError(kind)
        self.proc: subprocess.Popen[bytes] | None = None
        self.poster: Identity | None = None  # who the phases post as, once the server is up

    def start(self, timeout: float = 60.0) -> None:
        # App settings through the environment: it wins over local.settings.json (see
        # emulators/functions/settings.py)
        env = {**os.environ, **BENCH_SETTINGS}
        self.proc = subprocess.Popen(self.cmd, cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.kind} exited with {self.proc.returncode}; see {self.log.name}")
            text = Path(self.log.name).read_text(errors="replace")
            if "is running at" in text or "floor listening" in text:
                return
            time.sleep(0.1)
        raise RuntimeError(f"{self.kind} did not start within {timeout:.0f} s; see {self.log.name}")

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


class Workers:
    """The client processes; commands go to all of them and their answers are summed."""

    def __init__(self, base: str, clients: int, rooms: list[str], processes: int = 2) -> None:
        self.base = base
        self.clients = clients
        self.rooms = rooms
        self.processes = max(1, min(processes, clients))
        self.procs: list[asyncio.subprocess.Process] = []
        self.setup_s = 0.0
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        share, extra = divmod(self.clients, self.processes)
        first = 0
        for i in range(self.processes):
            n = share + (1 if i < extra else 0)
            self.procs.append(
                await asyncio.create_subprocess_exec(
                    sys.executable,
                    "-m",
                    "bench.e2e_clients",
                    "--base",
                    self.base,
                    "--clients",
                    str(n),
                    "--rooms",
                    ",".join(self.rooms),
                    "--first",
                    str(first),
                    cwd=ROOT,
                    stdin=asyncio.subprocess.PIPE,
                    stdout=asyncio.subprocess.PIPE,
                    limit=1 << 26,
                )
            )
            first += n
        started = time.perf_counter()
        answers = await asyncio.gather(*(self._read(p, 600) for p in self.procs))
        self.setup_s = time.perf_counter() - started
        for a in answers:
            if "ready" not in a:
                raise RuntimeError(f"client process failed: {a.get('error', a)}")

    async def _read(self, proc: asyncio.subprocess.Process, timeout: float) -> dict[str, Any]:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), timeout)
        if not line:
            return {"error": f"client process exited with {await proc.wait()}"}
        return json.loads(line)

    async def command(
        self, cmd: dict[str, Any], per_process: list[dict[str, Any]] | None = None, timeout: float = 120.0
    ) -> list[dict[str, Any]]:
        for i, p in enumerate(self.procs):
            assert p.stdin is not None
            body = {**cmd, **(per_process[i] if per_process else {})}
            p.stdin.write((json.dumps(body) + "\n").encode())
            await p.stdin.drain()
        return list(await asyncio.gather(*(self._read(p, timeout) for p in self.procs)))

    def pids(self) -> list[int]:
        return [p.pid for p in self.procs]

    async def close(self) -> None:
        for p in self.procs:
            if p.returncode is None and p.stdin is not None:
                p.stdin.write(b'{"cmd": "quit"}\n')
                p.stdin.close()
        for p in self.procs:
            try:
                await asyncio.wait_for(p.wait(), 20)
            except TimeoutError:
                p.kill()
                await p.wait()


@dataclass
class PhaseResult:
    """One measured rate: what was posted, what arrived, how fast, at what CPU cost."""

    server: str
    clients: int
    rate: float
    seconds: float
    posted: int = 0
    acked: int = 0
    post_errors: int = 0
    expected: int = 0
    deliveries: int = 0
    missing: int = 0
    duplicates: int = 0
    closed: int = 0
    p50_ms: float = 0.0
    p90_ms: float = 0.0
    p99_ms: float = 0.0
    max_ms: float = 0.0
    post_p50_ms: float = 0.0
    post_p99_ms: float = 0.0
    achieved_rate: float = 0.0
    deliveries_per_s: float = 0.0
    server_cpu: float = 0.0  # cores (CPU seconds per wall second) during the phase
    server_cpu_by_process: dict[str, float] = field(default_factory=dict)  # "main" / "signalr" → cores
    clients_cpu: float = 0.0
    server_rss_mib: float = 0.0
    others_cpu: float = 0.0  # cores used by everything else on the machine (other users' work) meanwhile
    drain_s: float = 0.0
    aborted: str = ""  # why posting stopped early (the pipeline fell too far behind), else ""
    examples: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.aborted and self.missing == 0 and self.post_errors == 0 and self.acked == self.posted


def percentile(sorted_values: list[float] | array, q: float) -> float:
    if not sorted_values:
        return float("nan")
    i = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return float(sorted_values[i])


class Phase:
    """Post at `rate` messages/s for `seconds`, rooms in turn, then wait for every delivery."""

    phase_counter = 0

    def __init__(
        self,
        server: Server,
        workers: Workers,
        rate: float,
        seconds: float,
        drain_timeout: float = 15.0,
        abort_lag_s: float | None = None,
    ) -> None:
        Phase.phase_counter += 1
        self.phase = Phase.phase_counter
        self.server = server
        self.workers = workers
        self.rate = rate
        self.seconds = seconds
        self.drain_timeout = drain_timeout
        self.abort_lag_s = abort_lag_s

    async def run(self) -> PhaseResult:
        rooms = self.workers.rooms
        per_room = {r: 0 for r in rooms}
        for i in range(self.workers.clients):
            per_room[rooms[i % len(rooms)]] += 1
        res = PhaseResult(self.server.kind, self.workers.clients, self.rate, self.seconds)
        acked: dict[str, list[int]] = {r: [] for r in rooms}
        ack_log: list[tuple[float, int]] = []  # (when, recipients) per acknowledged post
        post_times: list[float] = []
        await self.workers.command({"cmd": "start", "phase": self.phase})
        cpu0 = tree_cpu_seconds(self.server.pid)
        per0 = tree_cpu_by_process(self.server.pid)
        wcpu0 = sum(cpu_seconds(p) for p in self.workers.pids())
        mcpu0, dcpu0 = machine_busy_seconds(), cpu_seconds(os.getpid())
        t_start = time.perf_counter()
        total = int(self.rate * self.seconds)
        pad = "x" * TEXT_PAD
        connector = aiohttp.TCPConnector(limit=256)
        timeout = aiohttp.ClientTimeout(total=30)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
            if self.server.poster is None:
                self.server.poster = await new_identity(http, self.server.base)
            auth = self.server.poster.headers

            async def post(seq: int) -> None:
                room = rooms[seq % len(rooms)]
                sent = time.monotonic_ns()
                body = {"user": "bench", "text": f"b{self.phase}:{seq}:{sent}:{pad}"}
                try:
                    url = f"{self.server.base}/api/rooms/{room}/messages"
                    async with http.post(url, json=body, headers=auth) as r:
                        await r.read()
                        if r.status == 201:
                            acked[room].append(seq)
                            ack_log.append((time.monotonic(), per_room[room]))
                        else:
                            res.post_errors += 1
                except (aiohttp.ClientError, TimeoutError):
                    res.post_errors += 1
                post_times.append((time.monotonic_ns() - sent) / 1e6)

            stop = asyncio.Event()
            finished = asyncio.Event()
            monitor = asyncio.create_task(self._watch_lag(ack_log, stop, finished, res))
            tasks = []
            loop = asyncio.get_running_loop()
            t0 = loop.time()
            for seq in range(total):
                if stop.is_set():
                    break
                delay = t0 + seq / self.rate - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                tasks.append(asyncio.create_task(post(seq)))
            await asyncio.gather(*tasks)
            finished.set()  # not cancel(): a command cut between its write and its answer desyncs the pipe
            await monitor
        post_end = time.perf_counter()
        total = len(tasks)
        res.posted = total
        res.acked = sum(len(v) for v in acked.values())
        res.achieved_rate = total / max(1e-9, post_end - t_start)
        res.expected = sum(len(acked[r]) * per_room[r] for r in rooms)
        # Drain: until every expected delivery arrived, or no progress for drain_timeout.
        drain_start = time.perf_counter()
        last, last_change = -1, time.perf_counter()
        while True:
            got = sum(a["deliveries"] for a in await self.workers.command({"cmd": "count"}))
            if got >= res.expected:
                break
            if got != last:
                last, last_change = got, time.perf_counter()
            elif time.perf_counter() - last_change > self.drain_timeout:
                break
            await asyncio.sleep(0.05)
        t_end = time.perf_counter()
        res.drain_s = t_end - drain_start
        wall = t_end - t_start
        res.server_cpu = (tree_cpu_seconds(self.server.pid) - cpu0) / wall
        for p, after in tree_cpu_by_process(self.server.pid).items():
            label = process_label(p)
            used = (after - per0.get(p, 0.0)) / wall
            res.server_cpu_by_process[label] = round(res.server_cpu_by_process.get(label, 0.0) + used, 3)
        res.clients_cpu = (sum(cpu_seconds(p) for p in self.workers.pids()) - wcpu0) / wall
        res.server_rss_mib = rss_mib(self.server.pid)
        ours = (res.server_cpu + res.clients_cpu) * wall + cpu_seconds(os.getpid()) - dcpu0
        res.others_cpu = max(0.0, (machine_busy_seconds() - mcpu0 - ours) / wall)
        with tempfile.TemporaryDirectory(prefix="bench-lat-") as tmp:
            outs = [{"out": str(Path(tmp) / f"w{i}.f32")} for i in range(len(self.workers.procs))]
            answers = await self.workers.command({"cmd": "stop", "acked": acked}, outs)
            lat = array("f")
            for o in outs:
                data = Path(o["out"]).read_bytes()
                lat.frombytes(data)
        for a in answers:
            res.deliveries += a["deliveries"]
            res.missing += a["missing"]
            res.duplicates += a["duplicates"]
            res.closed += a["closed"]
            res.examples.extend(a["examples"])
        values = sorted(lat)
        res.p50_ms, res.p90_ms, res.p99_ms = (percentile(values, q) for q in (0.5, 0.9, 0.99))
        res.max_ms = values[-1] if values else float("nan")
        post_times.sort()
        res.post_p50_ms, res.post_p99_ms = percentile(post_times, 0.5), percentile(post_times, 0.99)
        res.deliveries_per_s = res.deliveries / max(1e-9, post_end - t_start)
        return res

    async def _watch_lag(
        self, ack_log: list[tuple[float, int]], stop: asyncio.Event, finished: asyncio.Event, res: PhaseResult
    ) -> None:
        """Stop posting once deliveries trail the posts acknowledged `abort_lag_s` ago: past that
        point p99 < 250 ms is lost anyway, and a minute of backlog would take minutes to drain."""
        if self.abort_lag_s is None:
            return
        while not finished.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(finished.wait(), 1.0)
                return
            cutoff = time.monotonic() - self.abort_lag_s
            owed = sum(n for when, n in ack_log if when < cutoff)
            got = sum(a["deliveries"] for a in await self.workers.command({"cmd": "count"}))
            if got < owed:
                res.aborted = (
                    f"after {len(ack_log)} acknowledged posts, deliveries trailed the posts "
                    f"acknowledged {self.abort_lag_s:.0f} s earlier ({got} < {owed})"
                )
                stop.set()
                return
