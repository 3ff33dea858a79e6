"""Hostile input against the emulators of the live stack: forged and expired SignalR tokens, malformed and
oversized SignalR frames, bad Cosmos signatures and malformed Cosmos requests.

Each case: refused (401/403/4xx, or a SignalR Close and a closed socket), nothing stored, and the stack still
serving others — a client that connected before the attack still receives a message posted after it.
(tests/emulators/ covers each rule in depth against a bare emulator; these run them through the real app's
negotiate and rooms, with the store watched.)"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from email.utils import formatdate
from urllib.parse import quote, urlsplit

import aiohttp
import jwt
import pytest
from azure.cosmos.aio import CosmosClient

from emulators.smoke import negotiate, new_identity
from tests.reliability.chatload import COSMOS_KEY, RS, SIGNALR_KEY, ChatWs

ROOM = "hostile-ws"


@pytest.fixture
async def http():
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15)) as session:
        yield session


@pytest.fixture
async def witness(live, http):
    """A well-behaved client in the room, connected before any attack."""
    client = ChatWs(http, live.base, ROOM, reconnect=False)
    await client.start()
    yield client
    await client.close()


async def count_stored(cosmos_url: str) -> int:
    async with CosmosClient(cosmos_url, credential=COSMOS_KEY) as client:
        container = client.get_database_client("chat").get_container_client("messages")
        counts = [n async for n in container.query_items("SELECT VALUE COUNT(1) FROM c")]
        return counts[0]


async def assert_still_serving(live, http, witness: ChatWs) -> None:
    msg_id = str(uuid.uuid4())
    who = await new_identity(http, live.base)  # a fresh one each time: the default post limit holds
    async with http.post(
        f"{live.base}/api/rooms/{ROOM}/messages",
        json={"id": msg_id, "user": "ok", "text": "after the attack"},
        headers=who.headers,
    ) as r:
        assert r.status == 201
    assert await witness.wait_for({msg_id}, timeout=15), "the well-behaved client stopped receiving"
    assert live.alive()


async def app_negotiate(live, http) -> dict:
    return await negotiate(http, live.base, await new_identity(http, live.base))


def token(audience: str, key: str = SIGNALR_KEY, exp_in: int = 3600, alg: str = "HS256", **extra) -> str:
    now = int(time.time())
    claims = {"aud": audience, "iat": now, "nbf": now - 1, "exp": now + exp_in, **extra}
    return jwt.encode(claims, key.encode(), algorithm=alg)


def none_token(audience: str) -> str:
    def part(obj: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part({'aud': audience, 'exp': int(time.time()) + 3600})}."


BAD_TOKENS = {
    "forged: signed with another key": lambda aud: token(aud, key="Z" * 44),
    "expired a minute ago": lambda aud: token(aud, exp_in=-60),
    "alg none": none_token,
    "another hub's audience": lambda aud: token(aud.replace("hub=chat", "hub=admin")),
    "audience of another service": lambda aud: token("https://evil.example/client/?hub=chat"),
    "not a JWT": lambda aud: "not.a.jwt",
    "empty": lambda aud: "",
}


@pytest.mark.parametrize("kind", BAD_TOKENS)
async def test_forged_and_expired_tokens_are_401_on_negotiate_and_websocket(live, http, witness, kind):
    url = (await app_negotiate(live, http))["url"]
    audience = url.replace(f":{urlsplit(url).port}", "")  # the binding's audience: the URL without the port
    bad = BAD_TOKENS[kind](audience)
    negotiate = url.replace("/client/?", "/client/negotiate?") + "&negotiateVersion=1"
    async with http.post(negotiate, headers={"Authorization": f"Bearer {bad}"}) as r:
        assert r.status == 401, await r.text()
        assert "error" in await r.json()
    ws_url = url.replace("http", "ws", 1) + f"&access_token={quote(bad)}"
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await http.ws_connect(ws_url)
    assert refused.value.status == 401
    await assert_still_serving(live, http, witness)


@pytest.mark.parametrize(
    "kind",
    [
        "forged: signed with another key",
        "expired a minute ago",
        "alg none",
        "audience of another service",
        "empty",
    ],
)
async def test_forged_tokens_cannot_broadcast_through_the_service_rest_api(live, http, witness, kind):
    """What FeedToSignalR does with the AccessKey, attempted without it: nothing reaches the room."""
    url = f"{live.signalr_url}/api/hubs/chat/groups/{ROOM}/:send?api-version=2022-06-01"
    bad = BAD_TOKENS[kind](url.split("?")[0].replace(f":{urlsplit(url).port}", ""))
    fake = {
        "id": str(uuid.uuid4()),
        "room": ROOM,
        "user": "mallory",
        "text": "forged broadcast",
        "createdAt": "2026-01-01T00:00:00.000Z",
    }
    async with http.post(
        url, json={"target": "newMessage", "arguments": [fake]}, headers={"Authorization": f"Bearer {bad}"}
    ) as r:
        assert r.status == 401, await r.text()
    await assert_still_serving(live, http, witness)
    assert fake["id"] not in witness.seen


async def test_control_the_same_rest_call_with_the_real_key_reaches_the_room(live, http, witness):
    """The refusals above are about the token: the same request properly signed is delivered."""
    url = f"{live.signalr_url}/api/hubs/chat/groups/{ROOM}/:send?api-version=2022-06-01"
    good = token(url.split("?")[0].replace(f":{urlsplit(url).port}", ""))
    msg = {
        "id": str(uuid.uuid4()),
        "room": ROOM,
        "user": "server",
        "text": "signed",
        "createdAt": "2026-01-01T00:00:00.000Z",
    }
    async with http.post(
        url, json={"target": "newMessage", "arguments": [msg]}, headers={"Authorization": f"Bearer {good}"}
    ) as r:
        assert r.status == 202, await r.text()
    assert await witness.wait_for({msg["id"]}, timeout=10)


async def connected_socket(live, http) -> aiohttp.ClientWebSocketResponse:
    info = await app_negotiate(live, http)
    auth = {"Authorization": f"Bearer {info['accessToken']}"}
    ws = await http.ws_connect(info["url"].replace("http", "ws", 1), headers=auth, max_msg_size=0)
    await ws.send_str('{"protocol":"json","version":1}' + RS)
    assert (await ws.receive(timeout=10)).data == "{}" + RS
    return ws


BAD_FRAMES = {
    "not JSON": "this is not json" + RS,
    "no record separator": '{"type":6}',
    "invocation without target": '{"type":1,"arguments":[]}' + RS,
    "unknown message type": '{"type":99}' + RS,
    "JSON array, not object": "[1,2,3]" + RS,
    "oversized 40 KiB record": '{"type":1,"target":"x","arguments":["' + "a" * 40_000 + '"]}' + RS,
    "oversized 2 MiB frame": "b" * (2 << 20),
    "binary garbage on a JSON connection": b"\x00\xff\xfe\x1e" * 64,
    "deeply nested arguments": '{"type":1,"target":"x","arguments":' + "[" * 5000 + "]" * 5000 + "}" + RS,
}


@pytest.mark.parametrize("kind", BAD_FRAMES)
async def test_malformed_and_oversized_frames_close_only_that_connection(live, http, witness, kind):
    before = await count_stored(live.cosmos_url)
    ws = await connected_socket(live, http)
    frame = BAD_FRAMES[kind]
    if isinstance(frame, bytes):
        await ws.send_bytes(frame)
    else:
        await ws.send_str(frame)
    closes, deadline = [], time.monotonic() + 10
    while time.monotonic() < deadline:
        msg = await ws.receive(timeout=10)
        if msg.type == aiohttp.WSMsgType.TEXT:
            closes += [json.loads(r) for r in msg.data.split(RS) if r and json.loads(r).get("type") == 7]
            continue
        break
    ended = (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR)
    assert ws.closed or msg.type in ended, msg
    await ws.close()
    await assert_still_serving(live, http, witness)
    assert await count_stored(live.cosmos_url) == before + 1  # only assert_still_serving's own message


async def test_hub_invocations_from_clients_store_nothing(live, http, witness):
    """Serverless mode: a client cannot make the service (or the app) do anything by invoking methods."""
    before = await count_stored(live.cosmos_url)
    ws = await connected_socket(live, http)
    fake = {
        "id": str(uuid.uuid4()),
        "room": ROOM,
        "user": "mallory",
        "text": "injected",
        "createdAt": "2026-01-01T00:00:00.000Z",
    }
    await ws.send_str(
        json.dumps({"type": 1, "invocationId": "1", "target": "newMessage", "arguments": [fake]}) + RS
    )
    await ws.send_str(json.dumps({"type": 1, "target": "SendMessage", "arguments": [fake]}) + RS)
    reply = json.loads((await ws.receive(timeout=10)).data.split(RS)[0])
    assert reply["type"] == 3 and reply["invocationId"] == "1" and "serverless" in reply["error"]
    await ws.close()
    await assert_still_serving(live, http, witness)
    assert fake["id"] not in witness.seen
    assert await count_stored(live.cosmos_url) == before + 1


# ------------------------------------------------------------------------------------------ Cosmos DB


def cosmos_auth(verb: str, rtype: str, link: str, date: str, key: str = COSMOS_KEY) -> str:
    text = f"{verb.lower()}\n{rtype.lower()}\n{link}\n{date.lower()}\n\n"
    sig = base64.b64encode(hmac.new(base64.b64decode(key), text.encode(), hashlib.sha256).digest()).decode()
    return quote(f"type=master&ver=1.0&sig={sig}", safe="")


def now_date() -> str:
    return formatdate(usegmt=True)


DOCS = "dbs/chat/colls/messages/docs"
COLL = "dbs/chat/colls/messages"
GOOD_DOC = {"id": "cosmos-hostile", "room": "hostile", "user": "m", "text": "t", "createdAt": "x"}


def signed(verb: str, date: str | None = None, **kw) -> dict[str, str]:
    date = date or now_date()
    return {
        "authorization": kw.pop("auth", None) or cosmos_auth(verb, "docs", COLL, date, **kw),
        "x-ms-date": date,
        "x-ms-version": "2020-07-15",
    }


def other_resource() -> dict[str, str]:
    date = now_date()
    return {"authorization": cosmos_auth("POST", "docs", "dbs/chat/colls/leases", date), "x-ms-date": date}


OTHER_KEY = base64.b64encode(b"k" * 64).decode()
BAD_AUTH = {
    "no authorization header": ({"x-ms-date": now_date()}, 401),
    "signature with another key": (lambda: signed("POST", key=OTHER_KEY), 401),
    "signature for GET used on POST": (lambda: {**signed("GET")}, 401),
    "signature for another resource": (lambda: other_resource(), 401),
    "date an hour old": (lambda: signed("POST", date=formatdate(time.time() - 3600, usegmt=True)), 401),
    "date not RFC 1123": (lambda: signed("POST", date="yesterday"), 401),
    "resource token type": (
        lambda: {"authorization": quote("type=resource&ver=1.0&sig=abc", safe=""), "x-ms-date": now_date()},
        401,
    ),
    "garbage signature": (
        lambda: {"authorization": "type%3Dmaster%26ver%3D1.0%26sig%3D%00%00", "x-ms-date": now_date()},
        401,
    ),
}


@pytest.mark.parametrize("kind", BAD_AUTH)
async def test_bad_cosmos_signatures_are_refused_and_write_nothing(live, http, witness, kind):
    headers, status = BAD_AUTH[kind]
    headers = headers() if callable(headers) else headers
    before = await count_stored(live.cosmos_url)
    async with http.post(
        f"{live.cosmos_url}{DOCS}",
        data=json.dumps(GOOD_DOC),
        headers={
            **headers,
            "x-ms-documentdb-partitionkey": '["hostile"]',
            "content-type": "application/json",
        },
    ) as r:
        assert r.status == status, await r.text()
        body = await r.json()
        assert body.get("code") and body.get("message")
    assert await count_stored(live.cosmos_url) == before
    await assert_still_serving(live, http, witness)


MALFORMED = {
    "body is not JSON": (b"{not json", '["hostile"]', {}),
    "body is a JSON array": (b"[1,2]", '["hostile"]', {}),
    "document without id": (json.dumps({"room": "hostile"}).encode(), '["hostile"]', {}),
    "id is a number": (json.dumps({"id": 7, "room": "hostile"}).encode(), '["hostile"]', {}),
    "id with a slash": (json.dumps({**GOOD_DOC, "id": "a/b"}).encode(), '["hostile"]', {}),
    "partition key header is not JSON": (json.dumps(GOOD_DOC).encode(), "hostile", {}),
    "partition key header disagrees with the document": (json.dumps(GOOD_DOC).encode(), '["other"]', {}),
    "document over 2 MB": (
        json.dumps({**GOOD_DOC, "text": "x" * (2 * 1024 * 1024 + 10)}).encode(),
        '["hostile"]',
        {},
    ),
}


@pytest.mark.parametrize("kind", MALFORMED)
async def test_malformed_cosmos_writes_are_4xx_and_write_nothing(live, http, witness, kind):
    body, pk, extra = MALFORMED[kind]
    before = await count_stored(live.cosmos_url)
    async with http.post(
        f"{live.cosmos_url}{DOCS}",
        data=body,
        headers={
            **signed("POST"),
            "x-ms-documentdb-partitionkey": pk,
            "content-type": "application/json",
            **extra,
        },
    ) as r:
        assert 400 <= r.status < 500, (r.status, (await r.text())[:300])
    assert await count_stored(live.cosmos_url) == before
    await assert_still_serving(live, http, witness)


async def test_deeply_nested_cosmos_document_is_a_400_and_stores_nothing(live, http, witness):
    """Found by this suite (it was a RecursionError answered 500); fixed in 4a3de17: deeper than 128 levels
    is refused with 400."""
    before = await count_stored(live.cosmos_url)
    body = b'{"id":"deep","room":"hostile","x":' + b"[" * 5000 + b"]" * 5000 + b"}"
    async with http.post(
        f"{live.cosmos_url}{DOCS}",
        data=body,
        headers={
            **signed("POST"),
            "x-ms-documentdb-partitionkey": '["hostile"]',
            "content-type": "application/json",
        },
    ) as r:
        status = r.status
    assert status == 400, status
    assert await count_stored(live.cosmos_url) == before
    await assert_still_serving(live, http, witness)


async def test_malformed_cosmos_query_is_400(live, http, witness):
    async with http.post(
        f"{live.cosmos_url}{DOCS}",
        data=json.dumps({"query": "SELECT * FROM c WHERE ((("}),
        headers={
            **signed("POST"),
            "x-ms-documentdb-isquery": "true",
            "x-ms-documentdb-query-enablecrosspartition": "true",
            "content-type": "application/query+json",
        },
    ) as r:
        assert r.status == 400, await r.text()
    await assert_still_serving(live, http, witness)
