"""`python -m emulators` as two processes: the SignalR emulator in a child of its own (its fan-out on
another core), the Cosmos DB emulator and the Functions host together. One Ctrl-C/SIGTERM stops both;
a child that dies is reported and stops the stack; a parent that is SIGKILLed takes the child with it."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from pathlib import Path

import aiohttp

from tests.conftest import ROOT, find_free_port


def children(pid: int) -> list[int]:
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            out.extend(int(c) for c in (task / "children").read_text().split())
    return out


def cmdline(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


async def until(check, what: str, timeout: float = 30.0) -> None:
    """Wait for a condition (a deadline only so a broken build fails instead of hanging)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        assert asyncio.get_running_loop().time() < deadline, f"still waiting for: {what}"
        await asyncio.sleep(0.05)


class Launched:
    def __init__(self, *extra: str) -> None:
        self.port, self.signalr_port = find_free_port(), find_free_port()
        self.argv = ["-m", "emulators", "--in-memory", "--port", str(self.port), "--cosmos-port",
                     str(find_free_port()), "--signalr-port", str(self.signalr_port), *extra]
        self.proc: asyncio.subprocess.Process | None = None

    async def __aenter__(self) -> Launched:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, *self.argv, cwd=ROOT, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE)
        assert self.proc.stdout is not None
        line = (await asyncio.wait_for(self.proc.stdout.readline(), 60)).decode()
        assert line.startswith(f"Cosmic Chat is running at http://127.0.0.1:{self.port}/ "), line
        assert f"SignalR emulator http://127.0.0.1:{self.signalr_port}" in line
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.proc is not None
        if self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()

    def signalr_child(self) -> int:
        assert self.proc is not None
        kids = [c for c in children(self.proc.pid) if "emulators.signalr" in cmdline(c)]
        assert len(kids) == 1, [cmdline(c) for c in children(self.proc.pid)]
        return kids[0]

    async def finish(self) -> tuple[int, str, str]:
        assert self.proc is not None
        out, err = await asyncio.wait_for(self.proc.communicate(), 30)
        return self.proc.returncode, out.decode(), err.decode()


async def stats(port: int) -> dict:
    async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{port}/stats") as r:
        assert r.status == 200
        return await r.json()


async def test_signalr_runs_in_a_child_and_one_sigterm_stops_both():
    async with Launched() as stack:
        child = stack.signalr_child()
        assert cmdline(child)[cmdline(child).index("--child-of") + 1] == str(stack.proc.pid)
        assert "ABCDEFGH" not in " ".join(cmdline(child))  # the key went over stdin, not argv
        assert "connections" in await stats(stack.signalr_port)  # served by the child
        stack.proc.send_signal(signal.SIGTERM)
        code, out, err = await stack.finish()
        assert code == 0
        assert out.splitlines()[-1] == "Cosmic Chat stopped"
        assert "Traceback" not in err and "stopped on its own" not in err
        await until(lambda: not alive(child), "the SignalR child to exit")


async def test_ctrl_c_reaches_only_the_parent_which_stops_the_child_in_order():
    async with Launched() as stack:
        child = stack.signalr_child()
        # A terminal's Ctrl-C goes to the foreground process group; the child has a session of its own.
        assert os.getpgid(child) != os.getpgid(stack.proc.pid)
        stack.proc.send_signal(signal.SIGINT)
        code, out, err = await stack.finish()
        assert code == 0 and out.splitlines()[-1] == "Cosmic Chat stopped"
        assert "Traceback" not in err
        await until(lambda: not alive(child), "the SignalR child to exit")


async def test_a_dead_signalr_child_is_reported_and_stops_the_stack():
    async with Launched() as stack:
        os.kill(stack.signalr_child(), signal.SIGKILL)
        code, out, err = await stack.finish()
        assert code == 1
        assert ("error: the SignalR emulator's process stopped on its own (killed by SIGKILL); "
                "stopping Cosmic Chat") in err
        assert out.splitlines()[-1] == "Cosmic Chat stopped"


async def test_a_sigkilled_parent_takes_the_child_with_it_and_the_ports_are_free_again():
    async with Launched() as stack:
        child = stack.signalr_child()
        stack.proc.kill()
        await stack.proc.wait()
        await until(lambda: not alive(child), "the orphaned SignalR child to die")
    # The same ports again, as the SIGKILL-and-restart fault test does.
    again = Launched()
    again.argv = stack.argv
    again.port, again.signalr_port = stack.port, stack.signalr_port
    async with again:
        again.proc.send_signal(signal.SIGTERM)
        code, _, _ = await again.finish()
        assert code == 0


async def test_one_process_keeps_signalr_on_the_same_loop():
    async with Launched("--one-process") as stack:
        assert not [c for c in children(stack.proc.pid) if "emulators.signalr" in cmdline(c)]
        assert "connections" in await stats(stack.signalr_port)
        stack.proc.send_signal(signal.SIGTERM)
        code, out, _ = await stack.finish()
        assert code == 0 and out.splitlines()[-1] == "Cosmic Chat stopped"
