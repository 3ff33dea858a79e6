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
// - Group membership belongs to a connection id, so after every (re)connect
//   the session joins its room again and fetches what it missed with after=.
// - When the client's own retries give up, or the first start() fails, the
//   session is "offline" and restarts with a capped backoff, at once when the
//   browser is back online or the person asks.

import { fetchMissed, newMessageId, offlineRetryDelay, sendMessage } from "./api.js";
import { RoomStore } from "./store.js";
import { validateOutgoing } from "./validate.js";

const noop = () => {};

export class ChatSession {
  /**
   * @param {object} options
   * @param {ReturnType<import("./api.js").createApi>} options.api
   * @param {object|null} options.connection  a HubConnection (or null: no live updates)
   * @param {number} [options.pageSize]  history and catch-up page size
   * @param {number} [options.overlapMs] catch-up re-read window (see RoomStore.catchUpCursor)
   * @param {number[]} [options.sendDelays] automatic POST retries
   * @param {(ms: number) => Promise<void>} [options.sleep]
   * @param {{set(fn: Function, ms: number): any, clear(handle: any): void}} [options.timer]
   * @param {() => boolean} [options.isOnline]
   * @param {() => string} [options.newId]
   * @param {(attempt: number) => number} [options.offlineDelay]
   * @param {object} [options.view] callbacks: render(room, {forceScroll}), connection(state, detail),
   *   notice(text), announce(text)
   */
  constructor({
    api,
    connection = null,
    pageSize = 50,
    maxCatchUpPages = 40,
    overlapMs = 2000,
    sendDelays = [1000, 3000],
    sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
    timer = { set: (fn, ms) => setTimeout(fn, ms), clear: (h) => clearTimeout(h) },
    isOnline = () => true,
    newId = newMessageId,
    offlineDelay = (attempt) => offlineRetryDelay(attempt),
    view = {},
  }) {
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
    this.view = { render: noop, connection: noop, notice: noop, announce: noop, ...view };

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
        this.setConnection("reconnecting");
      });
      connection.onreconnected(() => this.onConnected());
      connection.onclose(() => this.goOffline());
    }
  }

  storeFor(room) {
    let store = this.stores.get(room);
    if (!store) {
      store = new RoomStore(room);
      this.stores.set(room, store);
    }
    return store;
  }

  /** Own if this browser sent it, or it carries the current display name (there are no accounts). */
  isOwn(entry) {
    return Boolean(entry.own) || (this.name !== null && entry.user === this.name);
  }

  render(room, options = {}) {
    if (room === this.room) this.view.render(room, options);
  }

  setConnection(connState, detail = {}) {
    this.connState = connState;
    this.view.connection(connState, { ...detail, online: this.isOnline() });
  }

  // --- rooms ----------------------------------------------------------------

  /** Switches to `room`: leave the old group (best effort), then join and load. */
  enterRoom(room) {
    if (room === this.room) return this.synced;
    const previous = this.room;
    const previousJoin = this.joinedWith;
    this.room = room;
    this.joinedWith = null;
    this.epoch += 1;
    this.render(room, { forceScroll: true });
    if (previous && previousJoin && this.liveConnectionId() === previousJoin) {
      // A missed leave only costs a few ignored messages (filtered by room).
      this.api.leaveRoom(previous, previousJoin).catch(noop);
    }
    this.synced = this.syncRoom(this.epoch);
    return this.synced;
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
   */
  async syncRoom(epoch) {
    const room = this.room;
    const store = this.storeFor(room);
    for (let attempt = 0; epoch === this.epoch; attempt += 1) {
      try {
        const connectionId = this.liveConnectionId();
        if (connectionId && this.joinedWith !== connectionId) {
          await this.api.joinRoom(room, connectionId);
          if (epoch !== this.epoch) return;
          this.joinedWith = connectionId;
        }
        const after = store.catchUpCursor(this.overlapMs);
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
            return;
          }
        }
        store.loaded = true;
        if (epoch === this.epoch) this.view.notice("");
        return;
      } catch (err) {
        if (epoch !== this.epoch) return;
        const wait = Math.min(30000, 2000 * 2 ** attempt);
        this.view.notice(`Could not load messages: ${err.message} Trying again in ${Math.round(wait / 1000)} s.`);
        await this.sleep(wait);
      }
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
    store.addPending({ id, user: checked.value.user, text: checked.value.text });
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
        { delays: this.sendDelays, sleep: this.sleep },
      );
      store.markSent(id, saved);
    } catch (err) {
      if (store.markFailed(id, { message: err.message, retryable: err.retryable !== false })) {
        this.view.announce(`Your message was not sent: ${err.message}`);
      }
    }
    this.render(store.room);
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

  onNewMessage(message) {
    if (!message || typeof message !== "object" || message.room !== this.room) return;
    const store = this.storeFor(this.room);
    const known = store.get(message.id) !== undefined;
    if (!store.receive(message)) return;
    this.render(this.room);
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

  clearOfflineTimer() {
    if (this.offlineTimer !== null) this.timer.clear(this.offlineTimer);
    this.offlineTimer = null;
    this.retryAt = null;
  }

  /** Not connected and the SignalR client stopped trying: schedule our own restart. */
  goOffline() {
    this.clearOfflineTimer();
    this.joinedWith = null;
    if (!this.isOnline()) {
      this.setConnection("offline"); // handleOnline() restarts us
      return;
    }
    const wait = this.offlineDelay(this.offlineAttempt);
    this.offlineAttempt += 1;
    this.retryAt = Date.now() + wait;
    this.setConnection("offline", { retryInMs: wait });
    this.offlineTimer = this.timer.set(() => {
      this.offlineTimer = null;
      this.connectNow();
    }, wait);
  }

  /** Starts the connection if it is fully stopped (a full start(): fresh negotiate). */
  async connectNow() {
    const connection = this.connection;
    if (!connection) return;
    this.clearOfflineTimer();
    if (connection.state !== "Disconnected") return; // connecting, live or auto-reconnecting
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
