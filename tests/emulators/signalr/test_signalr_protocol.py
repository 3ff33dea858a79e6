"""Hub protocol codecs and the client endpoint's rules (negotiate, status codes, handshake, tokens)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import aiohttp
import jwt
import msgpack
import pytest
from signalr_helpers import RawClient

from emulators.signalr import WELL_KNOWN_ACCESS_KEY, Emulator
from emulators.signalr.protocol import (
    JsonCodec,
    MessagePackCodec,
    ProtocolError,
    encode_varint,
    parse_handshake,
)
from emulators.signalr.service_client import ServiceClient

# -- codecs ---------------------------------------------------------------------------------------


def test_json_records_are_separated_and_must_be_complete() -> None:
    codec = JsonCodec()
    assert codec.encode({"type": 1, "target": "t", "arguments": ["é"]}) == (
        '{"type":1,"target":"t","arguments":["é"]}\x1e'.encode()
    )
    frame = b'{"type":6}\x1e{"type":1,"target":"a","arguments":[]}\x1e'
    assert [m["type"] for m in codec.decode(frame)] == [6, 1]
    with pytest.raises(ProtocolError, match="incomplete"):
        codec.decode(b'{"type":6}')
    with pytest.raises(ProtocolError, match="Invalid JSON"):
        codec.decode(b"{nope\x1e")
    with pytest.raises(ProtocolError, match="target"):
        codec.decode(b'{"type":1,"arguments":[]}\x1e')
    with pytest.raises(ProtocolError, match="Unknown message type"):
        codec.decode(b'{"type":42}\x1e')


def test_messagepack_framing_matches_the_spec() -> None:
    codec = MessagePackCodec()
    assert encode_varint(0x7F) == b"\x7f"
    assert encode_varint(0x80) == b"\x80\x01"
    assert encode_varint(16384) == b"\x80\x80\x01"
    assert codec.encode({"type": 6}) == b"\x02\x91\x06"  # the spec's Ping example
    encoded = codec.encode({"type": 1, "target": "Target", "arguments": [1, "x"]})
    assert encoded[0] == len(encoded) - 1
    assert msgpack.unpackb(encoded[1:]) == [1, {}, None, "Target", [1, "x"], []]
    close = codec.encode({"type": 7, "error": "bye", "allowReconnect": True})
    assert msgpack.unpackb(close[1:]) == [7, "bye", True]
    completion = codec.encode({"type": 3, "invocationId": "1", "error": "no"})
    assert msgpack.unpackb(completion[1:]) == [3, {}, "1", 1, "no"]
    # two messages in one frame, including signalrcore's 5-element invocation
    body = msgpack.packb([1, {}, "7", "Send", ["a"]])
    frame = encode_varint(len(body)) + body + b"\x02\x91\x06"
    decoded = codec.decode(frame)
    assert decoded[0]["target"] == "Send" and decoded[0]["invocationId"] == "7"
    assert decoded[1] == {"type": 6}
    with pytest.raises(ProtocolError, match="incomplete"):
        codec.decode(b"\x05\x91")
    with pytest.raises(ProtocolError):
        codec.decode(b"\x01\xc1")  # 0xC1 is never used in MessagePack


def test_handshake_rules() -> None:
    assert parse_handshake(b'{"protocol":"json","version":1}', False).codec.name == "json"
    assert parse_handshake(b'{"protocol":"messagepack","version":2}', True).codec.name == "messagepack"
    assert parse_handshake(b'{"protocol":"json","version":0}', False).version == 0  # signalrcore
    with pytest.raises(ProtocolError, match=r"Requested protocol 'xml' is not available\."):
        parse_handshake(b'{"protocol":"xml","version":1}', True)
    with pytest.raises(ProtocolError, match="does not support version 3"):
        parse_handshake(b'{"protocol":"json","version":3}', True)
    with pytest.raises(ProtocolError, match="Binary"):
        parse_handshake(b'{"protocol":"messagepack","version":1}', False)  # e.g. over SSE
    with pytest.raises(ProtocolError, match="version"):
        parse_handshake(b'{"protocol":"json"}', True)


# -- the client endpoint ------------------------------------------------------------------------------


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def client_token(
    aud: str, lifetime: int = 3600, key: str = WELL_KNOWN_ACCESS_KEY, alg: str = "HS256", **claims
):
    now = int(time.time())
    payload = {"aud": aud, "iat": now, "nbf": now, "exp": now + lifetime, **claims}
    return jwt.encode(payload, key.encode(), algorithm=alg)


async def test_negotiate_versions_and_statuses(
    emulator: Emulator, http: aiohttp.ClientSession, service: ServiceClient
) -> None:
    token = service.client_connection_info("chat")["accessToken"]
    auth = {"Authorization": f"Bearer {token}"}
    base = f"{emulator.url}/client/negotiate?hub=chat"
    async with http.post(base + "&negotiateVersion=1", headers=auth) as r:
        v1 = await r.json()
    assert v1["negotiateVersion"] == 1 and v1["connectionToken"] != v1["connectionId"]
    assert [t["transport"] for t in v1["availableTransports"]] == [
        "WebSockets",
        "ServerSentEvents",
        "LongPolling",
    ]
    assert v1["availableTransports"][0]["transferFormats"] == ["Text", "Binary"]
    assert "useStatefulReconnect" not in v1
    async with http.post(base, headers=auth) as r:  # Python clients send no version: v0
        v0 = await r.json()
    assert v0["negotiateVersion"] == 0 and "connectionToken" not in v0
    async with http.post(base + "&negotiateVersion=7", headers=auth) as r:
        assert (await r.json())["negotiateVersion"] == 1
    async with http.post(base + "&negotiateVersion=x", headers=auth) as r:
        assert r.status == 200
        assert (await r.json()) == {"error": "The client requested a non-integer protocol version."}
    async with http.get(base, headers=auth) as r:
        assert r.status == 405
    async with http.post(f"{emulator.url}/client/negotiate", headers=auth) as r:
        assert r.status == 400 and "hub" in (await r.json())["error"]
    client = f"{emulator.url}/client/?hub=chat"
    async with http.post(client, headers=auth, data=b"x") as r:
        assert r.status == 400 and await r.text() == "Connection ID required"
    async with http.get(client + "&id=unknown", headers=auth) as r:
        assert r.status == 404 and await r.text() == "No Connection with that ID"
    async with http.post(client + "&id=unknown", headers=auth, data=b"x") as r:
        assert r.status == 404
    async with http.delete(client + "&id=unknown", headers=auth) as r:
        assert r.status == 404


async def test_transport_rules(
    emulator: Emulator, http: aiohttp.ClientSession, service: ServiceClient
) -> None:
    token = service.client_connection_info("chat")["accessToken"]
    ws_client = await RawClient.connect(emulator.url, token)
    try:
        conn = emulator.state.by_id[ws_client.connection_id]
        url = f"{emulator.url}/client/?hub=chat&id={conn.token}"
        auth = {"Authorization": f"Bearer {token}"}
        async with http.get(url, headers=auth) as r:  # a long poll on a WebSocket connection
            assert r.status == 400 and await r.text() == "Cannot change transports mid-connection"
        async with http.post(url, headers=auth, data=b"{}") as r:
            assert r.status == 405
        async with http.delete(url, headers=auth) as r:
            assert r.status == 400
        with pytest.raises(aiohttp.WSServerHandshakeError) as second:
            await http.ws_connect(url, headers=auth)
        assert second.value.status == 409
    finally:
        await ws_client.close()


@pytest.mark.filterwarnings("ignore::jwt.InsecureKeyLengthWarning")
async def test_tokens_are_checked_like_the_service(emulator: Emulator, http: aiohttp.ClientSession) -> None:
    port = emulator.port
    good_auds = [
        "http://127.0.0.1/client/?hub=chat",
        f"http://127.0.0.1:{port}/client/?hub=chat",
        "http://localhost/client/?hub=Chat",
        "http://127.0.0.1/client/",
    ]
    for aud in good_auds:
        for alg in ("HS256", "HS512"):
            client = await RawClient.connect(emulator.url, client_token(aud, alg=alg))
            await client.close()
    bad = {
        "expired": client_token(good_auds[0], lifetime=-60),
        "not yet valid": client_token(good_auds[0], nbf=int(time.time()) + 600),
        "wrong key": client_token(good_auds[0], key="K" * 44),
        "other hub": client_token("http://127.0.0.1/client/?hub=admin"),
        "other host": client_token("http://example.net/client/?hub=chat"),
        "other port": client_token(f"http://127.0.0.1:{port + 1}/client/?hub=chat"),
        "REST audience": client_token("http://127.0.0.1/api/hubs/chat/:send"),
        "no exp": jwt.encode({"aud": good_auds[0]}, WELL_KNOWN_ACCESS_KEY.encode(), algorithm="HS256"),
        "none alg": jwt.encode({"aud": good_auds[0], "exp": time.time() + 60}, None, algorithm="none"),
    }
    for why, token in bad.items():
        async with http.post(
            f"{emulator.url}/client/negotiate?hub=chat", headers={"Authorization": f"Bearer {token}"}
        ) as r:
            assert r.status == 401, why
            assert "error" in await r.json()
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:  # WebSocket without negotiate
            await http.ws_connect(f"{emulator.url}/client/?hub=chat&access_token={token}")
        assert refused.value.status == 401, why
    assert emulator.stats()["authFailures"] == 2 * len(bad)
    assert emulator.stats()["connections"]["total"] == 0
    bloated = client_token(good_auds[0], padding="p" * 4096)  # valid, but over the service's 4K
    async with http.post(
        f"{emulator.url}/client/negotiate?hub=chat", headers={"Authorization": f"Bearer {bloated}"}
    ) as r:
        assert r.status == 413
        assert (await r.json())["error"] == "Access Token must not be longer than 4K."


async def test_user_id_claims(emulator: Emulator) -> None:
    aud = "http://127.0.0.1/client/?hub=chat"
    for claim in ("asrs.s.uid", "nameid", "sub"):
        client = await RawClient.connect(emulator.url, client_token(aud, **{claim: f"user-{claim}"}))
        try:
            assert emulator.state.by_id[client.connection_id].user_id == f"user-{claim}"
        finally:
            await client.close()


async def test_token_of_another_user_cannot_use_a_connection(
    emulator: Emulator, http: aiohttp.ClientSession, service: ServiceClient
) -> None:
    alice = service.client_connection_info("chat", "alice")["accessToken"]
    mallory = service.client_connection_info("chat", "mallory")["accessToken"]
    async with http.post(
        f"{emulator.url}/client/negotiate?hub=chat&negotiateVersion=1",
        headers={"Authorization": f"Bearer {alice}"},
    ) as r:
        token = (await r.json())["connectionToken"]
    async with http.get(
        f"{emulator.url}/client/?hub=chat&id={token}", headers={"Authorization": f"Bearer {mallory}"}
    ) as r:
        assert r.status == 401


async def test_websocket_without_negotiate_is_accepted(emulator: Emulator, service: ServiceClient) -> None:
    info = service.client_connection_info("chat", "pat")
    client = await RawClient.connect(emulator.url, info["accessToken"], negotiate=False)
    try:
        await service.send_to_user("chat", "pat", "m", ["direct"])
        assert (await client.next())["arguments"] == ["direct"]
    finally:
        await client.close()


async def test_an_expired_token_ends_a_long_polling_connection(
    emulator: Emulator, http: aiohttp.ClientSession, service: ServiceClient
) -> None:
    """Each long poll carries the token again (the JS client sends it): once it expires, polls get 401."""
    tok = service.client_connection_info("chat", "short", lifetime=1)["accessToken"]
    headers = {"Authorization": f"Bearer {tok}"}
    async with http.post(
        f"{emulator.url}/client/negotiate?hub=chat&negotiateVersion=1", headers=headers
    ) as r:
        url = f"{emulator.url}/client/?hub=chat&id={(await r.json())['connectionToken']}"
    async with http.get(url, headers=headers) as r:
        assert r.status == 200
    await asyncio.sleep(2.1)  # exp has whole-second resolution
    async with http.get(url, headers=headers) as r:
        assert r.status == 401
        assert "expired" in (await r.json())["error"]


async def test_public_connection_id_needs_a_token(
    emulator: Emulator, http: aiohttp.ClientSession, service: ServiceClient
) -> None:
    """The secret connection token may stand alone (signalrcore polls send no token); the public id not."""
    tok = service.client_connection_info("chat")["accessToken"]
    async with http.post(
        f"{emulator.url}/client/negotiate?hub=chat&negotiateVersion=1",
        headers={"Authorization": f"Bearer {tok}"},
    ) as r:
        body = await r.json()
    async with http.get(f"{emulator.url}/client/?hub=chat&id={body['connectionId']}") as r:
        assert r.status == 401
    async with http.get(f"{emulator.url}/client/?hub=chat&id={body['connectionToken']}") as r:
        assert r.status == 200  # the first long poll


async def test_token_expiry_closes_only_connections_that_asked_for_it(
    emulator: Emulator, service: ServiceClient
) -> None:
    """As the service: a WebSocket outlives its token's ``exp`` unless the token carries
    CloseOnAuthenticationExpiration (``asrs.s.coae`` + ``asrs.s.aeo``); then it is closed with
    ``allowReconnect`` so the client comes back through negotiate with a fresh token."""
    aud = "http://127.0.0.1/client/?hub=chat"
    # Whole-second claims: `int(now) + 2` is 1-2 s ahead, so the tokens are still valid when the clients
    # connect (with + 1 the plain one could expire before its connect on a busy machine: a 404, a flake).
    plain = await RawClient.connect(emulator.url, client_token(aud, lifetime=2, sub="plain"))
    closing = await RawClient.connect(
        emulator.url,
        client_token(aud, sub="closing", **{"asrs.s.coae": "true", "asrs.s.aeo": int(time.time()) + 2}),
    )
    try:
        started = time.monotonic()
        close = await closing.next(timeout=5)
        assert close is not None and close["type"] == 7 and close["allowReconnect"] is True, close
        assert "authentication expired" in close["error"]
        assert time.monotonic() - started < 3
        assert await closing.next() is None
        await asyncio.sleep(max(0.0, 3.2 - (time.monotonic() - started)))  # past the plain token's exp
        await service.send_to_user("chat", "plain", "m", ["still here"])
        assert (await plain.next())["arguments"] == ["still here"]
        assert not await service.user_exists("chat", "closing")
    finally:
        await plain.close()
        await closing.close()


async def test_one_log_line_per_request_without_secrets(
    emulator: Emulator, service: ServiceClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="emulators.signalr")
    token = service.client_connection_info("chat", "lee")["accessToken"]
    client = await RawClient.connect(emulator.url, token)  # negotiate + WebSocket (one request each)
    conn = emulator.state.by_id[client.connection_id]
    await client.send('{"type":1,"target":"x"\x1e')  # a broken record closes the connection
    assert (await client.next())["type"] == 7
    await client.close()
    with pytest.raises(Exception, match="401"):
        async with ServiceClient(emulator.connection_string.replace("ABCDEFGH", "ZZZZZZZZ")) as wrong:
            await wrong.broadcast("chat", "m", [])
    await service.broadcast("chat", "m", [])
    forged = "/api/hubs/chat/x%0DGET%20/forged"  # a line break in a name must not forge a log line
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{emulator.url}{forged}?api-version=2022-06-01",
                             headers={"Authorization": f"Bearer {client_token('http://127.0.0.1' + forged)}"},
                             json={"target": "m"}) as r:
            assert r.status == 404  # routed (the token was good), and refused with the path in its note
    deadline = time.monotonic() + 5
    while len(caplog.records) < 5 and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    lines = [r.getMessage() for r in caplog.records if r.name == "emulators.signalr"]
    assert len(lines) == 5, lines
    assert all("\n" not in line and "\r" not in line for line in lines)
    assert lines[4].startswith("POST /api/hubs/chat/x%0DGET%20/forged -> 404") and "x\\rGET" in lines[4]
    negotiate, websocket = sorted(lines[:2], key=lambda line: not line.startswith("POST"))
    assert negotiate.startswith("POST /client/negotiate -> 200") and f"connection {conn.id}" in negotiate
    assert websocket.startswith("GET /client/ -> 101") and "online WebSockets/json v1" in websocket
    assert "Invalid JSON hub message" in websocket
    assert lines[2].startswith("POST /api/hubs/chat/:send -> 401") and "signature" in lines[2]
    assert lines[3].startswith("POST /api/hubs/chat/:send -> 202")
    for line in lines:
        assert token not in line and conn.token not in line and WELL_KNOWN_ACCESS_KEY not in line
        assert "ms)" in line
