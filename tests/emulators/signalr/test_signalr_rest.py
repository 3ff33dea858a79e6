"""The data-plane REST API: auth, both route families, group and user semantics, limits, CORS."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import jwt
import pytest
from signalr_helpers import RawClient

from emulators.signalr import WELL_KNOWN_ACCESS_KEY, Emulator
from emulators.signalr.service_client import ServiceClient

API = "api-version=2022-06-01"


def rest_token(aud: str, key: str = WELL_KNOWN_ACCESS_KEY, lifetime: int = 300, **claims: Any) -> str:
    now = int(time.time())
    return jwt.encode(
        {"aud": aud, "iat": now, "exp": now + lifetime, **claims}, key.encode(), algorithm="HS256"
    )


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


class Rest:
    """Signs each request for its own URL the way the SDK does (aud = URL without port)."""

    def __init__(self, emulator: Emulator, http: aiohttp.ClientSession) -> None:
        self.emulator, self.http = emulator, http

    async def __call__(
        self,
        method: str,
        path: str,
        body: Any = None,
        token: str | None = None,
        headers: dict[str, str] | None = None,
        data: bytes | None = None,
    ) -> aiohttp.ClientResponse:
        url = self.emulator.url + path
        if token is None:
            token = rest_token(f"http://127.0.0.1{path}")
        all_headers = {"Authorization": f"Bearer {token}", **(headers or {})}
        response = await self.http.request(method, url, json=body, data=data, headers=all_headers)
        await response.read()
        return response


@pytest.fixture
def rest(emulator: Emulator, http: aiohttp.ClientSession) -> Rest:
    return Rest(emulator, http)


@pytest.fixture
async def clients(emulator: Emulator, service: ServiceClient) -> AsyncIterator[dict[str, RawClient]]:
    """Three connected clients: ann (user ann), ann2 (user ann, second device), ben (user ben)."""
    made = {
        "ann": await RawClient.connect(
            emulator.url, service.client_connection_info("chat", "ann")["accessToken"]
        ),
        "ann2": await RawClient.connect(
            emulator.url, service.client_connection_info("chat", "ann")["accessToken"]
        ),
        "ben": await RawClient.connect(
            emulator.url, service.client_connection_info("chat", "ben")["accessToken"]
        ),
    }
    yield made
    for client in made.values():
        await client.close()


async def _received(client: RawClient, timeout: float = 0.3) -> list[Any]:
    """Arguments of every invocation the client got within the timeout (0.3 s of silence ends it)."""
    out = []
    while True:
        try:
            message = await client.next(timeout)
        except TimeoutError:
            return out
        if message is None:
            return out
        out.append(message["arguments"])


# -- auth ------------------------------------------------------------------------------------


async def test_rest_auth_rules(rest: Rest) -> None:
    path = f"/api/hubs/chat/:send?{API}"
    body = {"target": "t", "arguments": []}
    assert (await rest("POST", path, body)).status == 202
    # the port may be present in aud as well
    port = rest.emulator.port
    assert (await rest("POST", path, body, token=rest_token(f"http://127.0.0.1:{port}{path}"))).status == 202
    wrong_key = rest_token(f"http://127.0.0.1{path}", key="not-the-key-" * 4)
    expired = rest_token(f"http://127.0.0.1{path}", lifetime=-120)
    other_path = rest_token("http://127.0.0.1/api/hubs/other/:send")
    other_host = rest_token(f"http://example.com{path}")
    other_port = rest_token(f"http://127.0.0.1:{port + 1}{path}")
    for token in (wrong_key, expired, other_path, other_host, other_port, "not-a-jwt"):
        response = await rest("POST", path, body, token=token)
        assert response.status == 401, token
        assert "message" in await response.json()
    no_token = await rest.http.post(rest.emulator.url + path, json=body)
    assert no_token.status == 401
    assert rest.emulator.stats()["messages"]["in"] == 2


# -- routes and semantics -------------------------------------------------------------------------


async def test_broadcast_user_group_connection_in_both_route_families(
    rest: Rest, clients: dict[str, RawClient]
) -> None:
    ann, ann2, ben = clients["ann"], clients["ann2"], clients["ben"]
    msg = {"target": "newMessage", "arguments": ["x"]}
    assert (await rest("POST", "/api/v1/hubs/chat", msg)).status == 202
    assert (await rest("POST", f"/api/hubs/Chat/:send?{API}", msg)).status == 202
    assert (await rest("POST", "/api/v1/hubs/CHAT/users/ann", {**msg, "arguments": ["ann"]})).status == 202
    assert (
        await rest("POST", f"/api/hubs/chat/users/ben/:send?{API}", {**msg, "arguments": ["ben"]})
    ).status == 202
    assert (await rest("PUT", f"/api/v1/hubs/chat/groups/g1/connections/{ben.connection_id}")).status == 200
    assert (await rest("POST", "/api/v1/hubs/chat/groups/g1", {**msg, "arguments": ["g1"]})).status == 202
    assert (
        await rest(
            "POST",
            f"/api/hubs/chat/connections/{ann2.connection_id}/:send?{API}",
            {**msg, "arguments": ["ann2"]},
        )
    ).status == 202
    assert (
        await rest(
            "POST",
            f"/api/hubs/chat/:send?{API}&excluded={ann.connection_id}&excluded={ben.connection_id}",
            {**msg, "arguments": ["not ann, not ben"]},
        )
    ).status == 202
    assert await _received(ann) == [["x"], ["x"], ["ann"]]
    assert await _received(ann2) == [["x"], ["x"], ["ann"], ["ann2"], ["not ann, not ben"]]
    assert await _received(ben) == [["x"], ["x"], ["ben"], ["g1"]]


async def test_group_and_user_membership(rest: Rest, clients: dict[str, RawClient]) -> None:
    ann, ann2, ben = clients["ann"], clients["ann2"], clients["ben"]
    assert (await rest("HEAD", f"/api/hubs/chat/groups/room?{API}")).status == 404
    # a user joins: all of the user's connections are in
    assert (await rest("PUT", f"/api/hubs/chat/users/ann/groups/room?{API}")).status == 200
    assert (await rest("HEAD", f"/api/hubs/chat/groups/room?{API}")).status == 200
    assert (await rest("HEAD", f"/api/hubs/chat/users/ann/groups/room?{API}")).status == 200
    assert (await rest("GET", "/api/v1/hubs/chat/groups/room/users/ann")).status == 200
    assert (await rest("HEAD", f"/api/hubs/chat/users/ben/groups/room?{API}")).status == 404
    assert (
        await rest("PUT", f"/api/hubs/chat/groups/room/connections/{ben.connection_id}?{API}")
    ).status == 200
    await rest("POST", f"/api/hubs/chat/groups/room/:send?{API}", {"target": "m", "arguments": [1]})
    assert await _received(ann) == await _received(ann2) == await _received(ben) == [[1]]
    # connection-level removal leaves the others
    assert (
        await rest("DELETE", f"/api/hubs/chat/groups/room/connections/{ann2.connection_id}?{API}")
    ).status == 200
    await rest("POST", f"/api/hubs/chat/groups/room/:send?{API}", {"target": "m", "arguments": [2]})
    assert await _received(ann) == [[2]] and await _received(ann2) == [] and await _received(ben) == [[2]]
    # user-level removal (v1 answers 202, 2022-06-01 answers 204)
    assert (await rest("DELETE", "/api/v1/hubs/chat/groups/room/users/ann")).status == 202
    assert (
        await rest("DELETE", f"/api/hubs/chat/connections/{ben.connection_id}/groups?{API}")
    ).status == 200
    assert (await rest("HEAD", f"/api/hubs/chat/groups/room?{API}")).status == 404
    # user in several groups, removed from all
    for group in ("a", "b"):
        assert (await rest("PUT", f"/api/v1/hubs/chat/groups/{group}/users/ben")).status == 202
    assert (await rest("DELETE", f"/api/hubs/chat/users/ben/groups?{API}")).status == 204
    for group in ("a", "b"):
        assert (await rest("HEAD", f"/api/hubs/chat/groups/{group}?{API}")).status == 404


async def test_user_group_ttl_expires(rest: Rest, clients: dict[str, RawClient]) -> None:
    assert (await rest("PUT", f"/api/hubs/chat/users/ben/groups/brief?ttl=1&{API}")).status == 200
    assert (await rest("HEAD", f"/api/hubs/chat/users/ben/groups/brief?{API}")).status == 200
    await asyncio.sleep(1.2)
    assert (await rest("HEAD", f"/api/hubs/chat/users/ben/groups/brief?{API}")).status == 404
    await rest("POST", f"/api/hubs/chat/groups/brief/:send?{API}", {"target": "m", "arguments": ["late"]})
    assert await _received(clients["ben"]) == []
    bad = await rest("PUT", f"/api/hubs/chat/users/ben/groups/brief?ttl=soon&{API}")
    assert bad.status == 400 and (await bad.json())["target"] == "ttl"


async def test_a_user_keeps_only_the_latest_100_groups_without_ttl(rest: Rest,
                                                                  clients: dict[str, RawClient]) -> None:
    """V20220601.json, AddUserToGroup `ttl`: "only the latest updated 100 groups will be reserved among all
    groups the user joined without TTL"; re-adding one makes it the latest."""
    for i in range(101):
        assert (await rest("PUT", f"/api/hubs/chat/users/ben/groups/g{i}?{API}")).status == 200
        if i == 50:
            assert (await rest("PUT", f"/api/hubs/chat/users/ben/groups/g0?{API}")).status == 200
    assert (await rest("HEAD", f"/api/hubs/chat/users/ben/groups/g0?{API}")).status == 200  # refreshed at 50
    assert (await rest("HEAD", f"/api/hubs/chat/users/ben/groups/g1?{API}")).status == 404  # the oldest: gone
    assert (await rest("HEAD", f"/api/hubs/chat/users/ben/groups/g100?{API}")).status == 200
    await rest("POST", f"/api/hubs/chat/groups/g1/:send?{API}", {"target": "m", "arguments": ["dropped"]})
    await rest("POST", f"/api/hubs/chat/groups/g2/:send?{API}", {"target": "m", "arguments": ["kept"]})
    assert await _received(clients["ben"]) == [["kept"]]


async def test_existence_checks_and_unknown_ids(rest: Rest, clients: dict[str, RawClient]) -> None:
    ann = clients["ann"]
    assert (await rest("HEAD", f"/api/hubs/chat/connections/{ann.connection_id}?{API}")).status == 200
    assert (await rest("GET", f"/api/v1/hubs/chat/connections/{ann.connection_id}")).status == 200
    assert (await rest("HEAD", f"/api/hubs/other/connections/{ann.connection_id}?{API}")).status == 404
    gone = await rest("HEAD", f"/api/hubs/chat/connections/nope?{API}")
    assert gone.status == 404 and gone.headers["x-ms-error-code"] == "Warning.Connection.NotExisted"
    assert (await rest("HEAD", f"/api/hubs/chat/users/ann?{API}")).status == 200
    nobody = await rest("GET", "/api/v1/hubs/chat/users/nobody")
    assert nobody.status == 404 and nobody.headers["x-ms-error-code"] == "Warning.User.NotExisted"
    # the x-ms-error-code the Management SDK reads: adding a gone connection is an expected 404
    for method, path, code in [
        ("PUT", "/api/v1/hubs/chat/groups/g/connections/nope", "Error.Connection.NotExisted"),
        ("DELETE", f"/api/hubs/chat/groups/g/connections/nope?{API}", "Warning.Connection.NotExisted"),
        ("DELETE", f"/api/hubs/chat/connections/nope?{API}", "Warning.Connection.NotExisted"),
        ("DELETE", f"/api/hubs/chat/connections/nope/groups?{API}", "Warning.Connection.NotExisted"),
    ]:
        response = await rest(method, path)
        assert response.status == 404, path
        assert (await response.json())["target"] == "connectionId"
        assert response.headers["x-ms-error-code"] == code, path
    # a send to an unknown connection is accepted, as the service does
    assert (
        await rest("POST", f"/api/hubs/chat/connections/nope/:send?{API}", {"target": "m", "arguments": []})
    ).status == 202
    assert (await rest("HEAD", "/api/v1/health")).status == 200
    assert (await rest("HEAD", f"/api/health?{API}")).status == 200


async def test_close_connection_and_close_group(rest: Rest, clients: dict[str, RawClient]) -> None:
    ann, ben = clients["ann"], clients["ben"]
    assert (
        await rest("DELETE", f"/api/hubs/chat/connections/{ann.connection_id}?reason=kicked&{API}")
    ).status == 200
    close = await ann.next()
    assert close == {"type": 7, "error": "kicked", "allowReconnect": True}
    assert await ann.next() is None  # then the socket closes
    assert (await rest("HEAD", f"/api/hubs/chat/connections/{ann.connection_id}?{API}")).status == 404
    assert (await rest("PUT", f"/api/hubs/chat/groups/g/connections/{ben.connection_id}?{API}")).status == 200
    assert (await rest("POST", f"/api/hubs/chat/groups/g/:closeConnections?{API}")).status == 204
    assert (await ben.next())["type"] == 7
    assert (await rest("HEAD", f"/api/hubs/chat/users/ann?{API}")).status == 200  # ann2 is untouched


async def test_bad_requests_name_the_field_and_change_nothing(
    rest: Rest, clients: dict[str, RawClient]
) -> None:
    cases = [
        ("POST", "/api/hubs/chat/:send", {"target": "m"}, 400, "api-version"),
        ("POST", f"/api/hubs/chat/:send?{API}", {"arguments": []}, 400, "target"),
        ("POST", f"/api/hubs/chat/:send?{API}", {"target": "m", "arguments": "x"}, 400, "arguments"),
        ("POST", f"/api/hubs/chat/:send?{API}", [1, 2], 400, "message"),
        ("POST", f"/api/hubs/9bad/:send?{API}", {"target": "m"}, 400, "hub"),
        ("PUT", f"/api/hubs/chat/users/u/groups/{'g' * 1025}?{API}", None, 400, "group"),
    ]
    for method, path, body, status, field in cases:
        response = await rest(method, path, body)
        assert response.status == status, path
        assert (await response.json())["target"] == field
    not_json = await rest("POST", f"/api/hubs/chat/:send?{API}", data=b"{nope", headers={"Content-Type": "x"})
    assert not_json.status == 400
    nan = await rest("POST", f"/api/hubs/chat/:send?{API}", data=b'{"target":"m","arguments":[NaN]}',
                     headers={"Content-Type": "application/json"})
    assert nan.status == 400
    assert (await rest("POST", f"/api/hubs/chat/nothing/here?{API}", {"target": "m"})).status == 404
    assert await _received(clients["ann"]) == []


async def test_body_over_one_megabyte_is_413(rest: Rest, clients: dict[str, RawClient]) -> None:
    big = {"target": "m", "arguments": ["x" * (1024 * 1024)]}
    response = await rest("POST", f"/api/hubs/chat/:send?{API}", big)
    assert response.status == 413
    just_under = {"target": "m", "arguments": ["y" * (1024 * 1024 - 100)]}
    assert (await rest("POST", f"/api/hubs/chat/:send?{API}", just_under)).status == 202
    got = await clients["ben"].next()
    assert got is not None and len(got["arguments"][0]) == 1024 * 1024 - 100


async def test_cors_reflects_origin_with_credentials(
    emulator: Emulator, http: aiohttp.ClientSession, service: ServiceClient
) -> None:
    origin = "http://localhost:7071"
    preflight = await http.options(
        f"{emulator.url}/client/negotiate?hub=chat&negotiateVersion=1",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,x-requested-with,x-signalr-user-agent",
        },
    )
    assert preflight.status == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == origin
    assert preflight.headers["Access-Control-Allow-Credentials"] == "true"
    assert "x-signalr-user-agent" in preflight.headers["Access-Control-Allow-Headers"]
    assert "POST" in preflight.headers["Access-Control-Allow-Methods"]
    token = service.client_connection_info("chat")["accessToken"]
    negotiate = await http.post(
        f"{emulator.url}/client/negotiate?hub=chat&negotiateVersion=1",
        headers={"Origin": origin, "Authorization": f"Bearer {token}"},
    )
    assert negotiate.status == 200
    assert negotiate.headers["Access-Control-Allow-Origin"] == origin
    assert negotiate.headers["Access-Control-Allow-Credentials"] == "true"
    refused = await http.post(f"{emulator.url}/client/negotiate?hub=chat", headers={"Origin": origin})
    assert refused.status == 401
    assert refused.headers["Access-Control-Allow-Origin"] == origin  # so the browser can read the 401


async def test_stats_endpoint(
    emulator: Emulator, http: aiohttp.ClientSession, rest: Rest, clients: dict[str, RawClient]
) -> None:
    await rest("PUT", f"/api/hubs/chat/users/ann/groups/room?{API}")
    await rest("POST", f"/api/hubs/chat/:send?{API}", {"target": "m", "arguments": []})
    async with http.get(f"{emulator.url}/stats") as response:
        stats = await response.json()
    assert stats["connections"] == {"total": 3, "WebSockets": 3, "ServerSentEvents": 0, "LongPolling": 0}
    assert stats["groups"] == 1
    assert stats["messages"] == {"in": 1, "out": 3}
    assert stats["drops"] == 0
    assert stats["hubs"]["chat"] == {"connections": 3, "users": 2, "groups": 1}


async def test_application_prefixes_the_hub(rest: Rest, emulator: Emulator, service: ServiceClient) -> None:
    client = await RawClient.connect(
        emulator.url, service.client_connection_info("myapp_chat")["accessToken"], hub="myapp_chat"
    )
    try:
        assert (
            await rest(
                "POST", f"/api/hubs/chat/:send?application=MyApp&{API}", {"target": "m", "arguments": ["app"]}
            )
        ).status == 202
        assert (
            await rest("POST", f"/api/hubs/chat/:send?{API}", {"target": "m", "arguments": ["no app"]})
        ).status == 202
        assert await _received(client) == [["app"]]
    finally:
        await client.close()


async def test_every_operation_and_status_in_both_route_families(
    rest: Rest, clients: dict[str, RawClient]
) -> None:
    """Each documented operation of v1 and 2022-06-01, in order, with the status its swagger names."""
    ann, ben = clients["ann"].connection_id, clients["ben"].connection_id
    msg = {"target": "m", "arguments": []}
    v1, v2 = "/api/v1/hubs/chat", "/api/hubs/chat"

    def q(path: str) -> str:
        return f"{path}{'&' if '?' in path else '?'}{API}"

    steps: list[tuple[str, str, Any, int]] = [
        # v1
        ("POST", v1, msg, 202),
        ("POST", f"{v1}/users/ann", msg, 202),
        ("POST", f"{v1}/groups/g1", msg, 202),
        ("POST", f"{v1}/groups/g1?excluded={ann}", msg, 202),
        ("POST", f"{v1}/connections/{ann}", msg, 202),
        ("GET", f"{v1}/connections/{ann}", None, 200),
        ("HEAD", f"{v1}/connections/{ann}", None, 200),
        ("HEAD", f"{v1}/connections/nope", None, 404),
        ("HEAD", f"{v1}/users/ann", None, 200),
        ("GET", f"{v1}/users/nobody", None, 404),
        ("HEAD", f"{v1}/groups/g1", None, 404),
        ("PUT", f"{v1}/groups/g1/connections/{ann}", None, 200),
        ("GET", f"{v1}/groups/g1", None, 200),
        ("PUT", f"{v1}/groups/g1/connections/nope", None, 404),
        ("DELETE", f"{v1}/groups/g1/connections/{ann}", None, 200),
        ("DELETE", f"{v1}/groups/g1/connections/nope", None, 404),
        ("HEAD", f"{v1}/groups/g1", None, 404),
        ("PUT", f"{v1}/groups/g1/users/ben", None, 202),
        ("GET", f"{v1}/groups/g1/users/ben", None, 200),
        ("HEAD", f"{v1}/groups/g1/users/ben", None, 200),
        ("DELETE", f"{v1}/groups/g1/users/ben", None, 202),
        ("HEAD", f"{v1}/groups/g1/users/ben", None, 404),
        ("PUT", f"{v1}/groups/g2/users/ben", None, 202),
        ("DELETE", f"{v1}/users/ben/groups", None, 202),
        ("HEAD", f"{v1}/groups/g2", None, 404),
        ("DELETE", f"{v1}/connections/nope", None, 404),
        ("HEAD", "/api/v1/health", None, 200),
        # 2022-06-01
        ("POST", q(f"{v2}/:send"), msg, 202),
        ("POST", q(f"{v2}/users/ann/:send"), msg, 202),
        ("POST", q(f"{v2}/groups/g3/:send?excluded={ann}"), msg, 202),
        ("POST", q(f"{v2}/connections/{ann}/:send"), msg, 202),
        ("HEAD", q(f"{v2}/connections/{ann}"), None, 200),
        ("HEAD", q(f"{v2}/connections/nope"), None, 404),
        ("HEAD", q(f"{v2}/users/ben"), None, 200),
        ("HEAD", q(f"{v2}/users/nobody"), None, 404),
        ("PUT", q(f"{v2}/groups/g3/connections/{ann}"), None, 200),
        ("HEAD", q(f"{v2}/groups/g3"), None, 200),
        ("DELETE", q(f"{v2}/groups/g3/connections/{ann}"), None, 200),
        ("PUT", q(f"{v2}/groups/g3/connections/nope"), None, 404),
        ("PUT", q(f"{v2}/users/ben/groups/g3"), None, 200),
        ("HEAD", q(f"{v2}/users/ben/groups/g3"), None, 200),
        ("DELETE", q(f"{v2}/users/ben/groups/g3"), None, 204),
        ("HEAD", q(f"{v2}/users/ben/groups/g3"), None, 404),
        ("PUT", q(f"{v2}/users/ben/groups/g4"), None, 200),
        ("DELETE", q(f"{v2}/users/ben/groups"), None, 204),
        ("HEAD", q(f"{v2}/groups/g4"), None, 404),
        ("PUT", q(f"{v2}/groups/g5/connections/{ben}"), None, 200),
        ("DELETE", q(f"{v2}/connections/{ben}/groups"), None, 200),
        ("HEAD", q(f"{v2}/groups/g5"), None, 404),
        ("DELETE", q(f"{v2}/connections/nope/groups"), None, 404),
        ("DELETE", q(f"{v2}/connections/nope"), None, 404),
        ("HEAD", q("/api/health"), None, 200),
    ]
    for method, path, body, status in steps:
        assert (await rest(method, path, body)).status == status, (method, path)
    # the closing operations, each observed by the clients it names
    assert (await rest("DELETE", f"{v1}/connections/{ben}")).status == 202
    assert await _close_reason(clients["ben"]) == ""
    assert (await rest("POST", q(f"{v2}/users/ann/:closeConnections?excluded={ann}&reason=r1"))).status == 204
    assert await _close_reason(clients["ann2"]) == "r1"
    assert (await rest("HEAD", q(f"{v2}/connections/{ann}"))).status == 200  # excluded
    assert (await rest("POST", q(f"{v2}/:closeConnections?reason=r2"))).status == 204
    assert await _close_reason(clients["ann"]) == "r2"
    assert (await rest("HEAD", q(f"{v2}/users/ann"))).status == 404
    token = jwt.encode(
        {"aud": "http://127.0.0.1/client/?hub=chat", "exp": int(time.time()) + 300},
        WELL_KNOWN_ACCESS_KEY.encode(), algorithm="HS256")
    again = await RawClient.connect(rest.emulator.url, token)
    try:
        assert (await rest("DELETE", q(f"{v2}/connections/{again.connection_id}"))).status == 200
        assert await _close_reason(again) == ""
    finally:
        await again.close()


async def _close_reason(client: RawClient) -> str | None:
    """Skip deliveries up to the Close message; its error ('' if none), None if the socket just ended."""
    while (message := await client.next()) is not None:
        if message["type"] == 7:
            assert message.get("allowReconnect") is True, message
            return message.get("error", "")
    return None


async def test_hubs_named_only_by_rest_calls_do_not_pile_up(rest: Rest, emulator: Emulator) -> None:
    for n in range(20):
        assert (await rest("POST", f"/api/hubs/h{n}/:send?{API}", {"target": "m"})).status == 202
        assert (await rest("HEAD", f"/api/hubs/h{n}/users/u?{API}")).status == 404
    assert emulator.state.hubs == {}
    assert (await rest("PUT", f"/api/hubs/kept/users/u/groups/g?{API}")).status == 200  # state to keep
    assert list(emulator.state.hubs) == ["kept"]
    assert (await rest("DELETE", f"/api/hubs/kept/users/u/groups?{API}")).status == 204
    assert emulator.state.hubs == {}
