"""The floor: the least a server on the same libraries (aiohttp) must do to be this chat.

It answers the chat's own client flow — `POST /api/identities` → `{id, token}`,
`POST /api/negotiate/{userId}` → `{url, accessToken}`, the SignalR negotiate, a WebSocket with the JSON hub
handshake, `POST /api/rooms/{room}/join` (the caller's connections, by its `Authorization`) — so the very
same load generator drives it. Its identities are unsigned (`floor.<id>`): no HMAC, no rate limit.
`POST /api/rooms/{room}/messages` builds the message document as SaveChat does (id, room, user, authorId,
text, createdAt), serialises the `newMessage` invocation once and writes it
to every socket of the room, then answers 201. No storage, no change feed, no SignalR service hop,
no validation beyond JSON: whatever the real stack costs above this is the price of durability and
of the serverless split.

    python -m bench.e2e_floor --port 7171
"""

from __future__ import annotations

import argparse
import asyncio
import json
import uuid
from datetime import UTC, datetime

from aiohttp import web

HANDSHAKE_OK = "{}\x1e"


def _caller(request: web.Request) -> str:
    return request.headers.get("Authorization", "").rpartition("floor.")[2]


class Floor:
    def __init__(self) -> None:
        self.connections: dict[str, web.WebSocketResponse] = {}
        self.users: dict[str, set[web.WebSocketResponse]] = {}
        self.rooms: dict[str, set[web.WebSocketResponse]] = {}

    async def identity(self, request: web.Request) -> web.Response:
        user = uuid.uuid4().hex
        return web.json_response({"id": user, "token": f"floor.{user}"}, status=201)

    async def negotiate(self, request: web.Request) -> web.Response:
        user = request.match_info["user"]
        if _caller(request) != user:
            return web.json_response({"error": "wrong identity"}, status=403)
        host = request.host
        return web.json_response({"url": f"http://{host}/client/?hub=chat", "accessToken": user})

    async def signalr_negotiate(self, request: web.Request) -> web.Response:
        cid = uuid.uuid4().hex
        return web.json_response(
            {
                "connectionId": cid,
                "connectionToken": cid,
                "negotiateVersion": 1,
                "availableTransports": [{"transport": "WebSockets", "transferFormats": ["Text"]}],
            }
        )

    async def connect(self, request: web.Request) -> web.StreamResponse:
        cid = request.query.get("id", "")
        user = request.query.get("access_token", "")
        ws = web.WebSocketResponse(compress=False, max_msg_size=1 << 16)
        await ws.prepare(request)
        try:
            first = await ws.receive_str()
            if not first.startswith('{"protocol":"json"'):
                await ws.send_str('{"error":"Only the JSON protocol is supported."}\x1e')
                return ws
            await ws.send_str(HANDSHAKE_OK)
            self.connections[cid] = ws
            self.users.setdefault(user, set()).add(ws)
            async for _ in ws:  # pings; nothing to answer
                pass
        finally:
            self.connections.pop(cid, None)
            self.users.get(user, set()).discard(ws)
            for members in self.rooms.values():
                members.discard(ws)
        return ws

    async def join(self, request: web.Request) -> web.Response:
        sockets = self.users.get(_caller(request))
        if not sockets:
            return web.json_response({"error": "not connected"}, status=404)
        self.rooms.setdefault(request.match_info["room"], set()).update(sockets)
        return web.Response(status=202)

    async def post(self, request: web.Request) -> web.Response:
        room = request.match_info["room"]
        body = await request.json()
        now = datetime.now(UTC)
        created = now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"
        doc = {
            "id": body.get("id") or str(uuid.uuid4()),
            "room": room,
            "user": body["user"],
            "authorId": _caller(request),
            "text": body["text"],
            "createdAt": created,
        }
        record = (
            json.dumps({"type": 1, "target": "newMessage", "arguments": [doc]}, separators=(",", ":"))
            + "\x1e"
        )
        for ws in list(self.rooms.get(room, ())):
            if not ws.closed:
                await ws.send_str(record)
        return web.json_response(doc, status=201)


def make_app() -> web.Application:
    floor = Floor()
    app = web.Application()
    app.router.add_post("/api/identities", floor.identity)
    app.router.add_post("/api/negotiate/{user}", floor.negotiate)
    app.router.add_post("/client/negotiate", floor.signalr_negotiate)
    app.router.add_get("/client/", floor.connect)
    app.router.add_post("/api/rooms/{room}/join", floor.join)
    app.router.add_post("/api/rooms/{room}/messages", floor.post)
    return app


async def serve(port: int) -> None:
    from bench.e2e_clients import raise_fd_limit

    raise_fd_limit()
    runner = web.AppRunner(make_app(), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port, backlog=4096).start()
    print(f"floor listening on http://127.0.0.1:{port}", flush=True)
    await asyncio.Event().wait()


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.e2e_floor", description=__doc__.splitlines()[0])
    p.add_argument("--port", type=int, required=True)
    asyncio.run(serve(p.parse_args().port))


if __name__ == "__main__":
    main()
