// API wrappers with a recording fetch function: the requests the client
// makes, how it reads the server's answers and errors, retries with the
// same id, catch-up paging, and the reconnect helpers.
import { test } from "node:test";
import assert from "node:assert/strict";

import {
  ApiError,
  createApi,
  createRateGate,
  createSignalRSend,
  fetchMissed,
  isAppNegotiateUrl,
  offlineRetryDelay,
  parseRetryAfter,
  reconnectDelay,
  sendMessage,
  withoutStaleToken,
} from "../../www/js/api.js";
import { createIdentity, IDENTITY_KEY, parseIdentity } from "../../www/js/identity.js";

function json(status, body, statusText = "", headers = {}) {
  return new Response(body === undefined ? null : JSON.stringify(body), {
    status,
    statusText,
    headers: { "Content-Type": "application/json", ...headers },
  });
}

const ME = { id: "k3F9aaaaaaaaaaaaaaaaaa", token: "token-of-k3F9" };
/** An identity source that always has ME (identity.js is tested separately below). */
const fixed = (identity = ME) => ({ get: async () => identity, discard() {}, current: () => identity });

/** localStorage as identity.js sees it (app.js wraps the real one the same way). */
function memoryStorage(initial = {}) {
  const data = new Map(Object.entries(initial));
  return {
    data,
    get: (key) => (data.has(key) ? data.get(key) : null),
    set: (key, value) => data.set(key, String(value)),
    remove: (key) => data.delete(key),
  };
}

const header = (call, name) => {
  const headers = call.init.headers ?? {};
  const key = Object.keys(headers).find((k) => k.toLowerCase() === name.toLowerCase());
  return key === undefined ? undefined : headers[key];
};

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
  authorId: ME.id,
  ...over,
});

test("postMessage sends {user, text, id} as JSON and returns the stored message", async () => {
  const fetch = fakeFetch(json(201, stored()));
  const api = createApi({ fetch, identity: fixed() });
  const body = { user: "Ada", text: "hi", id: stored().id };
  assert.deepEqual(await api.postMessage("general", body), stored());
  const [call] = fetch.calls;
  assert.equal(call.url, "/api/rooms/general/messages");
  assert.equal(call.init.method, "POST");
  assert.equal(call.init.headers["Content-Type"], "application/json");
  assert.equal(header(call, "Authorization"), `Bearer ${ME.token}`);
  assert.deepEqual(call.body, body);
  assert.ok(call.init.signal, "every request has a timeout");
});

test("the server's error message and field reach the person", async () => {
  const error = { code: "too_long", message: "text is over 2000 characters", field: "text" };
  const api = createApi({ fetch: fakeFetch(json(400, { error })), identity: fixed() });
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
  const down = createApi({ fetch: async () => { throw new TypeError("Failed to fetch"); }, identity: fixed() });
  await assert.rejects(down.joinRoom("general"), { code: "network", retryable: true });
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
  const api = createApi({ fetch: fakeFetch(json(201, stored({ id: "other" }))), identity: fixed() });
  await assert.rejects(api.postMessage("general", { user: "Ada", text: "hi", id: stored().id }), {
    code: "bad_response",
  });
});

test("join and leave post {} as JSON with the identity token and expect 202", async () => {
  const fetch = fakeFetch(new Response(null, { status: 202 }));
  const api = createApi({ fetch, identity: fixed() });
  assert.equal(await api.joinRoom("dev-ops"), null);
  assert.equal(await api.leaveRoom("dev-ops"), null);
  assert.deepEqual(
    fetch.calls.map((c) => [c.url, c.init.method, c.init.body, header(c, "Content-Type"), header(c, "Authorization")]),
    [
      ["/api/rooms/dev-ops/join", "POST", "{}", "application/json", `Bearer ${ME.token}`],
      ["/api/rooms/dev-ops/leave", "POST", "{}", "application/json", `Bearer ${ME.token}`],
    ],
  );
  const gone = createApi({
    fetch: fakeFetch(json(404, { error: { code: "not_connected", message: "no live connection", field: "Authorization" } })),
    identity: fixed(),
  });
  await assert.rejects(gone.joinRoom("general"), { status: 404, code: "not_connected", field: "Authorization" });
  const wrong = createApi({ fetch: fakeFetch(json(200, {})), identity: fixed() });
  await assert.rejects(wrong.joinRoom("general"), { code: "unexpected_status" });
});

test("getMessages builds limit/after and keeps only well-formed messages", async () => {
  const fetch = fakeFetch(json(200, { messages: [stored(), { id: "broken" }] }));
  const api = createApi({ fetch, baseUrl: "http://127.0.0.1:7071", identity: fixed() });
  const got = await api.getMessages("general", { limit: 20, after: "2026-11-27T20:00:00.000Z" });
  assert.deepEqual(got, [stored()]);
  assert.equal(header(fetch.calls[0], "Authorization"), undefined, "history is public: no identity token");
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
  const api = createApi({ fetch, identity: fixed() });
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
    sendMessage(createApi({ fetch: flaky, identity: fixed() }), "general", { user: "a", text: "b", id: "c" }, { delays: [1], sleep: async () => {} }),
    { retryable: true, status: 500 },
  );
  assert.equal(flaky.calls.length, 2);
  const invalid = fakeFetch(json(413, { error: { code: "too_large", message: "body over 8 KiB", field: null } }));
  await assert.rejects(
    sendMessage(createApi({ fetch: invalid, identity: fixed() }), "general", { user: "a", text: "b", id: "c" }, { sleep: async () => {} }),
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
  assert.equal(isAppNegotiateUrl(`${origin}/api/negotiate/${ME.id}.AbCdEfGhIjKlMnOp?negotiateVersion=1`, origin), true);
  assert.equal(isAppNegotiateUrl(`${origin}/api/negotiated`, origin), false);
  assert.equal(isAppNegotiateUrl("http://evil.example/api/negotiate/x.y", origin), false);
  const withIdentity = { url: `${origin}/api/negotiate?negotiateVersion=1`, headers: { authorization: "Bearer old" } };
  withoutStaleToken(withIdentity, origin, ME.token);
  assert.deepEqual(withIdentity.headers, { Authorization: `Bearer ${ME.token}` }, "the stale token is replaced by the identity's");
  const leak = { url: "http://127.0.0.1:8888/client/?hub=chat", headers: { Authorization: `Bearer ${ME.token}` } };
  withoutStaleToken(leak, origin, ME.token);
  assert.deepEqual(leak.headers, {}, "the identity token never goes to the service");
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

// --- identity, authorization, the new negotiate, 200/409/429 --------------------------------

const NEW = { id: "Zz9_-newIdentity000000", token: "token-of-Zz9" };
const identityAnswer = (identity) => json(201, identity, "", { "Cache-Control": "no-store" });

/** A fetch routed by path: `routes[path]` is a responder or a queue of them. */
function routedFetch(routes) {
  const calls = [];
  const fn = async (url, init) => {
    const path = new URL(url, "http://app.test").pathname;
    calls.push({ url, path, init, body: init.body === undefined ? undefined : JSON.parse(init.body) });
    const route = routes[path] ?? routes["*"];
    if (!route) return json(404, { error: { code: "not_found", message: `no route ${path}` } });
    const next = Array.isArray(route) ? (route.length > 1 ? route.shift() : route[0]) : route;
    return typeof next === "function" ? next(url, init) : next.clone();
  };
  fn.calls = calls;
  return fn;
}

const invalidIdentity = () =>
  json(401, { error: { code: "invalid_identity", message: "The identity token is not valid.", field: "Authorization" } });

test("the identity is fetched once with POST {} and kept in storage for every later call", async () => {
  const storage = memoryStorage();
  const fetch = routedFetch({
    "/api/identities": identityAnswer(ME),
    "*": json(201, stored()),
  });
  const identity = createIdentity({ fetch, storage });
  const api = createApi({ fetch, identity });
  const [a, b] = await Promise.all([identity.get(), identity.get()]);
  assert.deepEqual(a, ME);
  assert.deepEqual(b, ME);
  await api.postMessage("general", { user: "Ada", text: "hi", id: stored().id });
  await api.postMessage("general", { user: "Ada", text: "hi", id: stored().id });
  const issued = fetch.calls.filter((c) => c.path === "/api/identities");
  assert.equal(issued.length, 1, "one identity for the page, however many calls");
  assert.equal(issued[0].init.method, "POST");
  assert.equal(issued[0].init.headers["Content-Type"], "application/json");
  assert.deepEqual(issued[0].body, {});
  assert.equal(header(issued[0], "Authorization"), undefined);
  assert.deepEqual(JSON.parse(storage.data.get(IDENTITY_KEY)), ME);

  // another tab (or a reload) of the same profile reuses it without asking the server
  const again = routedFetch({});
  assert.deepEqual(await createIdentity({ fetch: again, storage }).get(), ME);
  assert.equal(again.calls.length, 0);
});

test("a stored identity of the wrong shape is replaced by a new one", async () => {
  for (const raw of ["not json", "null", "[]", '{"id":"short","token":"t"}', JSON.stringify({ id: ME.id }),
    JSON.stringify({ id: ME.id, token: "" }), JSON.stringify({ id: `${ME.id}!`, token: "t" })]) {
    assert.equal(parseIdentity(raw), null, raw);
    const storage = memoryStorage({ [IDENTITY_KEY]: raw });
    const fetch = routedFetch({ "/api/identities": identityAnswer(NEW) });
    assert.deepEqual(await createIdentity({ fetch, storage }).get(), NEW, raw);
    assert.deepEqual(JSON.parse(storage.data.get(IDENTITY_KEY)), NEW);
  }
  assert.deepEqual(parseIdentity(JSON.stringify(ME)), ME);
  const odd = routedFetch({ "/api/identities": identityAnswer({ id: "x", token: "y" }) });
  await assert.rejects(createIdentity({ fetch: odd, storage: memoryStorage() }).get(), { code: "bad_response" });
});

test("Authorization on every write and on negotiate, never on history", async () => {
  const fetch = routedFetch({
    "/api/rooms/general/join": new Response(null, { status: 202 }),
    "/api/rooms/general/leave": new Response(null, { status: 202 }),
    "/api/rooms/general/messages": (url, init) =>
      init.method === "GET" ? json(200, { messages: [stored()] }) : json(201, stored()),
    [`/api/negotiate/${ME.id}`]: json(200, { url: "http://sr.test/client/?hub=chat", accessToken: "svc" }),
  });
  const api = createApi({ fetch, identity: fixed() });
  await api.joinRoom("general");
  await api.postMessage("general", { user: "Ada", text: "hi", id: stored().id });
  await api.getMessages("general");
  await api.negotiate();
  await api.leaveRoom("general");
  assert.deepEqual(
    fetch.calls.map((c) => [c.init.method, c.path, header(c, "Authorization") ?? null]),
    [
      ["POST", "/api/rooms/general/join", `Bearer ${ME.token}`],
      ["POST", "/api/rooms/general/messages", `Bearer ${ME.token}`],
      ["GET", "/api/rooms/general/messages", null],
      ["POST", `/api/negotiate/${ME.id}`, `Bearer ${ME.token}`],
      ["POST", "/api/rooms/general/leave", `Bearer ${ME.token}`],
    ],
  );
});

test("401 invalid_identity or identity_required: a new identity, then the call once more", async () => {
  for (const code of ["invalid_identity", "identity_required"]) {
    const storage = memoryStorage({ [IDENTITY_KEY]: JSON.stringify(ME) });
    const fetch = routedFetch({
      "/api/identities": identityAnswer(NEW),
      "/api/rooms/general/messages": [
        json(401, { error: { code, message: "no", field: "Authorization" } }),
        json(201, stored({ authorId: NEW.id })),
      ],
    });
    const changes = [];
    const identity = createIdentity({ fetch, storage, onChange: (i) => changes.push(i?.id ?? null) });
    const api = createApi({ fetch, identity });
    const saved = await api.postMessage("general", { user: "Ada", text: "hi", id: stored().id });
    assert.equal(saved.authorId, NEW.id);
    assert.deepEqual(
      fetch.calls.map((c) => [c.path, header(c, "Authorization") ?? null]),
      [
        ["/api/rooms/general/messages", `Bearer ${ME.token}`],
        ["/api/identities", null],
        ["/api/rooms/general/messages", `Bearer ${NEW.token}`],
      ],
      code,
    );
    assert.equal(fetch.calls[0].body.id, fetch.calls[2].body.id, "the retry is the same message");
    assert.deepEqual(JSON.parse(storage.data.get(IDENTITY_KEY)), NEW, "the unusable identity is gone");
    assert.deepEqual(changes, [ME.id, null, NEW.id]);
  }
});

test("a second 401 is not retried again, and other 401s keep the identity", async () => {
  const storage = memoryStorage({ [IDENTITY_KEY]: JSON.stringify(ME) });
  const fetch = routedFetch({ "/api/identities": identityAnswer(NEW), "/api/rooms/general/join": invalidIdentity() });
  const api = createApi({ fetch, identity: createIdentity({ fetch, storage }) });
  await assert.rejects(api.joinRoom("general"), { status: 401, code: "invalid_identity", retryable: false });
  assert.deepEqual(fetch.calls.map((c) => c.path), ["/api/rooms/general/join", "/api/identities", "/api/rooms/general/join"]);

  const other = routedFetch({ "/api/rooms/general/join": json(401, { error: { code: "expired_session", message: "x" } }) });
  const kept = memoryStorage({ [IDENTITY_KEY]: JSON.stringify(ME) });
  await assert.rejects(createApi({ fetch: other, identity: createIdentity({ fetch: other, storage: kept }) }).joinRoom("general"));
  assert.equal(other.calls.length, 1);
  assert.deepEqual(JSON.parse(kept.data.get(IDENTITY_KEY)), ME);
});

test("discarding leaves alone an identity another tab stored meanwhile", async () => {
  const storage = memoryStorage({ [IDENTITY_KEY]: JSON.stringify(ME) });
  const identity = createIdentity({ fetch: routedFetch({}), storage });
  assert.deepEqual(await identity.get(), ME);
  storage.set(IDENTITY_KEY, JSON.stringify(NEW)); // the other tab already replaced ME
  identity.discard(ME);
  assert.deepEqual(await identity.get(), NEW);
});

test("negotiate posts to /api/negotiate/<identity id> and returns url, token and user id", async () => {
  const fetch = routedFetch({
    [`/api/negotiate/${ME.id}`]: json(200, { url: "http://sr.test/client/?hub=chat", accessToken: "svc" }),
  });
  const api = createApi({ fetch, identity: fixed() });
  assert.deepEqual(await api.negotiate({ search: "?negotiateVersion=1" }), {
    url: "http://sr.test/client/?hub=chat",
    accessToken: "svc",
    userId: ME.id,
  });
  assert.equal(fetch.calls[0].url, `/api/negotiate/${ME.id}?negotiateVersion=1`);
  assert.equal(fetch.calls[0].init.method, "POST");
  const odd = createApi({ fetch: routedFetch({ "*": json(200, { url: 1 }) }), identity: fixed() });
  await assert.rejects(odd.negotiate(), { code: "bad_response" });
  const wrong = createApi({
    fetch: routedFetch({ "*": json(403, { error: { code: "wrong_identity", message: "not yours", field: "userId" } }) }),
    identity: fixed(),
  });
  await assert.rejects(wrong.negotiate(), { status: 403, code: "wrong_identity", field: "userId" });
});

test("a new identity after a 401 on negotiate also changes the user id in the path", async () => {
  const storage = memoryStorage({ [IDENTITY_KEY]: JSON.stringify(ME) });
  const fetch = routedFetch({
    "/api/identities": identityAnswer(NEW),
    [`/api/negotiate/${ME.id}`]: invalidIdentity(),
    [`/api/negotiate/${NEW.id}`]: json(200, { url: "http://sr.test/client/?hub=chat", accessToken: "svc" }),
  });
  const api = createApi({ fetch, identity: createIdentity({ fetch, storage }) });
  const answer = await api.negotiate();
  assert.equal(answer.userId, NEW.id);
  assert.deepEqual(fetch.calls.map((c) => c.path), [`/api/negotiate/${ME.id}`, "/api/identities", `/api/negotiate/${NEW.id}`]);
  assert.equal(header(fetch.calls.at(-1), "Authorization"), `Bearer ${NEW.token}`);
});

test("postMessage: 200 (already stored, same author and text) is success like 201", async () => {
  const api = createApi({ fetch: fakeFetch(json(200, stored())), identity: fixed() });
  assert.deepEqual(await api.postMessage("general", { user: "Ada", text: "hi", id: stored().id }), stored());
  const slept = [];
  const again = await sendMessage(createApi({ fetch: fakeFetch(json(200, stored())), identity: fixed() }), "general",
    { user: "Ada", text: "hi", id: stored().id }, { sleep: async (ms) => slept.push(ms) });
  assert.deepEqual(again, stored());
  assert.deepEqual(slept, []);
});

test("409 id_taken is shown and never retried", async () => {
  const fetch = fakeFetch(json(409, { error: { code: "id_taken", message: "Another message already has this id.", field: "id" } }));
  const slept = [];
  await assert.rejects(
    sendMessage(createApi({ fetch, identity: fixed() }), "general", { user: "Ada", text: "hi", id: "x" },
      { sleep: async (ms) => slept.push(ms) }),
    { status: 409, code: "id_taken", field: "id", retryable: false, message: "Another message already has this id." },
  );
  assert.equal(fetch.calls.length, 1);
  assert.deepEqual(slept, []);
});

/** A clock that only moves when the code under test sleeps. */
function fakeClock(start = Date.parse("2026-11-27T21:00:00.000Z")) {
  const clock = { t: start, slept: [] };
  clock.now = () => clock.t;
  clock.sleep = async (ms) => {
    clock.slept.push(ms);
    clock.t += ms;
  };
  return clock;
}

const rateLimited = (seconds) =>
  json(429, { error: { code: "rate_limited", message: "Too many messages." } }, "", { "Retry-After": String(seconds) });

test("429: waits at least Retry-After, says so, and retries with the same id", async () => {
  const clock = fakeClock();
  const fetch = fakeFetch(rateLimited(7), rateLimited(2), json(201, stored()));
  const waits = [];
  const body = { user: "Ada", text: "hi", id: stored().id };
  const result = await sendMessage(createApi({ fetch, identity: fixed() }), "general", body, {
    delays: [10], sleep: clock.sleep, now: clock.now, onWait: (w) => waits.push(w && w.ms),
  });
  assert.deepEqual(result, stored());
  assert.deepEqual(clock.slept, [7000, 2000], "Retry-After, not the fixed delays");
  assert.deepEqual(waits, [7000, null, 2000, null]);
  assert.deepEqual(fetch.calls.map((c) => c.body.id), [body.id, body.id, body.id]);
  assert.ok(fetch.calls.every((c) => c.init.headers["Content-Type"] === "application/json"));
});

test("429: the wait is shared by all lines, a huge Retry-After fails the line instead, the retries are bounded", async () => {
  const clock = fakeClock();
  const gate = createRateGate();
  const first = fakeFetch(rateLimited(5), json(201, stored()));
  await sendMessage(createApi({ fetch: first, identity: fixed() }), "general", { user: "a", text: "b", id: stored().id },
    { sleep: clock.sleep, now: clock.now, gate, onWait: () => {} });
  // a second line sent while the first waits starts only after the gate (here: already passed)
  assert.equal(gate.until, Date.parse("2026-11-27T21:00:05.000Z"));
  const second = fakeFetch(json(201, stored()));
  const early = { t: gate.until - 3000 };
  const slept = [];
  await sendMessage(createApi({ fetch: second, identity: fixed() }), "general", { user: "a", text: "b", id: stored().id },
    { sleep: async (ms) => { slept.push(ms); early.t += ms; }, now: () => early.t, gate });
  assert.deepEqual(slept, [3000], "waits out the rest of the other line's Retry-After first");

  const huge = fakeFetch(rateLimited(3600));
  await assert.rejects(
    sendMessage(createApi({ fetch: huge, identity: fixed() }), "general", { user: "a", text: "b", id: "c" }, { sleep: clock.sleep, now: clock.now }),
    (err) => {
      assert.equal(err.status, 429);
      assert.equal(err.retryable, true);
      assert.match(err.message, /Sending too fast: the server asks to wait 3600 s/);
      return true;
    },
  );
  assert.equal(huge.calls.length, 1);

  const always = fakeFetch(rateLimited(1));
  await assert.rejects(
    sendMessage(createApi({ fetch: always, identity: fixed() }), "general", { user: "a", text: "b", id: "c" },
      { sleep: clock.sleep, now: clock.now, maxRateLimited: 3 }),
    { status: 429, code: "rate_limited", retryable: true },
  );
  assert.equal(always.calls.length, 4);
});

test("429: lines waiting at the gate resume in the order they came, whatever order their timers fire in", async () => {
  const t = { now: Date.parse("2026-11-27T21:00:00.000Z") };
  const gate = createRateGate();
  const sleepers = [];
  const sleep = (ms) => new Promise((resolve) => sleepers.push({ ms, resolve }));
  const posted = [];
  let limitedOnce = false;
  const fetch = async (url, init) => {
    const body = JSON.parse(init.body);
    if (!limitedOnce) {
      limitedOnce = true;
      return rateLimited(5);
    }
    posted.push(body.text);
    return json(201, stored({ id: body.id, text: body.text }));
  };
  const api = createApi({ fetch, identity: fixed() });
  const send = (text) => sendMessage(api, "general", { user: "a", text, id: `${text}-id` }, { sleep, now: () => t.now, gate });
  const first = send("one");
  while (sleepers.length < 1) await new Promise((resolve) => setImmediate(resolve));
  const rest = [send("two"), send("three")];
  while (sleepers.length < 3) await new Promise((resolve) => setImmediate(resolve));
  t.now += 5000;
  for (const sleeper of sleepers.reverse()) sleeper.resolve(); // "three" wakes first, "one" last
  await Promise.all([first, ...rest]);
  assert.deepEqual(posted, ["one", "two", "three"]);
});

test("Retry-After is read as seconds or an HTTP date", async () => {
  assert.equal(parseRetryAfter("7"), 7000);
  assert.equal(parseRetryAfter(" 0 "), 0);
  assert.equal(parseRetryAfter("Fri, 27 Nov 2026 21:00:10 GMT", Date.parse("2026-11-27T21:00:00Z")), 10000);
  assert.equal(parseRetryAfter("soon"), null);
  assert.equal(parseRetryAfter(null), null);
  const api = createApi({ fetch: fakeFetch(rateLimited(9)), identity: fixed() });
  await assert.rejects(api.negotiate(), { status: 429, code: "rate_limited", retryAfterMs: 9000, retryable: true });
});

test("SignalR's app negotiate: stale service token dropped, identity token only to the app, new path", async () => {
  const origin = "http://127.0.0.1:7071";
  const fetch = routedFetch({
    [`/api/negotiate/${ME.id}`]: json(200, { url: "http://127.0.0.1:8888/client/?hub=chat", accessToken: "svc-new" }),
  });
  const toService = [];
  const negotiated = [];
  const send = createSignalRSend({
    api: createApi({ fetch, baseUrl: origin, identity: fixed() }),
    pageOrigin: origin,
    next: async (request) => {
      toService.push(request);
      return { statusCode: 200, statusText: "OK", content: "{}" };
    },
    makeResponse: (statusCode, statusText, content) => ({ statusCode, statusText, content }),
    makeError: (message, statusCode) => Object.assign(new Error(message), { statusCode }),
    currentToken: () => ME.token,
    onNegotiate: (answer) => negotiated.push(answer.userId),
  });
  // what @microsoft/signalr sends on a reconnect: base URL /api + /negotiate, the old service token
  const response = await send({
    method: "POST",
    url: `${origin}/api/negotiate?negotiateVersion=1`,
    headers: { Authorization: "Bearer svc-old", "X-SignalR-User-Agent": "x" },
  });
  assert.equal(response.statusCode, 200);
  assert.deepEqual(JSON.parse(response.content), { url: "http://127.0.0.1:8888/client/?hub=chat", accessToken: "svc-new" });
  assert.deepEqual(negotiated, [ME.id]);
  assert.equal(fetch.calls.length, 1);
  assert.equal(fetch.calls[0].url, `${origin}/api/negotiate/${ME.id}?negotiateVersion=1`);
  assert.equal(header(fetch.calls[0], "Authorization"), `Bearer ${ME.token}`, "the identity token, not svc-old");
  assert.ok(!JSON.stringify(fetch.calls).includes("svc-old"), "the stale service token never reaches the app");

  // the service gets its own token, and never the identity token
  await send({ method: "POST", url: "http://127.0.0.1:8888/client/negotiate?hub=chat", headers: { Authorization: "Bearer svc-new" } });
  await send({ method: "POST", url: "http://127.0.0.1:8888/client/?hub=chat&id=1", headers: { authorization: `Bearer ${ME.token}` } });
  assert.equal(toService[0].headers.Authorization, "Bearer svc-new");
  assert.deepEqual(toService[1].headers, {});
  assert.ok(!JSON.stringify(toService).includes(ME.token), "the identity token never goes to the service");
  assert.equal(fetch.calls.length, 1, "service requests do not go through the app's fetch");
});

test("SignalR's app negotiate: a 429 reports its Retry-After before failing the start", async () => {
  const origin = "http://127.0.0.1:7071";
  const errors = [];
  const send = createSignalRSend({
    api: createApi({ fetch: fakeFetch(rateLimited(12)), baseUrl: origin, identity: fixed() }),
    pageOrigin: origin,
    next: async () => assert.fail("nothing goes to the service"),
    makeResponse: () => assert.fail("no response"),
    makeError: (message, statusCode) => Object.assign(new Error(message), { statusCode }),
    onNegotiateError: (err) => errors.push(err.retryAfterMs),
  });
  await assert.rejects(send({ method: "POST", url: `${origin}/api/negotiate?negotiateVersion=1`, headers: {} }), { statusCode: 429 });
  assert.deepEqual(errors, [12000]);
  // the reconnect policy never undercuts it (capped at 60 s)
  assert.equal(reconnectDelay(0, { notBeforeMs: 12000 }), 12000);
  assert.equal(reconnectDelay(1, { random: () => 0.5, notBeforeMs: 500 }), 2000);
  assert.equal(reconnectDelay(0, { notBeforeMs: 600000 }), 60000);
  assert.equal(reconnectDelay(6, { notBeforeMs: 12000 }), null, "still hands over to the offline loop");
});
