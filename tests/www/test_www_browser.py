"""The web client in Debian's Chromium (Playwright) against the whole local stack, for what the Node
tests of the DOM-free modules cannot see: use by keyboard alone, the 360 px wide layout, and recovery from a
dropped connection (fresh negotiate, re-join, catch-up with `after=`), a posting limit waited out in view
(on a stack of its own with a small `CHAT_POST_LIMIT`), and the name dialog refusing invisible characters.

A screenshot of the narrow layout is saved as test-artifacts/www-360.png."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import time
import uuid
from pathlib import Path

import aiohttp
import pytest

from emulators.__main__ import Stack

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
NARROW = {"width": 360, "height": 640}
# One unbreakable "word", the usual cause of sideways scrolling.
LONG_WORD = "https://example.org/" + "x" * 300

OUTLINE = "getComputedStyle(document.activeElement).outlineStyle"

pytestmark = pytest.mark.browser


def stack_args() -> argparse.Namespace:
    return argparse.Namespace(host="127.0.0.1", port=0, cosmos_port=0, signalr_port=0, in_memory=True,
                              data_dir=None, app_dir=ROOT / "functions", verbose=False)


@pytest.fixture
async def base():
    stack = Stack()
    try:
        await stack.start(stack_args())
        yield stack.functions.url
    finally:
        await stack.close()


POST_LIMIT_SETTING = "CHAT_POST_LIMIT"
POST_LIMIT = (3, 6)  # lines per seconds, per identity


@pytest.fixture
async def limited_base(monkeypatch: pytest.MonkeyPatch):
    """A stack of its own whose SaveChat takes 3 lines per 6 s per identity, so no other test is limited.
    The app setting reaches the app as an environment variable (as in the worker); `chat.limits` reads it
    at each call."""
    monkeypatch.setenv(POST_LIMIT_SETTING, f"{POST_LIMIT[0]}/{POST_LIMIT[1]}s")
    stack = Stack()
    try:
        await stack.start(stack_args())
        yield stack.functions.url
    finally:
        await stack.close()


@pytest.fixture
async def browser():
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"Chromium is missing at {CHROMIUM}: install it with `apt-get install -y chromium`")
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        b = await pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        try:
            yield b
        finally:
            await b.close()


def room() -> str:
    return f"kb-{uuid.uuid4().hex[:8]}"


async def new_token(http: aiohttp.ClientSession, base: str) -> str:
    """A fresh identity's bearer token (`POST /api/identities`): every write needs one."""
    async with http.post(f"{base}/api/identities", json={}) as r:
        assert r.status == 201, await r.text()
        return (await r.json())["token"]


async def post_as(http: aiohttp.ClientSession, base: str, token: str, room_name: str, user: str,
                  text: str) -> dict:
    async with http.post(f"{base}/api/rooms/{room_name}/messages", json={"user": user, "text": text},
                         headers={"Authorization": f"Bearer {token}"}) as r:
        assert r.status == 201, await r.text()
        return await r.json()


async def post(base: str, room_name: str, user: str, text: str) -> dict:
    """One line from someone else (a new identity each time, so no posting limit is reached)."""
    async with aiohttp.ClientSession() as http:
        return await post_as(http, base, await new_token(http, base), room_name, user, text)


async def focused(page) -> str:
    """The focused element as `tag#id` (or `tag.class` for the elements without an id)."""
    return await page.evaluate(
        """() => { const e = document.activeElement;
                   const tag = e.tagName.toLowerCase();
                   return tag + (e.id ? '#' + e.id : e.className ? '.' + e.className : ''); }"""
    )


async def texts(page) -> list[str]:
    return await page.eval_on_selector_all("#messages li .text", "ns => ns.map(n => n.textContent)")


async def test_keyboard_alone_on_a_360_px_screen(base, browser):
    here = room()
    await post(base, here, "Ada", "history before the page opened")
    context = await browser.new_context(viewport=NARROW)
    page = await context.new_page()
    page.set_default_timeout(15_000)
    await page.goto(f"{base}/#{here}")

    # First visit: the name dialog has focus and cannot be skipped with Escape.
    await page.wait_for_selector("#name-dialog[open]")
    assert await focused(page) == "input#name-input"
    await page.keyboard.press("Escape")
    assert await page.is_visible("#name-dialog")
    await page.keyboard.type("Grace")
    await page.keyboard.press("Enter")
    await page.wait_for_selector("#name-dialog", state="hidden")
    assert await focused(page) == "textarea#composer-text"
    await page.wait_for_selector('#connection[data-state="live"]')
    assert await texts(page) == ["history before the page opened"]  # the room's history on open

    # Enter sends, Shift+Enter is a new line, the box is emptied and keeps focus; the line is confirmed.
    await page.keyboard.type("first line")
    await page.keyboard.press("Shift+Enter")
    await page.keyboard.type(LONG_WORD)
    await page.keyboard.press("Enter")
    await page.wait_for_selector('#messages li[data-status="confirmed"].own')
    assert (await texts(page))[-1] == "first line\n" + LONG_WORD
    assert await page.input_value("#composer-text") == ""
    assert await focused(page) == "textarea#composer-text"

    # Tab order from the top reaches every control, in reading order, and each shows a focus outline.
    for _ in range(12):  # Tab on from the message box until focus wraps round to the first stop
        await page.keyboard.press("Tab")
        if await focused(page) == "a.skip-link":
            break
    order, outlines = [await focused(page)], [await page.evaluate(OUTLINE)]
    while order[-1] != "button#send-button" and len(order) < 15:
        await page.keyboard.press("Tab")
        order.append(await focused(page))
        outlines.append(await page.evaluate(OUTLINE))
    assert [o for i, o in enumerate(order) if i == 0 or o != order[i - 1]] == [  # one stop per room link
        "a.skip-link", "button#change-name", "a.room-link", "input#room-input", "button", "ol#messages",
        "textarea#composer-text", "button#send-button"]
    assert "none" not in outlines, list(zip(order, outlines, strict=True))

    # The skip link jumps straight to the message box, and stays in the room (the hash names the room).
    await page.focus("a.skip-link")
    await page.keyboard.press("Enter")
    assert await focused(page) == "textarea#composer-text"
    await page.wait_for_timeout(200)  # a hashchange would switch rooms asynchronously
    assert await page.evaluate("location.hash") == f"#{here}"
    assert await page.text_content("#room-title") == f"#{here}"
    assert await page.locator('a.room-link[href="#composer-text"]').count() == 0

    # Create a room by typing its name (normalised), then go back through the room link.
    await page.focus("#room-input")
    await page.keyboard.type("#Side-Room")
    await page.keyboard.press("Enter")
    await page.wait_for_function("() => location.hash === '#side-room'")
    assert await page.text_content("#room-title") == "#side-room"
    assert await focused(page) == "textarea#composer-text"
    await page.focus(f'a.room-link[href="#{here}"]')
    await page.keyboard.press("Enter")
    await page.wait_for_function(f"() => location.hash === '#{here}'")
    await page.wait_for_function("() => document.querySelectorAll('#messages li').length === 2")

    # Change the name by keyboard: Escape cancels, Enter saves, and it survives a reload.
    await page.focus("#change-name")
    await page.keyboard.press("Enter")
    await page.wait_for_selector("#name-dialog[open]")
    await page.keyboard.press("Escape")
    await page.wait_for_selector("#name-dialog", state="hidden")
    assert await page.text_content("#me-name") == "Grace"
    await page.focus("#change-name")
    await page.keyboard.press("Enter")
    await page.keyboard.press("Control+A")
    await page.keyboard.type("Grace H")
    await page.keyboard.press("Enter")
    await page.wait_for_selector("#name-dialog", state="hidden")
    await page.reload()
    await page.wait_for_selector('#connection[data-state="live"]')
    assert await page.text_content("#me-name") == "Grace H"
    assert not await page.is_visible("#name-dialog")

    # 360 px: nothing scrolls sideways (not even a 300-character word) and the composer is on screen.
    await page.wait_for_function("() => document.querySelectorAll('#messages li').length === 2")
    widths = await page.evaluate(
        """() => ({doc: document.documentElement.scrollWidth,
                   overflowing: [...document.querySelectorAll('#messages li, header, nav, main, form')]
                     .filter(e => e.scrollWidth > e.clientWidth + 1).map(e => e.tagName + '#' + e.id)})"""
    )
    assert widths == {"doc": 360, "overflowing": []}
    for selector in ("#composer-text", "#send-button", "#connection", "#change-name"):
        box = await page.locator(selector).bounding_box()
        assert box and box["x"] >= 0 and box["x"] + box["width"] <= 360, selector
        assert box["y"] + box["height"] <= NARROW["height"], selector
    send = await page.locator("#send-button").bounding_box()
    assert send["height"] >= 24 and send["width"] >= 24  # a target a finger can hit (WCAG 2.2 minimum)
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "www-360.png"))
    await context.close()


async def test_after_a_dropped_connection_the_page_renegotiates_rejoins_and_catches_up(base, browser):
    here = room()
    context = await browser.new_context(viewport=NARROW)
    await context.add_init_script(f"localStorage.setItem('cosmic-chat.name', {json.dumps('Lin')})")
    page = await context.new_page()
    page.set_default_timeout(20_000)
    negotiations: list[str] = []
    joins: list[dict] = []
    history_queries: list[str] = []
    page.on("request", lambda r: negotiations.append(r.url) if "/api/negotiate" in r.url else None)
    page.on("request", lambda r: joins.append(json.loads(r.post_data)) if r.url.endswith("/join") else None)
    page.on("request", lambda r: history_queries.append(r.url) if "/messages?" in r.url else None)
    redirects: list[str] = []
    page.on("response", lambda r: redirects.append(r.headers["location"]) if r.status == 307 else None)
    sockets: list = []

    def proxy(ws) -> None:  # every WebSocket still reaches the SignalR emulator, through a handle we can cut
        ws.connect_to_server()
        sockets.append(ws)

    await page.route_web_socket(re.compile(r"/client/"), proxy)
    await page.goto(f"{base}/#{here}")
    await page.wait_for_selector('#connection[data-state="live"]')
    first = await page.evaluate("cosmicChat.state.connectionId")
    await post(base, here, "Kim", "while connected")
    await page.wait_for_function("() => document.querySelectorAll('#messages li').length === 1")

    # The connection drops and, for a while, the SignalR service cannot be reached either.
    async def unreachable(route) -> None:
        await route.abort("connectionrefused")

    await page.route(re.compile(r"/client/negotiate"), unreachable)
    assert len(sockets) == 1
    await sockets[0].close(code=4000, reason="network lost")
    await page.wait_for_selector('#connection[data-state="reconnecting"]')
    # More than History's newest-200 window: the catch-up is sent on to HistoryAfter (307) and pages on.
    async with aiohttp.ClientSession() as http:
        # Twelve identities, so that 230 lines stay under the posting limit (20 per 20 s per identity).
        tokens = [await new_token(http, base) for _ in range(12)]

        async def away(i: int) -> dict:
            return await post_as(http, base, tokens[i % len(tokens)], here, "Kim", f"while away {i:03d}")

        missed = sorted(await asyncio.gather(*(away(i) for i in range(230))),
                        key=lambda m: (m["createdAt"], m["id"]))
    await page.unroute(re.compile(r"/client/negotiate"), unreachable)
    await page.wait_for_selector('#connection[data-state="live"]')
    await page.wait_for_function("() => document.querySelectorAll('#messages li').length === 231")

    second = await page.evaluate("cosmicChat.state.connectionId")
    assert second and second != first
    assert len(negotiations) >= 2  # a fresh negotiate, not the old token
    me = await page.evaluate("cosmicChat.state.identityId")
    assert all(url.split("?")[0].endswith(f"/api/negotiate/{me}") for url in negotiations)  # the identity id
    assert len(joins) >= 2 and all(j == {} for j in joins)  # joined again, naming no connection
    assert await page.evaluate("cosmicChat.state.joinedWith") == second
    assert any("after=" in q for q in history_queries)  # caught up, not reloaded
    assert any("/messages/after/" in r for r in redirects)  # deeper than the window: via HistoryAfter
    assert await texts(page) == ["while connected"] + [m["text"] for m in missed]
    live = await post(base, here, "Kim", "live again")
    await page.wait_for_function(
        "t => [...document.querySelectorAll('#messages li .text')].some(n => n.textContent === t)",
        arg=live["text"],
    )
    await context.close()


async def test_a_failed_send_is_kept_and_retried_or_edited_by_keyboard(base, browser):
    here = room()
    context = await browser.new_context(viewport=NARROW)
    await context.add_init_script(f"localStorage.setItem('cosmic-chat.name', {json.dumps('Max')})")
    page = await context.new_page()
    page.set_default_timeout(20_000)
    posts: list[dict] = []

    async def down(route) -> None:  # SaveChat unreachable: the page retries on its own, then gives up
        posts.append(json.loads(route.request.post_data))
        await route.abort("connectionrefused")

    await page.goto(f"{base}/#{here}")
    await page.wait_for_selector('#connection[data-state="live"]')
    await page.route(re.compile(r"/api/rooms/[^/]+/messages$"), down)
    await page.focus("#composer-text")
    for text in ("keep me", "edit me"):
        await page.keyboard.type(text)
        await page.keyboard.press("Enter")
    await page.wait_for_function(
        "() => document.querySelectorAll('#messages li[data-status=\"failed\"]').length === 2"
    )
    assert len(posts) == 6  # each line: the first POST and two automatic retries ...
    assert len({p["id"] for p in posts}) == 2  # ... all with the line's own id, so none can be stored twice
    await page.unroute(re.compile(r"/api/rooms/[^/]+/messages$"), down)

    # Tab from the message list reaches the failed lines' Retry and Edit buttons.
    await page.focus("#messages")
    stops = []
    for _ in range(4):
        await page.keyboard.press("Tab")
        stops.append(await page.evaluate("document.activeElement.getAttribute('aria-label')"))
    assert stops == ["Retry sending: keep me", "Edit unsent message: keep me",
                     "Retry sending: edit me", "Edit unsent message: edit me"]
    await page.keyboard.press("Enter")  # Edit "edit me": back in the box, off the list
    assert await page.input_value("#composer-text") == "edit me"
    assert await focused(page) == "textarea#composer-text"
    await page.focus('#messages button[aria-label="Retry sending: keep me"]')
    await page.keyboard.press("Enter")
    await page.wait_for_selector('#messages li[data-status="confirmed"]')
    assert await texts(page) == ["keep me"]
    async with aiohttp.ClientSession() as http, http.get(f"{base}/api/rooms/{here}/messages") as r:
        stored = (await r.json())["messages"]
    assert [(m["id"], m["text"]) for m in stored] == [(posts[0]["id"], "keep me")]
    await context.close()


async def test_sending_too_fast_waits_in_view_and_every_line_is_stored_once(limited_base, browser):
    base, here = limited_base, room()
    context = await browser.new_context(viewport=NARROW)
    await context.add_init_script(f"localStorage.setItem('cosmic-chat.name', {json.dumps('Pat')})")
    page = await context.new_page()
    page.set_default_timeout(20_000)
    answers: list[tuple[int, str]] = []
    page.on("response", lambda r: answers.append((r.status, r.headers.get("retry-after", "")))
            if re.search(r"/api/rooms/[^/]+/messages$", r.url) and r.request.method == "POST" else None)
    await page.goto(f"{base}/#{here}")
    await page.wait_for_selector('#connection[data-state="live"]')

    # The limit's windows are fixed (aligned to the epoch): start the burst early in one, so that it
    # cannot straddle two windows and pass unlimited.
    count, seconds = POST_LIMIT
    while time.time() % seconds > seconds / 2:
        await asyncio.sleep(0.05)
    lines = [f"quick {i}" for i in range(5)]
    await page.focus("#composer-text")
    for text in lines:
        await page.keyboard.type(text)
        await page.keyboard.press("Enter")

    # The status says so, with a countdown; the lines over the limit are pending (not failed) and say so.
    countdown = re.compile(r"Sending too fast: retrying in (\d+) s")
    held_js = """() => [...document.querySelectorAll('#messages li[data-status="pending"] .state')]
                         .map(n => n.textContent).filter(t => t.startsWith('Sending too fast'))"""
    await page.wait_for_function(f"() => ({held_js})().length === {5 - count}")
    status = await page.text_content("#send-status")
    assert countdown.fullmatch(status) and int(countdown.fullmatch(status)[1]) <= seconds, status
    held = await page.evaluate(held_js)
    assert all(countdown.fullmatch(state) for state in held), held
    states = await page.eval_on_selector_all("#messages li", "items => items.map(li => li.dataset.status)")
    assert len(states) == 5 and "failed" not in states, states
    start = min(int(countdown.fullmatch(state)[1]) for state in held)
    if start > 1:  # the lines count down while they wait
        await page.wait_for_function(
            f"() => ({held_js})().some(t => Number(t.match(/\\d+/)[0]) < {start})")
    assert await page.locator('#messages li[data-status="failed"]').count() == 0

    # After the wait all five are sent, confirmed, and stored once each, with the page's ids.
    await page.wait_for_function(
        "() => document.querySelectorAll('#messages li[data-status=\"confirmed\"]').length === 5")
    assert await page.text_content("#send-status") == ""
    assert await texts(page) == lines
    shown = await page.evaluate("cosmicChat.messages().map(m => [m.id, m.text])")
    async with aiohttp.ClientSession() as http, http.get(f"{base}/api/rooms/{here}/messages") as r:
        stored = (await r.json())["messages"]
    assert sorted((m["id"], m["text"]) for m in stored) == sorted(map(tuple, shown))
    limited = [a for a in answers if a[0] == 429]
    assert limited and all(int(after) <= seconds for _, after in limited)  # waited out, not failed
    assert sorted(s for s, _ in answers if s != 429) == [201] * 5
    await context.close()


async def test_a_name_with_an_invisible_or_bidi_character_is_refused_in_the_dialog(base, browser):
    context = await browser.new_context(viewport=NARROW)
    page = await context.new_page()
    page.set_default_timeout(15_000)
    await page.goto(f"{base}/#{room()}")
    await page.wait_for_selector("#name-dialog[open]")
    async with aiohttp.ClientSession() as http:
        token = await new_token(http, base)
        for name, code_point in (("A\u200bna", "U+200B"), ("Ana\u202e", "U+202E")):
            await page.fill("#name-input", name)
            await page.click("#name-save")
            expected = await page.evaluate(
                "async n => (await import('/js/validate.js')).validateUser(n).message", name)
            assert expected and code_point in expected
            await page.wait_for_function(
                "m => document.querySelector('#name-error').textContent === m", arg=expected)
            assert await page.is_visible("#name-dialog")
            assert await page.get_attribute("#name-input", "aria-invalid") == "true"
            assert await page.evaluate("localStorage.getItem('cosmic-chat.name')") is None
            # The server refuses the same name for the same reason.
            async with http.post(f"{base}/api/rooms/{room()}/messages", json={"user": name, "text": "hi"},
                                 headers={"Authorization": f"Bearer {token}"}) as r:
                assert r.status == 400
                error = (await r.json())["error"]
            assert (error["code"], error["field"]) == ("invisible_character", "user")
            assert code_point in error["message"]
    await page.fill("#name-input", "Ana")
    await page.click("#name-save")
    await page.wait_for_selector("#name-dialog", state="hidden")
    assert await page.text_content("#me-name") == "Ana"
    await context.close()
