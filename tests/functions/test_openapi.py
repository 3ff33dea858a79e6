"""functions/openapi.yaml describes exactly the routes the app serves, with the limits the code enforces."""

from __future__ import annotations

import re

import yaml
from chat import validation
from functions_testkit import FUNCTIONS
from proxies import config

HTTP_METHODS = {"get", "post", "put", "patch", "delete", "options", "head", "trace"}


def spec() -> dict:
    return yaml.safe_load((FUNCTIONS / "openapi.yaml").read_text())


def normalise(route: str) -> str:
    """Route templates and OpenAPI paths in one spelling: leading slash, `{*path}` written `{path}`."""
    route = "/" + route.strip("/")
    return re.sub(r"\{\*?([A-Za-z_]+)[^}]*\}", r"{\1}", route)


def app_operations(app) -> set[tuple[str, str]]:
    ops: set[tuple[str, str]] = set()
    for fn in app.get_functions():
        trigger = fn.get_trigger()
        if not fn.is_http_function() or fn.get_function_name() == "z_FileServer":
            continue
        for method in trigger.methods:
            ops.add((str(getattr(method, "value", method)).lower(), normalise(trigger.route)))
    for proxy in config.load():
        for method in proxy.methods or ():
            if method != "HEAD":
                ops.add((method.lower(), normalise(proxy.route.template)))
    return ops


def test_openapi_is_3_1():
    assert spec()["openapi"].startswith("3.1")


def test_every_route_in_the_spec_exists_in_the_app_and_vice_versa(app_module):
    documented = {
        (method, path) for path, item in spec()["paths"].items() for method in item if method in HTTP_METHODS
    }
    assert documented == app_operations(app_module.app)


def test_operation_ids_name_the_functions(app_module):
    ids = {
        op["operationId"] for item in spec()["paths"].values() for m, op in item.items() if m in HTTP_METHODS
    }
    assert {"SaveChat", "History", "SignalRConfiguration", "JoinRoom", "LeaveRoom"} <= ids


def test_documented_limits_are_the_enforced_ones():
    components = spec()["components"]
    new = components["schemas"]["NewMessage"]["properties"]
    assert new["user"]["maxLength"] == validation.MAX_USER
    assert new["text"]["maxLength"] == validation.MAX_TEXT
    room = components["parameters"]["Room"]["schema"]["pattern"]
    assert room == "^" + validation.ROOM_RE.pattern + "$"
    limit = spec()["paths"]["/api/rooms/{room}/messages"]["get"]["parameters"][0]["schema"]
    assert (limit["minimum"], limit["maximum"], limit["default"]) == (
        1,
        validation.MAX_LIMIT,
        validation.DEFAULT_LIMIT,
    )
    assert set(components["schemas"]["Message"]["required"]) == {"id", "room", "user", "text", "createdAt"}
    assert set(components["schemas"]["Error"]["properties"]["error"]["required"]) == {
        "code",
        "message",
        "field",
    }


def test_the_hosts_body_limit_is_documented_as_deployed():
    from infra.app import REQUEST_BODY_LIMIT

    described = spec()["components"]["responses"]["HostBodyLimit"]["description"]
    assert f"{REQUEST_BODY_LIMIT:,} bytes" in described
    posts = [op for path in spec()["paths"].values() for method, op in path.items() if method == "post"]
    with_body = [op for op in posts if "requestBody" in op]
    assert with_body and all("500" in op["responses"] for op in with_body)
