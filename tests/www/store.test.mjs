// The room message store: what a person sees, in which order, and that
// nothing shows twice although lines arrive from the POST answer, the live
// feed (at-least-once) and history/catch-up pages, in any order.
import { test } from "node:test";
import assert from "node:assert/strict";

import { RoomStore, Status, compareMessages, isMessage } from "../../www/js/store.js";

const ME = "k3F9aaaaaaaaaaaaaaaaaa";
const OTHER = "Qx7_bbbbbbbbbbbbbbbbbb";

let clock = Date.parse("2026-11-27T20:00:00.000Z");
function msg(overrides = {}) {
  clock += 1000;
  return {
    id: crypto.randomUUID(),
    room: "general",
    user: "Bob",
    authorId: OTHER,
    text: "hello",
    createdAt: new Date(clock).toISOString(),
    ...overrides,
  };
}
const ids = (store) => store.list().map((m) => m.id);
const texts = (store) => store.list().map((m) => m.text);

test("the same message from feed, history and a duplicate delivery is shown once", () => {
  const store = new RoomStore("general");
  const m = msg();
  assert.equal(store.receive(m), true);
  assert.equal(store.receive({ ...m }), false, "a redelivery changes nothing");
  assert.equal(store.mergePage([m, { ...m }]), 0);
  assert.equal(store.size, 1);
  assert.deepEqual(ids(store), [m.id]);
});

test("lines are ordered by createdAt, then id, whatever order they arrive in", () => {
  const store = new RoomStore("general");
  const t = "2026-11-27T20:10:00.000Z";
  const a = msg({ id: "00000000-0000-4000-8000-00000000000a", createdAt: t, text: "a" });
  const b = msg({ id: "00000000-0000-4000-8000-00000000000b", createdAt: t, text: "b" });
  const early = msg({ createdAt: "2026-11-27T20:09:59.999Z", text: "early" });
  const late = msg({ createdAt: "2026-11-27T20:10:00.001Z", text: "late" });
  for (const m of [late, b, early, a]) store.receive(m);
  assert.deepEqual(texts(store), ["early", "a", "b", "late"]);
});

test("equal instants written differently compare equal; ties fall back to id", () => {
  const x = { id: "b", createdAt: "2026-11-27T20:10:00.000Z" };
  const y = { id: "a", createdAt: "2026-11-27T20:10:00.000+00:00" };
  assert.ok(compareMessages(x, y) > 0);
  assert.ok(compareMessages(y, x) < 0);
  assert.equal(compareMessages(x, { ...x }), 0);
});

test("own line: pending at once, sent on 201, confirmed when it comes back through the feed", () => {
  const store = new RoomStore("general", { selfId: ME });
  const old = msg({ text: "older" });
  store.receive(old);
  const id = crypto.randomUUID();
  assert.equal(store.addPending({ id, user: "Ada", text: "hi all" }), true);
  let mine = store.get(id);
  assert.equal(mine.status, Status.PENDING);
  assert.equal(mine.own, true);
  assert.equal(mine.createdAt, null);
  assert.deepEqual(texts(store), ["older", "hi all"], "pending lines come last");

  const stored = msg({ id, user: "Ada", authorId: ME, text: "hi all" });
  assert.equal(store.markSent(id, stored), true);
  assert.equal(store.get(id).status, Status.SENT);
  assert.equal(store.get(id).createdAt, stored.createdAt);

  assert.equal(store.receive(stored), true);
  mine = store.get(id);
  assert.equal(mine.status, Status.CONFIRMED);
  assert.equal(mine.own, true, "still the person's own line: the stored authorId is theirs");
  assert.equal(mine.authorId, ME);
  assert.equal(store.size, 2, "the echo did not add a second line");
});

test("the feed can beat the POST answer: a late 201 does not downgrade a confirmed line", () => {
  const store = new RoomStore("general");
  const id = crypto.randomUUID();
  store.addPending({ id, user: "Ada", text: "race" });
  const stored = msg({ id, user: "Ada", text: "race" });
  store.receive(stored);
  assert.equal(store.markSent(id, stored), false);
  assert.equal(store.markFailed(id, { message: "timeout", retryable: true }), false);
  assert.equal(store.get(id).status, Status.CONFIRMED);
});

test("a failed send keeps its id for Retry and can be discarded for editing", () => {
  const store = new RoomStore("general");
  const id = crypto.randomUUID();
  store.addPending({ id, user: "Ada", text: "flaky" });
  assert.equal(store.markFailed(id, { message: "Could not reach the server", retryable: true }), true);
  const failed = store.get(id);
  assert.equal(failed.status, Status.FAILED);
  assert.equal(failed.error, "Could not reach the server");
  assert.equal(failed.retryable, true);
  assert.deepEqual(store.unsent().map((m) => m.id), [id]);

  assert.equal(store.markRetrying(id), true);
  assert.equal(store.get(id).status, Status.PENDING);
  assert.equal(store.get(id).id, id, "same id, so the retried POST is idempotent");
  assert.equal(store.markRetrying(id), false, "only failed lines can be retried");

  store.markFailed(id, { message: "Message is too long", retryable: false });
  assert.equal(store.discard(id), true);
  assert.equal(store.size, 0);
});

test("a failed line whose first POST did reach the server is confirmed by catch-up", () => {
  const store = new RoomStore("general");
  const id = crypto.randomUUID();
  store.addPending({ id, user: "Ada", text: "timed out but stored" });
  store.markFailed(id, { message: "The server did not answer in time.", retryable: true });
  store.mergePage([msg({ id, user: "Ada", text: "timed out but stored" })]);
  assert.equal(store.get(id).status, Status.CONFIRMED);
  assert.equal(store.get(id).error, null);
  assert.equal(store.discard(id), false, "a stored line cannot be discarded");
});

test("catch-up pages merge with live lines received meanwhile, no gaps or duplicates", () => {
  const store = new RoomStore("general");
  const history = [msg({ text: "h1" }), msg({ text: "h2" })];
  store.mergePage(history);
  const missed = [msg({ text: "m1" }), msg({ text: "m2" }), msg({ text: "m3" })];
  const liveAfterReconnect = msg({ text: "live" });
  // The live line arrives while catch-up is in flight; catch-up overlaps it.
  store.receive(liveAfterReconnect);
  store.receive(missed[2]);
  assert.equal(store.mergePage([history[1], ...missed, liveAfterReconnect]), 2);
  assert.deepEqual(texts(store), ["h1", "h2", "m1", "m2", "m3", "live"]);
});

test("the catch-up cursor is the newest confirmed createdAt, optionally moved back", () => {
  const store = new RoomStore("general");
  assert.equal(store.catchUpCursor(), null, "nothing confirmed: load history instead");
  const a = msg({ createdAt: "2026-11-27T20:30:00.000Z" });
  const b = msg({ createdAt: "2026-11-27T20:30:05.250Z" });
  store.mergePage([b, a]);
  const id = crypto.randomUUID();
  store.addPending({ id, user: "Ada", text: "mine" });
  store.markSent(id, msg({ id, user: "Ada", text: "mine", createdAt: "2026-11-27T20:31:00.000Z" }));
  assert.equal(store.catchUpCursor(), b.createdAt, "a line only stored (not seen in the feed) does not move it");
  assert.equal(store.catchUpCursor(2000), "2026-11-27T20:30:03.250Z");
});

test("messages of other rooms and malformed objects are ignored", () => {
  const store = new RoomStore("general");
  assert.equal(store.receive(msg({ room: "random" })), false);
  assert.equal(store.receive({ id: "x", room: "general", user: "a", text: "b" }), false);
  assert.equal(store.receive(null), false);
  assert.equal(store.receive("{\"id\":\"x\"}"), false, "a double-encoded JSON string is not a message");
  assert.equal(store.mergePage(undefined), 0);
  assert.equal(store.size, 0);
  assert.equal(isMessage(msg({ createdAt: 5 })), false);
});

test("memory is bounded: the oldest confirmed lines go first, own unsent lines stay", () => {
  const store = new RoomStore("general", { maxConfirmed: 3 });
  const id = crypto.randomUUID();
  store.addPending({ id, user: "Ada", text: "unsent" });
  const lines = [1, 2, 3, 4, 5].map((n) => msg({ text: `l${n}` }));
  store.mergePage(lines);
  assert.deepEqual(texts(store), ["l3", "l4", "l5", "unsent"]);
});

test("list() returns a copy in display order", () => {
  const store = new RoomStore("general");
  store.receive(msg());
  const list = store.list();
  list.pop();
  assert.equal(store.list().length, 1);
});

test("a stored copy with another authorId is not mine, whatever the pending copy with that id said", () => {
  const store = new RoomStore("general", { selfId: ME });
  const id = crypto.randomUUID();
  store.addPending({ id, user: "Ada", text: "mine?" });
  assert.equal(store.get(id).own, true, "typed here: shown as mine until the server answers");
  assert.equal(store.get(id).authorId, ME);
  assert.equal(store.receive(msg({ id, user: "Ada", authorId: OTHER, text: "mine?" })), true);
  assert.equal(store.get(id).status, Status.CONFIRMED);
  assert.equal(store.get(id).own, false);
  assert.equal(store.get(id).authorId, OTHER);

  // the same through the POST answer
  const other = crypto.randomUUID();
  store.addPending({ id: other, user: "Ada", text: "x" });
  store.markSent(other, msg({ id: other, user: "Ada", authorId: OTHER, text: "x" }));
  assert.equal(store.get(other).own, false);
});

test("mine by authorId when the names differ; not mine when only the name is mine", () => {
  const store = new RoomStore("general", { selfId: ME });
  const renamed = msg({ user: "Ada (old name)", authorId: ME });
  const namesake = msg({ user: "Ada", authorId: OTHER });
  const legacy = msg({ user: "Ada", authorId: undefined });
  const nullAuthor = msg({ user: "Ada", authorId: null });
  store.mergePage([renamed, namesake, legacy, nullAuthor]);
  assert.equal(store.get(renamed.id).own, true);
  assert.equal(store.get(namesake.id).own, false);
  assert.equal(store.get(legacy.id).own, false, "stored before identities: never mine");
  assert.equal(store.get(legacy.id).authorId, null);
  assert.equal(store.get(nullAuthor.id).own, false);
  assert.equal(isMessage(legacy), true, "still a message without authorId");
});

test("no identity yet: nothing stored is mine; once it is known the lines are re-decided", () => {
  const store = new RoomStore("general");
  const a = msg({ authorId: ME });
  const b = msg({ authorId: OTHER });
  const id = crypto.randomUUID();
  store.mergePage([a, b]);
  store.addPending({ id, user: "Ada", text: "typed" });
  assert.equal(store.get(a.id).own, false);
  assert.equal(store.setSelfId(ME), true);
  assert.equal(store.get(a.id).own, true);
  assert.equal(store.get(b.id).own, false);
  assert.equal(store.get(id).own, true, "a pending line stays mine");
  assert.equal(store.setSelfId(ME), false, "nothing changed");
  store.setSelfId(OTHER); // a new identity (the old one was refused)
  assert.equal(store.get(a.id).own, false);
  assert.equal(store.get(b.id).own, true);
});

test("a redelivery with the same fields is a duplicate; a changed authorId is not", () => {
  const store = new RoomStore("general", { selfId: ME });
  const m = msg({ authorId: ME });
  store.receive(m);
  assert.equal(store.receive({ ...m }), false);
  assert.equal(store.receive({ ...m, authorId: OTHER }), true);
  assert.equal(store.get(m.id).own, false);
});

test("a pending line can wait out a 429 and stays pending", () => {
  const store = new RoomStore("general", { selfId: ME });
  const id = crypto.randomUUID();
  store.addPending({ id, user: "Ada", text: "fast" });
  assert.equal(store.markWaiting(id, 1000), true);
  assert.equal(store.markWaiting(id, 1000), false);
  assert.equal(store.get(id).status, Status.PENDING);
  assert.equal(store.get(id).waitUntil, 1000);
  store.markSent(id, msg({ id, user: "Ada", authorId: ME, text: "fast" }));
  assert.equal(store.get(id).waitUntil, null);
  assert.equal(store.markWaiting(id, 5), false, "only pending lines wait");
});
