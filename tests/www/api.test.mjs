// API wrappers with a recording fetch function: the requests the client
// makes, how it reads the server's answers and errors, retries with the
// same id, catch-up paging, and the reconnect helpers.
import { test } from "node:test";
import assert from "node:assert/strict";

import {
  ApiError,
  createApi,
  fetchMissed,
  isAppNegotiateUrl,
  offlineRetryDelay,
  reconnectDelay,
  sendMessage,
  withoutStaleToken,
} from "../../www/js/api.js";

function json(status, body, statusText = "") {
  return new Response(body === undefined ? null : JSON.stringify(body), {
    status,
    statusText,
    headers: { "Content-Type": "application/json" },
  });
}

/** A fetch that records each call and answers from a queue of responders. */
function fakeFetch(...responders) {
  const calls = [];
  const fn = async (url, init) => {
    calls.push({ url, init, body: init.body === undefined ? undefined : JSON.parse(init.body) });
    const next = responders.length > 1 ? responders.shift() : responders[0];
    return typeof next === "function" ? next(url, init) : next.clone();
  };
  fn.calls = calls;
  return fn;
}

const stored = (over = {}) => ({
  id: "5b0c8a4e-7f53-4c55-9a41-3f1c2b9d7e10",
  room: "general",
  user: "Ada",
  text: "hi",
  createdAt: "2026-11-27T21:00:00.000Z",
  ...over,
});

test("postMessage sends {user, text, id} as JSON and returns the stored message", async () => {
  const fetch = fakeFetch(json(201, stored()));
  const api = createApi({ fetch });
  const body = { user: "Ada", text: "hi", id: stored().id };
  assert.deepEqual(await api.postMessage("general", body), stored());
  const [call] = fetch.calls;
  assert.equal(call.url, "/api/rooms/general/messages");
  assert.equal(call.init.method, "POST");
  assert.equal(call.init.headers["Content-Type"], "application/json");
  assert.deepEqual(call.body, body);
  assert.ok(call.init.signal, "every request has a timeout");
});

test("the server's error message and field reach the person", async () => {
  const error = { code: "too_long", message: "text is over 2000 characters", field: "text" };
  const api = createApi({ fetch: fakeFetch(json(400, { error })) });
  await assert.rejects(api.postMessage("general", { user: "Ada", text: "x", id: "i" }), (err) => {
    assert.ok(err instanceof ApiError);
    assert.equal(err.status, 400);
    assert.equal(err.code, "too_long");
    assert.equal(err.message, "text is over 2000 characters");
    assert.equal(err.field, "text");
    assert.equal(err.retryable, false, "a validation error does not go away by retrying");
    return true;
  });
});

test("answers without an error body still give a readable, classified error", async () => {
  const api = createApi({
    fetch: fakeFetch(new Response("<html>bad gateway</html>", { status: 502, statusText: "Bad Gateway" })),
  });
  await assert.rejects(api.getMessages("general"), (err) => {
    assert.equal(err.message, "The server answered 502 Bad Gateway.");
    assert.equal(err.retryable, true);
    return true;
  });
});

test("network failures and timeouts are retryable errors", async () => {
  const down = createApi({ fetch: async () => { throw new TypeError("Failed to fetch"); } });
  await assert.rejects(down.joinRoom("general", "c1"), { code: "network", retryable: true });
  const slow = createApi({
    fetch: (url, init) => new Promise((_, reject) => {
      // AbortSignal.timeout() does not keep Node's event loop alive; this timer does.
      const alive = setTimeout(() => reject(new Error("timeout signal never fired")), 5000);
      init.signal.addEventListener("abort", () => {
        clearTimeout(alive);
        reject(init.signal.reason);
      });
    }),
    timeoutMs: 20,
  });
  await assert.rejects(slow.getMessages("general"), { code: "timeout", retryable: true });
});

test("a 201 that is not the message we sent is reported, not shown", async () => {
  const api = createApi({ fetch: fakeFetch(json(201, stored({ id: "other" }))) });
  await assert.rejects(api.postMessage("general", { user: "Ada", text: "hi", id: stored().id }), {
    code: "bad_response",
  });
});

test("join and leave post the connection id and expect 202", async () => {
  const fetch = fakeFetch(new Response(null, { status: 202 }));
  const api = createApi({ fetch });
  assert.equal(await api.joinRoom("dev-ops", "conn-1"), null);
  assert.equal(await api.leaveRoom("dev-ops", "conn-1"), null);
  assert.deepEqual(
    fetch.calls.map((c) => [c.url, c.init.method, c.body]),
    [
      ["/api/rooms/dev-ops/join", "POST", { connectionId: "conn-1" }],
      ["/api/rooms/dev-ops/leave", "POST", { connectionId: "conn-1" }],
    ],
  );
  const wrong = createApi({ fetch: fakeFetch(json(200, {})) });
  await assert.rejects(wrong.joinRoom("general", "c"), { code: "unexpected_status" });
});

test("getMessages builds limit/after and keeps only well-formed messages", async () => {
  const fetch = fakeFetch(json(200, { messages: [stored(), { id: "broken" }] }));
  const api = createApi({ fetch, baseUrl: "http://127.0.0.1:7071" });
  const got = await api.getMessages("general", { limit: 20, after: "2026-11-27T20:00:00.000Z" });
  assert.deepEqual(got, [stored()]);
  const url = new URL(fetch.calls[0].url);
  assert.equal(url.pathname, "/api/rooms/general/messages");
  assert.equal(url.searchParams.get("limit"), "20");
  assert.equal(url.searchParams.get("after"), "2026-11-27T20:00:00.000Z");
  await api.getMessages("general");
  assert.equal(new URL(fetch.calls[1].url).search, "?limit=50", "no after= for plain history");
  const bad = createApi({ fetch: fakeFetch(json(200, { items: [] })) });
  await assert.rejects(bad.getMessages("general"), { code: "bad_response" });
});

test("sendMessage retries transient failures with the same id, then succeeds", async () => {
  const fetch = fakeFetch(json(503, { error: { code: "unavailable", message: "busy" } }),
    () => { throw new TypeError("Failed to fetch"); }, json(201, stored()));
  const api = createApi({ fetch });
  const slept = [];
  const body = { user: "Ada", text: "hi", id: stored().id };
  const result = await sendMessage(api, "general", body, { delays: [10, 20], sleep: async (ms) => slept.push(ms) });
  assert.deepEqual(result, stored());
  assert.equal(fetch.calls.length, 3);
  assert.deepEqual(new Set(fetch.calls.map((c) => c.body.id)), new Set([body.id]));
  assert.deepEqual(slept, [10, 20]);
});

test("sendMessage gives up after its retries, and never retries a 4xx", async () => {
  const flaky = fakeFetch(json(500, {}));
  await assert.rejects(
    sendMessage(createApi({ fetch: flaky }), "general", { user: "a", text: "b", id: "c" }, { delays: [1], sleep: async () => {} }),
    { retryable: true, status: 500 },
  );
  assert.equal(flaky.calls.length, 2);
  const invalid = fakeFetch(json(413, { error: { code: "too_large", message: "body over 8 KiB", field: null } }));
  await assert.rejects(
    sendMessage(createApi({ fetch: invalid }), "general", { user: "a", text: "b", id: "c" }, { sleep: async () => {} }),
    { retryable: false, message: "body over 8 KiB" },
  );
  assert.equal(invalid.calls.length, 1);
});

test("fetchMissed pages with after= while full pages come back", async () => {
  const page = (from, n) => Array.from({ length: n }, (_, i) =>
    stored({ id: `id-${from + i}`, createdAt: new Date(Date.UTC(2026, 10, 27, 21, 0, from + i)).toISOString() }));
  const fetch = fakeFetch(json(200, { messages: page(0, 3) }), json(200, { messages: page(3, 3) }),
    json(200, { messages: page(6, 1) }));
  const seen = [];
  const result = await fetchMissed(createApi({ fetch }), "general", {
    after: "2026-11-27T20:59:00.000Z", pageSize: 3, onPage: (p) => seen.push(...p.map((m) => m.id)),
  });
  assert.deepEqual(result, { pages: 3, count: 7, complete: true });
  assert.deepEqual(seen, ["id-0", "id-1", "id-2", "id-3", "id-4", "id-5", "id-6"]);
  const afters = fetch.calls.map((c) => new URL(c.url, "http://x").searchParams.get("after"));
  assert.deepEqual(afters, ["2026-11-27T20:59:00.000Z", page(0, 3)[1].createdAt, page(3, 3)[1].createdAt]);
});

test("fetchMissed does not skip messages of one millisecond split across pages", async () => {
  // a server that answers like History: the first `limit` messages strictly newer than `after`;
  // up to `pageSize` messages share a millisecond, and page boundaries fall inside those runs
  const ms = (n) => `2026-11-27T21:00:00.${String(n).padStart(3, "0")}Z`;
  const all = [1, 2, 2, 2, 3, 3, 4, 5, 5, 5, 6].map((t, i) => stored({ id: `m${String(i).padStart(2, "0")}`, createdAt: ms(t) }));
  const server = async (url) => {
    const q = new URL(url, "http://x").searchParams;
    const after = q.get("after");
    return json(200, { messages: all.filter((m) => m.createdAt > after).slice(0, Number(q.get("limit"))) });
  };
  const seen = new Set();
  const result = await fetchMissed(createApi({ fetch: fakeFetch(server) }), "general", {
    after: ms(0), pageSize: 3, onPage: (p) => p.forEach((m) => seen.add(m.id)),
  });
  assert.equal(result.complete, true);
  assert.deepEqual([...seen].sort(), all.map((m) => m.id));
});

test("fetchMissed stops when the cursor cannot advance or the page budget is spent", async () => {
  const same = stored({ createdAt: "2026-11-27T21:00:00.000Z" });
  const stuck = fakeFetch(json(200, { messages: [same, same] }));
  const r1 = await fetchMissed(createApi({ fetch: stuck }), "general", { after: same.createdAt, pageSize: 2 });
  assert.deepEqual(r1, { pages: 1, count: 2, complete: false });
  let n = 0;
  const endless = fakeFetch(() => {
    n += 1;
    return json(200, { messages: [stored({ id: `a${n}`, createdAt: new Date(Date.UTC(2026, 0, 1, 0, 0, n)).toISOString() })] });
  });
  const r2 = await fetchMissed(createApi({ fetch: endless }), "general", { after: null, pageSize: 1, maxPages: 4 });
  assert.deepEqual(r2, { pages: 4, count: 4, complete: false });
});

test("the app's negotiate never receives the previous connection's service token", () => {
  const origin = "http://127.0.0.1:7071";
  assert.equal(isAppNegotiateUrl("http://127.0.0.1:7071/api/negotiate?negotiateVersion=1", origin), true);
  assert.equal(isAppNegotiateUrl("/api/negotiate?negotiateVersion=1", origin), true);
  assert.equal(isAppNegotiateUrl("http://127.0.0.1:8888/client/negotiate?hub=chat", origin), false);
  assert.equal(isAppNegotiateUrl("http://evil.example/api/negotiate", origin), false);
  const toApp = { url: `${origin}/api/negotiate?negotiateVersion=1`, headers: { Authorization: "Bearer old", "X-Requested-With": "XMLHttpRequest" } };
  withoutStaleToken(toApp, origin);
  assert.deepEqual(toApp.headers, { "X-Requested-With": "XMLHttpRequest" });
  const toService = { url: "http://127.0.0.1:8888/client/negotiate?hub=chat", headers: { Authorization: "Bearer new" } };
  withoutStaleToken(toService, origin);
  assert.equal(toService.headers.Authorization, "Bearer new", "the service still gets its token");
});

test("reconnect delays: immediate first, jittered, then hand over to the offline loop", () => {
  const mid = () => 0.5;
  assert.deepEqual([0, 1, 2, 3, 4, 5].map((n) => reconnectDelay(n, { random: mid })), [0, 2000, 5000, 10000, 20000, 30000]);
  assert.equal(reconnectDelay(6), null);
  assert.equal(reconnectDelay(1, { random: () => 0 }), 1600);
  assert.equal(reconnectDelay(1, { random: () => 0.9999 }), 2400);
  assert.deepEqual([0, 1, 2, 3, 8].map((n) => offlineRetryDelay(n, { random: mid })), [5000, 10000, 20000, 40000, 60000]);
});
