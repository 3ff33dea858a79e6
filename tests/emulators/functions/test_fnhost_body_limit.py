"""FUNCTIONS_REQUEST_BODY_SIZE_LIMIT: the host refuses a body over the limit before any function runs.

Azure: azure-functions-host `src/WebJobs.Script.WebHost/Middleware/HttpRequestBodySizeMiddleware.cs` sets
Kestrel's MaxRequestBodySize from the setting (default 104857600,
`ScriptConstants.DefaultMaxRequestBodySize`); Kestrel throws while the host binds the trigger parameter
and ExceptionMiddleware answers 500 (Azure/azure-functions-host#10519). docs/parity.md has the row."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

import pytest

from emulators.functions import start
from emulators.functions.settings import HostSettings, SettingsError

APPS = Path(__file__).parent / "apps"
LIMIT = 65536
MESSAGE = (f"Exception binding parameter 'req'. Request body too large. The max request body size is {LIMIT} "
           "bytes. (app setting FUNCTIONS_REQUEST_BODY_SIZE_LIMIT)")


@pytest.fixture
async def limited_host():
    host = await start(APPS / "basic", port=0, create_local_settings=False,
                       settings_overrides={"FUNCTIONS_REQUEST_BODY_SIZE_LIMIT": str(LIMIT)})
    try:
        yield host
    finally:
        await host.close()


def rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


async def post_huge(port: int, total: int, announce: bool) -> tuple[int, bytes, int]:
    """POST `total` bytes to /echo/x, announced by Content-Length or chunked, until the host answers; returns
    (status, body, bytes sent)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    framing = f"Content-Length: {total}" if announce else "Transfer-Encoding: chunked"
    writer.write(f"POST /echo/x HTTP/1.1\r\nHost: t\r\nContent-Type: application/octet-stream\r\n"
                 f"{framing}\r\n\r\n".encode())
    head = asyncio.create_task(reader.readuntil(b"\r\n\r\n"))
    chunk = b"x" * (1 << 20)
    sent = 0
    try:
        while sent < total and not head.done():
            writer.write(chunk if announce else b"%x\r\n%s\r\n" % (len(chunk), chunk))
            sent += len(chunk)
            await asyncio.wait({head, asyncio.ensure_future(writer.drain())},
                               return_when=asyncio.FIRST_COMPLETED)
        headers = await asyncio.wait_for(head, 10)
        status = int(headers.split(b" ", 2)[1])
        length = int(next(line.split(b":")[1] for line in headers.split(b"\r\n")
                          if line.lower().startswith(b"content-length:")))
        body = await asyncio.wait_for(reader.readexactly(length), 10)
    finally:
        writer.close()
    return status, body, sent


@pytest.mark.parametrize("announce", [True, False], ids=["content-length", "chunked"])
async def test_a_body_over_the_limit_is_the_hosts_500_and_the_function_never_runs(limited_host, announce,
                                                                                   caplog):
    caplog.set_level(logging.INFO, logger="emulators.functions")
    status, body, sent = await post_huge(limited_host.port, 99 * 1000 * 1000, announce)
    assert status == 500
    error = json.loads(body)["error"]
    assert error == {"code": "RequestBodyTooLarge", "message": MESSAGE, "function": "echo"}
    assert sent < 16 * (1 << 20)  # answered long before the client had sent it all
    assert any(r.getMessage().startswith("echo http POST /echo/x → 500") and MESSAGE in r.getMessage()
               for r in caplog.records)


async def test_a_body_at_the_limit_reaches_the_function(limited_host, http):
    async with http.post(f"{limited_host.url}/echo/x", data=b"a" * LIMIT) as r:
        assert r.status == 201 and len((await r.json())["body"]) == LIMIT
    async with http.post(f"{limited_host.url}/echo/x", data=b"a" * (LIMIT + 1)) as r:
        assert r.status == 500 and (await r.json())["error"]["code"] == "RequestBodyTooLarge"


async def test_eight_concurrent_99_mb_posts_do_not_grow_the_host(limited_host):
    """Before the limit, each of these was read whole (eight took the host to ~900 MB RSS)."""
    peak = baseline = rss_bytes()
    done = asyncio.Event()

    async def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, rss_bytes())
            await asyncio.sleep(0.005)

    sampler = asyncio.create_task(sample())
    results = await asyncio.gather(*(post_huge(limited_host.port, 99 * 1000 * 1000, i % 2 == 0)
                                     for i in range(8)))
    done.set()
    await sampler
    assert [status for status, _, _ in results] == [500] * 8
    assert peak - baseline < 40 * (1 << 20), f"RSS grew by {(peak - baseline) / 2**20:.0f} MiB"


def test_the_setting_is_read_as_the_host_reads_it(tmp_path):
    (tmp_path / "host.json").write_text('{"version": "2.0"}')

    def limit(value: str | None) -> int:
        overrides = {} if value is None else {"FUNCTIONS_REQUEST_BODY_SIZE_LIMIT": value}
        return HostSettings.load(tmp_path, overrides, create_local_settings=False).request_body_limit

    # Where long.TryParse fails, Kestrel's default stays.
    assert limit(None) == limit("") == limit("64k") == limit("1.5") == 104857600
    assert limit(" 4096 ") == limit("+4096") == 4096
    with pytest.raises(SettingsError, match="must not be negative"):
        limit("-1")
