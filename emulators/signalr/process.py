"""The SignalR emulator in a child process: how ``python -m emulators`` puts the WebSocket fan-out on a
core of its own instead of on the event loop that runs the Cosmos DB emulator and the Functions host.

    emu = await start_process(host="127.0.0.1", port=0, key=WELL_KNOWN_ACCESS_KEY)
    emu.url, emu.connection_string      # as for the in-process emulator
    await emu.exited                    # the exit code, should it stop on its own (logged as an error)
    await emu.close()                   # SIGTERM, then SIGKILL after `stop_timeout`

The child is ``python -m emulators.signalr --child-of <our pid>`` (see its module doc): it gets the key
on stdin, answers one JSON line on stdout, logs to our stderr in our format, runs in a session of its
own (a terminal's Ctrl-C reaches only us, so we stop the parts in order) and dies with us.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import logging
import os
import signal
import sys
from pathlib import Path

from . import WELL_KNOWN_ACCESS_KEY, Endpoint

log = logging.getLogger("emulators.signalr")
ROOT = Path(__file__).resolve().parents[2]


def describe_exit(code: int) -> str:
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-code).name}"
        return f"killed by signal {-code}"
    return f"exit code {code}"


class EmulatorProcess(Endpoint):
    """A running emulator in a child process; ``exited`` completes with its exit code."""

    def __init__(self, host: str, port: int, key: str, proc: asyncio.subprocess.Process,
                 stop_timeout: float) -> None:
        super().__init__(host, port, key)
        self.proc = proc
        self.stop_timeout = stop_timeout
        self._closing = False
        self.exited: asyncio.Task[int] = asyncio.create_task(self._wait())

    @property
    def pid(self) -> int:
        return self.proc.pid

    async def _wait(self) -> int:
        code = await self.proc.wait()
        if not self._closing:
            log.error("SignalR emulator process %d stopped on its own (%s)", self.proc.pid,
                      describe_exit(code))
        return code

    async def close(self) -> None:
        self._closing = True
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(asyncio.shield(self.exited), self.stop_timeout)
            except TimeoutError:
                log.warning("SignalR emulator process %d did not stop in %.0f s: killed", self.proc.pid,
                            self.stop_timeout)
                with contextlib.suppress(ProcessLookupError):
                    self.proc.kill()
        await self.exited
        if self.proc.stdin is not None:
            self.proc.stdin.close()


async def start_process(host: str = "127.0.0.1", port: int = 8888, key: str = WELL_KNOWN_ACCESS_KEY,
                        log_level: int | str = logging.INFO, log_format: str | None = None,
                        ready_timeout: float = 30.0, stop_timeout: float = 5.0) -> EmulatorProcess:
    """Start the child and wait until it listens. Cannot listen → ``OSError`` with the child's errno
    (so a busy port reads as it does in process); exits or says nothing in time → ``RuntimeError``."""
    level = logging.getLevelName(log_level) if isinstance(log_level, int) else log_level
    argv = [sys.executable, "-m", "emulators.signalr", "--child-of", str(os.getpid()), "--host", host,
            "--port", str(port), "--log-level", str(level)]
    if log_format:
        argv += ["--log-format", log_format]
    proc = await asyncio.create_subprocess_exec(
        *argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, cwd=ROOT,
        start_new_session=True)
    assert proc.stdin is not None and proc.stdout is not None
    try:
        proc.stdin.write(key.encode() + b"\n")
        await proc.stdin.drain()
        line = await asyncio.wait_for(proc.stdout.readline(), ready_timeout)
        answer = json.loads(line) if line.strip() else {}
    except (TimeoutError, ValueError, OSError) as e:
        answer = {"failure": type(e).__name__}
    if "port" in answer:
        return EmulatorProcess(host, int(answer["port"]), key, proc, stop_timeout)
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
    code = await proc.wait()
    if "errno" in answer:
        raise OSError(answer["errno"] or errno.EIO, answer.get("error") or "cannot listen")
    raise RuntimeError(f"the SignalR emulator process did not start ({describe_exit(code)}; "
                       f"{answer.get('failure') or 'no answer'})")
