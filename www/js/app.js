// Wiring: owns the chat state (display name, current room, one RoomStore per
// visited room, the SignalR connection) and connects the DOM (ui.js) to the
// API (api.js) and the live feed.
//
// Connection life cycle, and why:
// - The hub URL is the app's "/api": the SignalR client POSTs /api/negotiate,
//   follows the {url, accessToken} redirect to the SignalR service and
//   connects there with whichever transport both sides support.
// - withAutomaticReconnect re-runs start() from that original URL, so every
//   reconnect negotiates again and gets a new token and a new connection id
//   (checked in @microsoft/signalr 10.0.11: HttpConnection._startInternal).
//   Group membership belongs to the old connection id, so after every
//   (re)connect we join the room again and fetch what we missed with after=.
// - When the client's own retries give up, or the first start() fails, we
//   show "offline" and keep restarting with a capped backoff (and at once
//   when the browser says it is online again or the person asks).

import {
  createApi,
  fetchMissed,
  newMessageId,
  offlineRetryDelay,
  reconnectDelay,
  sendMessage,
  transportFromQuery,
  withoutStaleToken,
} from "./api.js";
import { RoomStore, Status } from "./store.js";
import { DEFAULT_ROOM, roomFromHash, validateOutgoing, validateRoom, validateUser } from "./validate.js";
import { createUi } from "./ui.js";

const PAGE_SIZE = 50;
/** Catch-up re-reads this much before the newest confirmed line (see RoomStore.catchUpCursor). */
const CATCH_UP_OVERLAP_MS = 2000;
const NAME_KEY = "cosmic-chat.name";
const ROOMS_KEY = "cosmic-chat.rooms";
const MAX_KNOWN_ROOMS = 20;

const storage = {
  get(key) {
    try {
      return globalThis.localStorage.getItem(key);
    } catch {
      return null; // storage disabled: the app still works, it just forgets
    }
  },
  set(key, value) {
    try {
      globalThis.localStorage.setItem(key, value);
    } catch {
      /* ignore: see get() */
    }
  },
};

function loadKnownRooms() {
  try {
    const rooms = JSON.parse(storage.get(ROOMS_KEY) ?? "[]");
    if (Array.isArray(rooms)) {
      return rooms.filter((r) => typeof r === "string" && validateRoom(r).ok && validateRoom(r).value === r);
    }
  } catch {
    /* fall through */
  }
  return [];
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

const state = {
  name: null,
  room: null,
  /** @type {Map<string, RoomStore>} */
  stores: new Map(),
  knownRooms: [],
  connection: null,
  /** Connection id the current room was joined with; null when not joined. */
  joinedWith: null,
  /** Bumped on every room switch and (re)connect; stale async work checks it and stops. */
  epoch: 0,
  offlineAttempt: 0,
  offlineTimer: null,
  offlineRetryAt: null,
  countdownTimer: null,
  connState: "connecting",
};

const api = createApi({ fetch: (...args) => globalThis.fetch(...args) });
let ui;

function storeFor(room) {
  let store = state.stores.get(room);
  if (!store) {
    store = new RoomStore(room);
    state.stores.set(room, store);
  }
  return store;
}

function isOwn(entry) {
  return entry.own || (state.name !== null && entry.user === state.name);
}

function render(room, options = {}) {
  if (room !== state.room) return;
  const store = storeFor(room);
  ui.renderMessages(store.list(), isOwn, { ...options, loaded: store.loaded });
}

function setConnection(connState, detail = {}) {
  state.connState = connState;
  ui.setConnection(connState, { ...detail, online: globalThis.navigator?.onLine !== false });
}

// --- rooms -----------------------------------------------------------------

function rememberRoom(room) {
  const rooms = [DEFAULT_ROOM, room, ...state.knownRooms.filter((r) => r !== DEFAULT_ROOM && r !== room)];
  state.knownRooms = [...new Set(rooms)].slice(0, MAX_KNOWN_ROOMS);
  storage.set(ROOMS_KEY, JSON.stringify(state.knownRooms));
  ui.setRooms([...state.knownRooms].sort((a, b) => (a === DEFAULT_ROOM ? -1 : b === DEFAULT_ROOM ? 1 : a.localeCompare(b))), state.room);
}

function enterRoom(room) {
  if (room === state.room) return;
  const previous = state.room;
  const previousJoin = state.joinedWith;
  state.room = room;
  state.joinedWith = null;
  state.epoch += 1;
  ui.showRoom(room);
  rememberRoom(room);
  render(room, { forceScroll: true });
  if (previous && previousJoin && state.connection?.connectionId === previousJoin) {
    // Best effort: a missed leave only costs a few ignored messages (filtered by room).
    api.leaveRoom(previous, previousJoin).catch(() => {});
  }
  syncRoom(state.epoch);
}

function onHashChange() {
  const raw = globalThis.location.hash;
  const { room, valid, message } = roomFromHash(raw);
  if (!valid) {
    ui.showRoomError(message ?? "That link does not name a valid room.");
    const fallback = state.room ?? room;
    globalThis.history.replaceState(null, "", `#${fallback}`);
    enterRoom(fallback);
    return;
  }
  if (raw !== `#${room}`) globalThis.history.replaceState(null, "", `#${room}`);
  ui.showRoomError("");
  enterRoom(room);
}

// --- syncing a room: join, then history or catch-up ----------------------

/**
 * Brings the current room up to date. Connected: join the group first, then
 * read history (first visit) or catch up with after=, so a line sent between
 * the two arrives live or in the page (de-duplicated either way). Not
 * connected: read history anyway so the page is useful; joining waits for
 * the connection. Retries with backoff until superseded by `epoch`.
 */
async function syncRoom(epoch) {
  const room = state.room;
  const store = storeFor(room);
  for (let attempt = 0; epoch === state.epoch; attempt += 1) {
    try {
      const connection = state.connection;
      const connectionId =
        connection?.state === "Connected" && connection.connectionId ? connection.connectionId : null;
      if (connectionId && state.joinedWith !== connectionId) {
        await api.joinRoom(room, connectionId);
        if (epoch !== state.epoch) return;
        state.joinedWith = connectionId;
      }
      const after = store.catchUpCursor(CATCH_UP_OVERLAP_MS);
      if (after === null) {
        const page = await api.getMessages(room, { limit: PAGE_SIZE });
        if (epoch !== state.epoch) return;
        store.mergePage(page);
        const first = !store.loaded;
        store.loaded = true;
        render(room, { forceScroll: first });
      } else {
        await fetchMissed(api, room, {
          after,
          pageSize: PAGE_SIZE,
          onPage: (page) => {
            if (epoch === state.epoch && store.mergePage(page) > 0) render(room);
          },
        });
      }
      store.loaded = true;
      if (epoch === state.epoch) ui.setNotice("");
      return;
    } catch (err) {
      if (epoch !== state.epoch) return;
      const wait = Math.min(30000, 2000 * 2 ** attempt);
      ui.setNotice(`Could not load messages: ${err.message} Trying again in ${Math.round(wait / 1000)} s.`);
      await sleep(wait);
    }
  }
}

// --- sending ---------------------------------------------------------------

async function deliver(store, id) {
  const entry = store.get(id);
  if (!entry) return;
  try {
    const saved = await sendMessage(api, store.room, { user: entry.user, text: entry.text, id });
    store.markSent(id, saved);
  } catch (err) {
    if (store.markFailed(id, { message: err.message, retryable: err.retryable !== false })) {
      ui.announce(`Your message was not sent: ${err.message}`);
    }
  }
  render(store.room);
}

function onSend(rawText) {
  if (!state.name) {
    ui.openNameDialog("", true);
    return false;
  }
  const id = newMessageId();
  const checked = validateOutgoing({ user: state.name, text: rawText, id });
  if (!checked.ok) {
    ui.showComposerError(checked.message);
    return false;
  }
  ui.showComposerError("");
  const store = storeFor(state.room);
  store.addPending({ id, user: checked.value.user, text: checked.value.text });
  render(state.room, { forceScroll: true });
  deliver(store, id);
  return true;
}

function onRetry(id) {
  const store = storeFor(state.room);
  if (store.markRetrying(id)) {
    render(state.room);
    deliver(store, id);
  }
}

function onEdit(id) {
  const store = storeFor(state.room);
  const entry = store.get(id);
  if (entry && store.discard(id)) {
    render(state.room);
    ui.setComposerText(entry.text);
  }
}

function onOpenRoom(input) {
  const result = validateRoom(input);
  if (!result.ok) return result.message;
  globalThis.location.hash = `#${result.value}`; // hashchange does the rest
  if (result.value === state.room) ui.focusComposer();
  return null;
}

function onSaveName(input) {
  const result = validateUser(input);
  if (!result.ok) return result.message;
  state.name = result.value;
  storage.set(NAME_KEY, result.value);
  ui.setName(result.value);
  render(state.room);
  return null;
}

// --- live feed and connection ---------------------------------------------

function onNewMessage(message) {
  if (!message || typeof message !== "object" || message.room !== state.room) return;
  const store = storeFor(state.room);
  const known = store.get(message.id);
  if (!store.receive(message)) return;
  render(state.room);
  if (!known && !isOwn(store.get(message.id) ?? {})) {
    ui.announce(`${message.user}: ${message.text.slice(0, 280)}`);
  }
}

function onConnected() {
  clearOfflineTimers();
  state.offlineAttempt = 0;
  setConnection("live");
  state.joinedWith = null; // a new connection id: the old group membership is gone
  state.epoch += 1;
  syncRoom(state.epoch);
}

function clearOfflineTimers() {
  clearTimeout(state.offlineTimer);
  clearInterval(state.countdownTimer);
  state.offlineTimer = null;
  state.countdownTimer = null;
  state.offlineRetryAt = null;
}

function goOffline() {
  clearOfflineTimers();
  state.joinedWith = null;
  if (globalThis.navigator?.onLine === false) {
    setConnection("offline"); // the "online" event restarts us
    return;
  }
  const wait = offlineRetryDelay(state.offlineAttempt);
  state.offlineAttempt += 1;
  state.offlineRetryAt = Date.now() + wait;
  const tick = () => setConnection("offline", { retryInMs: state.offlineRetryAt - Date.now() });
  tick();
  state.countdownTimer = setInterval(tick, 1000);
  state.offlineTimer = setTimeout(connectNow, wait);
}

async function connectNow() {
  const connection = state.connection;
  clearOfflineTimers();
  if (connection.state !== "Disconnected") return; // already connecting, live or auto-reconnecting
  setConnection(state.connState === "offline" ? "reconnecting" : "connecting");
  try {
    await connection.start();
    onConnected();
  } catch (err) {
    console.warn("Cosmic Chat: connection failed:", err?.message ?? err);
    goOffline();
  }
}

function buildConnection(signalR) {
  const origin = globalThis.location.origin;
  const logger = {
    log(level, message) {
      if (level >= signalR.LogLevel.Warning) console.warn(`SignalR: ${message}`);
    },
  };
  /** Default HTTP client minus the stale-token leak on reconnect (see api.withoutStaleToken). */
  class AppHttpClient extends signalR.DefaultHttpClient {
    send(request) {
      return super.send(withoutStaleToken(request, origin));
    }
  }
  const options = { httpClient: new AppHttpClient(logger) };
  const forced = transportFromQuery(globalThis.location.search);
  if (forced !== null) options.transport = forced;
  const connection = new signalR.HubConnectionBuilder()
    .withUrl("/api", options)
    .withAutomaticReconnect({
      nextRetryDelayInMilliseconds: (ctx) => reconnectDelay(ctx.previousRetryCount),
    })
    .configureLogging(logger)
    .build();
  connection.on("newMessage", onNewMessage);
  connection.onreconnecting(() => {
    state.joinedWith = null;
    setConnection("reconnecting");
  });
  connection.onreconnected(() => onConnected());
  connection.onclose(() => goOffline());
  return connection;
}

// --- start -------------------------------------------------------------------

function start() {
  ui = createUi(document, {
    onSend,
    onRetry,
    onEdit,
    onOpenRoom,
    onSaveName,
    onReconnectNow: () => {
      if (!state.connection) return;
      state.offlineAttempt = 0;
      connectNow();
    },
  });

  const saved = validateUser(storage.get(NAME_KEY) ?? "");
  state.name = saved.ok ? saved.value : null;
  ui.setName(state.name);
  state.knownRooms = loadKnownRooms();

  const signalR = globalThis.signalR;
  if (!signalR) {
    setConnection("offline", { note: "live updates unavailable: /lib/signalr.min.js did not load" });
  } else {
    state.connection = buildConnection(signalR);
  }

  globalThis.addEventListener("hashchange", onHashChange);
  onHashChange();

  if (!state.name) ui.openNameDialog("", true);

  if (state.connection) {
    connectNow();
    globalThis.addEventListener("online", () => {
      if (state.connection.state === "Disconnected") {
        state.offlineAttempt = 0;
        connectNow();
      }
    });
    globalThis.addEventListener("offline", () => {
      if (state.connState === "offline") setConnection("offline");
    });
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "visible" && state.connection.state === "Disconnected" && state.connState === "offline") {
        connectNow();
      }
    });
  }

  globalThis.addEventListener("beforeunload", (event) => {
    const unsent = [...state.stores.values()].some((s) => s.unsent().length > 0);
    if (unsent) {
      event.preventDefault(); // the browser asks "leave the page?"
      event.returnValue = "";
    }
  });
}

start();

// Exposed for the browser tests of a later issue and for debugging in the console.
globalThis.cosmicChat = Object.freeze({
  get state() {
    return { name: state.name, room: state.room, connection: state.connState, connectionId: state.connection?.connectionId ?? null };
  },
  messages: () => storeFor(state.room).list().map((m) => ({ ...m })),
  Status,
});
