"""The host's route table as Azure's host builds it: reserved prefixes, conflicts, names, its own paths.

Sources (docs/parity.md): azure-functions-host `src/WebJobs.Script/Host/ScriptHost.cs` (ValidateHttpFunction,
HttpRoutesConflict, ValidateFunction), `src/WebJobs.Script/Extensions/HttpRequestExtensions.cs`
(IsAdminRequest), `src/WebJobs.Script.WebHost/Middleware/HomepageMiddleware.cs`."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from emulators.functions import FunctionLoadError, start

HEADER = """
import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)

"""


def write_app(root: Path, body: str, host_json: str = '{"version": "2.0"}') -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "function_app.py").write_text(HEADER + textwrap.dedent(body))
    (root / "host.json").write_text(host_json)
    return root


def http_function(name: str, route: str | None, methods: list[str] | None = None) -> str:
    route_arg = "" if route is None else f"route={route!r}, "
    return f"""
@app.function_name({name!r})
@app.route({route_arg}methods={methods!r})
def {name.lower()}(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse({name!r})
"""


@pytest.mark.parametrize("route", ["admin/x", "/Admin", "administrator", "runtime/webhooks/x", "RUNTIME"])
async def test_routes_in_the_hosts_reserved_space_refuse_start_up(tmp_path, route):
    app = write_app(tmp_path / "app", http_function("Reserved", route))
    with pytest.raises(FunctionLoadError) as refused:
        await start(app, port=0, create_local_settings=False)
    assert str(refused.value) == (f"function 'Reserved': route {route!r}: The specified route conflicts "
                                  "with one or more built in routes.")


async def test_the_same_route_with_overlapping_methods_refuses_start_up(tmp_path):
    app = write_app(tmp_path / "app", http_function("One", "things/{id}", ["GET", "POST"])
                    + http_function("Two", "/Things/{id}/", ["POST"]))
    with pytest.raises(FunctionLoadError) as refused:
        await start(app, port=0, create_local_settings=False)
    assert str(refused.value) == ("function 'Two': The route specified conflicts with the route defined by "
                                  "function 'One'.")


async def test_the_same_route_with_disjoint_methods_is_allowed(tmp_path, http):
    app = write_app(tmp_path / "app", http_function("Getter", "things", ["GET"])
                    + http_function("Poster", "things", ["POST"]), '{"version": "2.0", "extensions": '
                    '{"http": {"routePrefix": ""}}}')
    host = await start(app, port=0, create_local_settings=False)
    try:
        for method, name in (("GET", "Getter"), ("POST", "Poster")):
            async with http.request(method, f"{host.url}/things") as r:
                assert (r.status, await r.text()) == (200, name)
        async with http.delete(f"{host.url}/things") as r:
            assert r.status == 404  # no route accepts DELETE: 404, the host never answers 405 itself
    finally:
        await host.close()


@pytest.mark.parametrize("path", ["/admin/host/status", "/ADMIN", "/admin/functions/CatchAll",
                                  "/runtime/webhooks/eventgrid", "/Runtime/Webhooks/x/y"])
async def test_the_hosts_own_paths_never_reach_a_function(tmp_path, http, path):
    app = write_app(tmp_path / "app", http_function("CatchAll", "{*path}"),
                    '{"version": "2.0", "extensions": {"http": {"routePrefix": ""}}}')
    host = await start(app, port=0, create_local_settings=False)
    try:
        async with http.get(f"{host.url}{path}") as r:
            assert r.status == 404
            assert (await r.json())["error"] == {"code": "NotFound",
                                                 "message": "the Functions host's admin API is not emulated"}
        for other in ("/administrator", "/runtime/other", "/x/admin"):  # not the host's: the catch-all's
            async with http.get(f"{host.url}{other}") as r:
                assert (r.status, await r.text()) == (200, "CatchAll")
    finally:
        await host.close()


async def test_the_homepage_answers_slash_only_when_no_function_does(tmp_path, http):
    app = write_app(tmp_path / "app", http_function("Hello", None, ["GET"]))
    host = await start(app, port=0, create_local_settings=False)
    try:
        async with http.post(f"{host.url}/") as r:  # HomepageMiddleware looks at the path, not the method
            assert r.status == 200 and "Functions 4.0 app is up and running" in await r.text()
    finally:
        await host.close()
    host = await start(app, port=0, create_local_settings=False,
                       settings_overrides={"AzureWebJobsDisableHomepage": "true"})
    try:
        async with http.get(f"{host.url}/") as r:
            assert r.status == 204 and await r.read() == b""
        async with http.get(f"{host.url}/api/Hello") as r:
            assert (r.status, await r.text()) == (200, "Hello")
    finally:
        await host.close()
