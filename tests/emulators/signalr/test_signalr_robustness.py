"""Bad input, timeouts and slow consumers: each hurts only the connection that caused it."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import struct
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest
from signalr_helpers import RawClient

from emulators.signalr import Emulator, start
from emulators.signalr.service_client import ServiceClient


@pytest.fixture
async def strict() -> AsyncIterator[Emulator]:
    """Short timeouts and small bounds, so the tests see them act within a second."""
    emu = await start(
        port=0,
        keepalive_interval=0.2,
        client_timeout=1.0,
        handshake_timeout=0.6,
        disconnect_timeout=0.6,
        long_poll_timeout=0.5,
        max_message_size=4096,
        max_outgoing_buffer=64 * 1024,
    )
    yield emu
    await emu.close()


@pytest.fixture
async def svc(strict: Emulator) -> AsyncIterator[ServiceClient]:
    async with ServiceClient(strict.connection_string) as client:
        yield client


def token(svc: ServiceClient, user: str | None = None) -> str:
    return svc.client_connection_info("chat", user)["accessToken"]


async def expect_close(client: RawClient, contains: str) -> None:
    message = await client.next()
    assert message is not None and message["type"] == 7, message
    assert contains in message["error"], message
    assert await client.next() is None  # and then the socket closes


async def bystander_still_served(svc: ServiceClient, bystander: RawClient, text: str) -> None:
    await svc.send_to_connection("chat", bystander.connection_id, "m", [text])
    assert (await bystander.next())["arguments"] == [text]


@pytest.mark.parametrize(
    ("handshake", "error"),
    [
        ('{"protocol":"xml","version":1}\x1e', "Requested protocol 'xml' is not available."),
        (
            '{"protocol":"json","version":9}\x1e',
            "The server does not support version 9 of the 'json' protocol.",
        ),
        ('{"protocol":"json",\x1e', "Handshake request is not valid JSON."),
        ('{"protocol":"json","version":1}', "Handshake request is incomplete"),
    ],
)
async def test_malformed_handshake_gets_an_error_and_a_close(
    handshake: str, error: str, strict: Emulator, svc: ServiceClient
) -> None:
    bystander = await RawClient.connect(strict.url, token(svc))
    bad = await RawClient.connect(strict.url, token(svc), handshake=False)
    try:
        await bad.send(handshake)
        reply = await bad.receive_raw()
        assert json.loads(reply.rstrip("\x1e"))["error"].startswith(error)
        assert await bad.receive_raw() is None
        await bystander_still_served(svc, bystander, "fine")
        assert strict.stats()["protocolErrors"] == 1
    finally:
        await bad.close()
        await bystander.close()


@pytest.mark.parametrize(
    ("frame", "error"),
    [
        ('{"type":1,"target":"x","arguments":[]}', "Message is incomplete"),
        ("not json\x1e", "Invalid JSON hub message"),
        ('{"type":99}\x1e', "Unknown message type '99'"),
        ('{"type":1,"arguments":[]}\x1e', "Missing required property 'target'"),
        ('{"type":6}\x1e' + "x" * 5000 + "\x1e", "exceeds the maximum message size of 4096 bytes"),
    ],
)
async def test_bad_frames_close_only_their_connection(
    frame: str, error: str, strict: Emulator, svc: ServiceClient
) -> None:
    bystander = await RawClient.connect(strict.url, token(svc))
    bad = await RawClient.connect(strict.url, token(svc))
    try:
        await bad.send(frame)
        await expect_close(bad, error)
        await bystander_still_served(svc, bystander, "unaffected")
        assert strict.stats()["connections"]["total"] == 1
    finally:
        await bad.close()
        await bystander.close()


async def test_huge_websocket_frame_is_refused(strict: Emulator, svc: ServiceClient) -> None:
    bystander = await RawClient.connect(strict.url, token(svc))
    bad = await RawClient.connect(strict.url, token(svc))
    try:
        await bad.ws.send_bytes(b"\x00" * (2 * 1024 * 1024))  # over the WebSocket reader's own cap
        assert await bad.next() is None
        assert bad.ws.close_code == 1009  # "message too big"
        await bystander_still_served(svc, bystander, "still here")
        assert strict.stats()["protocolErrors"] == 1
    finally:
        await bad.close()
        await bystander.close()


async def test_keepalive_pings_and_client_timeout(strict: Emulator, svc: ServiceClient) -> None:
    client = await RawClient.connect(strict.url, token(svc))
    try:
        ping = await client.next(skip_pings=False)
        assert ping == {"type": 6}  # idle connections get pings every keepalive_interval
        # the client never sends anything: after client_timeout the server gives up on it
        await expect_close(client, "Server timeout elapsed without receiving a message from the client.")
    finally:
        await client.close()


async def test_client_pings_keep_the_connection(strict: Emulator, svc: ServiceClient) -> None:
    client = await RawClient.connect(strict.url, token(svc))
    try:
        for _ in range(8):  # 1.6 s, longer than the 1 s client timeout
            await client.send('{"type":6}\x1e')
            await asyncio.sleep(0.2)
        assert strict.stats()["connections"]["total"] == 1
    finally:
        await client.close()


async def test_handshake_timeout(strict: Emulator, svc: ServiceClient) -> None:
    silent = await RawClient.connect(strict.url, token(svc), handshake=False)
    try:
        assert await silent.receive_raw(timeout=3) is None
    finally:
        await silent.close()


async def test_negotiated_but_never_connected_is_forgotten(strict: Emulator, svc: ServiceClient) -> None:
    async with aiohttp.ClientSession() as http:
        headers = {"Authorization": f"Bearer {token(svc)}"}
        async with http.post(
            f"{strict.url}/client/negotiate?hub=chat&negotiateVersion=1", headers=headers
        ) as r:
            conn_token = (await r.json())["connectionToken"]
        await asyncio.sleep(1.0)
        async with http.get(f"{strict.url}/client/?hub=chat&id={conn_token}", headers=headers) as r:
            assert r.status == 404


async def test_long_polling_protocol(strict: Emulator, svc: ServiceClient) -> None:
    headers = {"Authorization": f"Bearer {token(svc, 'lp')}"}
    async with aiohttp.ClientSession(headers=headers) as http:
        async with http.post(f"{strict.url}/client/negotiate?hub=chat&negotiateVersion=1") as r:
            body = await r.json()
        url = f"{strict.url}/client/?hub=chat&id={body['connectionToken']}"
        started = time.monotonic()
        async with http.get(url) as r:  # the first poll returns at once, empty
            assert r.status == 200 and await r.read() == b""
        assert time.monotonic() - started < 0.3
        async with http.post(url, data=b'{"protocol":"json","version":1}\x1e') as r:
            assert r.status == 200
        async with http.get(url) as r:
            assert await r.read() == b"{}\x1e"
        async with http.get(url) as r:  # nothing to say: 200 and empty after the poll timeout
            assert r.status == 200 and await r.read() == b""
        # a newer poll ends the older one with 204
        older = asyncio.create_task(http.get(url))
        await asyncio.sleep(0.1)
        newer = asyncio.create_task(http.get(url))
        assert (await older).status == 204
        await svc.send_to_user("chat", "lp", "m", ["one"])  # wakes the waiting poll at once
        response = await newer
        assert json.loads((await response.read()).rstrip(b"\x1e"))["arguments"] == ["one"]
        await svc.send_to_user("chat", "lp", "m", ["two"])  # no poll waiting: both are queued ...
        await svc.send_to_user("chat", "lp", "m", ["three"])
        async with http.get(url) as r:  # ... and handed out together
            records = (await r.read()).split(b"\x1e")[:-1]
        assert [json.loads(r)["arguments"] for r in records] == [["two"], ["three"]]
        # a server-side close: the next poll carries the Close message, the one after is 204
        await svc.close_connection("chat", body["connectionId"], reason="done")
        async with http.get(url) as r:
            assert json.loads((await r.read()).rstrip(b"\x1e")) == {
                "type": 7,
                "error": "done",
                "allowReconnect": True,
            }
        async with http.get(url) as r:
            assert r.status == 204


async def test_long_polling_delete_and_disconnect_timeout(strict: Emulator, svc: ServiceClient) -> None:
    headers = {"Authorization": f"Bearer {token(svc)}"}
    async with aiohttp.ClientSession(headers=headers) as http:
        urls = []
        for _ in range(2):
            async with http.post(f"{strict.url}/client/negotiate?hub=chat&negotiateVersion=1") as r:
                urls.append(f"{strict.url}/client/?hub=chat&id={(await r.json())['connectionToken']}")
            await (await http.get(urls[-1])).read()
            await (await http.post(urls[-1], data=b'{"protocol":"json","version":1}\x1e')).read()
        assert strict.stats()["connections"]["LongPolling"] == 2
        pending = asyncio.create_task(http.get(urls[0]))
        await asyncio.sleep(0.05)
        async with http.delete(urls[0]) as r:
            assert r.status == 202
        assert (await pending).status in (200, 204)
        # the second one stops polling: gone after the disconnect timeout
        await asyncio.sleep(1.0)
        assert strict.stats()["connections"]["LongPolling"] == 0


async def test_server_sent_events_framing(strict: Emulator, svc: ServiceClient) -> None:
    tok = token(svc, "sse")
    async with aiohttp.ClientSession() as http:
        async with http.post(
            f"{strict.url}/client/negotiate?hub=chat&negotiateVersion=1",
            headers={"Authorization": f"Bearer {tok}"},
        ) as r:
            body = await r.json()
        url = f"{strict.url}/client/?hub=chat&id={body['connectionToken']}"
        async with http.get(url + f"&access_token={tok}", headers={"Accept": "text/event-stream"}) as stream:
            assert stream.headers["Content-Type"] == "text/event-stream"
            assert stream.headers["Cache-Control"] == "no-cache,no-store"
            assert await stream.content.readline() == b":\r\n"
            async with http.post(
                url,
                data=b'{"protocol":"messagepack","version":1}\x1e',
                headers={"Authorization": f"Bearer {tok}"},
            ) as r:
                assert r.status == 200
            assert (
                await stream.content.readline() == b'data: {"error":"Cannot use the \'messagepack\' protocol '
                b"on the current transport. The transport does not support 'Binary' transfer "
                b'format."}\x1e\r\n'
            )


async def long_polling_online(http: aiohttp.ClientSession, base: str) -> str:
    """Negotiate, first poll, JSON handshake and its answer: a long-polling client ready to receive."""
    async with http.post(f"{base}/client/negotiate?hub=chat&negotiateVersion=1") as r:
        url = f"{base}/client/?hub=chat&id={(await r.json())['connectionToken']}"
    await (await http.get(url)).read()
    await (await http.post(url, data=b'{"protocol":"json","version":1}\x1e')).read()
    async with http.get(url) as r:
        assert await r.read() == b"{}\x1e"
    return url


def _masked_text_frame(text: str) -> bytes:
    payload = text.encode()
    mask = os.urandom(4)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return struct.pack("!BB", 0x81, 0x80 | len(payload)) + mask + masked


def stalled_client(url: str, tok: str) -> socket.socket:
    """A WebSocket client that does the hub handshake, then never reads again (tiny receive buffer)."""
    host, port = url.removeprefix("http://").split(":")
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((host, int(port)))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            f"GET /client/?hub=chat HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            f"Authorization: Bearer {tok}\r\n\r\n"
        ).encode()
    )
    response = b""
    while b"\r\n\r\n" not in response:
        response += sock.recv(1)
    assert response.startswith(b"HTTP/1.1 101"), response
    sock.sendall(_masked_text_frame('{"protocol":"json","version":1}\x1e'))
    return sock


async def test_a_stalled_client_is_dropped_and_never_delays_the_others(
    strict: Emulator, svc: ServiceClient
) -> None:
    strict.state.limits.max_outgoing_buffer = 256 * 1024
    strict.state.limits.client_timeout = 30.0  # the readers send no pings; a loaded machine is slow
    readers = [await RawClient.connect(strict.url, token(svc)) for _ in range(4)]
    stalled = await asyncio.to_thread(stalled_client, strict.url, token(svc, "stalled"))
    try:
        await _wait(lambda: strict.stats()["connections"]["total"] == 5)
        payload = "p" * 16 * 1024
        count = 400  # 6.6 MB: more than the kernel buffers of the stalled socket can hide
        received = [0] * len(readers)

        async def read(index: int) -> None:
            while received[index] < count:
                message = await readers[index].next(timeout=10)
                assert message is not None and message["arguments"][1] == payload
                received[index] += 1

        tasks = [asyncio.create_task(read(i)) for i in range(len(readers))]
        slowest_send = 0.0
        for n in range(count):
            started = time.monotonic()
            await svc.broadcast("chat", "m", [n, payload])
            slowest_send = max(slowest_send, time.monotonic() - started)
        await asyncio.wait_for(asyncio.gather(*tasks), 20)
        assert received == [count] * len(readers)  # every message, to every reader
        assert slowest_send < 1.0  # no broadcast waited on the stalled socket
        stats = strict.stats()
        assert stats["drops"] == 1
        assert stats["connections"]["total"] == len(readers)
        assert not await svc.user_exists("chat", "stalled")
    finally:
        stalled.close()
        for reader in readers:
            await reader.close()


async def _wait(predicate, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def test_a_long_polling_client_that_stops_polling_is_dropped_at_its_bound(
    strict: Emulator, svc: ServiceClient
) -> None:
    """Long polling queues for the client between polls; past the bound the client is dropped, not others."""
    bystander = await RawClient.connect(strict.url, token(svc))
    headers = {"Authorization": f"Bearer {token(svc, 'idle')}"}
    async with aiohttp.ClientSession(headers=headers) as http:
        url = await long_polling_online(http, strict.url)
        try:
            payload = "q" * 16 * 1024
            for n in range(6):  # 96 KiB for a 64 KiB bound, and nobody polls meanwhile
                await svc.broadcast("chat", "m", [n, payload])
            for n in range(6):
                assert (await bystander.next())["arguments"] == [n, payload]
            assert strict.stats()["drops"] == 1
            assert not await svc.user_exists("chat", "idle")
            async with http.get(url) as r:  # the next poll still hands over what was queued, then Close
                records = [json.loads(x) for x in (await r.read()).split(b"\x1e")[:-1]]
            assert records[-1]["type"] == 7 and "not reading" in records[-1]["error"]
            assert len(records) < 6
        finally:
            await bystander.close()


async def test_an_oversized_post_closes_its_long_polling_connection(
    strict: Emulator, svc: ServiceClient
) -> None:
    headers = {"Authorization": f"Bearer {token(svc)}"}
    async with aiohttp.ClientSession(headers=headers) as http:
        url = await long_polling_online(http, strict.url)
        async with http.post(url, data=b"y" * (2 * 1024 * 1024)) as r:  # over any request's 1 MiB
            assert r.status == 413
        async with http.post(url, data=b'{"type":6}\x1e') as r:
            assert r.status == 404  # the connection is gone
        async with http.get(url) as r:
            close = json.loads((await r.read()).rstrip(b"\x1e"))
        assert close["type"] == 7 and "maximum message size of 4096 bytes" in close["error"]
        async with http.get(url) as r:
            assert r.status == 204
        assert strict.stats()["protocolErrors"] == 1
        assert strict.stats()["connections"]["total"] == 0


async def test_server_sent_events_carry_handshake_pings_and_messages(
    strict: Emulator, svc: ServiceClient
) -> None:
    tok = token(svc, "reader")
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {tok}"}) as http:
        async with http.post(f"{strict.url}/client/negotiate?hub=chat&negotiateVersion=1") as r:
            url = f"{strict.url}/client/?hub=chat&id={(await r.json())['connectionToken']}"
        async with http.get(url, headers={"Accept": "text/event-stream"}) as stream:
            assert await stream.content.readline() == b":\r\n"
            async with http.post(url, data=b'{"protocol":"json","version":1}\x1e') as r:
                assert r.status == 200
            assert await stream.content.readline() == b"data: {}\x1e\r\n"
            assert await stream.content.readline() == b"\r\n"
            # idle: a keep-alive Ping comes (every 0.2 s here)
            ping = await asyncio.wait_for(stream.content.readline(), 2)
            assert ping == b'data: {"type":6}\x1e\r\n'
            assert await stream.content.readline() == b"\r\n"
            await (await http.post(url, data=b'{"type":6}\x1e')).read()  # the client's own keep-alive
            await svc.send_to_user("chat", "reader", "m", ["line"])
            events = []
            while not any(b'"type":1' in event for event in events):
                events.append(await asyncio.wait_for(stream.content.readline(), 2))
            assert json.loads(events[-1].removeprefix(b"data: ").rstrip(b"\r\n\x1e"))["arguments"] == ["line"]
