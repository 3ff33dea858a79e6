"""The chat in Debian's Chromium, driven by Playwright, against the whole local stack.

Two pages chat in one room, a third page in another room sees nothing of it, user text with HTML
and script is shown as text, pages forced to Long Polling and to Server-Sent Events still chat, and
a screenshot of the chat is saved under test-artifacts/."""

from __future__ import annotations

import json
import os

import pytest
from e2e_helpers import ROOT, fresh_room, settle

CHROMIUM = "/usr/bin/chromium"
INSTALL = "apt-get install -y chromium"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = ROOT / "test-artifacts"
EVIL_NAME = '<img src=x onerror=alert(1)>'  # 28 characters: a valid display name
EVIL_TEXT = "<script>window.__pwned=2</script><b>bold?</b> & ✨"

pytestmark = pytest.mark.browser


@pytest.fixture
async def browser():
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"Chromium is missing at {CHROMIUM}: install it with `{INSTALL}` (as root), "
                    "or run `make test`, which does so where it can")
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        # Playwright gives every launch a fresh temporary --user-data-dir and adds --headless itself.
        b = await pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        try:
            yield b
        finally:
            await b.close()


class ChatPage:
    """One person in one browser context (own localStorage), optionally on a forced transport."""

    def __init__(self, page, name: str) -> None:
        self.page = page
        self.name = name
        self.websockets: list[str] = []
        self.event_streams: list[str] = []
        self.dialogs: list[str] = []
        page.on("websocket", lambda ws: self.websockets.append(ws.url))
        page.on("request", self._on_request)
        page.on("dialog", self._on_dialog)

    def _on_request(self, request) -> None:
        if "text/event-stream" in (request.headers.get("accept") or ""):
            self.event_streams.append(request.url)

    async def _on_dialog(self, dialog) -> None:
        self.dialogs.append(dialog.message)
        await dialog.dismiss()

    @classmethod
    async def open(cls, browser, base: str, room: str, name: str, transport: str | None = None,
                   via_dialog: bool = False) -> ChatPage:
        context = await browser.new_context(viewport={"width": 900, "height": 700})
        if not via_dialog:
            await context.add_init_script(f"localStorage.setItem('cosmic-chat.name', {json.dumps(name)})")
        page = await context.new_page()
        page.set_default_timeout(15_000)
        chat = cls(page, name)
        query = f"?transport={transport}" if transport else ""
        await page.goto(f"{base}/{query}#{room}")
        if via_dialog:
            await page.fill("#name-input", name)
            await page.click("#name-save")
        await page.wait_for_selector('#connection[data-state="live"]')
        return chat

    async def send(self, text: str) -> None:
        await self.page.fill("#composer-text", text)
        await self.page.press("#composer-text", "Enter")

    async def wait_for_text(self, text: str) -> None:
        await self.page.wait_for_function(
            """(t) => [...document.querySelectorAll('#messages li .text')].some(n => n.textContent === t)""",
            arg=text)

    async def lines(self) -> list[dict[str, str]]:
        return await self.page.eval_on_selector_all(
            "#messages li", """items => items.map(li => ({
                author: li.querySelector('.author').textContent, text: li.querySelector('.text').textContent,
                status: li.dataset.status}))""")


async def test_pages_chat_across_transports_and_rooms_stay_apart(stack, browser):
    base = stack.functions.url
    room, other = fresh_room("web"), fresh_room("elsewhere")
    alice = await ChatPage.open(browser, base, room, "Alice", via_dialog=True)
    bob = await ChatPage.open(browser, base, room, "Bob", transport="longpolling")
    eve = await ChatPage.open(browser, base, room, EVIL_NAME, transport="sse")
    carol = await ChatPage.open(browser, base, other, "Carol")

    await alice.send("hello from websockets")
    await bob.wait_for_text("hello from websockets")
    await eve.wait_for_text("hello from websockets")
    await bob.send("long polling says hi")
    await alice.wait_for_text("long polling says hi")
    await eve.wait_for_text("long polling says hi")
    await eve.send(EVIL_TEXT)
    await alice.wait_for_text(EVIL_TEXT)
    await bob.wait_for_text(EVIL_TEXT)

    # Own lines are confirmed once they come back through the feed.
    await alice.page.wait_for_selector('#messages li[data-status="confirmed"]')
    lines = await alice.lines()
    assert [(x["author"], x["text"]) for x in lines] == [
        ("Alice", "hello from websockets"), ("Bob", "long polling says hi"), (EVIL_NAME, EVIL_TEXT)]

    # HTML and script in name and text are text: no element made from them, nothing ran.
    for p in (alice, bob, eve):
        assert await p.page.locator("#messages img, #messages script, #messages .text b").count() == 0
        assert await p.page.evaluate("window.__pwned") is None
        assert p.dialogs == []

    # The forced transports were really used.
    assert bob.websockets == [] and bob.event_streams == []
    assert eve.websockets == [] and eve.event_streams
    assert alice.websockets

    # The other room saw nothing.
    await settle(0.5)
    assert await carol.lines() == []

    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "chat.png"
    await alice.page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    await carol.send("only carol's room")
    await carol.wait_for_text("only carol's room")
    await settle(0.5)
    assert "only carol's room" not in [x["text"] for x in await alice.lines()]

