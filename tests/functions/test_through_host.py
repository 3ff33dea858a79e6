"""The Function App behind a real HTTP server: the local Functions host (with both emulators), so routing,
methods and URL decoding are the host's, not a test's idea of them. The handler-level tests prove each rule;
these prove the host delivers requests to the rules the way docs/api.md says it does (e.g. a wrong method
reaches FileServer, which answers 405)."""

from __future__ import annotations

import argparse
import json
import re

import aiohttp
import pytest
import pytest_asyncio
from functions_testkit import FUNCTIONS
from yarl import URL

from emulators.__main__ import Stack

WWW = FUNCTIONS.parent / "www"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def base():
    args = argparse.Namespace(
        host="127.0.0.1",
        port=0,
        cosmos_port=0,
        signalr_port=0,
        in_memory=True,
        data_dir=None,
        app_dir=FUNCTIONS,
        verbose=False,
    )
    stack = Stack()
    try:
        await stack.start(args)
        yield stack.functions.url
    finally:
        await stack.close()


@pytest_asyncio.fixture(loop_scope="module")
async def http():
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15)) as session:
        yield session


@pytest_asyncio.fixture(loop_scope="module")
async def auth(base, http) -> dict[str, str]:
    """A fresh identity from the app, as the headers of a JSON write."""
    async with http.post(f"{base}/api/identities") as r:
        assert r.status == 201
        issued = await r.json()
    return {
        "Authorization": f"Bearer {issued['token']}",
        "Content-Type": "application/json",
        "X-Id": issued["id"],
    }


def raw(base: str, path: str) -> URL:
    """The URL exactly as written: no client-side normalisation of `..` or percent-escapes."""
    return URL(base + path, encoded=True)


pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("PUT", "/api/rooms/general/messages", "GET, POST"),
        ("DELETE", "/api/rooms/general/messages", "GET, POST"),
        ("HEAD", "/api/rooms/general/messages", "GET, POST"),
        ("GET", "/api/negotiate/AAAAAAAAAAAAAAAAAAAAAA", "POST"),
        ("GET", "/api/identities", "POST"),
        ("GET", "/api/rooms/general/join", "POST"),
        ("PATCH", "/api/rooms/general/leave", "POST"),
        ("GET", "/api/save", "POST"),
        ("POST", "/index.html", "GET, HEAD"),
    ],
)
async def test_wrong_method_reaches_fileserver_and_is_405(base, http, method, path, allow):
    async with http.request(method, base + path) as r:
        assert r.status == 405
        assert r.headers["Allow"] == allow
        if method != "HEAD":
            assert (await r.json())["error"]["code"] == "method_not_allowed"


async def test_refusals_through_the_host_write_nothing(base, http, auth):
    room = "through-host"
    url = f"{base}/api/rooms/{room}/messages"
    async with http.post(url, data=json.dumps({"user": "a", "text": "x" * 9000}), headers=auth) as r:
        assert r.status == 413 and (await r.json())["error"]["field"] == "body"
    async with http.post(url, data=b"[" * 8000, headers=auth) as r:
        assert r.status == 400 and (await r.json())["error"]["code"] == "invalid_json"
    async with http.post(
        f"{base}/api/rooms/Not%20A%20Room/messages", json={"user": "a", "text": "b"}, headers=auth
    ) as r:
        assert r.status == 400 and (await r.json())["error"]["field"] == "room"
    # a cross-site "simple" POST (text/plain, no preflight) and a POST without an identity
    async with http.post(
        url, data=json.dumps({"user": "a", "text": "b"}), headers={**auth, "Content-Type": "text/plain"}
    ) as r:
        assert r.status == 415 and (await r.json())["error"]["field"] == "Content-Type"
    async with http.post(url, json={"user": "a", "text": "b"}) as r:
        assert r.status == 401 and (await r.json())["error"]["field"] == "Authorization"
    async with http.get(url, params={"after": "２０２６-11-27T21:05:03.120Z"}) as r:
        assert r.status == 400 and (await r.json())["error"]["field"] == "after"
    async with http.get(url) as r:
        assert (await r.json()) == {"messages": []}


async def test_the_site_root_and_signalr_bundle(base, http):
    async with http.get(base + "/") as r:
        assert r.status == 200
        assert r.headers["Content-Type"] == "text/html; charset=utf-8"
        assert r.headers["Cache-Control"] == "no-cache"
        assert await r.read() == (WWW / "index.html").read_bytes()  # ours, not the host's landing page
        etag = r.headers["ETag"]
    async with http.get(base + "/", headers={"If-None-Match": etag}) as r:
        assert r.status == 304 and await r.read() == b""
    bundle = WWW / "node_modules/@microsoft/signalr/dist/browser/signalr.min.js"
    async with http.get(base + "/lib/signalr.min.js") as r:
        assert r.status == 200
        assert r.headers["Content-Type"] == "text/javascript; charset=utf-8"
        assert r.headers["Cache-Control"] == "no-cache"
        assert await r.read() == bundle.read_bytes()
    # The URL the page uses carries the npm version: cached for a year, never revalidated.
    src = re.search(r'src="(/lib/signalr\.min\.js\?v=[^"]+)"', (WWW / "index.html").read_text()).group(1)
    async with http.get(base + src) as r:
        assert r.status == 200 and await r.read() == bundle.read_bytes()
        assert r.headers["Cache-Control"] == "public, max-age=31536000, immutable"


@pytest.mark.parametrize(
    "path",
    [
        "/../functions/host.json",
        "/%2e%2e/functions/host.json",
        "/%2E%2E%2Ffunctions%2Fhost.json",
        "/css/..%2f..%2ffunctions/host.json",
        "/%252e%252e/functions/host.json",
        "/..%5cfunctions%5chost.json",
        "/css%5c..%5c..%5cfunctions%5chost.json",
        "/%2Fetc%2Fpasswd",
        "/C:%5CWindows%5Cwin.ini",
        "/node_modules/@microsoft/signalr/package.json",
        "/lib/..%2f..%2fpackage.json",
        "/index.html%00.js",
    ],
)
async def test_traversal_through_the_host_is_404(base, http, path):
    async with http.get(raw(base, path)) as r:
        body = await r.read()
    assert r.status == 404, path
    assert b"extensionBundle" not in body and b"root:" not in body and b'"version"' not in body


async def test_2018_aliases_through_the_host(base, http, auth):
    headers = {k: v for k, v in auth.items() if k != "X-Id"}
    async with http.post(base + "/api/save", json={"user": "ada", "message": "hi 🌍"}, headers=headers) as r:
        assert r.status == 201
        saved = await r.json()
    assert (saved["room"], saved["user"], saved["text"]) == ("general", "ada", "hi 🌍")
    assert saved["authorId"] == auth["X-Id"]
    async with http.get(base + "/api/config", params={"userId": auth["X-Id"]}, headers=headers) as r:
        assert r.status == 200
        assert set(await r.json()) == {"url", "accessToken"}
    async with http.get(base + "/api/config", params={"userId": "B" * 22}, headers=headers) as r:
        assert r.status == 403 and (await r.json())["error"]["field"] == "userId"


async def test_a_cross_site_preflight_gets_no_cors_permission(base, http):
    """A JSON POST from another site needs this preflight first; the app grants nothing (no CORS headers,
    as the Function App has no CORS origins in infra/app.py), so the browser never sends the POST."""
    headers = {
        "Origin": "https://evil.example",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type",
    }
    for path in ("/api/rooms/general/messages", "/api/rooms/general/join", "/api/identities"):
        async with http.options(base + path, headers=headers) as r:
            assert r.status == 405, path
            assert not [h for h in r.headers if h.lower().startswith("access-control-")], path
