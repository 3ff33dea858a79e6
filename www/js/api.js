// Thin wrappers over the Function App's HTTP API (same origin). They take
// the `fetch` function as a parameter so the logic (status handling, error
// bodies, retries, catch-up paging) is tested in Node without a browser.
// DOM-free.

import { isMessage } from "./store.js";

/** Failure of an API call, carrying what the person should read. */
export class ApiError extends Error {
  /**
   * @param {{status?: number, code: string, message: string, field?: string|null, retryable?: boolean,
   *   retryAfterMs?: number|null}} details  `retryAfterMs`: the answer's `Retry-After`, if any.
   */
  constructor({ status = 0, code, message, field = null, retryable = false, retryAfterMs = null }) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.field = field;
    this.retryable = retryable;
    this.retryAfterMs = retryAfterMs;
  }
}

/** Error codes meaning "the stored identity is unusable": get a new one and retry once. */
export const IDENTITY_ERRORS = Object.freeze(["identity_required", "invalid_identity", "wrong_identity"]);

/** True for a 401 (or negotiate's 403) that the stored identity caused, not the request. */
export function isIdentityError(err) {
  return (
    err instanceof ApiError &&
    (err.status === 401 || err.status === 403) &&
    IDENTITY_ERRORS.includes(err.code)
  );
}

/**
 * `Retry-After` in milliseconds: delta-seconds (what the server sends) or an
 * HTTP date; null when absent or unreadable.
 */
export function parseRetryAfter(value, now = Date.now()) {
  if (typeof value !== "string" || value.trim() === "") return null;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const at = Date.parse(text);
  return Number.isNaN(at) ? null : Math.max(0, at - now);
}

/** Statuses where the same request may succeed later (timeouts, throttling, server trouble). */
export function isRetryableStatus(status) {
  return status === 408 || status === 429 || (status >= 500 && status <= 599);
}

async function errorFromResponse(response) {
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  const error = body && typeof body === "object" ? body.error : null;
  const retryable = isRetryableStatus(response.status);
  const retryAfterMs = parseRetryAfter(response.headers?.get?.("Retry-After") ?? null);
  if (error && typeof error === "object" && typeof error.message === "string") {
    return new ApiError({
      status: response.status,
      code: typeof error.code === "string" ? error.code : `http_${response.status}`,
      message: error.message,
      field: typeof error.field === "string" ? error.field : null,
      retryable,
      retryAfterMs,
    });
  }
  const reason = response.statusText ? ` ${response.statusText}` : "";
  return new ApiError({
    status: response.status,
    code: `http_${response.status}`,
    message: `The server answered ${response.status}${reason}.`,
    retryable,
    retryAfterMs,
  });
}

function roomPath(room) {
  return `/api/rooms/${encodeURIComponent(room)}`;
}

/**
 * One HTTP call with the API's conventions: JSON in and out, no cache, a
 * timeout, error bodies read into `ApiError`. `expect` is the status (or the
 * statuses) that mean success; 202/204 answer null, others their JSON body.
 * Exported for identity.js, which calls `POST /api/identities` the same way.
 */
export async function requestJson(fetch, url, { method, body, expect, headers = {}, timeoutMs = 15000 }) {
  const expected = Array.isArray(expect) ? expect : [expect];
  const init = {
    method,
    headers: { Accept: "application/json", ...headers },
    credentials: "same-origin",
    cache: "no-store",
  };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  if (timeoutMs > 0 && typeof AbortSignal !== "undefined" && AbortSignal.timeout) {
    init.signal = AbortSignal.timeout(timeoutMs);
  }
  let response;
  try {
    response = await fetch(url, init);
  } catch (err) {
    const timedOut = err && (err.name === "TimeoutError" || err.name === "AbortError");
    throw new ApiError({
      code: timedOut ? "timeout" : "network",
      message: timedOut
        ? "The server did not answer in time."
        : "Could not reach the server (network error).",
      retryable: true,
    });
  }
  if (!expected.includes(response.status)) {
    if (response.ok) {
      throw new ApiError({
        status: response.status,
        code: "unexpected_status",
        message: `The server answered ${response.status} where ${expected.join(" or ")} was expected.`,
      });
    }
    throw await errorFromResponse(response);
  }
  if (response.status === 202 || response.status === 204) return { status: response.status, data: null };
  try {
    return { status: response.status, data: await response.json() };
  } catch {
    throw new ApiError({
      status: response.status,
      code: "bad_response",
      message: "The server sent a response that is not JSON.",
      retryable: true,
    });
  }
}

/**
 * @param {{fetch: typeof fetch, identity?: {get(): Promise<{id: string, token: string}>,
 *   discard(identity: object): void}, baseUrl?: string, timeoutMs?: number}} options
 *   `baseUrl` is empty for same-origin use. `identity` (identity.js) is needed
 *   by every call except history: they send `Authorization: Bearer <token>`.
 */
export function createApi({ fetch, identity = null, baseUrl = "", timeoutMs = 15000 }) {
  if (typeof fetch !== "function") throw new TypeError("createApi needs a fetch function");

  async function call(method, path, { body, expect }) {
    const { data } = await requestJson(fetch, baseUrl + path, { method, body, expect, timeoutMs });
    return data;
  }

  /**
   * A call that needs the identity. `pathFor(identity)` builds the path (the
   * negotiate route names the identity). A 401 saying the stored identity is
   * unusable (server key rotated, storage edited) discards it and retries once
   * with a new one.
   */
  async function authed(method, pathFor, { body, expect }) {
    if (!identity) throw new TypeError("this API call needs createApi({identity})");
    for (let attempt = 0; ; attempt += 1) {
      const current = await identity.get();
      try {
        return await requestJson(fetch, baseUrl + pathFor(current), {
          method,
          body,
          expect,
          timeoutMs,
          headers: { Authorization: `Bearer ${current.token}` },
        });
      } catch (err) {
        if (attempt > 0 || !isIdentityError(err)) throw err;
        identity.discard(current);
      }
    }
  }

  return {
    /**
     * Adds the caller's SignalR user (the identity id) to the room's group,
     * body `{}`. Membership belongs to the identity: every tab of the profile
     * hears the room, and the service keeps it across reconnects. 404
     * `not_connected`: the identity has no live SignalR connection (connect,
     * then join again).
     */
    async joinRoom(room) {
      await authed("POST", () => `${roomPath(room)}/join`, { body: {}, expect: 202 });
      return null;
    },

    /**
     * Removes the identity from the room's group, in every tab of the profile.
     * The page does not call it on a room switch (it would silence the room in
     * the other tabs); it is here for an explicit "leave" action.
     */
    async leaveRoom(room) {
      await authed("POST", () => `${roomPath(room)}/leave`, { body: {}, expect: 202 });
      return null;
    },

    /**
     * Stores a line. 201: stored now; 200: this id was already stored with the
     * same author and text (a repeated POST), the body is the stored message:
     * both are success. 409 `id_taken`: another message holds the id.
     */
    async postMessage(room, { user, text, id }) {
      const { status, data: message } = await authed("POST", () => `${roomPath(room)}/messages`, {
        body: { user, text, id },
        expect: [201, 200],
      });
      if (!isMessage(message) || message.id !== id) {
        throw new ApiError({
          status,
          code: "bad_response",
          message: "The server stored the message but answered with something unexpected.",
        });
      }
      return message;
    },

    /**
     * `POST /api/negotiate/<identity id>` (`search` is kept, e.g.
     * `?negotiateVersion=1`). Returns `{url, accessToken, userId}`: the
     * SignalR service URL and its token, and the user id it was issued for
     * (the identity id: 403 `wrong_identity` for any other).
     */
    async negotiate({ search = "" } = {}) {
      let userId = null;
      const { data } = await authed(
        "POST",
        (current) => {
          userId = current.id;
          return `/api/negotiate/${encodeURIComponent(userId)}${search}`;
        },
        { expect: 200 },
      );
      if (!data || typeof data.url !== "string" || typeof data.accessToken !== "string") {
        throw new ApiError({
          status: 200,
          code: "bad_response",
          message: "The server's negotiate answer has no url and accessToken.",
          retryable: true,
        });
      }
      return { ...data, userId };
    },

    /** Oldest first: the latest `limit` lines, or the first `limit` newer than `after`. No identity needed. */
    async getMessages(room, { limit = 50, after = null } = {}) {
      const query = new URLSearchParams({ limit: String(limit) });
      if (after) query.set("after", after);
      const body = await call("GET", `${roomPath(room)}/messages?${query}`, { expect: 200 });
      if (!body || !Array.isArray(body.messages)) {
        throw new ApiError({
          status: 200,
          code: "bad_response",
          message: "The server's history answer has no message list.",
          retryable: true,
        });
      }
      return body.messages.filter(isMessage);
    },
  };
}

const sleepFor = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Fetches everything newer than `after`, page by page, while a full page
 * comes back. `onPage` sees each page as it arrives, so the UI fills in
 * progressively (pages overlap a little; the store merges by id).
 *
 * The next page starts after the page's *second-newest* timestamp, not its
 * newest: messages stored in the same millisecond as the page's last one may
 * continue on the next page, and `after=` is strictly greater, so starting at
 * the last timestamp would skip them. Only a page whose messages all share
 * one millisecond forces the cursor to that millisecond (the contract's
 * cursor is a timestamp; more than `pageSize` siblings cannot be told
 * apart). Stops if the cursor cannot advance, and after `maxPages` pages;
 * returns `{pages, count, complete}`.
 */
export async function fetchMissed(api, room, { after, pageSize = 50, maxPages = 40, onPage }) {
  let cursor = after;
  let pages = 0;
  let count = 0;
  while (pages < maxPages) {
    const page = await api.getMessages(room, { limit: pageSize, after: cursor });
    pages += 1;
    count += page.length;
    if (onPage) onPage(page);
    if (page.length < pageSize) return { pages, count, complete: true };
    const last = page[page.length - 1].createdAt;
    const earlier = page.findLast((m) => m.createdAt < last);
    const next = earlier ? earlier.createdAt : last;
    if (next === cursor) return { pages, count, complete: false };
    cursor = next;
  }
  return { pages, count, complete: false };
}

/** The longest `Retry-After` the page waits out on its own; a longer one fails the line (Retry stays). */
export const MAX_RETRY_AFTER_MS = 60000;

/**
 * When sending may resume after a 429, shared by all lines of a page so a
 * burst of lines waits together instead of each hitting the limit again.
 * Each line takes a ticket (`next`) when it starts; `waiting` holds the
 * lines held by a 429 (ticket → settles when the line is through). A line
 * never posts while a line sent before it is held, so a burst is stored in
 * the order it was typed even though the held lines wake up together.
 */
export function createRateGate() {
  return { until: 0, next: 0, waiting: new Map() };
}

/**
 * POSTs a line, retrying transient failures with the same id (safe: a
 * repeated POST answers 200 with the stored line). Validation errors and 409
 * `id_taken` are not retried: the person has to change something.
 *
 * A 429 waits at least its `Retry-After` (through `gate`, so other lines wait
 * too) and tries again with the same id, up to `maxRateLimited` times; the
 * line stays pending meanwhile and `onWait({ms, until})` reports each wait
 * (`onWait(null)` when it is over). Lines held by a 429 resume in the order
 * they were sent, each after the ones before it are through (`gate`). A
 * `Retry-After` above `maxRetryAfterMs` is not waited out: the line fails
 * (retryable) with a sentence saying so. The final error carries `retryable`
 * for the Retry button.
 */
export async function sendMessage(
  api,
  room,
  body,
  {
    delays = [1000, 3000],
    sleep = sleepFor,
    now = Date.now,
    gate = createRateGate(),
    maxRateLimited = 10,
    maxRetryAfterMs = MAX_RETRY_AFTER_MS,
    onWait = () => {},
  } = {},
) {
  let attempt = 0;
  let limited = 0;
  gate.next ??= 0;
  gate.waiting ??= new Map();
  const ticket = gate.next;
  gate.next += 1;
  const hold = () => {
    if (gate.waiting.has(ticket)) return;
    let release;
    const through = new Promise((resolve) => {
      release = resolve;
    });
    gate.waiting.set(ticket, { through, release });
  };
  const letThrough = () => {
    const held = gate.waiting.get(ticket);
    gate.waiting.delete(ticket);
    if (held) held.release();
  };
  const heldAhead = () => [...gate.waiting].filter(([t]) => t < ticket).map(([, held]) => held.through);
  try {
    for (;;) {
      const blocked = gate.until - now();
      if (blocked > 0) {
        hold();
        onWait({ ms: blocked, until: gate.until });
        await sleep(blocked);
        onWait(null);
        continue; // another line may have pushed the gate further meanwhile
      }
      const ahead = heldAhead();
      if (ahead.length > 0) {
        await Promise.all(ahead); // lines sent earlier and held by a 429 go first
        continue;
      }
      try {
        return await api.postMessage(room, body);
      } catch (err) {
        if (err instanceof ApiError && err.status === 429) {
          const wait = err.retryAfterMs ?? delays[Math.min(limited, delays.length - 1)] ?? 1000;
          if (wait > maxRetryAfterMs) {
            throw new ApiError({
              status: 429,
              code: err.code,
              message: `Sending too fast: the server asks to wait ${Math.ceil(wait / 1000)} s. Try again later.`,
              retryable: true,
              retryAfterMs: wait,
            });
          }
          if (limited >= maxRateLimited) throw err;
          limited += 1;
          gate.until = Math.max(gate.until, now() + wait);
          hold(); // from here on, the lines sent after this one wait for it
          continue;
        }
        letThrough(); // a retry delay must not hold up the lines sent after this one
        const retryable = err instanceof ApiError ? err.retryable : false;
        if (!retryable || attempt >= delays.length) throw err;
        await sleep(delays[attempt]);
        attempt += 1;
      }
    }
  } finally {
    letThrough();
  }
}

const NEGOTIATE_PATH = "/negotiate";

/**
 * True for the app's own negotiate endpoint: `/api/negotiate` (what the
 * SignalR client asks for, from the base URL `/api`) or
 * `/api/negotiate/<user id>` (the route it is sent to). The SignalR JS client
 * keeps the previous connection's service token and, on every reconnect,
 * sends it as `Authorization: Bearer` to the app's negotiate too (checked in
 * @microsoft/signalr 10.0.11, `AccessTokenHttpClient`). That token belongs to
 * the SignalR service and may have expired; it must not go to the app.
 */
export function isAppNegotiateUrl(url, pageOrigin, apiPath = "/api") {
  let parsed;
  try {
    parsed = new URL(url, pageOrigin);
  } catch {
    return false;
  }
  const base = `${apiPath}${NEGOTIATE_PATH}`;
  return (
    parsed.origin === new URL(pageOrigin).origin &&
    (parsed.pathname === base || parsed.pathname.startsWith(`${base}/`))
  );
}

function dropAuthorization(headers, onlyValue = null) {
  for (const name of Object.keys(headers)) {
    if (name.toLowerCase() !== "authorization") continue;
    if (onlyValue === null || headers[name] === onlyValue) delete headers[name];
  }
}

/**
 * Header hygiene for a request the SignalR client sends. To the app's
 * negotiate: any `Authorization` (the stale service token) is removed, and
 * replaced by `Bearer <identityToken>` when one is given. Anywhere else (the
 * SignalR service): the identity token, should it be there, is removed; the
 * service's own token stays.
 */
export function withoutStaleToken(request, pageOrigin, identityToken = null) {
  if (!request || !request.headers) return request;
  if (isAppNegotiateUrl(request.url, pageOrigin)) {
    dropAuthorization(request.headers);
    if (identityToken) request.headers.Authorization = `Bearer ${identityToken}`;
  } else if (identityToken) {
    dropAuthorization(request.headers, `Bearer ${identityToken}`);
  }
  return request;
}

/**
 * The `send(request)` of the HttpClient the page gives the SignalR client.
 * The app's negotiate never goes through SignalR's own HTTP code: it is
 * `api.negotiate()` (identity token, `/api/negotiate/<identity id>`,
 * a new identity on 401), whatever URL and headers SignalR put on the
 * request, so the stale service token is dropped and the identity token is
 * added by us alone. Everything else (the service) goes to `next(request)`
 * with the identity token stripped should it be there.
 *
 * A failed negotiate is reported to `onNegotiateError(err)` (an ApiError: a
 * 429 carries `retryAfterMs`) before being thrown as `makeError(message,
 * status)` (SignalR's HttpError), because SignalR rethrows it as a plain
 * "Failed to complete negotiation" that has lost the status and headers.
 *
 * @param {{api: ReturnType<typeof createApi>, pageOrigin: string,
 *   next: (request: object) => Promise<object>,
 *   makeResponse: (statusCode: number, statusText: string, content: string) => object,
 *   makeError: (message: string, statusCode: number) => Error,
 *   currentToken?: () => string|null,
 *   onNegotiate?: (answer: object) => void, onNegotiateError?: (err: Error) => void}} options
 */
export function createSignalRSend({
  api,
  pageOrigin,
  next,
  makeResponse,
  makeError,
  currentToken = () => null,
  onNegotiate = () => {},
  onNegotiateError = () => {},
}) {
  return async function send(request) {
    if (!isAppNegotiateUrl(request.url, pageOrigin)) {
      return next(withoutStaleToken(request, pageOrigin, currentToken()));
    }
    const search = new URL(request.url, pageOrigin).search;
    let answer;
    try {
      answer = await api.negotiate({ search });
    } catch (err) {
      onNegotiateError(err);
      throw makeError(err.message, err.status ?? 0);
    }
    onNegotiate(answer);
    const { userId, ...body } = answer;
    return makeResponse(200, "OK", JSON.stringify(body));
  };
}

/**
 * Reconnect delays for the SignalR client: quick first, then patient, never a
 * storm. `notBeforeMs`: a negotiate 429's `Retry-After` still to wait (capped
 * at MAX_RETRY_AFTER_MS), which the delay never undercuts.
 */
export function reconnectDelay(
  previousRetryCount,
  { schedule = [0, 2000, 5000, 10000, 20000, 30000], random = Math.random, notBeforeMs = 0 } = {},
) {
  if (previousRetryCount >= schedule.length) return null; // hand over to the app's offline loop
  const base = schedule[previousRetryCount];
  // ±20 % jitter so a room full of browsers does not reconnect in lockstep.
  const delay = base === 0 ? 0 : Math.round(base * (0.8 + 0.4 * random()));
  return Math.max(delay, Math.min(MAX_RETRY_AFTER_MS, Math.max(0, notBeforeMs)));
}

/** Delay before the next restart attempt once the SignalR client gave up (offline loop). */
export function offlineRetryDelay(attempt, { base = 5000, cap = 60000, random = Math.random } = {}) {
  const exp = Math.min(cap, base * 2 ** Math.max(0, attempt));
  return Math.round(exp * (0.8 + 0.4 * random()));
}

/**
 * A random UUID v4 for a new line. `crypto.randomUUID` exists only in
 * secure contexts (HTTPS, localhost); on plain HTTP over a LAN address the
 * page falls back to `getRandomValues`, which exists everywhere.
 */
export function newMessageId(cryptoImpl = globalThis.crypto) {
  if (typeof cryptoImpl.randomUUID === "function") return cryptoImpl.randomUUID();
  const b = cryptoImpl.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const hex = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** `?transport=` override (websockets, sse, longpolling) as a SignalR HttpTransportType value. */
export function transportFromQuery(search) {
  const value = new URLSearchParams(search).get("transport");
  if (!value) return null;
  const map = { websockets: 1, serversentevents: 2, sse: 2, longpolling: 4 };
  return map[value.toLowerCase().replace(/[^a-z]/g, "")] ?? null;
}
