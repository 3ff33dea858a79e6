"""The proxies.json engine: route templates, overrides, app settings, configuration errors and forwarding to
an external backend (a real aiohttp server on 127.0.0.1 started by the test)."""

from __future__ import annotations

import asyncio
import json

import azure.functions as func
import pytest
from aiohttp import web
from functions_testkit import Out, body_json, this_app_at
from proxies import config, forward, server
from proxies.routes import RouteTemplate


class Seen(list):
    """The requests the backend received; `release` lets its held-back responses go on."""

    release: asyncio.Event


@pytest.fixture
async def backend():
    seen = Seen()

    async def echo(request: web.Request) -> web.Response:
        seen.append(
            {
                "method": request.method,
                "path": request.path,
                "query": dict(request.query),
                "headers": request.headers.copy(),
                "body": await request.read(),
            }
        )
        return web.json_response(
            {"echo": request.path}, status=207, headers={"X-Backend": "yes", "X-Drop": "1"}
        )

    release = seen.release = asyncio.Event()

    async def slow(request: web.Request) -> web.Response:
        await asyncio.wait_for(release.wait(), 5)
        return web.Response(text="late")

    async def big(request: web.Request) -> web.StreamResponse:
        """40 chunks of 64 KiB, chunked (no Content-Length): the size is known only by reading."""
        response = web.StreamResponse()
        await response.prepare(request)
        for _ in range(int(request.query.get("chunks", "40"))):
            await response.write(b"x" * 65536)
        return response

    async def sized(request: web.Request) -> web.Response:
        return web.Response(body=b"y" * int(request.query["n"]))

    async def drip(request: web.Request) -> web.StreamResponse:
        """`first`, then (once the test says so) `second`; or `first` and a stall with ?stall=1."""
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(b"first")
        await asyncio.wait_for(release.wait(), 5)
        if request.query.get("stall"):
            await asyncio.sleep(5)
        await response.write(b"second")
        return response

    app = web.Application()
    app.router.add_route("*", "/slow", slow)
    app.router.add_get("/big", big)
    app.router.add_get("/sized", sized)
    app.router.add_get("/drip", drip)
    app.router.add_route("*", "/{tail:.*}", echo)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    yield f"127.0.0.1:{port}", seen
    release.set()
    await forward.close_sessions()
    await runner.cleanup()


def table(proxies: dict) -> list[config.Proxy]:
    return config.parse({"proxies": proxies})


async def serve(app_module, proxies, method, path, body=b"", params=None, headers=None, bindings=None):
    query = "&".join(f"{k}={v}" for k, v in (params or {}).items())
    req = func.HttpRequest(
        method,
        f"https://chat.example/{path}" + (f"?{query}" if query else ""),
        headers=headers or {},
        params=params or {},
        route_params={"path": path},
        body=body,
    )
    bindings = bindings or {"actions": Out(), "connectionInfo": "{}"}
    response = await server.serve(app_module.app, req, bindings, proxies=table(proxies))
    assert isinstance(response, func.HttpResponse)  # classic HTTP mode: always a whole answer
    return response


def test_route_templates():
    route = RouteTemplate.parse("/api/{kind}/{*rest}")
    assert route.match("api/files/a/b/c.txt") == {"kind": "files", "rest": "a/b/c.txt"}
    assert route.match("API/files") == {"kind": "files", "rest": ""}
    assert route.match("api") is None
    assert RouteTemplate.parse("/").match("") == {}
    assert RouteTemplate.parse("/").match("x") is None
    assert RouteTemplate.parse("items/{id?}").match("items") == {}
    assert RouteTemplate.parse("items/{id:int}").match("items/7") == {"id": "7"}
    assert RouteTemplate.parse("a/{b}").match("a/b/c") is None
    with pytest.raises(ValueError):
        RouteTemplate.parse("{*rest}/tail")


def test_shipped_proxies_json_loads_and_orders_by_precedence():
    names = [p.name for p in config.load()]
    assert names[-1] == "static"  # the catch-all is tried last
    assert {"root", "signalr", "save", "config", "static"} <= set(names)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({}, "'proxies'"),
        ({"proxies": {"x": {"backendUri": "www:/a"}}}, "matchCondition.route"),
        (
            {"proxies": {"x": {"matchCondition": {"route": "/a", "methods": "GET"}, "backendUri": "www:/a"}}},
            "methods",
        ),
        ({"proxies": {"x": {"matchCondition": {"route": "/a"}}}}, "backendUri or responseOverrides"),
        (
            {
                "proxies": {
                    "x": {
                        "matchCondition": {"route": "/a"},
                        "backendUri": "www:/a",
                        "requestOverrides": {"backend.request.cookies": "1"},
                    }
                }
            },
            "unsupported",
        ),
        ({"proxies": {"x": {"matchCondition": {"route": "/{*a}/b"}, "backendUri": "www:/a"}}}, "catch-all"),
    ],
)
def test_malformed_proxies_are_refused_at_load(data, message):
    with pytest.raises(config.ProxyConfigError, match=message):
        config.parse(data)


def test_disabled_proxies_are_skipped():
    assert table({"x": {"matchCondition": {"route": "/a"}, "backendUri": "www:/a", "disabled": True}}) == []


async def test_request_overrides_and_app_settings_reach_the_backend(app_module, backend, monkeypatch):
    address, seen = backend
    monkeypatch.setenv("UPSTREAM", address)
    proxies = {
        "ext": {
            "matchCondition": {"route": "/ext/{kind}/{*rest}", "methods": ["GET", "POST"]},
            "backendUri": "http://%UPSTREAM%/v1/{kind}/{rest}",
            "requestOverrides": {
                "backend.request.method": "PUT",
                "backend.request.headers.X-Kind": "{kind}-{request.method}",
                "backend.request.headers.X-Remove-Me": "",
                "backend.request.querystring.token": "%UPSTREAM%",
            },
        }
    }
    response = await serve(
        app_module,
        proxies,
        "POST",
        "ext/files/a b/c.txt",
        body=b"payload",
        params={"page": "2"},
        headers={
            "X-Remove-Me": "1",
            "X-Keep": "ok",
            "X-MS-CLIENT-PRINCIPAL-ID": "u1",
            "X-MS-TOKEN-AAD-ACCESS-TOKEN": "secret",
        },
    )
    assert response.status_code == 207
    assert body_json(response) == {"echo": "/v1/files/a b/c.txt"}
    assert response.headers["X-Backend"] == "yes"
    got = seen[-1]
    assert got["method"] == "PUT" and got["body"] == b"payload"
    assert got["query"] == {"page": "2", "token": address}
    assert got["headers"]["X-Kind"] == "files-POST" and got["headers"]["X-Keep"] == "ok"
    assert "X-Remove-Me" not in got["headers"]
    assert not any(h.lower().startswith(("x-ms-client-principal", "x-ms-token")) for h in got["headers"])
    assert got["headers"]["X-Forwarded-Host"] == "chat.example"


async def test_callers_credentials_for_this_app_do_not_reach_another_origin(app_module, backend, monkeypatch):
    address, seen = backend
    monkeypatch.setenv("UPSTREAM_TOKEN", "upstream-secret")
    credentials = {"Cookie": "AppServiceAuthSession=s3cr3t", "Authorization": "Bearer app-token"}
    plain = {"ext": {"matchCondition": {"route": "/ext"}, "backendUri": f"http://{address}/plain"}}
    await serve(app_module, plain, "GET", "ext", headers={**credentials, "X-Keep": "1"})
    assert "Cookie" not in seen[-1]["headers"] and "Authorization" not in seen[-1]["headers"]
    assert seen[-1]["headers"]["X-Keep"] == "1"
    explicit = {
        "ext": {
            "matchCondition": {"route": "/ext"},
            "backendUri": f"http://{address}/explicit",
            "requestOverrides": {"backend.request.headers.Authorization": "Bearer %UPSTREAM_TOKEN%"},
        }
    }
    await serve(app_module, explicit, "GET", "ext", headers=credentials)
    assert seen[-1]["headers"]["Authorization"] == "Bearer upstream-secret"
    assert "Cookie" not in seen[-1]["headers"]


async def test_response_overrides(app_module, backend):
    address, _ = backend
    proxies = {
        "ext": {
            "matchCondition": {"route": "/ext"},
            "backendUri": f"http://{address}/thing",
            "responseOverrides": {
                "response.statusCode": "200",
                "response.headers.X-Drop": "",
                "response.headers.X-Was": "{backend.response.statusCode}",
                "response.body": {"wrapped": True},
            },
        }
    }
    response = await serve(app_module, proxies, "GET", "ext")
    assert response.status_code == 200
    assert response.headers["X-Was"] == "207"
    assert "X-Drop" not in response.headers
    assert body_json(response) == {"wrapped": True}


async def test_response_only_proxy(app_module):
    proxies = {
        "health": {
            "matchCondition": {"route": "/healthz", "methods": ["GET"]},
            "responseOverrides": {"response.statusCode": "204", "response.headers.Cache-Control": "no-store"},
        }
    }
    response = await serve(app_module, proxies, "GET", "healthz")
    assert response.status_code == 204 and response.headers["Cache-Control"] == "no-store"


async def test_backend_timeout_is_504(app_module, backend, monkeypatch):
    address, _ = backend
    monkeypatch.setenv("PROXY_TIMEOUT_SECONDS", "0.3")
    proxies = {"ext": {"matchCondition": {"route": "/ext"}, "backendUri": f"http://{address}/slow"}}
    response = await serve(app_module, proxies, "GET", "ext")
    assert response.status_code == 504 and body_json(response)["error"]["code"] == "backend_timeout"


async def test_unreachable_backend_is_502(app_module, free_port):
    proxies = {"ext": {"matchCondition": {"route": "/ext"}, "backendUri": f"http://127.0.0.1:{free_port}/x"}}
    response = await serve(app_module, proxies, "GET", "ext")
    assert response.status_code == 502 and body_json(response)["error"]["code"] == "backend_unreachable"
    await forward.close_sessions()


async def test_a_large_backend_body_within_the_cap_arrives_whole(app_module, backend):
    address, _ = backend
    proxies = {"ext": {"matchCondition": {"route": "/ext"}, "backendUri": f"http://{address}/big"}}
    response = await serve(app_module, proxies, "GET", "ext")
    assert response.status_code == 200 and response.get_body() == b"x" * (40 * 65536)


@pytest.mark.parametrize("path", ["big?chunks=40", "sized?n=2621440"])
async def test_a_backend_body_over_the_cap_is_502(app_module, backend, monkeypatch, path):
    """Announced (Content-Length) or only found by reading (chunked): over PROXY_MAX_RESPONSE_BYTES the
    client gets a named 502, never a truncated body."""
    address, _ = backend
    monkeypatch.setenv("PROXY_MAX_RESPONSE_BYTES", str(1024 * 1024))
    proxies = {"ext": {"matchCondition": {"route": "/ext"}, "backendUri": f"http://{address}/{path}"}}
    response = await serve(app_module, proxies, "GET", "ext")
    assert response.status_code == 502
    assert body_json(response)["error"] == {
        "code": "backend_too_large",
        "message": "the backend's answer is over 1048576 bytes",
        "field": None,
    }


async def test_a_body_at_the_cap_is_served(app_module, backend, monkeypatch):
    address, _ = backend
    monkeypatch.setenv("PROXY_MAX_RESPONSE_BYTES", "1000")
    proxies = {"ext": {"matchCondition": {"route": "/ext"}, "backendUri": f"http://{address}/sized?n=1000"}}
    response = await serve(app_module, proxies, "GET", "ext")
    assert response.status_code == 200 and response.get_body() == b"y" * 1000


async def test_a_backend_that_stalls_mid_body_is_504_not_a_cut_body(app_module, backend, monkeypatch):
    address, _ = backend
    monkeypatch.setenv("PROXY_TIMEOUT_SECONDS", "0.3")
    proxies = {"ext": {"matchCondition": {"route": "/ext"}, "backendUri": f"http://{address}/drip?stall=1"}}
    task = asyncio.create_task(serve(app_module, proxies, "GET", "ext"))
    await asyncio.sleep(0.05)
    backend[1].release.set()  # "first" was sent; the rest comes 5 s later, after the 0.3 s budget
    response = await task
    assert response.status_code == 504 and body_json(response)["error"]["code"] == "backend_timeout"


async def test_a_body_override_replaces_the_backend_body(app_module, backend):
    address, _ = backend
    backend[1].release.set()
    proxies = {
        "ext": {
            "matchCondition": {"route": "/ext"},
            "backendUri": f"http://{address}/drip",
            "responseOverrides": {"response.body": "replaced", "response.statusCode": "203"},
        }
    }
    response = await serve(app_module, proxies, "GET", "ext")
    assert response.status_code == 203 and response.get_body() == b"replaced"
    assert response.headers["content-type"] == "text/event-stream"


async def test_missing_app_setting_is_a_named_configuration_error(app_module, monkeypatch):
    monkeypatch.delenv("NOPE_NOT_SET", raising=False)
    proxies = {"ext": {"matchCondition": {"route": "/ext"}, "backendUri": "http://%NOPE_NOT_SET%/x"}}
    response = await serve(app_module, proxies, "GET", "ext")
    assert response.status_code == 500
    assert "NOPE_NOT_SET" in body_json(response)["error"]["message"]


async def test_a_target_whose_input_bindings_fileserver_lacks_is_called_over_http(app_module, monkeypatch):
    """History needs its Cosmos input, which FileServer does not declare: the proxy calls this app's own
    origin (WEBSITE_HOSTNAME, here a stand-in server) with the caller's headers, credentials included."""
    seen: list[web.Request] = []

    async def history(request: web.Request) -> web.Response:
        seen.append(request)
        return web.json_response({"messages": []}, headers={"X-From": "app"})

    async with this_app_at(monkeypatch, "/api/rooms/general/messages", history, "GET"):
        target = "https://%WEBSITE_HOSTNAME%/api/rooms/general/messages"
        proxies = {"hist": {"matchCondition": {"route": "/h"}, "backendUri": target}}
        response = await serve(
            app_module, proxies, "GET", "h", params={"limit": "5"}, headers={"Cookie": "s=1"}
        )
    assert response.status_code == 200 and body_json(response) == {"messages": []}
    assert response.headers["X-From"] == "app"
    assert seen[0].query["limit"] == "5" and seen[0].headers["Cookie"] == "s=1"


def test_this_apps_origin():
    req = func.HttpRequest("GET", "https://chat.example/x", body=b"")
    for hostname, origin in [
        ("", "https://chat.example"),
        ("cosmic-chat-dev.azurewebsites.net", "https://cosmic-chat-dev.azurewebsites.net"),
        ("127.0.0.1:7071", "http://127.0.0.1:7071"),
        ("localhost:7071", "http://localhost:7071"),
    ]:
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("WEBSITE_HOSTNAME", hostname)
            assert server.self_origin(req) == origin


async def test_in_process_dispatch_with_route_values_and_localhost(app_module, store, caller, monkeypatch):
    monkeypatch.delenv("AzureSignalRConnectionString", raising=False)  # the connection check cannot run
    actions: Out[str] = Out()
    proxies = {
        "join": {
            "matchCondition": {"route": "/j/{room}", "methods": ["POST"]},
            "backendUri": "http://localhost:7071/api/rooms/{room}/join",
        }
    }
    response = await serve(
        app_module,
        proxies,
        "POST",
        "j/lobby",
        body=b"{}",
        headers={"Content-Type": "application/json", "Authorization": caller[1]},
        bindings={"actions": actions, "connectionInfo": "{}"},
    )
    assert response.status_code == 202
    assert json.loads(actions.value) == [{"action": "add", "groupName": "lobby", "userId": caller[0]}]


async def test_string_body_template(app_module, backend):
    address, seen = backend
    proxies = {
        "ext": {
            "matchCondition": {"route": "/ext/{id}"},
            "backendUri": f"http://{address}/b",
            "requestOverrides": {"backend.request.body": "id={id}"},
        }
    }
    await serve(app_module, proxies, "POST", "ext/42", body=b"ignored")
    assert seen[-1]["body"] == b"id=42"


async def test_a_status_override_that_is_not_a_status_is_a_configuration_error(app_module):
    overrides = {"response.statusCode": "OK"}
    proxies = {"bad": {"matchCondition": {"route": "/bad"}, "responseOverrides": overrides}}
    response = await serve(app_module, proxies, "GET", "bad")
    assert response.status_code == 500
    assert "statusCode" in body_json(response)["error"]["message"]
