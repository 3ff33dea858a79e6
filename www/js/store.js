// The message store of one room: the single place that decides what the
// person sees and in which order. Lines arrive from three sources that can
// overlap and race (the person's own POST, the live SignalR feed, history and
// catch-up pages), and the change feed is at-least-once, so everything is
// merged by message id and nothing is ever shown twice.
// DOM-free so Node's test runner can exercise it.

/** Life cycle of a line, as shown to the person. */
export const Status = Object.freeze({
  /** Own line, POST in flight (or being retried). */
  PENDING: "pending",
  /** Own line the server stored (201) but that has not come back through the feed yet. */
  SENT: "sent",
  /** Seen through the feed, history or catch-up: everyone in the room has it. */
  CONFIRMED: "confirmed",
  /** Own line whose POST failed; `error` says why, `retryable` whether Retry can help. */
  FAILED: "failed",
});

const FIELDS = ["id", "room", "user", "text", "createdAt"];

/** The author's identity id, or null (messages stored before identities have none). */
export function authorIdOf(message) {
  const id = message ? message.authorId : null;
  return typeof id === "string" && id !== "" ? id : null;
}

/**
 * True for an object with the five public message fields as strings
 * (`authorId` is optional: lines stored before identities lack it).
 */
export function isMessage(value) {
  return (
    value !== null &&
    typeof value === "object" &&
    FIELDS.every((f) => typeof value[f] === "string") &&
    value.id !== "" &&
    value.createdAt !== ""
  );
}

function timeOf(createdAt) {
  const t = Date.parse(createdAt);
  return Number.isNaN(t) ? null : t;
}

function compareStrings(a, b) {
  if (a < b) return -1;
  if (a > b) return 1;
  return 0;
}

/**
 * Display order: by `createdAt` (server time), then by `id` so two lines
 * stored in the same millisecond sort the same way in every browser. Lines
 * without a server time yet (own pending or failed lines) come last, in the
 * order the person sent them.
 */
export function compareMessages(a, b) {
  const aHas = typeof a.createdAt === "string" && a.createdAt !== "";
  const bHas = typeof b.createdAt === "string" && b.createdAt !== "";
  if (aHas && bHas) {
    const ta = timeOf(a.createdAt);
    const tb = timeOf(b.createdAt);
    // Parsed, so "…Z" and "…+00:00" spellings of one instant compare equal.
    const byTime =
      ta !== null && tb !== null ? ta - tb : compareStrings(a.createdAt, b.createdAt);
    return byTime !== 0 ? byTime : compareStrings(a.id, b.id);
  }
  if (aHas) return -1;
  if (bHas) return 1;
  return (a.seq ?? 0) - (b.seq ?? 0);
}

/**
 * Messages of one room, keyed by id.
 *
 * Every mutating method returns true when something visible changed, so the
 * UI re-renders only when needed.
 */
export class RoomStore {
  /**
   * @param {string} room
   * @param {{maxConfirmed?: number, selfId?: string|null}} [options] `maxConfirmed`: confirmed
   *   lines kept in memory; the oldest confirmed ones are dropped first, own
   *   unconfirmed ones never. `selfId`: this browser's identity id.
   */
  constructor(room, { maxConfirmed = 500, selfId = null } = {}) {
    this.room = room;
    this.maxConfirmed = maxConfirmed;
    /** Identity id of this browser: a stored line is own iff its authorId equals it. */
    this.selfId = selfId;
    /** @type {Map<string, object>} */
    this.entries = new Map();
    this.seq = 0;
    this.sorted = null;
    /** True once the room's history has been loaded at least once. */
    this.loaded = false;
    /**
     * Null while the room is known complete and heard live; `{after}` when
     * lines may be missing after `after` (a catch-up cursor; null: reload the
     * latest page). Set and cleared by the session (session.js).
     */
    this.gap = null;
  }

  get size() {
    return this.entries.size;
  }

  get(id) {
    return this.entries.get(id);
  }

  /** All lines in display order (a fresh array; entries are shared, do not mutate them). */
  list() {
    if (this.sorted === null) {
      this.sorted = [...this.entries.values()].sort(compareMessages);
    }
    return [...this.sorted];
  }

  #changed() {
    this.sorted = null;
  }

  /**
   * Whether a line the server has is own: decided by identity, never by
   * display name. No `authorId` (stored before identities) or no identity
   * yet: not own.
   */
  isMine(message) {
    const author = authorIdOf(message);
    return author !== null && this.selfId !== null && author === this.selfId;
  }

  /** The identity changed (first issued, or replaced after a 401): re-decide the stored lines. */
  setSelfId(selfId) {
    this.selfId = selfId ?? null;
    let changed = false;
    for (const entry of this.entries.values()) {
      if (entry.status === Status.PENDING || entry.status === Status.FAILED) continue; // typed here: own
      const own = this.isMine(entry);
      if (entry.own !== own) {
        entry.own = own;
        changed = true;
      }
    }
    if (changed) this.#changed();
    return changed;
  }

  /** Shows an own line at once, before the server has it (own until the server answers). */
  addPending({ id, user, text, authorId = null }) {
    if (this.entries.has(id)) return false;
    this.seq += 1;
    this.entries.set(id, {
      id,
      room: this.room,
      user,
      authorId: authorId ?? this.selfId,
      text,
      createdAt: null,
      status: Status.PENDING,
      own: true,
      error: null,
      retryable: false,
      waitUntil: null,
      seq: this.seq,
    });
    this.#changed();
    return true;
  }

  /** SaveChat answered 201 (or 200: already stored) with the stored message. */
  markSent(id, stored) {
    const entry = this.entries.get(id);
    if (!entry || !isMessage(stored) || stored.id !== id) return false;
    if (entry.status === Status.CONFIRMED) return false; // the feed was faster
    Object.assign(entry, pick(stored), {
      status: Status.SENT,
      own: this.isMine(stored),
      error: null,
      retryable: false,
      waitUntil: null,
    });
    this.#changed();
    return true;
  }

  /** A pending line waits out a 429 until `until` (ms since the epoch), or no longer (null). */
  markWaiting(id, until) {
    const entry = this.entries.get(id);
    if (!entry || entry.status !== Status.PENDING) return false;
    const next = until ?? null;
    if (entry.waitUntil === next) return false;
    entry.waitUntil = next;
    this.#changed();
    return true;
  }

  /** The POST failed; keep the line (and its id) so Retry re-sends the same message. */
  markFailed(id, { message, retryable }) {
    const entry = this.entries.get(id);
    if (!entry || entry.status === Status.CONFIRMED || entry.status === Status.SENT) return false;
    Object.assign(entry, {
      status: Status.FAILED,
      error: message,
      retryable: Boolean(retryable),
      waitUntil: null,
    });
    this.#changed();
    return true;
  }

  /** Retry pressed: back to pending with the same id (the POST is idempotent by id). */
  markRetrying(id) {
    const entry = this.entries.get(id);
    if (!entry || entry.status !== Status.FAILED) return false;
    Object.assign(entry, { status: Status.PENDING, error: null, retryable: false });
    this.#changed();
    return true;
  }

  /** Removes an own line that was never stored (the person chose to edit it instead). */
  discard(id) {
    const entry = this.entries.get(id);
    if (!entry || entry.status === Status.CONFIRMED || entry.status === Status.SENT) return false;
    this.entries.delete(id);
    this.#changed();
    return true;
  }

  /**
   * A message from the feed, history or catch-up. Unknown ids are added;
   * a known id becomes confirmed with the server's fields, and the stored
   * `authorId` decides whether it is own (a pending copy with the same id
   * does not: someone else may hold that id). Messages of other rooms and
   * malformed objects are ignored.
   */
  receive(message) {
    if (!isMessage(message) || message.room !== this.room) return false;
    const entry = this.entries.get(message.id);
    const own = this.isMine(message);
    if (entry) {
      const same =
        entry.status === Status.CONFIRMED &&
        entry.own === own &&
        FIELDS.every((f) => entry[f] === message[f]) &&
        entry.authorId === authorIdOf(message);
      if (same) return false; // at-least-once delivery: a duplicate
      Object.assign(entry, pick(message), {
        status: Status.CONFIRMED,
        own,
        error: null,
        retryable: false,
        waitUntil: null,
      });
    } else {
      this.entries.set(message.id, {
        ...pick(message),
        status: Status.CONFIRMED,
        own,
        error: null,
        retryable: false,
        waitUntil: null,
        seq: 0,
      });
      this.#trim();
    }
    this.#changed();
    return true;
  }

  /** Merges a page of history or catch-up; returns how many lines were new or changed. */
  mergePage(messages) {
    let changed = 0;
    for (const m of Array.isArray(messages) ? messages : []) {
      if (this.receive(m)) changed += 1;
    }
    return changed;
  }

  /** The newest line everyone is known to have: where catch-up starts. */
  newestConfirmed() {
    let newest = null;
    for (const entry of this.entries.values()) {
      if (entry.status !== Status.CONFIRMED) continue;
      if (newest === null || compareMessages(entry, newest) > 0) newest = entry;
    }
    return newest;
  }

  /**
   * `after=` value for catch-up: the newest confirmed `createdAt`, moved back
   * by `overlapMs`. The overlap re-reads a moment already seen so that a line
   * stored with a slightly older timestamp but delivered later (two SaveChat
   * calls racing to Cosmos DB) is not skipped; de-duplication by id makes
   * the re-read harmless. Null when nothing is confirmed yet (load history).
   */
  catchUpCursor(overlapMs = 0) {
    const newest = this.newestConfirmed();
    if (newest === null) return null;
    if (overlapMs <= 0) return newest.createdAt;
    const t = timeOf(newest.createdAt);
    return t === null ? newest.createdAt : new Date(t - overlapMs).toISOString();
  }

  /** Own lines that were never stored, e.g. to warn before leaving the page. */
  unsent() {
    return this.list().filter((e) => e.status === Status.PENDING || e.status === Status.FAILED);
  }

  #trim() {
    let confirmed = 0;
    for (const e of this.entries.values()) if (e.status === Status.CONFIRMED) confirmed += 1;
    if (confirmed <= this.maxConfirmed) return;
    const oldestFirst = [...this.entries.values()]
      .filter((e) => e.status === Status.CONFIRMED)
      .sort(compareMessages);
    for (const e of oldestFirst.slice(0, confirmed - this.maxConfirmed)) this.entries.delete(e.id);
  }
}

function pick(message) {
  const out = {};
  for (const f of FIELDS) out[f] = message[f];
  out.authorId = authorIdOf(message);
  return out;
}
