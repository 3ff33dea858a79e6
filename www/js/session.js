// The chat session: current room, one RoomStore per visited room, sending,
// and the connection life cycle (join, catch-up, reconnect, offline loop).
// DOM-free and SignalR-free: it drives any object with the HubConnection
// surface it uses (state, connectionId, start, on, onreconnecting,
// onreconnected, onclose), so Node tests run it against a fake connection
// and the real API wrappers over a fake fetch.
//
// Why the life cycle looks like this:
// - withAutomaticReconnect re-runs start() from the original URL ("/api"),
//   so every reconnect negotiates again and gets a new token and a new
//   connection id (checked in @microsoft/signalr 10.0.11).
// - The SignalR user id is the identity id itself (negotiate at
//   `/api/negotiate/<identity id>`), and join (body `{}`) adds that *user* to
//   the room's group. Membership belongs to the identity, not to this tab:
//   every tab of the browser profile hears every room any of its tabs joined,
//   and the service keeps it across reconnects. So a room switch never leaves
//   the previous room (that would silence it in the other tabs): it only
//   joins the new one, and `newMessage`s of other rooms are filed in their
//   own room's store, never shown in the current one.
// - Because membership survives a reconnect, lines of a joined room can
//   arrive on a new connection before this page has joined and caught up:
//   the catch-up cursor is therefore taken when the connection is lost
//   (`store.gap`), not when it comes back, or those early lines would move it
//   past the hole. After every (re)connect the page joins its room again and
//   fetches what it missed with after=. A join answered 404 `not_connected`
//   (the server sees no live connection for the identity) restarts the
//   connection (a fresh negotiate), then joins again.
// - "Own" lines are decided by identity (`authorId`), never by display name.
// - When the client's own retries give up, or the first start() fails, the
//   session is "offline" and restarts with a capped backoff, at once when the
//   browser is back online or the person asks.

import { createRateGate, fetchMissed, MAX_RETRY_AFTER_MS, newMessageId, offlineRetryDelay, sendMessage } from "./api.js";
import { rateLimitLabel } from "./format.js";
import { RoomStore, Status } from "./store.js";
import { ROOM_PATTERN, validateOutgoing } from "./validate.js";

const noop = () => {};

export class ChatSession {
  /**
   * @param {object} options
   * @param {ReturnType<import("./api.js").createApi>} options.api
   * @param {object|null} options.connection  a HubConnection (or null: no live updates)
   * @param {string|null} [options.selfId]  the identity id, if already known (else setSelfId later)
   * @param {number} [options.pageSize]  history and catch-up page size
   * @param {number} [options.overlapMs] catch-up re-read window (see RoomStore.catchUpCursor)
   * @param {number[]} [options.sendDelays] automatic POST retries
   * @param {(ms: number) => Promise<void>} [options.sleep]
   * @param {{set(fn: Function, ms: number): any, clear(handle: any): void}} [options.timer]
   * @param {() => boolean} [options.isOnline]
   * @param {() => string} [options.newId]
   * @param {(attempt: number) => number} [options.offlineDelay]
   * @param {() => number} [options.now]  the clock (ms), for Retry-After
   * @param {object} [options.view] callbacks: render(room, {forceScroll}), connection(state, detail),
   *   notice(text), announce(text), sendStatus(text) (the rate-limit status; "" clears it)
   */
  constructor({
    api,
    connection = null,
    selfId = null,
    pageSize = 50,
    maxCatchUpPages = 40,
    overlapMs = 2000,
    sendDelays = [1000, 3000],
    sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
    timer = { set: (fn, ms) => setTimeout(fn, ms), clear: (h) => clearTimeout(h) },
    isOnline = () => true,
    newId = newMessageId,
    offlineDelay = (attempt) => offlineRetryDelay(attempt),
    now = () => Date.now(),
    view = {},
  }) {
    this.selfId = selfId;
    this.now = now;
    /** Shared by all lines: when sending may resume after a 429. */
    this.sendGate = createRateGate();
    /** A negotiate 429's Retry-After: no connect attempt before this time (ms). */
    this.connectNotBefore = 0;
    /** Restarts caused by `not_connected` since the last successful join (backoff after the first). */
    this.connectRestarts = 0;
    this.restarting = false;
    this.sendStatusText = "";
    this.api = api;
    this.connection = connection;
    this.pageSize = pageSize;
    this.maxCatchUpPages = maxCatchUpPages;
    this.overlapMs = overlapMs;
    this.sendDelays = sendDelays;
    this.sleep = sleep;
    this.timer = timer;
    this.isOnline = isOnline;
    this.newId = newId;
    this.offlineDelay = offlineDelay;
    this.view = { render: noop, connection: noop, notice: noop, announce: noop, sendStatus: noop, ...view };

    this.name = null;
    this.room = null;
    /** @type {Map<string, RoomStore>} */
    this.stores = new Map();
    /** Connection id the current room was joined with; null when not joined. */
    this.joinedWith = null;
    /** Bumped on every room switch and (re)connect; stale async work sees it and stops. */
    this.epoch = 0;
    this.connState = connection ? "connecting" : "offline";
    this.offlineAttempt = 0;
    this.offlineTimer = null;
    this.retryAt = null;
    /** Promise of the latest room sync, so callers (and tests) can wait for it. */
    this.synced = Promise.resolve();

    if (connection) {
      connection.on("newMessage", (message) => this.onNewMessage(message));
      connection.onreconnecting(() => {
        this.joinedWith = null;
        this.markGaps();
        this.setConnection("reconnecting");
      });
      connection.onreconnected(() => this.onConnected());
      connection.onclose(() => {
        if (!this.restarting) this.goOffline();
      });
    }
  }

  storeFor(room) {
    let store = this.stores.get(room);
    if (!store) {
      store = new RoomStore(room, { selfId: this.selfId });
      this.stores.set(room, store);
    }
    return store;
  }

  /** The identity (first issued, or replaced after a 401): lines are re-decided as own or not. */
  setSelfId(selfId) {
    this.selfId = selfId ?? null;
    for (const store of this.stores.values()) {
      if (store.setSelfId(this.selfId)) this.render(store.room);
    }
  }

  /**
   * Own iff the store says so: typed here and not yet stored, or stored with
   * `authorId` equal to this browser's identity. The display name plays no part.
   */
  isOwn(entry) {
    return Boolean(entry.own);
  }

  render(room, options = {}) {
    if (room === this.room) this.view.render(room, options);
  }

  setConnection(connState, detail = {}) {
    this.connState = connState;
    this.view.connection(connState, { ...detail, online: this.isOnline() });
  }

  // --- rooms ----------------------------------------------------------------

  /**
   * Switches to `room`: join it and load. The previous room is not left: the
   * membership is the identity's, shared by every tab of the profile, and its
   * lines keep being filed in its own store (see onNewMessage).
   */
  enterRoom(room) {
    if (room === this.room) return this.synced;
    this.room = room;
    this.joinedWith = null;
    this.epoch += 1;
    this.render(room, { forceScroll: true });
    this.synced = this.syncRoom(this.epoch);
    return this.synced;
  }

  /**
   * The live feed stops (connection lost or restarted): every loaded room
   * that was complete up to now remembers where its hole may start, so that
   * the next visit (or the re-sync of the current room) catches up from
   * there, whatever arrives live on the next connection first.
   */
  markGaps() {
    for (const store of this.stores.values()) {
      if (store.loaded && store.gap === null) store.gap = { after: store.catchUpCursor(this.overlapMs) };
    }
  }

  liveConnectionId() {
    const c = this.connection;
    return c && c.state === "Connected" && c.connectionId ? c.connectionId : null;
  }

  /**
   * Brings the current room up to date. Connected: join the group first, then
   * read history (first visit) or catch up with after=, so a line stored
   * between the two arrives live or in the page (de-duplicated either way).
   * Not connected: read history anyway so the page is useful; joining waits
   * for the connection. Retries with backoff until superseded by `epoch`.
   *
   * Where catch-up starts: a room never loaded reads its latest page (lines
   * filed live from other tabs' rooms do not count); a room with a `gap`
   * (the feed stopped, or it was loaded while not joined) starts at the gap;
   * a room heard live all along starts at its newest confirmed line. Once
   * done while joined, the room is complete and its gap is cleared.
   */
  async syncRoom(epoch) {
    const room = this.room;
    const store = this.storeFor(room);
    for (let attempt = 0; epoch === this.epoch; attempt += 1) {
      try {
        const connectionId = this.liveConnectionId();
        if (connectionId && this.joinedWith !== connectionId) {
          await this.api.joinRoom(room);
          if (epoch !== this.epoch) return;
          this.joinedWith = connectionId;
          this.connectRestarts = 0;
        }
        const gap = store.loaded ? store.gap : { after: null };
        const after = gap ? gap.after : store.catchUpCursor(this.overlapMs);
        if (after === null) {
          const page = await this.api.getMessages(room, { limit: this.pageSize });
          if (epoch !== this.epoch) return;
          store.mergePage(page);
          const first = !store.loaded;
          store.loaded = true;
          this.render(room, { forceScroll: first });
        } else {
          const missed = await fetchMissed(this.api, room, {
            after,
            pageSize: this.pageSize,
            maxPages: this.maxCatchUpPages,
            onPage: (page) => {
              if (epoch === this.epoch && store.mergePage(page) > 0) this.render(room);
            },
          });
          if (!missed.complete) {
            // Too much arrived while away to page through: show the latest lines and say what is missing.
            const latest = await this.api.getMessages(room, { limit: this.pageSize });
            if (epoch !== this.epoch) return;
            store.mergePage(latest);
            store.loaded = true;
            this.render(room, { forceScroll: true });
            this.view.notice(
              `More than ${missed.count} messages arrived while you were away: the latest are shown, some before them are not.`,
            );
            this.settleGap(store, connectionId);
            return;
          }
        }
        store.loaded = true;
        this.settleGap(store, connectionId);
        if (epoch === this.epoch) this.view.notice("");
        return;
      } catch (err) {
        if (epoch !== this.epoch) return;
        if (err && err.code === "not_connected" && this.liveConnectionId()) {
          // The server sees no live connection for our identity: a fresh negotiate, then join again.
          this.restartConnection();
          return;
        }
        const wait = Math.min(30000, 2000 * 2 ** attempt);
        this.view.notice(`Could not load messages: ${err.message} Trying again in ${Math.round(wait / 1000)} s.`);
        await this.sleep(wait);
      }
    }
  }

  /**
   * A sync of `store` finished. Joined on a connection that is still live:
   * the room is complete and heard live from now on (no gap). Otherwise it
   * may miss what comes next: remember where to catch up from.
   */
  settleGap(store, connectionId) {
    if (connectionId !== null && this.joinedWith === connectionId && this.liveConnectionId() === connectionId) {
      store.gap = null;
    } else if (store.gap === null) {
      store.gap = { after: store.catchUpCursor(this.overlapMs) };
    }
  }

  // --- sending --------------------------------------------------------------

  /**
   * Validates and sends a line. Returns `{ok: true, id, delivered}` (the line
   * shows at once as pending; `delivered` settles when the POST does) or
   * `{ok: false, message}` when nothing was sent.
   */
  send(rawText) {
    if (!this.name) return { ok: false, message: "Choose a display name first." };
    const id = this.newId();
    const checked = validateOutgoing({ user: this.name, text: rawText, id });
    if (!checked.ok) return { ok: false, message: checked.message };
    const store = this.storeFor(this.room);
    store.addPending({ id, user: checked.value.user, text: checked.value.text, authorId: this.selfId });
    this.render(this.room, { forceScroll: true });
    return { ok: true, id, delivered: this.deliver(store, id) };
  }

  async deliver(store, id) {
    const entry = store.get(id);
    if (!entry) return;
    try {
      const saved = await sendMessage(
        this.api,
        store.room,
        { user: entry.user, text: entry.text, id },
        {
          delays: this.sendDelays,
          sleep: this.sleep,
          now: this.now,
          gate: this.sendGate,
          onWait: (wait) => this.onSendWait(store, id, wait),
        },
      );
      store.markSent(id, saved);
    } catch (err) {
      if (store.markFailed(id, { message: err.message, retryable: err.retryable !== false })) {
        this.view.announce(`Your message was not sent: ${err.message}`);
      }
    }
    if (!this.isWaitingToSend()) this.setSendStatus("");
    this.render(store.room);
  }

  /** The rate-limit status line; repeated texts are not passed on (it is a live region). */
  setSendStatus(text) {
    if (text === this.sendStatusText) return;
    this.sendStatusText = text;
    this.view.sendStatus(text);
  }

  /** A line waits out a 429 (`wait` = {ms, until}) or stopped waiting (null): the line and the status say so. */
  onSendWait(store, id, wait) {
    const changed = store.markWaiting(id, wait ? wait.until : null);
    if (wait) this.setSendStatus(rateLimitLabel(wait.ms));
    else if (!this.isWaitingToSend()) this.setSendStatus("");
    if (changed) this.render(store.room);
  }

  /** True while some own line is pending behind a 429. */
  isWaitingToSend() {
    for (const store of this.stores.values()) {
      for (const entry of store.entries.values()) {
        if (entry.status === Status.PENDING && entry.waitUntil !== null && entry.waitUntil !== undefined) return true;
      }
    }
    return false;
  }

  /** Retry pressed on a failed line: same id, so the server cannot store it twice. */
  retry(id) {
    const store = this.storeFor(this.room);
    if (!store.markRetrying(id)) return null;
    this.render(this.room);
    return this.deliver(store, id);
  }

  /** Edit pressed on a failed line: removes it and hands its text back. */
  edit(id) {
    const store = this.storeFor(this.room);
    const entry = store.get(id);
    if (!entry || !store.discard(id)) return null;
    this.render(this.room);
    return entry.text;
  }

  hasUnsent() {
    return [...this.stores.values()].some((s) => s.unsent().length > 0);
  }

  // --- live feed and connection ---------------------------------------------

  /**
   * A line from the live feed. It belongs to `message.room`, which may be
   * another room this profile joined (in this tab earlier, or in another
   * tab): it is filed in that room's store and shown (and announced) only if
   * it is the current room.
   */
  onNewMessage(message) {
    if (!message || typeof message !== "object") return;
    const room = message.room;
    if (typeof room !== "string" || !ROOM_PATTERN.test(room)) return;
    const store = this.storeFor(room);
    const known = store.get(message.id) !== undefined;
    if (!store.receive(message)) return;
    if (room !== this.room) return;
    this.render(room);
    if (!known && !this.isOwn(store.get(message.id) ?? {})) {
      this.view.announce(`${message.user}: ${message.text.slice(0, 280)}`);
    }
  }

  onConnected() {
    this.clearOfflineTimer();
    this.offlineAttempt = 0;
    this.setConnection("live");
    this.joinedWith = null; // a new connection id: the old group membership is gone
    this.epoch += 1;
    this.synced = this.syncRoom(this.epoch);
  }

  /** The negotiate answered 429 with `Retry-After` (ms): no connect attempt before it has passed. */
  noteConnectRetryAfter(ms) {
    if (typeof ms !== "number" || !(ms > 0)) return;
    const wait = Math.min(MAX_RETRY_AFTER_MS, ms);
    this.connectNotBefore = Math.max(this.connectNotBefore, this.now() + wait);
  }

  /** How long a connect attempt must still wait for a negotiate 429 (0: none). */
  connectWaitMs() {
    return Math.max(0, this.connectNotBefore - this.now());
  }

  /**
   * The connection is up but the server does not know it (join: 404
   * `not_connected`): stop it and start again (fresh negotiate). The first
   * time at once, then with the offline loop's backoff, so a server that
   * keeps answering so is not hammered.
   */
  async restartConnection() {
    const connection = this.connection;
    if (!connection || this.restarting) return;
    this.restarting = true;
    this.joinedWith = null;
    this.markGaps();
    this.epoch += 1;
    this.setConnection("reconnecting");
    try {
      await connection.stop();
    } catch {
      /* stopped anyway */
    } finally {
      this.restarting = false;
    }
    const n = this.connectRestarts;
    this.connectRestarts += 1;
    const wait = Math.max(n === 0 ? 0 : this.offlineDelay(n - 1), this.connectWaitMs());
    if (wait === 0) {
      await this.connectNow();
      return;
    }
    this.clearOfflineTimer();
    this.retryAt = Date.now() + wait;
    this.offlineTimer = this.timer.set(() => {
      this.offlineTimer = null;
      return this.connectNow({ scheduled: true });
    }, wait);
  }

  clearOfflineTimer() {
    if (this.offlineTimer !== null) this.timer.clear(this.offlineTimer);
    this.offlineTimer = null;
    this.retryAt = null;
  }

  /** Not connected and the SignalR client stopped trying: schedule our own restart. */
  goOffline() {
    this.clearOfflineTimer();
    this.joinedWith = null;
    this.markGaps();
    if (!this.isOnline()) {
      this.setConnection("offline"); // handleOnline() restarts us
      return;
    }
    // Never sooner than a negotiate 429's Retry-After.
    const wait = Math.max(this.offlineDelay(this.offlineAttempt), this.connectWaitMs());
    this.offlineAttempt += 1;
    this.retryAt = Date.now() + wait;
    this.setConnection("offline", { retryInMs: wait });
    this.offlineTimer = this.timer.set(() => {
      this.offlineTimer = null;
      return this.connectNow({ scheduled: true });
    }, wait);
  }

  /**
   * Starts the connection if it is fully stopped (a full start(): fresh
   * negotiate). While a negotiate 429's Retry-After runs, it schedules the
   * attempt for afterwards instead.
   */
  async connectNow({ scheduled = false } = {}) {
    const connection = this.connection;
    if (!connection) return;
    this.clearOfflineTimer();
    if (connection.state !== "Disconnected") return; // connecting, live or auto-reconnecting
    // `scheduled`: our own timer, set for at least the wait; anyone else must not undercut a 429.
    if (!scheduled && this.connectWaitMs() > 0) {
      this.goOffline(); // a negotiate 429 asked us to wait: schedule the attempt after it
      return;
    }
    this.setConnection(this.connState === "offline" ? "reconnecting" : "connecting");
    try {
      await connection.start();
    } catch (err) {
      this.lastError = err;
      this.goOffline();
      return;
    }
    this.onConnected();
  }

  /** The browser is back online, the tab became visible, or the person pressed Reconnect now. */
  handleOnline() {
    if (this.connection && this.connection.state === "Disconnected") {
      this.offlineAttempt = 0;
      return this.connectNow();
    }
    return Promise.resolve();
  }
}
