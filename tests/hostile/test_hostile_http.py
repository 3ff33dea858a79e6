"""Hostile HTTP against the live stack: a path-traversal corpus sent as raw request lines (no client-side
normalisation), oversized and malformed bodies, group actions for connections that do not exist, and the
attacks of issue 11 through the real host: impersonation (a negotiate for someone else's user id, a join that
names someone else's connection), a cross-site simple POST, a flood from one identity, a rewrite by id.

Every case: the right 4xx, no secret in the answer, nothing stored, and the server still serving others."""

from __future__ import annotations

import asyncio
import json
import uuid
from urllib.parse import urlsplit

import aiohttp
import pytest
from azure.cosmos.aio import CosmosClient

from emulators.smoke import new_identity
from tests.hostile.conftest import identity, run_stack
from tests.reliability.chatload import COSMOS_KEY, ChatWs

# Files a traversal would love to reach: the app's settings (AccountKey), its code, the OS, the repository.
SECRETS = (b"AccountKey", b"AccessKey", b"root:x:0:0", b"[core]", b"import azure.functions", b"PRIVATE KEY")

TRAVERSAL = [
    "/../functions/local.settings.json",
    "/../../etc/passwd",
    "/%2e%2e/functions/local.settings.json",
    "/%2E%2E/%2E%2E/etc/passwd",
    "/..%2ffunctions%2flocal.settings.json",
    "/..%2Ffunctions%2Flocal.settings.json",
    "/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "/..%5cfunctions%5clocal.settings.json",
    "/..\\functions\\local.settings.json",
    "/%252e%252e/functions/local.settings.json",
    "/%25252e%25252e/etc/passwd",
    "/%c0%ae%c0%ae/functions/local.settings.json",
    "/%c0%af..%c0%af/etc/passwd",
    "/....//....//etc/passwd",
    "/..;/functions/local.settings.json",
    "/css/../../functions/function_app.py",
    "/lib/../../functions/local.settings.json",
    "/js/%2e%2e/%2e%2e/functions/local.settings.json",
    "/./../.git/config",
    "/.git/config",
    "/.env",
    "/%2eenv",
    "/node_modules/.package-lock.json",
    "/node_modules/@microsoft/signalr/package.json",
    "/package.json%00.html",
    "/index.html%00../../etc/passwd",
    "//etc/passwd",
    "///functions/local.settings.json",
    "/C:/Windows/win.ini",
    "/c:%5cwindows%5cwin.ini",
    "/%5c%5c127.0.0.1%5cshare",
    "/file:///etc/passwd",
    "/etc/passwd",
    "/proc/self/environ",
    "/%2fetc%2fpasswd",
    "/" + "../" * 40 + "etc/passwd",
    "/" + "a/" * 300 + "../" * 301 + "etc/passwd",
    "/api/../functions/local.settings.json",
    "/api/rooms/..%2f..%2fmessages",
    "/api/rooms/%2e%2e/messages",
]


async def raw_request(base: str, head: str, body: bytes = b"") -> tuple[int, bytes]:
    """One request written byte for byte, `Connection: close`; returns status and body."""
    url = urlsplit(base)
    reader, writer = await asyncio.open_connection(url.hostname, url.port)
    try:
        writer.write(
            head.encode("latin-1")
            + b"\r\n"
            + f"Host: {url.netloc}\r\nConnection: close\r\nContent-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        await writer.drain()
        data = await asyncio.wait_for(reader.read(-1), 15)
    finally:
        writer.close()
    status_line, _, rest = data.partition(b"\r\n")
    return int(status_line.split()[1]), rest.partition(b"\r\n\r\n")[2]


async def stored_ids(cosmos_url: str) -> set[str]:
    async with CosmosClient(cosmos_url, credential=COSMOS_KEY) as client:
        container = client.get_database_client("chat").get_container_client("messages")
        return {d["id"] async for d in container.query_items("SELECT c.id FROM c")}


async def authorized(base: str) -> str:
    """The header line of a fresh identity, for a raw request."""
    return f"Authorization: Bearer {(await identity(base)).token}"


async def still_serving(base: str) -> None:
    status, body = await raw_request(base, "GET / HTTP/1.1")
    assert status == 200 and b"<html" in body.lower()
    status, body = await raw_request(
        base,
        "POST /api/rooms/alive/messages HTTP/1.1\r\n"
        f"Content-Type: application/json\r\n{await authorized(base)}",
        b'{"user":"a","text":"still here"}',
    )
    assert status == 201, body


async def test_path_traversal_corpus_over_http_is_404_and_leaks_nothing(live):
    answers = {}
    for path in TRAVERSAL:
        status, body = await raw_request(live.base, f"GET {path} HTTP/1.1")
        answers[path] = status
        assert not any(secret in body for secret in SECRETS), f"{path} leaked a file"
    # 404 from the FileServer; 400 where the request line itself is refused (aiohttp's parser).
    assert all(status in (400, 404) for status in answers.values()), {
        p: s for p, s in answers.items() if s not in (400, 404)
    }
    assert live.alive()
    await still_serving(live.base)


BAD_BODIES = [
    # Over FUNCTIONS_REQUEST_BODY_SIZE_LIMIT (64 KiB): the Functions host's own 500, before SaveChat runs.
    ("oversized 1 MiB", b'{"user":"a","text":"' + b"x" * (1 << 20) + b'"}', 500),
    ("just over the host's 64 KiB", b'{"user":"a","text":"' + b"x" * 65520 + b'"}', 500),
    ("just under the host's 64 KiB", b'{"user":"a","text":"' + b"x" * 65500 + b'"}', 413),
    ("just over 8 KiB", b'{"user":"a","text":"' + b"x" * 8200 + b'"}', 413),
    ("invalid UTF-8", b'{"user":"a","text":"\xff\xfe"}', 400),
    ("UTF-16", '{"user":"a","text":"b"}'.encode("utf-16"), 400),
    ("truncated JSON", b'{"user":"a","text":"b"', 400),
    ("a JSON array", b'[{"user":"a","text":"b"}]', 400),
    ("NaN literal", b'{"user":"a","text":NaN}', 400),
    ("duplicate-key smuggling", b'{"user":"a","text":"b","text":"\\u0000"}', 400),
    ("lone surrogate", b'{"user":"a","text":"\\udc00"}', 400),
    ("null byte", b'{"user":"a\\u0000","text":"b"}', 400),
    ("extra field", b'{"user":"a","text":"b","room":"other"}', 400),
    ("id as object", b'{"user":"a","text":"b","id":{"$ne":null}}', 400),
    ("empty body", b"", 400),
]


@pytest.mark.parametrize(("what", "body", "status"), BAD_BODIES, ids=[b[0] for b in BAD_BODIES])
async def test_malformed_and_oversized_bodies_are_refused_and_store_nothing(live, what, body, status):
    before = await stored_ids(live.cosmos_url)
    got, answer = await raw_request(
        live.base,
        "POST /api/rooms/hostile/messages HTTP/1.1\r\n"
        f"Content-Type: application/json\r\n{await authorized(live.base)}",
        body,
    )
    assert got == status, (what, answer[:300])
    error = json.loads(answer)["error"]
    if status == 500:
        assert error["code"] == "RequestBodyTooLarge" and "65536 bytes" in error["message"]
    else:
        assert error["code"] and error["field"]
    assert await stored_ids(live.cosmos_url) == before
    await still_serving(live.base)
    assert await stored_ids(live.cosmos_url) - before != set()  # the check above did store its own message


@pytest.mark.parametrize("path", ["/api/rooms/hostile/messages", "/api/rooms/hostile/join"])
async def test_deeply_nested_json_is_a_400(live, path):
    """Found by this suite: 5,000 '[' bytes made the Functions host's request conversion raise RecursionError
    (aiohttp's bare 500) and the app's validator too; fixed by their owners in b6261df and ea5ba86."""
    status, body = await raw_request(
        live.base,
        f"POST {path} HTTP/1.1\r\nContent-Type: application/json\r\n{await authorized(live.base)}",
        b"[" * 5000,
    )
    assert live.alive()
    await still_serving(live.base)
    assert status == 400, body


@pytest.mark.parametrize("action", ["join", "leave"])
async def test_group_action_for_an_identity_without_a_connection_is_a_404_naming_it(live, action):
    """JoinRoom/LeaveRoom ask SignalR first (functions/chat/presence.py): before, the service's 404 failed
    the output binding after the handler had returned, and the API answered 500. They act on the caller's
    own SignalR user: one that never connected is `not_connected`, and a body naming any connection is
    refused (400), not obeyed."""
    head = f"POST /api/rooms/hostile/{action} HTTP/1.1\r\nContent-Type: application/json\r\n"
    status, body = await raw_request(live.base, head + await authorized(live.base), b"{}")
    assert live.alive()
    assert status == 404, (status, body)
    error = json.loads(body)["error"]
    assert (error["code"], error["field"]) == ("not_connected", "Authorization")
    status, body = await raw_request(
        live.base, head + await authorized(live.base), b'{"connectionId":"no-such-connection"}'
    )
    assert status == 400, (status, body)
    assert b'"field":"connectionId"' in body, body


# --------------------------------------------------------------------------- issue 11 through the real host


@pytest.fixture
async def http():
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15)) as session:
        yield session


async def test_a_forged_negotiate_for_another_identity_is_403_and_hands_out_no_token(live, http):
    mallory, alice = await new_identity(http, live.base), await new_identity(http, live.base)
    async with http.post(f"{live.base}/api/negotiate/{alice.id}", headers=mallory.headers) as r:
        assert r.status == 403
        text = await r.text()
    error = json.loads(text)["error"]
    assert (error["code"], error["field"]) == ("wrong_identity", "userId")
    assert "accessToken" not in text and "url" not in json.loads(text)
    assert "eyJ" not in text  # no JWT of any kind
    # and without any identity: 401, no token either
    async with http.post(f"{live.base}/api/negotiate/{alice.id}") as r:
        assert r.status == 401
        assert "accessToken" not in await r.text()
    # the control: alice herself gets hers
    async with http.post(f"{live.base}/api/negotiate/{alice.id}", headers=alice.headers) as r:
        assert r.status == 200
        assert (await r.json())["accessToken"]


async def test_joining_with_someone_elses_connection_id_is_400_and_moves_nothing(live, http):
    home, elsewhere = f"victim-{uuid.uuid4().hex[:8]}", f"trap-{uuid.uuid4().hex[:8]}"
    victim = ChatWs(http, live.base, home, reconnect=False)
    await victim.start()
    attacker = ChatWs(http, live.base, elsewhere, reconnect=False)  # connected: only the body is wrong
    await attacker.start()
    try:
        assert victim.connection_id and victim.who is not None
        for action, room in (("join", elsewhere), ("leave", home)):
            async with http.post(
                f"{live.base}/api/rooms/{room}/{action}",
                headers=attacker.who.headers,
                json={"connectionId": victim.connection_id},
            ) as r:
                assert r.status == 400, await r.text()
                error = (await r.json())["error"]
                assert (error["code"], error["field"]) == ("unknown_field", "connectionId")
        poster = await new_identity(http, live.base)
        sent = {}
        for room in (elsewhere, home):
            async with http.post(
                f"{live.base}/api/rooms/{room}/messages",
                headers=poster.headers,
                json={"user": "poster", "text": f"to {room}"},
            ) as r:
                assert r.status == 201
                sent[room] = (await r.json())["id"]
        assert await victim.wait_for({sent[home]}, timeout=15), "the victim stopped receiving its room"
        assert await attacker.wait_for({sent[elsewhere]}, timeout=15)
        await asyncio.sleep(0.5)  # time for a stray delivery to arrive
        assert sent[elsewhere] not in victim.seen, "the victim was moved into the attacker's room"
        assert sent[home] not in attacker.seen
    finally:
        await victim.close()
        await attacker.close()


SIMPLE_POSTS = {  # what a cross-site page can send without a CORS preflight
    "text/plain": ("text/plain", b'{"user":"csrf","text":"forged"}'),
    "text/plain with charset": ("text/plain;charset=UTF-8", b'{"user":"csrf","text":"forged"}'),
    "a form": ("application/x-www-form-urlencoded", b"user=csrf&text=forged"),
    "a multipart form": (
        "multipart/form-data; boundary=x",
        b'--x\r\nContent-Disposition: form-data; name="user"\r\n\r\ncsrf\r\n--x--\r\n',
    ),
    "no Content-Type": (None, b'{"user":"csrf","text":"forged"}'),
}


@pytest.mark.parametrize("path", ["/api/rooms/hostile/messages", "/api/save"])
@pytest.mark.parametrize("kind", SIMPLE_POSTS)
async def test_a_cross_site_simple_post_is_415_and_stores_nothing(live, path, kind):
    """Even with a valid identity (a page could not add the header without a preflight, but the check does
    not rely on that): SaveChat, and the 2018 `/api/save` alias, take JSON only."""
    media, body = SIMPLE_POSTS[kind]
    before = await stored_ids(live.cosmos_url)
    head = f"POST {path} HTTP/1.1\r\nOrigin: https://evil.example\r\n{await authorized(live.base)}"
    if media is not None:
        head += f"\r\nContent-Type: {media}"
    status, answer = await raw_request(live.base, head, body)
    assert status == 415, (status, answer[:300])
    error = json.loads(answer)["error"]
    assert (error["code"], error["field"]) == ("unsupported_media_type", "Content-Type")
    assert await stored_ids(live.cosmos_url) == before


POST_LIMIT = 5
POST_WINDOW = 30


@pytest.fixture(scope="module")
def limited():
    """A stack of its own with a small post limit, so a flood is short (the package's stack keeps the
    default, 20 per 20 s)."""
    yield from run_stack({"CHAT_POST_LIMIT": f"{POST_LIMIT}/{POST_WINDOW}s"})


async def test_a_flood_from_one_identity_is_429_with_retry_after_while_another_still_posts(limited, http):
    flooder, bystander = await new_identity(http, limited.base), await new_identity(http, limited.base)
    room = f"flood-{uuid.uuid4().hex[:8]}"
    url = f"{limited.base}/api/rooms/{room}/messages"

    async def one(i: int) -> tuple[int, dict, str | None]:
        async with http.post(url, headers=flooder.headers, json={"user": "flood", "text": f"n{i}"}) as r:
            return r.status, await r.json(), r.headers.get("Retry-After")

    answers = [await one(i) for i in range(3 * POST_LIMIT)]
    statuses = [status for status, _, _ in answers]
    assert set(statuses) <= {201, 429}, statuses
    # one window, or two if the flood straddled a window boundary: never more than that stored
    assert POST_LIMIT <= statuses.count(201) <= 2 * POST_LIMIT, statuses
    refused = [(body, retry) for status, body, retry in answers if status == 429]
    assert refused, "the flood was never limited"
    for body, retry in refused:
        assert body["error"]["code"] == "rate_limited"
        assert retry is not None and 1 <= int(retry) <= POST_WINDOW
    async with http.post(
        url, headers=bystander.headers, json={"user": "bystander", "text": "still here"}
    ) as r:
        assert r.status == 201, await r.text()
        kept = await r.json()
    async with http.get(url, params={"limit": "200"}) as r:
        stored = (await r.json())["messages"]
    assert len(stored) == statuses.count(201) + 1  # every 429 stored nothing
    assert kept in stored


async def test_a_rewrite_by_id_is_409_and_history_keeps_the_original(live, http):
    room = f"rewrite-{uuid.uuid4().hex[:8]}"
    url = f"{live.base}/api/rooms/{room}/messages"
    alice, mallory = await new_identity(http, live.base), await new_identity(http, live.base)
    msg_id = str(uuid.uuid4())
    async with http.post(
        url, headers=alice.headers, json={"id": msg_id, "user": "alice", "text": "original"}
    ) as r:
        assert r.status == 201
        original = await r.json()
    attempts = [
        (mallory, {"id": msg_id, "user": "mallory", "text": "rewritten"}),  # someone else, anything
        (mallory, {"id": msg_id, "user": "alice", "text": "original"}),  # someone else, the same words
        (alice, {"id": msg_id, "user": "alice", "text": "edited"}),  # the author, other words
        (mallory, {"id": msg_id.upper(), "user": "mallory", "text": "RE-CASED"}),  # the same UUID in capitals
    ]
    for who, body in attempts:
        async with http.post(url, headers=who.headers, json=body) as r:
            assert r.status == 409, (body, await r.text())
            error = (await r.json())["error"]
            assert (error["code"], error["field"]) == ("id_taken", "id")
    async with http.get(url) as r:
        assert (await r.json())["messages"] == [original]
    assert original["text"] == "original" and original["authorId"] == alice.id
