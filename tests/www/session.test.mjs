// The chat session's life cycle: join, history, catch-up after reconnect,
// room switches, sending, the offline loop. The session runs against a fake
// HubConnection (the surface of @microsoft/signalr it uses) and the real API
// wrappers over an in-memory chat server behind a fake fetch.
import { test } from "node:test";
import assert from "node:assert/strict";

import { createApi } from "../../www/js/api.js";
import { ChatSession } from "../../www/js/session.js";
import { Status } from "../../www/js/store.js";

/** The Function App's HTTP contract, in memory, plus the change feed → SignalR fan-out. */
class FakeChatServer {
  constructor() {
    this.clock = Date.parse("2026-11-27T21:00:00.000Z");
    this.messages = [];
    this.groups = new Map(); // room -> Set(connectionId)
    this.requests = [];
    this.failPosts = 0;
    this.feed = []; // stored but not yet fanned out
    this.connections = new Map(); // connectionId -> FakeConnection
    this.fetch = this.fetch.bind(this);
  }

  store(room, user, text, id = crypto.randomUUID()) {
    const existing = this.messages.find((m) => m.id === id);
    if (existing) return existing;
    this.clock += 10;
    const message = { id, room, user, text, createdAt: new Date(this.clock).toISOString() };
    this.messages.push(message);
    this.feed.push(message);
    return message;
  }

  /** Delivers stored messages to the connections in each room's group (the FeedToSignalR path). */
  flush() {
    for (const message of this.feed.splice(0)) {
      for (const id of this.groups.get(message.room) ?? []) this.connections.get(id)?.deliver(message);
    }
  }

  async fetch(url, init) {
    const u = new URL(url, "http://app.test");
    const body = init.body ? JSON.parse(init.body) : undefined;
    this.requests.push({ method: init.method, path: u.pathname, query: Object.fromEntries(u.searchParams), body });
    const json = (status, data) => new Response(data === undefined ? null : JSON.stringify(data), { status });
    const m = u.pathname.match(/^\/api\/rooms\/([a-z0-9-]+)\/(join|leave|messages)$/);
    if (!m) return json(404, { error: { code: "not_found", message: "no route" } });
    const [, room, action] = m;
    if (action === "join" || action === "leave") {
      const group = this.groups.get(room) ?? new Set();
      if (action === "join") group.add(body.connectionId);
      else group.delete(body.connectionId);
      this.groups.set(room, group);
      return json(202);
    }
    if (init.method === "POST") {
      if (this.failPosts > 0) {
        this.failPosts -= 1;
        return json(503, { error: { code: "unavailable", message: "Cosmos DB is busy" } });
      }
      return json(201, this.store(room, body.user, body.text, body.id));
    }
    const limit = Number(u.searchParams.get("limit"));
    const after = u.searchParams.get("after");
    const inRoom = this.messages.filter((x) => x.room === room).sort((a, b) => a.createdAt.localeCompare(b.createdAt));
    const page = after ? inRoom.filter((x) => x.createdAt > after).slice(0, limit) : inRoom.slice(-limit);
    return json(200, { messages: page });
  }

  get joins() {
    return this.requests.filter((r) => r.path.endsWith("/join")).map((r) => [r.path.split("/")[3], r.body.connectionId]);
  }

  get histories() {
    return this.requests.filter((r) => r.method === "GET").map((r) => r.query.after ?? null);
  }
}

/** The HubConnection surface the session uses; every start() is a new negotiate → new id. */
class FakeConnection {
  constructor(server) {
    this.server = server;
    this.state = "Disconnected";
    this.connectionId = null;
    this.starts = 0;
    this.failStarts = 0;
    this.handlers = {};
  }
  on(name, fn) { this.handlers[name] = fn; }
  onreconnecting(fn) { this.handlers.reconnecting = fn; }
  onreconnected(fn) { this.handlers.reconnected = fn; }
  onclose(fn) { this.handlers.close = fn; }
  #newId() {
    this.starts += 1;
    this.connectionId = `conn-${this.starts}`;
    this.server.connections.set(this.connectionId, this);
  }
  async start() {
    if (this.failStarts > 0) {
      this.failStarts -= 1;
      this.starts += 1;
      throw new Error("Failed to complete negotiation with the server");
    }
    this.#newId();
    this.state = "Connected";
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

function setup({ pageSize = 50, online = true, maxCatchUpPages = 40 } = {}) {
  const server = new FakeChatServer();
  const connection = new FakeConnection(server);
  const timers = [];
  const seen = { renders: 0, states: [], notices: [], announced: [] };
  const env = { online };
  const session = new ChatSession({
    api: createApi({ fetch: server.fetch, timeoutMs: 0 }),
    connection,
    pageSize,
    maxCatchUpPages,
    overlapMs: 0,
    sendDelays: [0],
    sleep: async () => {},
    timer: { set: (fn, ms) => timers.push({ fn, ms }) , clear: () => {} },
    isOnline: () => env.online,
    offlineDelay: (attempt) => 5000 * 2 ** attempt,
    view: {
      render: () => { seen.renders += 1; },
      connection: (state) => seen.states.push(state),
      notice: (text) => seen.notices.push(text),
      announce: (text) => seen.announced.push(text),
    },
  });
  session.name = "Ada";
  return { server, connection, session, timers, seen, env };
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

test("switching rooms leaves the old group, joins the new one and ignores the old room's lines", async () => {
  const { server, connection, session } = setup();
  await session.enterRoom("general");
  await session.connectNow();
  await session.synced;
  server.store("random", "Bob", "in random");
  await session.enterRoom("random");
  await new Promise((resolve) => setImmediate(resolve)); // the best-effort leave
  assert.ok(server.requests.some((r) => r.path === "/api/rooms/general/leave" && r.body.connectionId === "conn-1"));
  assert.deepEqual(server.joins.at(-1), ["random", "conn-1"]);
  assert.deepEqual(texts(session), ["in random"]);
  connection.deliver({ id: crypto.randomUUID(), room: "general", user: "Bob", text: "late", createdAt: new Date().toISOString() });
  assert.deepEqual(texts(session), ["in random"]);
  assert.equal(session.storeFor("general").size, 0);
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
  const ids = server.requests.filter((r) => r.method === "POST").map((r) => r.body.id);
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
