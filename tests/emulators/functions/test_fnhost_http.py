"""The host over HTTP with a small app: routing, conversion, sync/async, errors, start-up checks."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import time
from pathlib import Path

import pytest
import yarl

from emulators.functions import FunctionLoadError, start

APPS = Path(__file__).parent / "apps"


async def get_json(http, url, method="GET", **kw):
    async with http.request(method, url, **kw) as r:
        return r.status, await r.json(content_type=None)


async def test_routes_are_tried_in_function_name_order_and_the_first_match_wins(basic_host, http):
    """azure-functions-host orders functions by name (FunctionMetadataManager.cs) and maps their routes in
    that order; WebJobsRouter takes the first match. No "most specific wins": order_a_param takes
    /order/literal."""
    u = basic_host.url
    assert (await get_json(http, f"{u}/order/literal"))[1] == {"function": "order-param",
                                                               "route_params": {"x": "literal"}}
    assert (await get_json(http, f"{u}/order/other", "POST"))[1] == {"function": "order-post",
                                                                     "route_params": {"y": "other"}}
    names = [route.target.name for route in basic_host.front_door.router.routes]
    assert names == sorted(names, key=str.upper) and names[-1] == "zz_catch_all"


async def test_a_shadowed_route_is_named_at_start_up(caplog):
    with caplog.at_level(logging.WARNING, logger="emulators.functions"):
        host = await start(APPS / "basic", port=0, create_local_settings=False)
        await host.close()
    shadowed = [r.getMessage() for r in caplog.records if "never called" in r.getMessage()]
    assert shadowed == ["function order_b_literal: GET /order/literal is answered by function order_a_param, "
                        "which comes first in the host's route order (by function name): order_b_literal is "
                        "never called for it"]


async def test_route_constraints_still_apply_in_name_order(basic_host, http):
    u = basic_host.url
    assert (await get_json(http, f"{u}/items/new"))[1]["function"] == "literal"
    assert (await get_json(http, f"{u}/items/7"))[1] == {"function": "int", "route_params": {"id": "7"}}
    assert (await get_json(http, f"{u}/items/seven"))[1]["function"] == "param"
    assert (await get_json(http, f"{u}/codes/abc"))[1]["function"] == "regex"
    assert (await get_json(http, f"{u}/codes/abcd"))[1]["function"] == "catch-all"
    assert (await get_json(http, f"{u}/files/a.b.txt"))[1]["route_params"] == {"name": "a.b", "ext": "txt"}
    assert (await get_json(http, f"{u}/opt"))[1]["function"] == "optional"
    assert (await get_json(http, f"{u}/deep/er/path"))[1] == {"function": "catch-all",
                                                                "route_params": {"path": "deep/er/path"}}


async def test_a_route_value_holding_a_newline_still_reaches_its_function(basic_host, http):
    """`%0A` decodes to a newline, which aiohttp's own `.*` route would not match (a bare 404 from the
    server, no function reached); Kestrel routes it, so the function can refuse it itself."""
    url = yarl.URL(f"{basic_host.url}/items/a%0Ab", encoded=True)
    assert (await get_json(http, url))[1] == {"function": "param", "route_params": {"name": "a\nb"}}


async def test_methods_select_functions_and_unmatched_is_404(basic_host, http):
    u = basic_host.url
    assert (await get_json(http, f"{u}/only-post", "POST"))[1]["function"] == "only-post"
    assert (await get_json(http, f"{u}/only-post"))[1]["function"] == "catch-all"
    async with http.delete(f"{u}/only-post") as r:
        assert r.status == 404


async def test_request_and_response_are_converted_like_the_worker(basic_host, http):
    url = f"{basic_host.url}/echo/th%20ing?a=1&b=x&b=y"
    async with http.post(url, json={"k": "v", "emoji": "🎉"}, headers={"X-Test": "t1"}) as r:
        assert r.status == 201
        assert r.headers["Content-Type"] == "application/json"
        assert r.headers["X-Echo"] == "yes"
        assert r.cookies["a"].value == "1"
        body = await r.json()
    assert body["type"] == "HttpRequest"
    assert body["method"] == "POST"
    assert body["url"] == url
    assert body["header"] == "t1"
    assert body["params"] == {"a": "1", "b": "x,y"}
    assert body["route_params"] == {"thing": "th ing"}
    assert body["json"] == {"k": "v", "emoji": "🎉"}
    async with http.put(f"{basic_host.url}/echo/x", data=b"not json") as r:
        body = await r.json()
    assert body["body"] == "not json"
    assert body["json"].startswith("ValueError")


async def test_a_plain_string_return_is_a_200_text_response(basic_host, http):
    async with http.get(f"{basic_host.url}/text") as r:
        assert r.status == 200
        assert r.headers["Content-Type"].startswith("text/plain")
        assert await r.text() == "plain ünïcode"


async def test_sync_handlers_run_in_threads_and_never_block_the_loop(basic_host, http):
    u = basic_host.url

    async def timed(path):
        t = time.perf_counter()
        async with http.get(f"{u}/{path}") as r:
            return await r.text(), time.perf_counter() - t

    slow = asyncio.create_task(timed("sync-slow?s=0.8"))
    await asyncio.sleep(0.1)
    fast_name, fast_time = await timed("async-fast")
    slow_name, _ = await slow
    assert fast_time < 0.5, "the async handler waited for the sync one: the loop was blocked"
    assert fast_name == "MainThread"
    assert slow_name.startswith("function")
    # Two sync handlers overlap instead of queueing behind each other.
    t = time.perf_counter()
    await asyncio.gather(timed("sync-slow?s=0.5"), timed("sync-slow?s=0.5"))
    assert time.perf_counter() - t < 0.9


async def test_a_failing_handler_gives_500_json_without_trace_and_logs_it(basic_host, http, caplog):
    caplog.set_level(logging.INFO, logger="emulators.functions")
    status, body = await get_json(http, f"{basic_host.url}/boom")
    assert status == 500
    assert body["error"]["code"] == "FunctionInvocationFailed"
    assert body["error"]["function"] == "boom"
    assert "secret internal detail" not in json.dumps(body)
    assert "Traceback" not in json.dumps(body)
    failed = [r.getMessage() for r in caplog.records if "boom" in r.getMessage() and "500" in r.getMessage()]
    assert failed and "Traceback" in failed[0] and "secret internal detail" in failed[0]
    ok = [r.getMessage() for r in caplog.records if r.getMessage().startswith("items_literal")]
    assert not ok  # only invoked functions are logged
    await get_json(http, f"{basic_host.url}/items/new")
    line = next(r.getMessage() for r in caplog.records if r.getMessage().startswith("items_literal"))
    assert "http GET /items/new" in line and "→ 200" in line and " ms " in line and "Succeeded" in line


async def test_missing_binding_expression_value_fails_the_invocation(basic_host, http):
    status, body = await get_json(http, f"{basic_host.url}/negotiate-user", "POST")
    assert status == 500
    assert "Error while accessing 'x-ms-client-principal-id'" in body["error"]["message"]


async def test_settings_reach_the_app_as_environment_and_context_is_passed(basic_host, http):
    status, body = await get_json(http, f"{basic_host.url}/env")
    assert status == 200
    assert body == {"greeting": "hi", "function": "env"}


async def test_environment_is_restored_after_close():
    before = os.environ.get("GREETING")
    host = await start(APPS / "basic", port=0, create_local_settings=False,
                       settings_overrides={"GREETING": "x"})
    assert os.environ["GREETING"] == "x"
    await host.close()
    assert os.environ.get("GREETING") == before


async def test_unsupported_binding_stops_startup_naming_function_and_binding():
    with pytest.raises(FunctionLoadError) as e:
        await start(APPS / "unsupported", port=0, create_local_settings=False)
    assert "'enqueue'" in str(e.value) and "'msg'" in str(e.value) and "'queue'" in str(e.value)


async def test_missing_percent_setting_stops_startup(tmp_path):
    app = tmp_path / "app"
    shutil.copytree(APPS / "prefixed", app)
    (app / "local.settings.sample.json").unlink()
    with pytest.raises(FunctionLoadError, match="HUB_NAME"):
        await start(app, port=0)


async def test_default_route_prefix_local_settings_created_from_sample_and_env_wins(
        tmp_path, http, monkeypatch):
    app = tmp_path / "app"
    shutil.copytree(APPS / "prefixed", app)
    host = await start(app, port=0)
    try:
        assert json.loads((app / "local.settings.json").read_text())["Values"]["HUB_NAME"] == "fromsample"
        async with http.get(f"{host.url}/api/Hello?name=ann") as r:
            # Route defaults to the function name under the default "api" prefix.
            assert r.status == 200
            assert await r.text() == "hello %NOT_A_SETTING% ann"
        async with http.get(f"{host.url}/Hello") as r:
            assert r.status == 404
        async with http.get(f"{host.url}/") as r:
            assert "Functions 4.0 app is up and running" in await r.text()
    finally:
        await host.close()
    monkeypatch.setenv("HUB_NAME", "fromenv")
    from emulators.functions.settings import HostSettings

    assert HostSettings.load(app).get("HUB_NAME") == "fromenv"
    assert HostSettings.load(app, {"HUB_NAME": "override"}).get("HUB_NAME") == "override"


async def test_port_in_use_raises_oserror(basic_host):
    with pytest.raises(OSError):
        await start(APPS / "basic", port=basic_host.port, create_local_settings=False)


async def test_function_timeout_from_host_json_fails_the_invocation(basic_host, http, caplog):
    caplog.set_level(logging.INFO, logger="emulators.functions")
    status, body = await get_json(http, f"{basic_host.url}/sync-slow?s=2.5")
    assert status == 500
    assert body["error"]["function"] == "sync_slow"
    assert any("functionTimeout" in r.getMessage() for r in caplog.records)


async def test_python_m_emulators_functions_runs_the_host_alone(tmp_path):
    import signal
    import sys

    from tests.conftest import find_free_port

    app = tmp_path / "app"
    shutil.copytree(APPS / "prefixed", app)
    port = find_free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "emulators.functions", "--app-dir", str(app), "--port", str(port),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        cwd=Path(__file__).resolve().parents[3])
    try:
        line = await asyncio.wait_for(proc.stdout.readline(), 30)
        assert f"Functions host running at http://127.0.0.1:{port}/" in line.decode()
        import aiohttp

        url = f"http://127.0.0.1:{port}/api/Hello?name=x"
        async with aiohttp.ClientSession() as http, http.get(url) as r:
            assert r.status == 200
        assert (app / "local.settings.json").exists()
    finally:
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 15) == 0


async def test_host_json_http_throttles_queue_then_refuse_with_429(http):
    host = await start(APPS / "throttled", port=0, create_local_settings=False)
    try:
        async def status():
            async with http.get(f"{host.url}/wait") as r:
                return r.status

        statuses = sorted(await asyncio.gather(*(status() for _ in range(4))))
        # maxOutstandingRequests 2: two are taken (and run one at a time), the rest refused.
        assert statuses == [200, 200, 429, 429]
    finally:
        await host.close()


async def test_python_m_emulators_functions_listens_on_local_http_port(tmp_path):
    import signal
    import sys

    from tests.conftest import find_free_port

    app = tmp_path / "app"
    shutil.copytree(APPS / "prefixed", app)
    port = find_free_port()
    (app / "local.settings.json").write_text(json.dumps({"Values": {"HUB_NAME": "h"},
                                                          "Host": {"LocalHttpPort": port}}))
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "emulators.functions", "--app-dir", str(app),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        cwd=Path(__file__).resolve().parents[3])
    try:
        line = await asyncio.wait_for(proc.stdout.readline(), 30)
        assert f"Functions host running at http://127.0.0.1:{port}/" in line.decode()
    finally:
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 15) == 0


async def test_host_json_route_prefix_any_key_case(tmp_path, http):
    app = tmp_path / "app"
    shutil.copytree(APPS / "prefixed", app)
    (app / "host.json").write_text(json.dumps({"version": "2.0",
                                               "Extensions": {"HTTP": {"RoutePrefix": "/v1/"}}}))
    host = await start(app, port=0)
    try:
        async with http.get(f"{host.url}/v1/Hello?name=x") as r:
            assert r.status == 200
        async with http.get(f"{host.url}/api/Hello?name=x") as r:
            assert r.status == 404
    finally:
        await host.close()


async def test_ctrl_c_does_not_wait_for_a_sync_handler_that_never_returns(http):
    import signal
    import sys

    from tests.conftest import find_free_port

    port = find_free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "emulators.functions", "--app-dir", str(APPS / "slow"), "--port", str(port),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
        cwd=Path(__file__).resolve().parents[3])
    try:
        await asyncio.wait_for(proc.stdout.readline(), 30)
        pending = asyncio.create_task(http.get(f"http://127.0.0.1:{port}/sleep?s=60"))
        await asyncio.sleep(0.5)
        started = time.perf_counter()
        proc.send_signal(signal.SIGINT)
        out = (await asyncio.wait_for(proc.stdout.read(), 20)).decode()
        assert await asyncio.wait_for(proc.wait(), 5) == 0
        assert time.perf_counter() - started < 15  # a few seconds' grace, not the handler's 60 s
        assert "1 sync function call(s) still running were abandoned" in out
        pending.cancel()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_a_deeply_nested_json_body_reaches_the_function(basic_host, http):
    """Binding data reads top-level properties of a JSON body; a body nested too deep for Python's
    parser simply has none, instead of failing the request before the function runs."""
    body = b"[" * 5000
    async with http.post(f"{basic_host.url}/only-post", data=body,
                         headers={"Content-Type": "application/json"}) as r:
        assert r.status == 200
        assert (await r.json(content_type=None))["function"] == "only-post"
