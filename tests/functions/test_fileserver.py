"""FileServer driven by proxies.json: routing, 405s, the 2018 aliases, overrides, static files, caching,
traversal.

Each test serves a throw-away www/ built in a temporary directory (WWW_ROOT), never the real client's
files."""

from __future__ import annotations

import json
import logging
import os
import re

import azure.functions as func
import pytest
from aiohttp import web
from functions_testkit import FUNCTIONS, Out, body_json, content_type, this_app_at
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

INDEX = b"<!doctype html><title>chat</title><p>index</p>"
CONNECTION_INFO = json.dumps({"url": "https://signalr.example/client/?hub=chat", "accessToken": "t.o.k"})


@pytest.fixture
def www(tmp_path, monkeypatch):
    root = tmp_path / "www"
    (root / "css").mkdir(parents=True)
    (root / "js").mkdir()
    (root / "docs").mkdir()
    (root / "index.html").write_bytes(INDEX)
    (root / "css" / "site.css").write_text("body{color:red}")
    (root / "js" / "app.3f9a1c2e.js").write_text("export {}")
    (root / "js" / "app.js").write_text("export const x = 1;")
    (root / "docs" / "index.html").write_text("<p>docs</p>")
    (root / "logo.svg").write_text("<svg/>")
    (root / "data.bin").write_bytes(b"\x00\x01")
    (root / ".env").write_text("SECRET=1")
    bundle = root / "node_modules" / "@microsoft" / "signalr" / "dist" / "browser"
    bundle.mkdir(parents=True)
    (bundle / "signalr.min.js").write_text("var signalR={};")
    (bundle / "other.js").write_text("private")
    (tmp_path / "secret.txt").write_text("outside")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret.txt").write_text("outside dir")
    os.symlink(tmp_path / "outside", root / "link-out")
    os.symlink(tmp_path / "secret.txt", root / "link-file")
    os.symlink(root / "css" / "site.css", root / "alias.css")
    monkeypatch.setenv("WWW_ROOT", str(root))
    return root


class Bindings:
    def __init__(self) -> None:
        self.actions: Out[str] = Out()


async def call(app_module, method, path, body=None, params=None, headers=None, bindings=None):
    bindings = bindings or Bindings()
    if isinstance(body, dict):
        body = json.dumps(body).encode()
    query = "&".join(f"{k}={v}" for k, v in (params or {}).items())
    req = func.HttpRequest(
        method,
        f"https://chat.example/{path}" + (f"?{query}" if query else ""),
        headers=headers or {},
        params=params or {},
        route_params={"path": path},
        body=body or b"",
    )
    return await app_module.file_server(req, actions=bindings.actions)


async def test_root_serves_index_without_caching(app_module, www):
    response = await call(app_module, "GET", "")
    assert response.status_code == 200
    assert response.get_body() == INDEX
    assert content_type(response) == "text/html; charset=utf-8"
    assert response.headers["Cache-Control"] == "no-cache"
    assert response.headers["ETag"].startswith('"')


async def test_etag_revalidation_and_head(app_module, www):
    first = await call(app_module, "GET", "css/site.css")
    etag = first.headers["ETag"]
    again = await call(app_module, "GET", "css/site.css", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.get_body() == b"" and again.headers["ETag"] == etag
    weak = await call(app_module, "GET", "css/site.css", headers={"If-None-Match": f'"x", W/{etag}'})
    assert weak.status_code == 304
    (www / "css" / "site.css").write_text("body{color:blue}")
    changed = await call(app_module, "GET", "css/site.css", headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.get_body() == b"body{color:blue}"
    head = await call(app_module, "HEAD", "css/site.css")
    assert head.status_code == 200 and head.get_body() == b""
    assert head.headers["Content-Length"] == str(len(b"body{color:blue}"))


@pytest.mark.parametrize(
    ("path", "ctype"),
    [
        ("css/site.css", "text/css; charset=utf-8"),
        ("js/app.js", "text/javascript; charset=utf-8"),
        ("logo.svg", "image/svg+xml"),
        ("data.bin", "application/octet-stream"),
        ("docs/", "text/html; charset=utf-8"),
        ("docs", "text/html; charset=utf-8"),
    ],
)
async def test_content_types(app_module, www, path, ctype):
    response = await call(app_module, "GET", path)
    assert response.status_code == 200
    assert content_type(response) == ctype
    assert response.headers["X-Content-Type-Options"] == "nosniff"


async def test_versioned_assets_are_immutable_others_revalidate(app_module, www):
    assert (await call(app_module, "GET", "js/app.js")).headers["Cache-Control"] == "no-cache"
    versioned = await call(app_module, "GET", "js/app.js", params={"v": "42"})
    assert versioned.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    hashed = await call(app_module, "GET", "js/app.3f9a1c2e.js")
    assert hashed.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    html = await call(app_module, "GET", "index.html", params={"v": "1"})
    assert html.headers["Cache-Control"] == "no-cache"  # HTML is always revalidated: it names the assets


async def test_signalr_bundle_is_served_from_node_modules(app_module, www):
    response = await call(app_module, "GET", "lib/signalr.min.js")
    assert response.status_code == 200 and response.get_body() == b"var signalR={};"
    assert content_type(response) == "text/javascript; charset=utf-8"


@pytest.mark.parametrize(
    "path",
    [
        "node_modules/@microsoft/signalr/dist/browser/other.js",
        ".env",
        "css/.env",
        "../secret.txt",
        "..",
        "css/../../secret.txt",
        "%2e%2e/secret.txt",
        "%252e%252e/secret.txt",
        "..%2fsecret.txt",
        "..\\secret.txt",
        "css\\..\\..\\secret.txt",
        "/etc/passwd",
        "//etc/passwd",
        "C:/Windows/win.ini",
        "c:\\windows\\win.ini",
        "index.html\x00.png",
        "link-out/secret.txt",
        "link-file",
        "./index.html",
        "css//site.css",
        "lib/../.env",
        "css/site.css\n",
    ],
)
async def test_traversal_and_hidden_files_are_404(app_module, www, path):
    response = await call(app_module, "GET", path)
    assert response.status_code == 404
    assert b"outside" not in response.get_body() and b"SECRET" not in response.get_body()
    assert b"private" not in response.get_body()


async def test_symlink_inside_www_is_served(app_module, www):
    assert (await call(app_module, "GET", "alias.css")).get_body() == b"body{color:red}"


async def test_404_page_builtin_then_custom_and_json_under_api(app_module, www):
    builtin = await call(app_module, "GET", "missing.html")
    assert builtin.status_code == 404 and b"Not found" in builtin.get_body()
    assert content_type(builtin) == "text/html; charset=utf-8"
    (www / "404.html").write_text("<p>lost in space</p>")
    custom = await call(app_module, "GET", "nope/deeper")
    assert custom.status_code == 404 and custom.get_body() == b"<p>lost in space</p>"
    api = await call(app_module, "GET", "api/unknown")
    assert api.status_code == 404 and body_json(api)["error"]["code"] == "not_found"


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("PUT", "api/rooms/general/messages", "GET, POST"),
        ("DELETE", "api/rooms/general/messages", "GET, POST"),
        ("HEAD", "api/rooms/general/messages", "GET, POST"),
        ("GET", "api/negotiate/abc", "POST"),
        ("GET", "api/rooms/general/join", "POST"),
        ("PATCH", "api/rooms/general/leave", "POST"),
        ("POST", "index.html", "GET, HEAD"),
        ("DELETE", "", "GET, HEAD"),
        ("GET", "api/save", "POST"),
        ("POST", "api/config", "GET, HEAD"),
    ],
)
async def test_wrong_method_is_405_with_allow(app_module, www, method, path, allow):
    response = await call(app_module, method, path)
    assert response.status_code == 405
    assert response.headers["Allow"] == allow
    assert body_json(response)["error"]["code"] == "method_not_allowed"


def as_caller(caller) -> dict[str, str]:
    return {"Content-Type": "application/json", "Authorization": caller[1]}


async def test_2018_save_alias_writes_to_general_as_the_caller(app_module, www, store, caller):
    response = await call(
        app_module, "POST", "api/save", {"user": "ada", "message": "hello 🌍"}, headers=as_caller(caller)
    )
    assert response.status_code == 201
    message = body_json(response)
    assert (message["room"], message["user"], message["text"]) == ("general", "ada", "hello 🌍")
    assert message["authorId"] == caller[0]
    history = await stored_messages(store)
    assert [m["id"] for m in history] == [message["id"]]


async def test_2018_save_alias_needs_an_identity_too(app_module, www, store):
    response = await call(
        app_module,
        "POST",
        "api/save",
        {"user": "ada", "message": "hi"},
        headers={"Content-Type": "application/json"},
    )
    assert (response.status_code, body_json(response)["error"]["field"]) == (401, "Authorization")
    assert await stored_messages(store) == []


async def stored_messages(store) -> list[dict]:
    from azure.cosmos.aio import CosmosClient

    async with CosmosClient.from_connection_string(store.connection_string) as client:
        container = client.get_database_client("chat").get_container_client("messages")
        return [m async for m in container.query_items("SELECT * FROM c", partition_key="general")]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"user": "ada"}, "text"),
        ({"message": "hi"}, "user"),
        (b"nope", "body"),
        (b"[" * 8000, "body"),
        ({"user": "a", "message": 5}, "text"),
        (b'{"user": "a", "message": "\\ud800"}', "text"),
    ],
)
async def test_2018_save_alias_refusals_write_nothing(app_module, www, store, caller, body, field):
    response = await call(app_module, "POST", "api/save", body, headers=as_caller(caller))
    assert response.status_code == 400
    assert body_json(response)["error"]["field"] == field
    assert await stored_messages(store) == []


@pytest.mark.parametrize(
    ("media", "body"),
    [
        ("application/x-www-form-urlencoded", b"user=a&message=hi"),
        ("text/plain", b'{"user":"a","message":"hi"}'),
    ],
)
async def test_2018_save_alias_refuses_a_cross_site_simple_post_with_415(
    app_module, www, store, caller, media, body
):
    """The alias reads a JSON template: a form body is the target's 415, not a 400 from parsing it."""
    response = await call(
        app_module, "POST", "api/save", body, headers={"Content-Type": media, "Authorization": caller[1]}
    )
    assert (response.status_code, body_json(response)["error"]["field"]) == (415, "Content-Type")
    assert await stored_messages(store) == []


async def test_2018_config_alias_without_a_user_id_is_a_404_not_a_configuration_error(app_module, www):
    response = await call(app_module, "GET", "api/config", headers={"Authorization": "Bearer t"})
    assert response.status_code == 404
    assert body_json(response)["error"]["code"] == "not_found"


async def test_2018_config_alias_negotiates_over_http(app_module, www, monkeypatch):
    """Negotiate needs its signalRConnectionInfo input, which FileServer does not declare: the alias POSTs to
    this app's own /api/negotiate/{userId} (here a stand-in) with the caller's credentials and hands back
    its answer."""
    calls: list[tuple[str, str, str | None]] = []

    async def negotiate(request: web.Request) -> web.Response:
        calls.append((request.method, request.path, request.headers.get("Authorization")))
        return web.Response(text=CONNECTION_INFO, content_type="application/json")

    async with this_app_at(monkeypatch, "/api/negotiate/{user}", negotiate):
        response = await call(
            app_module,
            "GET",
            "api/config",
            params={"userId": "A" * 22},
            headers={"Authorization": "Bearer t"},
        )
        assert response.status_code == 200 and response.get_body() == CONNECTION_INFO.encode()
    assert calls == [("POST", "/api/negotiate/" + "A" * 22, "Bearer t")]


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(
        st.sampled_from(
            [
                "..",
                ".",
                "",
                "a",
                "css",
                "site.css",
                "link-out",
                "link-file",
                "%2e",
                "\\",
                "/",
                "C:",
                "\x00",
                "secret.txt",
                "~",
                "index.html",
            ]
        ),
        max_size=6,
    )
)
def test_no_path_resolves_outside_www(www, parts):
    from proxies import static

    for candidate in ("/".join(parts), "".join(parts)):
        resolved = static.resolve(www.resolve(), candidate)
        assert resolved is None or resolved.is_relative_to(www.resolve())


async def test_one_log_line_per_fileserver_request(app_module, www, store, caller, caplog):
    with caplog.at_level(logging.INFO, logger="cosmic_chat"):
        await call(app_module, "GET", "css/site.css")
        await call(app_module, "POST", "api/save", {"user": "a", "message": "b"}, headers=as_caller(caller))
        await call(
            app_module,
            "POST",
            "api/save",
            {"user": "a", "message": "secret words"},
            headers=as_caller(caller),
        )
    lines = [r.getMessage() for r in caplog.records if r.name == "cosmic_chat"]
    # One line per invocation, also when FileServer dispatches to another handler in-process.
    assert [line.split(" in ")[0] for line in lines] == [
        "z_FileServer 200",
        "z_FileServer -> SaveChat 201",
        "z_FileServer -> SaveChat 201",
    ]
    assert all(re.fullmatch(r"[A-Za-z_ >-]+ \d{3} in \d+\.\d ms", line) for line in lines)
    assert "secret words" not in caplog.text


def test_funcignore_keeps_development_files_out_of_the_package():
    ignored = (FUNCTIONS / ".funcignore").read_text().split()
    assert {"tests/", "local.settings.json", ".venv/", "__pycache__/"} <= set(ignored)
