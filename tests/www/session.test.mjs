// The chat session's life cycle: join, history, catch-up after reconnect,
// room switches, sending, the offline loop. The session runs against a fake
// HubConnection (the surface of @microsoft/signalr it uses) and the real API
// wrappers over an in-memory chat server behind a fake fetch.
import { test } from "node:test";
import assert from "node:assert/strict";

import { createApi } from "../../www/js/api.js";
import { createIdentity } from "../../www/js/identity.js";
import { ChatSession } from "../../www/js/session.js";
import { Status } from "../../www/js/store.js";

const BOB = "BobBobBobBobBobBobBob_";

/**
 * The Function App's HTTP contract, in memory, plus the change feed → SignalR
 * fan-out: identities and bearer tokens, negotiate at `/api/negotiate/<identity
 * id>` (the SignalR user id is the identity id), join/leave with `{}` moving the
 * caller's *user* (so membership belongs to the identity, is shared by all its
 * connections and survives a reconnect, as in the service), SaveChat's
 * 201/200/409/429.
 */
class FakeChatServer {
  constructor() {
    this.clock = Date.parse("2026-11-27T21:00:00.000Z");
    this.messages = [];
    this.groups = new Map(); // room -> Set(user id): user-group membership, as the service keeps it
    this.requests = [];
    this.failPosts = 0;
    this.rateLimits = []; // Retry-After seconds for the next POSTs of a message
    this.negotiateLimits = []; // Retry-After seconds for the next negotiates
    this.feed = []; // stored but not yet fanned out
    this.connections = new Map(); // connectionId -> FakeConnection
    this.users = new Map(); // connectionId -> SignalR user id (= identity id)
    this.tokens = new Map(); // token -> identity id
    this.issued = 0;
    this.fetch = this.fetch.bind(this);
  }

  store(room, user, text, id = crypto.randomUUID(), authorId = BOB) {
    const existing = this.messages.find((m) => m.id === id);
    if (existing) return existing;
    this.clock += 10;
    const message = { id, room, user, authorId, text, createdAt: new Date(this.clock).toISOString() };
    this.messages.push(message);
    this.feed.push(message);
    return message;
  }

  /** Forgets every token (a key rotation): the next authorized call answers 401 invalid_identity. */
  rotateKey() {
    this.tokens.clear();
  }

  /** The live connections of a SignalR user. */
  connectionsOf(userId) {
    return [...this.users].filter(([id, user]) => user === userId && this.connections.has(id)).map(([id]) => id);
  }

  /** Delivers stored messages to every connection of every user in the room's group (the FeedToSignalR path). */
  flush() {
    for (const message of this.feed.splice(0)) {
      for (const user of this.groups.get(message.room) ?? []) {
        for (const id of this.connectionsOf(user)) this.connections.get(id)?.deliver(message);
      }
    }
  }

  async fetch(url, init) {
    const u = new URL(url, "http://app.test");
    const body = init.body ? JSON.parse(init.body) : undefined;
    const auth = init.headers?.Authorization ?? null;
    this.requests.push({ method: init.method, path: u.pathname, query: Object.fromEntries(u.searchParams), body, auth });
    const json = (status, data, headers = {}) =>
      new Response(data === undefined ? null : JSON.stringify(data), { status, headers });
    const error = (status, code, field = null, headers = {}) =>
      json(status, { error: { code, message: `${code} (${status})`, field } }, headers);
    if (u.pathname === "/api/identities" && init.method === "POST") {
      this.issued += 1;
      const identity = { id: `Id${String(this.issued).padStart(20, "0")}`, token: `tok-${this.issued}-${crypto.randomUUID()}` };
      this.tokens.set(identity.token, identity.id);
      return json(201, identity);
    }
    const m = u.pathname.match(/^\/api\/rooms\/([a-z0-9-]+)\/(join|leave|messages)$/);
    const negotiate = u.pathname.match(/^\/api\/negotiate\/([^/]+)$/);
    if (!m && !negotiate) return error(404, "not_found");
    const isHistory = m && m[2] === "messages" && init.method === "GET";
    let identityId = null;
    if (!isHistory) {
      if (!auth) return error(401, "identity_required", "Authorization");
      identityId = this.tokens.get(auth.replace(/^Bearer /, "")) ?? null;
      if (!identityId) return error(401, "invalid_identity", "Authorization");
    }
    if (negotiate) {
      const userId = decodeURIComponent(negotiate[1]);
      if (userId !== identityId) return error(403, "wrong_identity", "userId");
      if (this.negotiateLimits.length > 0) {
        return error(429, "rate_limited", null, { "Retry-After": String(this.negotiateLimits.shift()) });
      }
      return json(200, { url: "http://signalr.test/client/?hub=chat", accessToken: `svc-for-${userId}` });
    }
    const [, room, action] = m;
    if (action === "join" || action === "leave") {
      const field = Object.keys(body ?? {})[0];
      if (field !== undefined) return error(400, "unknown_field", field);
      const live = this.connectionsOf(identityId);
      if (live.length === 0) return error(404, "not_connected", "Authorization");
      if (action === "join") this.requests.at(-1).joined = live.join(",");
      const group = this.groups.get(room) ?? new Set();
      if (action === "join") group.add(identityId);
      else group.delete(identityId);
      this.groups.set(room, group);
      return json(202);
    }
    if (init.method === "POST") {
      if (this.rateLimits.length > 0) {
        return error(429, "rate_limited", null, { "Retry-After": String(this.rateLimits.shift()) });
      }
      if (this.failPosts > 0) {
        this.failPosts -= 1;
        return json(503, { error: { code: "unavailable", message: "Cosmos DB is busy" } });
      }
      const existing = this.messages.find((x) => x.id === body.id);
      if (existing) {
        const same = existing.authorId === identityId && existing.user === body.user && existing.text === body.text;
        return same ? json(200, existing) : error(409, "id_taken", "id");
      }
      return json(201, this.store(room, body.user, body.text, body.id, identityId));
    }
    const limit = Number(u.searchParams.get("limit"));
    const after = u.searchParams.get("after");
    const inRoom = this.messages.filter((x) => x.room === room).sort((a, b) => a.createdAt.localeCompare(b.createdAt));
    const page = after ? inRoom.filter((x) => x.createdAt > after).slice(0, limit) : inRoom.slice(-limit);
    return json(200, { messages: page });
  }

  /** [room, connection ids the join added] for every successful join. */
  get joins() {
    return this.requests
      .filter((r) => r.path.endsWith("/join") && r.joined)
      .map((r) => [r.path.split("/")[3], r.joined]);
  }

  get histories() {
    return this.requests.filter((r) => r.method === "GET").map((r) => r.query.after ?? null);
  }
}

/**
 * The HubConnection surface the session uses; every start() is a new
 * negotiate (through the real api.negotiate, as the page's SignalR HttpClient
 * does) → new id, registered under the negotiated user id.
 */
class FakeConnection {
  constructor(server, prefix = "conn") {
    this.server = server;
    this.prefix = prefix;
    this.state = "Disconnected";
    this.connectionId = null;
    this.userId = null;
    this.starts = 0;
    this.failStarts = 0;
    this.handlers = {};
    /** Set by setup(): the api's negotiate, and where a failed one is reported (app.js: createSignalRSend). */
    this.negotiate = null;
    this.onNegotiateError = () => {};
  }
  on(name, fn) { this.handlers[name] = fn; }
  onreconnecting(fn) { this.handlers.reconnecting = fn; }
  onreconnected(fn) { this.handlers.reconnected = fn; }
  onclose(fn) { this.handlers.close = fn; }
  #newId() {
    this.starts += 1;
    this.connectionId = `${this.prefix}-${this.starts}`;
    this.server.connections.set(this.connectionId, this);
    this.server.users.set(this.connectionId, this.userId);
  }
  async start() {
    if (this.failStarts > 0) {
      this.failStarts -= 1;
      this.starts += 1;
      throw new Error("Failed to complete negotiation with the server");
    }
    if (this.negotiate) {
      try {
        this.userId = (await this.negotiate()).userId;
      } catch (err) {
        this.starts += 1;
        this.onNegotiateError(err);
        throw new Error(`Failed to complete negotiation with the server: ${err.message}`);
      }
    }
    this.#newId();
    this.state = "Connected";
  }
  async stop() {
    if (this.state === "Disconnected") return;
    this.server.connections.delete(this.connectionId);
    this.state = "Disconnected";
    this.connectionId = null;
    this.handlers.close(undefined);
  }
  /** The service forgot the connection while the client still thinks it is connected. */
  vanish() {
    this.server.connections.delete(this.connectionId);
  }
  /** The transport dropped; the client's automatic reconnect begins. */
  drop() {
    this.server.connections.delete(this.connectionId);
    this.state = "Reconnecting";
    this.connectionId = null;
    this.handlers.reconnecting(new Error("WebSocket closed with status code: 1006"));
  }
  /** An automatic reconnect attempt succeeded (after a fresh negotiate). */
  reconnect() {
    this.#newId();
    this.state = "Connected";
    this.handlers.reconnected(this.connectionId);
  }
  /** The automatic reconnect gave up. */
  giveUp() {
    this.state = "Disconnected";
    this.handlers.close(new Error("gave up"));
  }
  deliver(message) {
    if (this.state === "Connected") this.handlers.newMessage(message);
  }
}

function memoryStorage() {
  const data = new Map();
  return { data, get: (k) => data.get(k) ?? null, set: (k, v) => data.set(k, v), remove: (k) => data.delete(k) };
}

/**
 * One page (tab). A second tab of the same browser profile passes the first
 * one's `server` and `storage`: it shares the identity, not the connection.
 */
function setup({ pageSize = 50, online = true, maxCatchUpPages = 40, server = new FakeChatServer(), storage = memoryStorage(), tab = "conn" } = {}) {
  const connection = new FakeConnection(server, tab);
  const timers = [];
  const seen = { renders: 0, states: [], notices: [], announced: [], sendStatus: [], slept: [] };
  const env = { online, now: Date.parse("2026-11-27T21:00:00.000Z") };
  let session = null;
  const identity = createIdentity({
    fetch: server.fetch,
    storage,
    timeoutMs: 0,
    onChange: (current) => session?.setSelfId(current?.id ?? null),
  });
  const api = createApi({ fetch: server.fetch, identity, timeoutMs: 0 });
  connection.negotiate = () => api.negotiate();
  connection.onNegotiateError = (err) => session.noteConnectRetryAfter(err.retryAfterMs);
  session = new ChatSession({
    api,
    connection,
    pageSize,
    maxCatchUpPages,
    overlapMs: 0,
    sendDelays: [0],
    now: () => env.now,
    sleep: async (ms) => {
      seen.slept.push(ms);
      env.now += ms;
    },
    timer: { set: (fn, ms) => timers.push({ fn, ms }) , clear: () => {} },
    isOnline: () => env.online,
    offlineDelay: (attempt) => 5000 * 2 ** attempt,
    view: {
      render: () => { seen.renders += 1; },
      connection: (state) => seen.states.push(state),
      notice: (text) => seen.notices.push(text),
      announce: (text) => seen.announced.push(text),
      sendStatus: (text) => seen.sendStatus.push(text),
    },
  });
  session.name = "Ada";
  return { server, connection, session, timers, seen, env, identity, api, storage };
}

const texts = (session) => session.storeFor(session.room).list().map((m) => m.text);

test("opening a room shows its history, then connecting joins and catches up", async () => {
  const { server, connection, session, seen } = setup();
  server.store("general", "Bob", "one");
  server.store("general", "Bob", "two");
  await session.enterRoom("general");
  assert.deepEqual(texts(session), ["one", "two"], "history over HTTP even before SignalR is up");
  assert.deepEqual(server.joins, [], "nothing to join without a connection");

  await session.connectNow();
  await session.synced;
  assert.deepEqual(seen.states, ["connecting", "live"]);
  assert.deepEqual(server.joins, [["general", "conn-1"]]);
  assert.deepEqual(server.histories, [null, server.messages[1].createdAt], "catch-up after the newest line");
  assert.equal(connection.starts, 1);
});

test("after a reconnect: join again with the new connection id and show what was missed", async () => {
  const { server, connection, session, seen } = setup();
  await session.enterRoom("general");
  await session.connectNow();
  await session.synced;
  server.store("general", "Bob", "before the drop");
  server.flush();
  assert.deepEqual(texts(session), ["before the drop"]);

  connection.drop();
  assert.equal(session.connState, "reconnecting");
  server.store("general", "Bob", "missed 1");
  server.store("general", "Cy", "missed 2");
  server.flush(); // nobody receives these: the old connection id is gone
  assert.deepEqual(texts(session), ["before the drop"]);

  connection.reconnect();
  await session.synced;
  assert.equal(session.connState, "live");
  assert.deepEqual(server.joins, [["general", "conn-1"], ["general", "conn-2"]]);
  assert.equal(server.histories.at(-1), server.messages[0].createdAt, "after= the newest confirmed line");
  assert.deepEqual(texts(session), ["before the drop", "missed 1", "missed 2"]);

  server.store("general", "Bob", "live again");
  server.flush();
  assert.deepEqual(texts(session), ["before the drop", "missed 1", "missed 2", "live again"]);
  assert.deepEqual(seen.states, ["connecting", "live", "reconnecting", "live"]);
});

test("catch-up pages with after= while full pages come back", async () => {
  const { server, connection, session } = setup({ pageSize: 2 });
  server.store("general", "Bob", "seen");
  await session.enterRoom("general");
  await session.connectNow();
  await session.synced;
  connection.drop();
  for (let i = 1; i <= 5; i += 1) server.store("general", "Bob", `missed ${i}`);
  connection.reconnect();
  await session.synced;
  assert.deepEqual(texts(session), ["seen", "missed 1", "missed 2", "missed 3", "missed 4", "missed 5"]);
  const catchUp = server.histories.slice(2);
  // each next page starts after the previous page's second-newest line (api.js fetchMissed)
  assert.deepEqual(catchUp, [0, 1, 2, 3, 4].map((i) => server.messages[i].createdAt));
});

test("a client too far behind to page through shows the latest lines and says some are not shown", async () => {
  const { server, connection, session, seen } = setup({ pageSize: 2, maxCatchUpPages: 2 });
  server.store("general", "Bob", "seen");
  await session.enterRoom("general");
  await session.connectNow();
  await session.synced;
  connection.drop();
  for (let i = 1; i <= 9; i += 1) server.store("general", "Bob", `missed ${i}`);
  connection.reconnect();
  await session.synced;
  const shown = texts(session);
  assert.deepEqual(shown.slice(-2), ["missed 8", "missed 9"]); // the latest page is there
  assert.ok(shown.length < 10); // and some lines in between are not
  assert.match(seen.notices.at(-1), /messages arrived while you were away: the latest are shown/);
});

const later = (ms) => new Date(Date.parse("2026-11-27T21:00:00.000Z") + ms).toISOString();

test("switching rooms joins the new one without leaving the old; its lines are filed under their own room", async () => {
  const { server, connection, session, seen } = setup();
  await session.enterRoom("general");
  await session.connectNow();
  await session.synced;
  server.store("random", "Bob", "in random");
  await session.enterRoom("random");
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(server.requests.filter((r) => r.path.endsWith("/leave")).length, 0, "no leave: it would silence other tabs");
  assert.deepEqual(server.joins.at(-1), ["random", "conn-1"]);
  assert.deepEqual(texts(session), ["in random"]);
  const announcedBefore = seen.announced.length;
  const rendersBefore = seen.renders;

  // general is still joined (by the identity): its lines keep coming, filed under general only.
  server.store("general", "Bob", "still in general");
  server.flush();
  connection.deliver({ id: crypto.randomUUID(), room: "general", user: "Bob", text: "late", createdAt: later(60000) });
  connection.deliver({ id: crypto.randomUUID(), room: "Not A Room", user: "Bob", text: "odd", createdAt: later(60000) });
  assert.deepEqual(texts(session), ["in random"], "never shown in the current room");
  assert.deepEqual(session.storeFor("general").list().map((m) => m.text), ["still in general", "late"]);
  assert.equal(seen.announced.length, announcedBefore, "lines of another room are not read out");
  assert.equal(seen.renders, rendersBefore, "nor re-render the current room");
  assert.equal(session.stores.has("Not A Room"), false);

  // Back in general: everything heard meanwhile is there, with a short catch-up after the newest line.
  await session.enterRoom("general");
  assert.deepEqual(texts(session), ["still in general", "late"]);
  assert.equal(server.histories.at(-1), session.storeFor("general").list()[1].createdAt);
});

test("a room only heard live (another tab's) loads its history on the first visit", async () => {
  const { server, connection, session } = setup();
  await session.enterRoom("general");
  await session.connectNow();
  await session.synced;
  server.store("dev", "Bob", "old 1");
  server.store("dev", "Bob", "old 2");
  const live = server.store("dev", "Bob", "heard live");
  connection.deliver(live); // e.g. another tab of this profile joined dev
  assert.deepEqual(session.storeFor("dev").list().map((m) => m.text), ["heard live"]);
  await session.enterRoom("dev");
  assert.equal(server.histories.at(-1), null, "the latest page, not after= the live line");
  assert.deepEqual(texts(session), ["old 1", "old 2", "heard live"]);
});

test("after a drop, lines that reach the new connection before the join do not hide the ones missed", async () => {
  const { server, connection, session } = setup();
  await session.enterRoom("general");
  await session.connectNow();
  await session.synced;
  await session.enterRoom("random");
  server.store("general", "Bob", "heard");
  server.store("random", "Bob", "heard here");
  server.flush();
  connection.drop();
  server.store("general", "Bob", "missed in general");
  server.store("random", "Bob", "missed here");
  server.flush(); // nobody hears these: no connection
  // The identity is still in both groups: the new connection hears them before this page joins and catches up.
  connection.reconnect();
  const early = [server.store("random", "Bob", "early here"), server.store("general", "Bob", "early in general")];
  server.flush();
  await session.synced;
  assert.ok(early.every((m) => session.storeFor(m.room).get(m.id)));
  assert.deepEqual(texts(session), ["heard here", "missed here", "early here"]);
  await session.enterRoom("general");
  assert.deepEqual(texts(session), ["heard", "missed in general", "early in general"]);
});

test("two tabs of one profile: each hears its own room live, and a switch in one does not silence the other", async () => {
  const one = setup();
  await one.session.enterRoom("general");
  await one.session.connectNow();
  await one.session.synced;
  const two = setup({ server: one.server, storage: one.storage, tab: "tab2" });
  await two.session.enterRoom("random");
  await two.session.connectNow();
  await two.session.synced;
  assert.equal(two.identity.current().id, one.identity.current().id, "one identity for the profile");

  one.server.store("general", "Bob", "for general");
  one.server.store("random", "Bob", "for random");
  one.server.flush();
  assert.deepEqual(texts(one.session), ["for general"]);
  assert.deepEqual(texts(two.session), ["for random"]);

  await one.session.enterRoom("dev");
  one.server.store("random", "Bob", "random again");
  one.server.store("dev", "Bob", "for dev");
  one.server.flush();
  assert.deepEqual(texts(two.session), ["for random", "random again"]);
  assert.deepEqual(texts(one.session), ["for dev"]);
  assert.equal(one.server.requests.filter((r) => r.path.endsWith("/leave")).length, 0);
});

test("own line: pending at once, sent on 201, confirmed once through the feed", async () => {
  const { server, connection, session, seen } = setup();
  await session.enterRoom("general");
  await session.connectNow();
  await session.synced;
  const result = session.send("  hello  ");
  assert.equal(result.ok, true);
  const store = session.storeFor("general");
  assert.equal(store.get(result.id).status, Status.PENDING);
  assert.equal(store.get(result.id).text, "hello");
  await result.delivered;
  assert.equal(store.get(result.id).status, Status.SENT);
  server.flush();
  server.flush();
  connection.deliver(server.messages[0]); // at-least-once: a redelivery
  assert.equal(store.get(result.id).status, Status.CONFIRMED);
  assert.equal(store.size, 1);
  assert.deepEqual(seen.announced, [], "own lines are not read out again");
  const post = server.requests.find((r) => r.method === "POST" && r.path.endsWith("/messages"));
  assert.deepEqual(post.body, { user: "Ada", text: "hello", id: result.id });
});

test("lines from others are announced; invalid input is refused before anything is sent", async () => {
  const { server, session, seen } = setup();
  await session.enterRoom("general");
  await session.connectNow();
  await session.synced;
  server.store("general", "Bob", "hi Ada");
  server.flush();
  assert.deepEqual(seen.announced, ["Bob: hi Ada"]);
  assert.deepEqual(session.send("   "), { ok: false, message: "Message is empty." });
  assert.equal(session.send("x".repeat(2001)).ok, false);
  session.name = null;
  assert.equal(session.send("hi").ok, false);
  assert.equal(server.requests.filter((r) => r.method === "POST" && r.path.endsWith("/messages")).length, 0);
});

test("a send that keeps failing can be retried with the same id, or taken back to edit", async () => {
  const { server, session, seen } = setup();
  await session.enterRoom("general");
  server.failPosts = 2; // the first try and its one automatic retry
  const result = session.send("flaky");
  await result.delivered;
  const store = session.storeFor("general");
  assert.equal(store.get(result.id).status, Status.FAILED);
  assert.equal(store.get(result.id).error, "Cosmos DB is busy");
  assert.deepEqual(seen.announced, ["Your message was not sent: Cosmos DB is busy"]);
  assert.equal(session.hasUnsent(), true);
  await session.retry(result.id);
  assert.equal(store.get(result.id).status, Status.SENT);
  const ids = server.requests.filter((r) => r.method === "POST" && r.path.endsWith("/messages")).map((r) => r.body.id);
  assert.deepEqual(ids, [result.id, result.id, result.id]);
  assert.equal(server.messages.length, 1);

  server.failPosts = 2;
  const second = session.send("edit me");
  await second.delivered;
  assert.equal(session.edit(second.id), "edit me");
  assert.equal(store.get(second.id), undefined);
  assert.equal(session.hasUnsent(), false);
});

test("first start fails: offline with a scheduled restart that negotiates afresh", async () => {
  const { connection, session, timers, seen } = setup();
  await session.enterRoom("general");
  connection.failStarts = 2;
  await session.connectNow();
  assert.equal(session.connState, "offline");
  assert.deepEqual(timers.map((t) => t.ms), [5000]);
  await timers.shift().fn();
  assert.deepEqual(timers.map((t) => t.ms), [10000], "backoff grows");
  await timers.shift().fn();
  await session.synced;
  assert.equal(session.connState, "live");
  assert.equal(connection.starts, 3, "each attempt is a full start()");
  assert.deepEqual(seen.states, ["connecting", "offline", "reconnecting", "offline", "reconnecting", "live"]);
});

test("when automatic reconnect gives up the session goes offline; back online reconnects at once", async () => {
  const { server, connection, session, timers, env } = setup();
  await session.enterRoom("general");
  await session.connectNow();
  await session.synced;
  connection.drop();
  env.online = false;
  connection.giveUp();
  assert.equal(session.connState, "offline");
  assert.equal(timers.length, 0, "no pointless retries while the browser has no network");
  server.store("general", "Bob", "while offline");
  env.online = true;
  await session.handleOnline();
  await session.synced;
  assert.equal(session.connState, "live");
  assert.deepEqual(server.joins.at(-1), ["general", "conn-2"]);
  assert.deepEqual(texts(session), ["while offline"]);
  await session.handleOnline();
  assert.equal(connection.starts, 2, "no second start while connected");
});

// --- identity, session, rate limits ------------------------------------------------------

const posts = (server) => server.requests.filter((r) => r.method === "POST" && r.path.endsWith("/messages"));

test("one identity per page; negotiate names the identity id, join sends {} with the token", async () => {
  const { server, connection, session, identity } = setup();
  await session.enterRoom("general");
  await session.connectNow();
  await session.synced;
  const me = identity.current();
  assert.equal(session.selfId, me.id);
  assert.equal(server.requests.filter((r) => r.path === "/api/identities").length, 1);
  const negotiate = server.requests.find((r) => r.path.startsWith("/api/negotiate/"));
  assert.equal(negotiate.path, `/api/negotiate/${me.id}`);
  assert.equal(connection.userId, me.id, "the SignalR user id is the identity id");
  assert.equal(negotiate.auth, `Bearer ${me.token}`);
  const join = server.requests.find((r) => r.path.endsWith("/join"));
  assert.deepEqual(join.body, {});
  assert.equal(join.auth, `Bearer ${me.token}`);
  assert.ok(server.requests.filter((r) => r.method === "GET").every((r) => r.auth === null), "history carries no token");
});

test("mine is decided by authorId: a namesake's line is not mine, my line under an old name is", async () => {
  const { server, session, seen, identity } = setup();
  await session.enterRoom("general");
  await session.connectNow();
  await session.synced;
  const me = identity.current().id;
  const namesake = server.store("general", "Ada", "I am also Ada", crypto.randomUUID(), BOB);
  const renamed = server.store("general", "Ada the First", "before I renamed", crypto.randomUUID(), me);
  const legacy = server.store("general", "Ada", "from before identities", crypto.randomUUID(), undefined);
  delete legacy.authorId;
  server.flush();
  const store = session.storeFor("general");
  assert.equal(session.isOwn(store.get(namesake.id)), false, "same display name, other identity");
  assert.equal(session.isOwn(store.get(renamed.id)), true, "other display name, my identity");
  assert.equal(session.isOwn(store.get(legacy.id)), false, "no authorId: never mine");
  assert.deepEqual(seen.announced, ["Ada: I am also Ada", "Ada: from before identities"], "only others' lines are read out");

  const sent = session.send("hello");
  assert.equal(session.isOwn(store.get(sent.id)), true, "pending: mine until the server answers");
  await sent.delivered;
  assert.equal(store.get(sent.id).authorId, me);
  assert.equal(session.isOwn(store.get(sent.id)), true);
});

test("a stored line with my pending line's id but another author is not mine", async () => {
  const { server, session, connection } = setup();
  await session.enterRoom("general");
  await session.connectNow();
  await session.synced;
  const id = "5b0c8a4e-7f53-4c55-9a41-3f1c2b9d7e10";
  session.newId = () => id;
  const sent = session.send("collide");
  const store = session.storeFor("general");
  connection.deliver({ id, room: "general", user: "Ada", authorId: BOB, text: "collide", createdAt: new Date().toISOString() });
  assert.equal(store.get(id).own, false);
  server.store("general", "Ada", "collide", id, BOB); // the server has Bob's line under that id
  await sent.delivered;
  assert.equal(store.get(id).status, Status.CONFIRMED);
  assert.equal(session.isOwn(store.get(id)), false);
});

test("409 id_taken fails the line for good: shown, not retried, only Edit helps", async () => {
  const { server, session, seen } = setup();
  await session.enterRoom("general");
  const id = crypto.randomUUID();
  server.store("general", "Bob", "first", id, BOB);
  session.newId = () => id;
  const sent = session.send("second");
  await sent.delivered;
  const entry = session.storeFor("general").get(id);
  assert.equal(posts(server).length, 1);
  // the stored line of Bob arrives by catch-up later; before that the own copy is failed
  assert.equal(entry.status, Status.FAILED);
  assert.equal(entry.retryable, false);
  assert.match(entry.error, /id_taken/);
  assert.match(seen.announced.at(-1), /^Your message was not sent: /);
});

test("429 on send: the line stays pending, the status says how long, then it goes with the same id", async () => {
  const { server, session, seen } = setup();
  await session.enterRoom("general");
  server.rateLimits = [7];
  const sent = session.send("too fast");
  const store = session.storeFor("general");
  await sent.delivered;
  assert.deepEqual(seen.sendStatus, ["Sending too fast: retrying in 7 s", ""]);
  assert.ok(seen.slept.includes(7000), "waited the whole Retry-After");
  assert.equal(store.get(sent.id).status, Status.SENT);
  assert.equal(store.get(sent.id).waitUntil, null);
  assert.deepEqual(posts(server).map((r) => r.body.id), [sent.id, sent.id]);
  assert.equal(server.messages.length, 1);
});

test("429 on send: while waiting the line is pending (not failed) and shows when it retries", async () => {
  const { server, session, env } = setup();
  await session.enterRoom("general");
  server.rateLimits = [5];
  let release;
  session.sleep = (ms) => new Promise((resolve) => {
    release = () => {
      env.now += ms;
      resolve();
    };
  });
  const sent = session.send("hold on");
  const store = session.storeFor("general");
  while (!release) await new Promise((resolve) => setImmediate(resolve));
  assert.equal(store.get(sent.id).status, Status.PENDING);
  assert.ok(store.get(sent.id).waitUntil > 0);
  assert.equal(session.isWaitingToSend(), true);
  assert.equal(session.hasUnsent(), true);
  release();
  await sent.delivered;
  assert.equal(store.get(sent.id).status, Status.SENT);
  assert.equal(session.isWaitingToSend(), false);
});

test("negotiate 429: the next connect attempt waits at least Retry-After", async () => {
  const { server, session, timers } = setup();
  await session.enterRoom("general");
  server.negotiateLimits = [45];
  await session.connectNow();
  assert.equal(session.connState, "offline");
  assert.deepEqual(timers.map((t) => t.ms), [45000], "not the 5 s of the offline loop");
  assert.equal(session.connectWaitMs(), 45000);
  await session.handleOnline(); // "Reconnect now" does not undercut it either
  assert.equal(server.requests.filter((r) => r.path.startsWith("/api/negotiate/")).length, 1);
  await timers.at(-1).fn();
  await session.synced;
  assert.equal(session.connState, "live");
});

test("join answered 404 not_connected: a fresh negotiate, then the join again", async () => {
  const { server, connection, session } = setup();
  await session.enterRoom("general");
  await session.connectNow();
  await session.synced;
  connection.vanish(); // the service no longer knows conn-1, the client does not know yet
  await session.enterRoom("random");
  while (session.connState !== "live" || connection.starts < 2) await new Promise((resolve) => setImmediate(resolve));
  await session.synced;
  assert.equal(connection.starts, 2);
  assert.deepEqual(server.joins, [["general", "conn-1"], ["random", "conn-2"]]);
  const refused = server.requests.filter((r) => r.path === "/api/rooms/random/join");
  assert.equal(refused.length, 2, "refused once (not_connected), then joined");
  assert.ok(refused.every((r) => Object.keys(r.body).length === 0));
});

test("a rotated server key: 401 invalid_identity, a new identity, the line still goes, mine follows the new id", async () => {
  const { server, session, identity } = setup();
  await session.enterRoom("general");
  await session.connectNow();
  await session.synced;
  const before = identity.current();
  server.rotateKey();
  const sent = session.send("after rotation");
  await sent.delivered;
  const after = identity.current();
  assert.notEqual(after.id, before.id);
  assert.equal(session.selfId, after.id);
  const store = session.storeFor("general");
  assert.equal(store.get(sent.id).status, Status.SENT);
  assert.equal(store.get(sent.id).authorId, after.id);
  assert.equal(session.isOwn(store.get(sent.id)), true);
  assert.deepEqual(posts(server).map((r) => r.auth), [`Bearer ${before.token}`, `Bearer ${after.token}`]);
});
