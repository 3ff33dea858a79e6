"""Classic HTTP mode: the host stores the outputs, then sends the response, so a failed output is a 500.

Azure: the WebJobs SDK binds a function's outputs when it completes and the HTTP response is sent after the
invocation has finished; an output that throws fails the invocation (FunctionInvocationException), which
ExceptionMiddleware (azure-functions-host `src/WebJobs.Script.WebHost/Middleware/ExceptionMiddleware.cs`)
answers with 500. docs/parity.md "Output failures"."""

from __future__ import annotations

import logging
import textwrap

from fnhost_helpers import DB, read_all

from emulators.functions import start

APP = '''
import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@app.route(route="put/{room}/{container}", methods=["POST"])
@app.cosmos_db_output(arg_name="doc", connection="CosmosDBConnection", database_name="%DB_NAME%",
                      container_name="{container}")
def put(req: func.HttpRequest, doc: func.Out[func.Document]) -> func.HttpResponse:
    doc.set(func.Document.from_dict({"id": "d1", "room": req.route_params["room"]}))
    return func.HttpResponse("stored", status_code=201)
'''


async def test_a_failed_cosmos_output_is_a_500_never_the_functions_201(services, http, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="emulators.functions")
    cosmos, _ = services
    app = tmp_path / "app"
    app.mkdir()
    (app / "function_app.py").write_text(textwrap.dedent(APP))
    (app / "host.json").write_text('{"version": "2.0", "extensions": {"http": {"routePrefix": ""}}}')
    host = await start(app, port=0, create_local_settings=False, settings_overrides={
        "CosmosDBConnection": cosmos.connection_string, "DB_NAME": DB})
    try:
        async with http.post(f"{host.url}/put/r1/no-such-container") as r:
            assert r.status == 500  # the handler said 201; the write failed, so the client must not hear 201
            assert (await r.json())["error"]["code"] == "FunctionInvocationFailed"
        assert any("output binding 'doc' (cosmosDB)" in rec.getMessage() for rec in caplog.records)
        async with http.post(f"{host.url}/put/r1/messages") as r:
            assert (r.status, await r.text()) == (201, "stored")
        assert [d["id"] for d in await read_all(cosmos)] == ["d1"]
    finally:
        await host.close()
