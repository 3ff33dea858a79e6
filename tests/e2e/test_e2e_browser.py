"""The chat in Debian's Chromium, driven by Playwright, against the whole local stack.

Two pages chat in one room, a third page in another room sees nothing of it, user text with HTML
and script is shown as text, pages forced to Long Polling and to Server-Sent Events still chat, and
a screenshot of the chat is saved under test-artifacts/. Two people with the same display name are told
apart by the tag of their identity, and two tabs of one browser profile (one identity, whose room
membership they share) each follow their own room."""

from __future__ import annotations

import json
import os

import aiohttp
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
                   via_dialog: bool = False, context=None) -> ChatPage:
        """A page in a new browser context (another profile: another identity), or in `context` (another
        tab of that profile: the same identity)."""
        if context is None:
            context = await browser.new_context(viewport={"width": 900, "height": 700})
            if not via_dialog:
                await context.add_init_script(
                    f"localStorage.setItem('cosmic-chat.name', {json.dumps(name)})")
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

    async def identity_id(self) -> str:
        await self.page.wait_for_function("() => cosmicChat.state.identityId !== null")
        return await self.page.evaluate("cosmicChat.state.identityId")

    async def rename(self, name: str) -> None:
        await self.page.click("#change-name")
        await self.page.fill("#name-input", name)
        await self.page.click("#name-save")
        await self.page.wait_for_selector("#name-dialog", state="hidden")

    async def open_room(self, room: str) -> None:
        await self.page.evaluate("r => { location.hash = '#' + r; }", room)
        await self.page.wait_for_function("r => cosmicChat.state.room === r", arg=room)

    async def shown(self) -> list[dict]:
        """Every line as shown, with the author's identity id the page holds for it."""
        return await self.page.eval_on_selector_all(
            "#messages li", """items => {
              const ids = new Map(cosmicChat.messages().map(m => [m.id, m.authorId]));
              const seen = (e) => !e.hidden && e.getClientRects().length > 0;
              return items.map(li => {
                const tag = li.querySelector('.author-tag'), you = li.querySelector('.you');
                return {name: li.querySelector('.author-name').textContent, tag: tag.textContent,
                        tagVisible: seen(tag), own: li.classList.contains('own'), you: seen(you),
                        text: li.querySelector('.text').textContent, status: li.dataset.status,
                        authorId: ids.get(li.dataset.id)};
              }); }""")

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



async def _token(http: aiohttp.ClientSession, base: str) -> str:
    async with http.post(f"{base}/api/identities", json={}) as r:
        assert r.status == 201, await r.text()
        return (await r.json())["token"]


async def _post(http: aiohttp.ClientSession, base: str, token: str, room: str, text: str) -> None:
    async with http.post(f"{base}/api/rooms/{room}/messages", json={"user": "Zed", "text": text},
                         headers={"Authorization": f"Bearer {token}"}) as r:
        assert r.status == 201, await r.text()


async def test_two_people_named_ana_are_told_apart(stack, browser):
    base = stack.functions.url
    room = fresh_room("anas")
    first = await ChatPage.open(browser, base, room, "Ana")
    second = await ChatPage.open(browser, base, room, "Ana")
    ids = {first: await first.identity_id(), second: await second.identity_id()}
    assert ids[first] != ids[second]
    await first.send("from the first Ana")
    await first.wait_for_text("from the first Ana")
    await second.send("from the second Ana")
    for page in (first, second):
        await page.page.wait_for_function(
            "() => document.querySelectorAll('#messages li[data-status=\"confirmed\"]').length === 2")

    for page in (first, second):
        lines = await page.shown()
        assert [x["text"] for x in lines] == ["from the first Ana", "from the second Ana"]
        for line in lines:
            assert line["name"] == "Ana"
            assert line["tagVisible"] and line["tag"] == "#" + line["authorId"][:4], line
            mine = line["authorId"] == ids[page]
            assert line["own"] is mine and line["you"] is mine, line
        assert sum(x["own"] for x in lines) == 1  # only the page's own line
        assert lines[0]["tag"] != lines[1]["tag"]
        assert [x["authorId"] for x in lines] == [ids[first], ids[second]]

    # After a rename the older line is still the first Ana's own: own is the identity, not the name.
    await first.rename("Ana B")
    await first.send("renamed")
    await first.page.wait_for_selector('#messages li[data-status="confirmed"]:nth-child(3)')
    await second.wait_for_text("renamed")
    mine = await first.shown()
    assert [(x["name"], x["own"], x["you"]) for x in mine] == [
        ("Ana", True, True), ("Ana", False, False), ("Ana B", True, True)]
    assert mine[0]["tag"] == mine[2]["tag"]
    theirs = await second.shown()
    assert [(x["name"], x["own"]) for x in theirs] == [("Ana", False), ("Ana", True), ("Ana B", False)]


async def test_two_tabs_of_one_profile_in_different_rooms_both_hear_their_room(stack, browser, http):
    base = stack.functions.url
    room_a, room_b, room_c = fresh_room("tab-a"), fresh_room("tab-b"), fresh_room("tab-c")
    one = await ChatPage.open(browser, base, room_a, "Lee")
    two = await ChatPage.open(browser, base, room_b, "Lee", context=one.page.context)
    assert await one.identity_id() == await two.identity_id()  # one profile, one identity
    leaves: list[str] = []
    for tab in (one, two):
        tab.page.on("request", lambda r: leaves.append(r.url) if r.url.endswith("/leave") else None)
    other = await _token(http, base)

    await _post(http, base, other, room_a, "for a")
    await _post(http, base, other, room_b, "for b")
    await one.wait_for_text("for a")
    await two.wait_for_text("for b")

    # One tab passes through the other tab's room and on to a third; the other still hears its room live.
    for room in (room_b, room_c):
        await one.open_room(room)
        await one.page.wait_for_function("() => cosmicChat.state.joinedWith !== null")
    await _post(http, base, other, room_b, "b again")
    await _post(http, base, other, room_c, "for c")
    await two.wait_for_text("b again")
    await one.wait_for_text("for c")
    await _post(http, base, other, room_a, "a while away")
    await settle(0.5)
    # No other room's line in the current one, though this tab hears rooms a, b and c.
    assert [x["text"] for x in await one.lines()] == ["for c"]
    assert [x["text"] for x in await two.lines()] == ["for b", "b again"]
    assert leaves == []  # a switch never leaves: that would silence the room in the other tab

    # Back in the first room: the line posted meanwhile is there.
    await one.open_room(room_a)
    await one.wait_for_text("a while away")
    assert [x["text"] for x in await one.lines()] == ["for a", "a while away"]
