"""The emulator in a child process (`process.start_process`, what `python -m emulators` uses): same URL
and connection string as in process, a busy port is the same OSError, a crash is logged, close stops it."""

from __future__ import annotations

import errno
import logging
import signal
import socket

import pytest
from signalr_helpers import RawClient

from emulators.signalr.process import start_process
from emulators.signalr.service_client import ServiceClient

KEY = "a-key-of-our-own-" * 3


async def test_serves_with_the_given_key_and_closes_cleanly(free_port: int) -> None:
    emu = await start_process(port=free_port, key=KEY)
    try:
        assert emu.url == f"http://127.0.0.1:{free_port}"
        assert emu.connection_string == f"Endpoint=http://127.0.0.1;Port={free_port};AccessKey={KEY};Version=1.0;"
        async with ServiceClient(emu.connection_string) as service:
            client = await RawClient.connect(emu.url, service.client_connection_info("chat")["accessToken"])
            await service.broadcast("chat", "m", ["from the child"])
            assert (await client.next())["arguments"] == ["from the child"]
            await client.close()
    finally:
        await emu.close()
    assert emu.exited.result() == 0


async def test_a_busy_port_is_an_oserror_like_in_process(free_port: int) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", free_port))
        s.listen()
        with pytest.raises(OSError) as e:
            await start_process(port=free_port, key=KEY)
    assert e.value.errno == errno.EADDRINUSE


async def test_a_child_that_dies_is_logged_as_an_error(free_port: int, caplog) -> None:
    caplog.set_level(logging.INFO, logger="emulators.signalr")
    emu = await start_process(port=free_port, key=KEY)
    emu.proc.send_signal(signal.SIGKILL)
    assert await emu.exited == -signal.SIGKILL
    await emu.close()
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert errors == [f"SignalR emulator process {emu.pid} stopped on its own (killed by SIGKILL)"]


async def test_closing_our_end_of_stdin_stops_the_child(free_port: int) -> None:
    """Any death of the parent closes the pipe: the child stops on its own then (any platform)."""
    emu = await start_process(port=free_port, key=KEY)
    emu._closing = True
    emu.proc.stdin.close()
    assert await emu.exited == 0
    await emu.close()
