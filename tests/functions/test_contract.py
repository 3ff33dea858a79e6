"""The contract other pieces depend on (emulators, infrastructure, web client), read from
app.get_functions()."""

from __future__ import annotations

import inspect
import json

import pytest
from functions_testkit import FUNCTIONS

from emulators.functions.routing import RouteTemplate, split_path

COSMOS = {"connection": "CosmosDBConnection", "databaseName": "chat", "containerName": "messages"}
SIGNALR = {"hubName": "chat", "connectionStringSetting": "AzureSignalRConnectionString"}


def table(app) -> dict[str, dict]:
    return {f.get_function_name(): json.loads(f.get_function_json()) for f in app.get_functions()}


def bindings(fn: dict) -> dict[str, dict]:
    return {b["name"]: b for b in fn["bindings"]}


def http(fn: dict) -> dict:
    return next(b for b in fn["bindings"] if b["type"] == "httpTrigger")


def test_function_names(app_module):
    assert set(table(app_module.app)) == {
        "SaveChat",
        "IssueIdentity",
        "History",
        "HistoryAfter",
        "SignalRConfiguration",
        "JoinRoom",
        "LeaveRoom",
        "FeedToSignalR",
        "z_FileServer",
    }


@pytest.mark.parametrize(
    ("name", "route", "methods"),
    [
        ("SaveChat", "api/rooms/{room}/messages", ["POST"]),
        ("History", "api/rooms/{room}/messages", ["GET"]),
        ("HistoryAfter", "api/rooms/{room}/messages/after/{after}", ["GET"]),
        ("IssueIdentity", "api/identities", ["POST"]),
        ("SignalRConfiguration", "api/negotiate/{userId}", ["POST"]),
        ("JoinRoom", "api/rooms/{room}/join", ["POST"]),
        ("LeaveRoom", "api/rooms/{room}/leave", ["POST"]),
        ("z_FileServer", "{*path}", None),
    ],
)
def test_http_routes_methods_and_anonymous_access(app_module, name, route, methods):
    trigger = http(table(app_module.app)[name])
    assert trigger["route"] == route
    assert trigger.get("methods") == methods  # FileServer: every method, so it can answer 405 for the others
    assert trigger["authLevel"] == "ANONYMOUS"
    assert bindings(table(app_module.app)[name])["$return"]["type"] == "http"


def test_host_json_removes_the_route_prefix():
    host = json.loads((FUNCTIONS / "host.json").read_text())
    assert host["extensions"]["http"]["routePrefix"] == ""
    assert host["extensionBundle"]["id"] == "Microsoft.Azure.Functions.ExtensionBundle"


@pytest.mark.parametrize("name", ["SaveChat", "IssueIdentity", "z_FileServer"])
def test_no_function_upserts_messages(app_module, name):
    """The Cosmos DB output binding only upserts, so a write under a known id would replace another author's
    message; SaveChat creates if absent through the SDK instead (chat/saving.py)."""
    assert [b for b in table(app_module.app)[name]["bindings"] if b["type"] == "cosmosDB"] == []


def test_history_reads_with_a_parameterised_query(app_module):
    binding = bindings(table(app_module.app)["History"])["documents"]
    assert binding["type"] == "cosmosDB" and binding["direction"] == "IN"
    assert {k: binding[k] for k in COSMOS} == COSMOS
    assert binding["partitionKey"] == "{room}"
    query = binding["sqlQuery"]
    assert "c.room = {room}" in query  # a binding expression: the extension sends it as a SQL parameter
    assert query.startswith("SELECT TOP 200 c.id, c.room, c.user, c.authorId, c.text, c.createdAt FROM c")
    assert query.endswith("ORDER BY c.createdAt DESC, c.id DESC")
    assert "{" not in query.replace("{room}", "")  # only always-present binding data (no limit/after)


def test_history_after_reads_from_after_with_route_values_only(app_module):
    binding = bindings(table(app_module.app)["HistoryAfter"])["documents"]
    assert binding["type"] == "cosmosDB" and binding["direction"] == "IN"
    assert {k: binding[k] for k in COSMOS} == COSMOS
    assert binding["partitionKey"] == "{room}"
    query = binding["sqlQuery"]
    assert query.startswith("SELECT TOP 200 c.id, c.room, c.user, c.authorId, c.text, c.createdAt FROM c")
    assert "c.room = {room} AND c.createdAt > {after}" in query
    assert query.endswith("ORDER BY c.createdAt, c.id")  # the inverse of the composite index: served by it
    assert "{" not in query.replace("{room}", "").replace("{after}", "")  # both are route values


def test_negotiate_binding_takes_the_user_id_from_the_route(app_module):
    """A route value is always present (an absent header or query value would fail the invocation), and the
    handler hands the connection out only to the identity it names."""
    info = bindings(table(app_module.app)["SignalRConfiguration"])["connectionInfo"]
    assert info == {
        "name": "connectionInfo",
        "type": "signalRConnectionInfo",
        "direction": "IN",
        "userId": "{userId}",
        **SIGNALR,
    }


@pytest.mark.parametrize("name", ["JoinRoom", "LeaveRoom"])
def test_group_functions_write_signalr(app_module, name):
    out = bindings(table(app_module.app)[name])["actions"]
    assert out == {"name": "actions", "type": "signalR", "direction": "OUT", **SIGNALR}


def test_feed_trigger(app_module):
    feed = table(app_module.app)["FeedToSignalR"]
    trigger = bindings(feed)["documents"]
    assert trigger == {
        "name": "documents",
        "type": "cosmosDBTrigger",
        "direction": "IN",
        **COSMOS,
        "leaseContainerName": "leases",
        "createLeaseContainerIfNotExists": False,
        "feedPollDelay": 500,
        # Only for a lease without a checkpoint: the stack's first start (docs/api.md "FeedToSignalR").
        "startFromBeginning": True,
    }
    assert bindings(feed)["signalr"] == {"name": "signalr", "type": "signalR", "direction": "OUT", **SIGNALR}
    assert "$return" not in bindings(feed)


def test_feed_retry_policy_rides_out_minutes_not_forever(app_module):
    """The trigger itself never retries a failed batch; this policy does (docs/reliability.md "Delivery
    contract" has the window's arithmetic). The worker reads these raw strings: int() and %H:%M:%S."""
    fn = next(f for f in app_module.app.get_functions() if f.get_function_name() == "FeedToSignalR")
    policy = fn.get_settings_dict("retry_policy")
    assert {k: v for k, v in policy.items() if v is not None} == {
        "setting_name": "retry_policy",
        "strategy": "exponential_backoff",
        "max_retry_count": "10",
        "minimum_interval": "00:00:01",
        "maximum_interval": "00:00:30",
    }
    functions = app_module.app.get_functions()
    retried = {f.get_function_name() for f in functions if f.get_settings_dict("retry_policy")}
    assert retried == {"FeedToSignalR"}  # HTTP triggers do not support retry policies


def test_fileserver_declares_its_targets_outputs_and_no_input(app_module):
    """An input binding would be resolved on every FileServer request, static files included; targets that
    need one are called over HTTP (test_proxies.py)."""
    fileserver = bindings(table(app_module.app)["z_FileServer"])
    for name in ("SaveChat", "JoinRoom", "LeaveRoom"):
        for arg, binding in bindings(table(app_module.app)[name]).items():
            if binding["type"] not in ("httpTrigger", "http"):
                assert fileserver[arg] == binding, f"FileServer must declare {name}'s {arg} identically"
    assert [b["type"] for b in fileserver.values() if b["direction"] == "IN"] == ["httpTrigger"]


def test_handler_parameters_are_exactly_the_bindings(app_module):
    """The worker refuses to load a function whose parameters differ from its bindings."""
    for fn in app_module.app.get_functions():
        params = set(inspect.signature(fn.get_user_function()).parameters) - {"context"}  # the worker's
        names = {b.name for b in fn.get_bindings() if b.name != "$return"}
        assert params == names, fn.get_function_name()


def test_get_functions_can_be_called_again(app_module):
    # azure-functions 1.26 alone raises on the second call; the worker and FileServer both call it.
    assert len(app_module.app.get_functions()) == len(app_module.app.get_functions()) == 9


def test_requirements_are_runtime_only():
    lines = [
        line.split("==")[0].strip().lower()
        for line in (FUNCTIONS / "requirements.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert "azure-functions" in lines
    assert not {"pytest", "hypothesis", "ruff", "azure-functions-worker"} & set(lines)


def test_requirements_have_no_http_streams():
    """HTTP streams send the response before the outputs are stored (docs/parity.md): the app must not pull
    the extension (or its FastAPI stack) into the worker, where importing it alone turns streams on."""
    text = (FUNCTIONS / "requirements.txt").read_text().lower()
    for package in ("azurefunctions-extensions-http-fastapi", "fastapi", "uvicorn", "pydantic", "starlette"):
        assert package not in text


def azure_route_table(app) -> list[tuple[str, RouteTemplate, frozenset[str] | None]]:
    """Azure's route table: HTTP functions by name, ordinal ignore case (azure-functions-host
    FunctionMetadataManager.cs), each route with its method constraint; the first match wins."""
    rows = []
    for fn in sorted(app.get_functions(), key=lambda f: f.get_function_name().upper()):
        if fn.is_http_function():
            trigger = http(json.loads(fn.get_function_json()))
            methods = trigger.get("methods")
            rows.append(
                (
                    fn.get_function_name(),
                    RouteTemplate.parse(trigger["route"]),
                    frozenset(m.upper() for m in methods) if methods else None,
                )
            )
    return rows


def first_match(rows, method: str, path: str) -> str | None:
    segments = split_path(path)
    for name, template, methods in rows:
        if (methods is None or method in methods) and template.match(segments) is not None:
            return name
    return None


def test_under_azures_route_order_every_function_gets_its_own_requests(app_module):
    rows = azure_route_table(app_module.app)
    assert rows[-1][0] == "z_FileServer"  # the catch-all sorts last
    for name, template, methods in rows[:-1]:
        for method in sorted(methods or {"GET", "POST"}):
            path = "/" + template.sample_path()
            assert first_match(rows, method, path) == name, f"{method} {path} would not reach {name} in Azure"


def test_under_azures_route_order_the_catch_all_gets_only_what_no_function_serves(app_module):
    rows = azure_route_table(app_module.app)
    proxies = json.loads((FUNCTIONS / "proxies.json").read_text())["proxies"]
    for proxy in proxies.values():
        path = "/" + RouteTemplate.parse(proxy["matchCondition"]["route"]).sample_path()
        for method in proxy["matchCondition"].get("methods") or ["GET"]:
            assert first_match(rows, method.upper(), path) == "z_FileServer", (method, path)
    # A method an API route does not accept falls through to the catch-all, which answers 405 (not 404).
    assert first_match(rows, "GET", "/api/negotiate") == "z_FileServer"
    assert first_match(rows, "DELETE", "/api/rooms/general/messages") == "z_FileServer"
    assert not any(template.text.lower().startswith(("admin", "runtime")) for _, template, _ in rows)


def test_the_name_order_would_shadow_the_api_if_the_catch_all_sorted_first(app_module):
    """The negative control: under the old name, FileServer sorts before History and takes its requests."""
    renamed = {"z_FileServer": "FileServer"}
    rows = [(renamed.get(n, n), t, m) for n, t, m in azure_route_table(app_module.app)]
    rows.sort(key=lambda row: row[0].upper())
    assert first_match(rows, "GET", "/api/rooms/general/messages") == "FileServer"
    assert first_match(rows, "POST", "/api/negotiate") == "FileServer"
