// Wiring: builds the identity (identity.js), the SignalR connection, the
// ChatSession (state and connection life cycle, session.js) and the UI
// (ui.js), and connects them to the browser: location hash, localStorage,
// online/visibility events.

import { createApi, createSignalRSend, reconnectDelay, transportFromQuery } from "./api.js";
import { createIdentity, IDENTITY_KEY } from "./identity.js";
import { ChatSession } from "./session.js";
import { Status } from "./store.js";
import { DEFAULT_ROOM, roomFromHash, validateRoom, validateUser } from "./validate.js";
import { createUi } from "./ui.js";

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
  remove(key) {
    try {
      globalThis.localStorage.removeItem(key);
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

/**
 * The SignalR connection to the app's "/api": negotiate there, follow the
 * redirect to the service, any transport (or the one forced by ?transport=).
 * SignalR asks for `/api/negotiate`; our HttpClient answers that request with
 * `api.negotiate()`, i.e. `POST /api/negotiate/<identity id>` with the
 * identity token (the SignalR user id is the identity id), never SignalR's stale service token (see
 * api.createSignalRSend). `hooks.notBeforeMs()` is a negotiate 429's wait.
 */
function buildConnection(signalR, { api, identity, hooks }) {
  const origin = globalThis.location.origin;
  const logger = {
    log(level, message) {
      if (level >= signalR.LogLevel.Warning) console.warn(`SignalR: ${message}`);
    },
  };
  class AppHttpClient extends signalR.DefaultHttpClient {
    constructor(log) {
      super(log);
      this.appSend = createSignalRSend({
        api,
        pageOrigin: origin,
        next: (request) => super.send(request),
        makeResponse: (statusCode, statusText, content) => new signalR.HttpResponse(statusCode, statusText, content),
        makeError: (message, statusCode) => new signalR.HttpError(message, statusCode),
        currentToken: () => identity.current()?.token ?? null,
        onNegotiate: (answer) => hooks.onNegotiate(answer),
        onNegotiateError: (err) => hooks.onNegotiateError(err),
      });
    }
    send(request) {
      return this.appSend(request);
    }
  }
  const options = { httpClient: new AppHttpClient(logger) };
  const forced = transportFromQuery(globalThis.location.search);
  if (forced !== null) options.transport = forced;
  return new signalR.HubConnectionBuilder()
    .withUrl("/api", options)
    .withAutomaticReconnect({
      nextRetryDelayInMilliseconds: (ctx) =>
        reconnectDelay(ctx.previousRetryCount, { notBeforeMs: hooks.notBeforeMs() }),
    })
    .configureLogging(logger)
    .build();
}

function start() {
  let session;
  let knownRooms = loadKnownRooms();
  let countdown = null;
  let negotiatedUserId = null;
  const fetchFn = (...args) => globalThis.fetch(...args);
  const identity = createIdentity({
    fetch: fetchFn,
    storage,
    onChange: (current) => session?.setSelfId(current?.id ?? null),
  });
  const api = createApi({ fetch: fetchFn, identity });

  const ui = createUi(document, {
    onSend(text) {
      if (!session.name) {
        ui.openNameDialog("", true);
        return false;
      }
      const result = session.send(text);
      ui.showComposerError(result.ok ? "" : result.message);
      return result.ok;
    },
    onRetry: (id) => session.retry(id),
    onEdit(id) {
      const text = session.edit(id);
      if (text !== null) ui.setComposerText(text);
    },
    onOpenRoom(input) {
      const result = validateRoom(input);
      if (!result.ok) return result.message;
      globalThis.location.hash = `#${result.value}`; // hashchange does the rest
      return null;
    },
    onSaveName(input) {
      const result = validateUser(input);
      if (!result.ok) return result.message;
      session.name = result.value;
      storage.set(NAME_KEY, result.value);
      ui.setName(result.value);
      session.render(session.room);
      return null;
    },
    onReconnectNow: () => session.handleOnline(),
  });

  const signalR = globalThis.signalR;
  const connection = signalR
    ? buildConnection(signalR, {
        api,
        identity,
        hooks: {
          onNegotiate: (answer) => {
            negotiatedUserId = answer.userId;
          },
          onNegotiateError: (err) => session.noteConnectRetryAfter(err.retryAfterMs),
          notBeforeMs: () => session.connectWaitMs(),
        },
      })
    : null;

  session = new ChatSession({
    api,
    connection,
    isOnline: () => globalThis.navigator?.onLine !== false,
    view: {
      render(room, options = {}) {
        const store = session.storeFor(room);
        ui.renderMessages(store.list(), (entry) => session.isOwn(entry), { ...options, loaded: store.loaded });
      },
      connection(state, detail) {
        clearInterval(countdown);
        countdown = null;
        if (!connection) {
          ui.setConnection(state, { ...detail, note: "live updates unavailable: /lib/signalr.min.js did not load" });
          return;
        }
        ui.setConnection(state, detail);
        if (state === "offline" && session.retryAt !== null) {
          countdown = setInterval(() => {
            if (session.connState !== "offline" || session.retryAt === null) return;
            ui.setConnection("offline", { ...detail, retryInMs: session.retryAt - Date.now() });
          }, 1000);
        }
      },
      notice: (text) => ui.setNotice(text),
      announce: (text) => ui.announce(text),
      sendStatus: (text) => ui.setSendStatus(text),
    },
  });

  // The identity: from storage, or asked for now, so own lines are known before the first send.
  session.setSelfId(identity.current()?.id ?? null);
  identity.get().catch((err) => console.warn(`Could not get an identity: ${err.message}`));
  // Another tab of this profile replaced the identity (after a 401): follow it.
  globalThis.addEventListener("storage", (event) => {
    if (event.key === IDENTITY_KEY || event.key === null) identity.current();
  });
  // Lines waiting out a 429 show a countdown: re-render them once a second while any waits.
  setInterval(() => {
    if (session.isWaitingToSend()) session.render(session.room);
  }, 1000);

  const saved = validateUser(storage.get(NAME_KEY) ?? "");
  session.name = saved.ok ? saved.value : null;
  ui.setName(session.name);

  function showRooms() {
    const sorted = [...knownRooms].sort((a, b) =>
      a === DEFAULT_ROOM ? -1 : b === DEFAULT_ROOM ? 1 : a.localeCompare(b),
    );
    ui.setRooms(sorted, session.room);
  }

  function openRoom(room) {
    if (room === session.room) return;
    ui.showRoom(room);
    knownRooms = [...new Set([DEFAULT_ROOM, room, ...knownRooms])].slice(0, MAX_KNOWN_ROOMS);
    storage.set(ROOMS_KEY, JSON.stringify(knownRooms));
    session.enterRoom(room);
    showRooms();
  }

  function onHashChange() {
    const raw = globalThis.location.hash;
    const { room, valid, message } = roomFromHash(raw);
    if (!valid) {
      ui.showRoomError(message ?? "That link does not name a valid room.");
      const fallback = session.room ?? room;
      globalThis.history.replaceState(null, "", `#${fallback}`);
      openRoom(fallback);
      return;
    }
    if (raw !== `#${room}`) globalThis.history.replaceState(null, "", `#${room}`);
    ui.showRoomError("");
    openRoom(room);
  }

  globalThis.addEventListener("hashchange", onHashChange);
  onHashChange();

  if (!session.name) ui.openNameDialog("", true);

  session.setConnection(connection ? "connecting" : "offline");
  if (connection) {
    session.connectNow();
    globalThis.addEventListener("online", () => session.handleOnline());
    globalThis.addEventListener("offline", () => {
      if (session.connState === "offline") session.setConnection("offline");
    });
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "visible" && session.connState === "offline") session.handleOnline();
    });
  }

  globalThis.addEventListener("beforeunload", (event) => {
    if (session.hasUnsent()) {
      event.preventDefault(); // the browser asks "leave the page?"
      event.returnValue = "";
    }
  });

  // Read-only view for the browser tests of a later issue and for debugging in the console.
  globalThis.cosmicChat = Object.freeze({
    get state() {
      return {
        name: session.name,
        room: session.room,
        connection: session.connState,
        connectionId: connection?.connectionId ?? null,
        joinedWith: session.joinedWith,
        identityId: session.selfId,
        // The SignalR user id: the identity id the last negotiate was made for.
        userId: negotiatedUserId,
      };
    },
    messages: () => session.storeFor(session.room).list().map((m) => ({ ...m })),
    Status,
  });
}

start();
