"""Hostile HTTP against the live stack: a path-traversal corpus sent as raw request lines (no client-side
normalisation), oversized and malformed bodies, and group actions for connections that do not exist.

Every case: the right 4xx, no secret in the answer, nothing stored, and the server still serving others."""

from __future__ import annotations

import asyncio
import json
from urllib.parse import urlsplit

import pytest
from azure.cosmos.aio import CosmosClient

from tests.reliability.chatload import COSMOS_KEY

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
        writer.write(head.encode("latin-1") + b"\r\n" + f"Host: {url.netloc}\r\nConnection: close\r\n"
                     f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
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


async def still_serving(base: str) -> None:
    status, body = await raw_request(base, "GET / HTTP/1.1")
    assert status == 200 and b"<html" in body.lower()
    status, body = await raw_request(base, "POST /api/rooms/alive/messages HTTP/1.1\r\n"
                                     "Content-Type: application/json", b'{"user":"a","text":"still here"}')
    assert status == 201, body


async def test_path_traversal_corpus_over_http_is_404_and_leaks_nothing(live):
    answers = {}
    for path in TRAVERSAL:
        status, body = await raw_request(live.base, f"GET {path} HTTP/1.1")
        answers[path] = status
        assert not any(secret in body for secret in SECRETS), f"{path} leaked a file"
    # 404 from the FileServer; 400 where the request line itself is refused (aiohttp's parser).
    assert all(status in (400, 404) for status in answers.values()), {p: s for p, s in answers.items()
                                                                      if s not in (400, 404)}
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
    got, answer = await raw_request(live.base, "POST /api/rooms/hostile/messages HTTP/1.1\r\n"
                                    "Content-Type: application/json", body)
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
    status, body = await raw_request(live.base, f"POST {path} HTTP/1.1\r\nContent-Type: application/json",
                                     b"[" * 5000)
    assert live.alive()
    await still_serving(live.base)
    assert status == 400, body


@pytest.mark.parametrize("action", ["join", "leave"])
async def test_group_action_for_an_unknown_connection_is_a_404_naming_it(live, action):
    """JoinRoom/LeaveRoom ask SignalR first (functions/chat/presence.py): before, the service's 404 failed
    the output binding after the handler had returned, and the API answered 500."""
    head = f"POST /api/rooms/hostile/{action} HTTP/1.1\r\nContent-Type: application/json"
    status, body = await raw_request(live.base, head, b'{"connectionId":"no-such-connection"}')
    assert live.alive()
    assert status == 404, (status, body)
    assert b'"field":"connectionId"' in body, body
