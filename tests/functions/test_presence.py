"""JoinRoom/LeaveRoom ask the SignalR service whether the caller's user has a live connection before they set
the output binding: against a real SignalR emulator, with a real client connection."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import aiohttp
import azure.functions as func
import pytest
from functions_testkit import Out, body_json, request

from emulators.signalr import WELL_KNOWN_ACCESS_KEY, Emulator, start
from emulators.signalr.service_client import ServiceClient

RECORD_SEPARATOR = "\x1e"


@pytest.fixture
async def signalr(free_port: int, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Emulator]:
    emu = await start(host="127.0.0.1", port=free_port, key=WELL_KNOWN_ACCESS_KEY)
    monkeypatch.setenv("AzureSignalRConnectionString", emu.connection_string)
    yield emu
    await emu.close()


class Connected:
    """One real client connection (negotiate, WebSocket, JSON handshake), closed on exit."""

    def __init__(self, emu: Emulator, user_id: str) -> None:
        self.emu = emu
        self.user_id = user_id
        self.connection_id = ""

    async def __aenter__(self) -> Connected:
        async with ServiceClient(self.emu.connection_string) as service:
            info = service.client_connection_info("chat", user_id=self.user_id)
        self.http = aiohttp.ClientSession(headers={"Authorization": f"Bearer {info['accessToken']}"})
        url = urlsplit(info["url"])
        base = f"{url.scheme}://{url.netloc}{url.path.rstrip('/')}"
        async with self.http.post(f"{base}/negotiate?{url.query}&negotiateVersion=1") as r:
            negotiated = await r.json()
        self.connection_id = negotiated["connectionId"]
        ws_url = f"{base.replace('http', 'ws', 1)}?{url.query}&id={negotiated['connectionToken']}"
        self.ws = await self.http.ws_connect(ws_url)
        await self.ws.send_str(json.dumps({"protocol": "json", "version": 1}) + RECORD_SEPARATOR)
        assert (await self.ws.receive_str()) == "{}" + RECORD_SEPARATOR
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.ws.close()
        await self.http.close()


def group_request(room: str, caller: tuple[str, str]) -> func.HttpRequest:
    headers = {"Content-Type": "application/json", "Authorization": caller[1]}
    return request("POST", f"/api/rooms/{room}/join", {}, route_params={"room": room}, headers=headers)


@pytest.mark.parametrize(("function", "action"), [("join_room", "add"), ("leave_room", "remove")])
async def test_a_connected_caller_gets_its_group_action(app_module, signalr, store, caller, function, action):
    async with Connected(signalr, caller[0]):
        out: Out[str] = Out()
        response = await getattr(app_module, function)(group_request("lobby", caller), out)
    assert response.status_code == 202
    assert json.loads(out.value) == [{"action": action, "groupName": "lobby", "userId": caller[0]}]


@pytest.mark.parametrize("function", ["join_room", "leave_room"])
async def test_a_caller_without_a_live_connection_is_a_404(app_module, signalr, store, caller, function):
    """Someone else's live connection does not count: only the caller's own user id is asked about."""
    async with Connected(signalr, caller[0]):
        pass  # connected, then gone
    async with Connected(signalr, "someone-else"):
        out: Out[str] = Out()
        response = await getattr(app_module, function)(group_request("lobby", caller), out)
    assert response.status_code == 404
    assert body_json(response)["error"] == {
        "code": "not_connected",
        "message": "this identity has no live SignalR connection: negotiate and connect first",
        "field": "Authorization",
    }
    assert out.calls == 0  # nothing for the binding to do


async def test_a_wrong_key_is_not_taken_for_a_missing_connection(
    app_module, signalr, store, caller, monkeypatch, caplog
):
    """The service refuses a token signed with another key (401): that is "cannot ask", not "unknown", so
    the binding decides, and the log says why."""
    monkeypatch.setenv(
        "AzureSignalRConnectionString", signalr.connection_string.replace(WELL_KNOWN_ACCESS_KEY, "k" * 44)
    )
    out: Out[str] = Out()
    with caplog.at_level(logging.WARNING, logger="chat.handlers"):
        response = await app_module.join_room(group_request("lobby", caller), out)
    assert response.status_code == 202 and out.calls == 1
    assert "connection check skipped: the SignalR service answered 401" in caplog.text


async def test_an_unreachable_service_leaves_the_decision_to_the_binding(
    app_module, store, caller, free_port, monkeypatch, caplog
):
    monkeypatch.setenv(
        "AzureSignalRConnectionString",
        f"Endpoint=http://127.0.0.1;Port={free_port};AccessKey={WELL_KNOWN_ACCESS_KEY};Version=1.0;",
    )
    out: Out[str] = Out()
    with caplog.at_level(logging.WARNING, logger="chat.handlers"):
        response = await app_module.leave_room(group_request("lobby", caller), out)
    assert response.status_code == 202 and out.calls == 1
    assert "could not be reached: ClientConnectorError" in caplog.text
