"""A local stand-in for a Flex app's SCM (Kudu) publish API and its site, as a real aiohttp server.

Scripted per test: what each POST /api/publish answers, the statuses a deployment goes through, its log, and
what the site answers to the probe. Records every request so tests can check what the client sent.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from aiohttp import web

TOKEN = "test-arm-token"


def fake_token() -> str:
    """Token source for providers pickled into another process (a module-level function pickles by name)."""
    return TOKEN


@dataclass
class Script:
    publish_failures: list[tuple[int, str]] = field(default_factory=list)  # answered before the 202
    statuses: list[int] = field(default_factory=lambda: [1, 1, 4])  # per poll; the last one repeats
    probe_failures: int = 0  # probe answers 503 this many times, then 200
    log: list[dict] = field(default_factory=list)
    details: list[dict] = field(default_factory=list)


@dataclass
class Recorded:
    publishes: list[dict] = field(default_factory=list)
    polls: int = 0
    probes: int = 0
    unauthorised: int = 0


class FakeKudu:
    def __init__(self, script: Script | None = None) -> None:
        self.script = script or Script()
        self.seen = Recorded()
        self.deployments = 0
        self.app = web.Application(client_max_size=64 * 1024 * 1024)
        self.app.router.add_post("/api/publish", self.publish)
        self.app.router.add_get("/api/deployments/{id}", self.deployment)
        self.app.router.add_get("/api/deployments/{id}/log", self.log)
        self.app.router.add_get("/api/deployments/{id}/log/{entry}", self.details)
        self.app.router.add_get("/api/rooms/{room}/messages", self.messages)
        self.base_url = ""

    def _authorised(self, request: web.Request) -> bool:
        ok = request.headers.get("Authorization") == f"Bearer {TOKEN}"
        if not ok:
            self.seen.unauthorised += 1
        return ok

    async def publish(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.seen.publishes.append(
            {
                "query": dict(request.query),
                "content_type": request.headers.get("Content-Type"),
                "authorization": request.headers.get("Authorization"),
                "sha256": hashlib.sha256(body).hexdigest(),
            }
        )
        if not self._authorised(request):
            return web.Response(status=401, text="no token")
        if self.script.publish_failures:
            status, text = self.script.publish_failures.pop(0)
            return web.Response(status=status, text=text)
        self.deployments += 1
        self._poll_index = 0
        deployment_id = f"dep-{self.deployments}"
        return web.Response(
            status=202,
            text=deployment_id,
            headers={"Location": f"{self.base_url}/api/deployments/{deployment_id}"},
        )

    async def deployment(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return web.Response(status=401)
        self.seen.polls += 1
        statuses = self.script.statuses
        status = statuses[min(self._poll_index, len(statuses) - 1)]
        self._poll_index += 1
        return web.json_response(
            {
                "id": request.match_info["id"],
                "status": status,
                "status_text": {1: "Building", 3: "Failed", 4: "Success"}.get(status, ""),
                "complete": status in (3, 4),
            }
        )

    async def log(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return web.Response(status=401)
        entries = []
        for index, entry in enumerate(self.script.log):
            entry = dict(entry)
            if entry.pop("with_details", False):
                entry["details_url"] = (
                    f"{self.base_url}/api/deployments/{request.match_info['id']}/log/{index}"
                )
            entries.append(entry)
        return web.json_response(entries)

    async def details(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return web.Response(status=401)
        return web.json_response(self.script.details)

    async def messages(self, request: web.Request) -> web.Response:
        self.seen.probes += 1
        if self.script.probe_failures > 0:
            self.script.probe_failures -= 1
            return web.Response(status=503, text="host starting")
        return web.json_response({"messages": []})


async def start(fake: FakeKudu) -> web.AppRunner:
    runner = web.AppRunner(fake.app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    fake.base_url = f"http://127.0.0.1:{port}"
    return runner


@contextmanager
def running_in_thread(fake: FakeKudu) -> Iterator[FakeKudu]:
    """Serve from a background loop, for code that runs its own asyncio.run (the dynamic provider)."""
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    holder: dict = {}

    def serve() -> None:
        asyncio.set_event_loop(loop)
        holder["runner"] = loop.run_until_complete(start(fake))
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    assert ready.wait(10), "fake SCM server did not start"
    try:
        yield fake
    finally:
        asyncio.run_coroutine_threadsafe(holder["runner"].cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
