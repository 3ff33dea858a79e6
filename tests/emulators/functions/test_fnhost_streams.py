"""HTTP streams (azurefunctions-extensions-http-fastapi): the host hands the function a FastAPI Request whose
body arrives as it is sent, and writes its Response as it is produced."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import aiohttp
import pytest
import yarl

from emulators.functions import start
from emulators.functions.loader import FunctionLoadError

APPS = Path(__file__).parent / "apps"


# The worker starts its HTTP server only with init-time indexing (dispatcher.py).
STREAMS_ON = {"PYTHON_ENABLE_INIT_INDEXING": "1",
              # Nothing listens on port 9: the signalR output fails, after the response.
              "AzureSignalRConnectionString": "Endpoint=http://127.0.0.1;Port=9;AccessKey=kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk;Version=1.0;"}


@pytest.fixture
async def streams_host():
    host = await start(APPS / "streams", port=0, create_local_settings=False, settings_overrides=STREAMS_ON)
    host.front_door.cors_origins = ["https://site.example"]  # as local.settings.json "Host": {"CORS": ...}
    try:
        yield host
    finally:
        await host.close()


async def test_a_streamed_response_reaches_the_client_chunk_by_chunk(streams_host, http):
    gate = sys.modules["function_app"].GATE
    async with http.get(f"{streams_host.url}/drip/ada?q=1", headers={"Origin": "https://site.example"}) as r:
        assert r.status == 200 and r.headers["Content-Type"].startswith("text/plain")
        assert r.headers["X-Query"] == "1"  # the query, and `name` from the route, reached the function
        # CORS was added before the headers left
        assert r.headers["Access-Control-Allow-Origin"] == "https://site.example"
        assert await r.content.readuntil(b"\n") == b"hello ada\n"
        assert not gate.is_set()  # the first line arrived while the function still held the second back
        gate.set()
        assert await r.read() == b"bye\n"


async def test_head_gets_the_headers_and_no_body(streams_host, http):
    sys.modules["function_app"].GATE.set()
    async with http.head(f"{streams_host.url}/drip/ada") as r:
        assert r.status == 200 and await r.read() == b""


async def test_the_request_body_is_read_as_it_arrives(streams_host, http):
    async def body():
        for _ in range(8):
            yield b"x" * 65536

    async with http.post(f"{streams_host.url}/upload", data=body()) as r:  # chunked, no Content-Length
        assert r.status == 200
        answer = await r.json()
    assert answer["bytes"] == 8 * 65536 and answer["chunks"] >= 2


async def test_a_body_that_fails_midway_is_cut_short_not_completed(streams_host, http, caplog):
    """The status is already out: the client must see an incomplete body (no terminating chunk), never a
    well-formed short one, and the host log says so in its one line."""
    async with http.get(f"{streams_host.url}/breaks-off") as r:
        assert r.status == 200
        assert await r.content.readany() == b"part"
        with pytest.raises(aiohttp.ClientPayloadError):
            await r.read()
    assert "body cut short: RuntimeError" in caplog.text
    async with http.get(f"{streams_host.url}/drip/next", timeout=aiohttp.ClientTimeout(total=5)) as r:
        assert r.status == 200  # and the host goes on serving


async def test_a_return_value_that_is_not_a_response_is_a_500(streams_host, http):
    async with http.get(f"{streams_host.url}/broken") as r:
        assert r.status == 500
        assert (await r.json())["error"]["code"] == "FunctionInvocationFailed"


async def test_an_output_binding_is_written_after_the_response_and_its_failure_only_logged(
        streams_host, http, caplog):
    """Azure's order in streams mode (worker dispatcher.py: set_http_response, then output_data): the
    client has its 201 before the output is attempted, so a failed write cannot reach it. This is why the
    Function App does not use streams (docs/parity.md)."""
    async with http.post(f"{streams_host.url}/announce") as r:
        assert r.status == 201 and await r.json() == {"announced": True}
    def failed() -> list[str]:
        return [rec.getMessage() for rec in caplog.records if "after the response" in rec.getMessage()]

    for _ in range(250):  # the host goes on after the client has its answer
        if failed():
            break
        await asyncio.sleep(0.02)
    messages = failed()
    assert len(messages) == 1
    assert messages[0].startswith("announce http POST /announce: output binding 'signalr' (signalR): ")
    assert "after the response (201) was sent: the client was told it succeeded" in messages[0]


async def test_streams_without_init_indexing_refuse_start_up():
    with pytest.raises(FunctionLoadError) as refused:
        await start(APPS / "streams", port=0, create_local_settings=False)
    assert str(refused.value).endswith("need the app setting PYTHON_ENABLE_INIT_INDEXING=1: without it the "
                                       "Python worker never starts its HTTP server")


async def test_streams_and_classic_http_functions_in_one_app_are_refused():
    with pytest.raises(FunctionLoadError) as refused:
        await start(APPS / "streams_mixed", port=0, create_local_settings=False,
                    settings_overrides=STREAMS_ON)
    assert "new_style" in str(refused.value) and "old_style" in str(refused.value)


async def test_the_shipped_app_runs_in_classic_http_mode(repo_root):
    """functions/ must not use streams: there the response leaves before the outputs are stored."""
    host = await start(repo_root / "functions", port=0, create_local_settings=False)
    try:
        http_functions = [fd for fd in host.functions if fd.trigger.type == "httpTrigger"]
        assert http_functions and not any(fd.http_streams for fd in http_functions)
    finally:
        await host.close()


async def test_the_query_reaches_the_function_as_sent_even_when_it_is_not_utf8(streams_host, http):
    """ASGI's query_string is the raw, percent-encoded query: `%95` (not UTF-8) must not fail the request."""
    sys.modules["function_app"].GATE.set()
    url = yarl.URL(f"{streams_host.url}/drip/x?q=%C3%A9%95", encoded=True)
    async with http.get(url) as r:
        assert r.status == 200 and r.headers["X-Query"] == "\\xe9\\ufffd"  # é, then the undecodable byte
