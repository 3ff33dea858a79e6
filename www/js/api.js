// Thin wrappers over the Function App's HTTP API (same origin). They take
// the `fetch` function as a parameter so the logic (status handling, error
// bodies, retries, catch-up paging) is tested in Node without a browser.
// DOM-free.

import { isMessage } from "./store.js";

/** Failure of an API call, carrying what the person should read. */
export class ApiError extends Error {
  /**
   * @param {{status?: number, code: string, message: string, field?: string|null, retryable?: boolean}} details
   */
  constructor({ status = 0, code, message, field = null, retryable = false }) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.field = field;
    this.retryable = retryable;
  }
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
  if (error && typeof error === "object" && typeof error.message === "string") {
    return new ApiError({
      status: response.status,
      code: typeof error.code === "string" ? error.code : `http_${response.status}`,
      message: error.message,
      field: typeof error.field === "string" ? error.field : null,
      retryable,
    });
  }
  const reason = response.statusText ? ` ${response.statusText}` : "";
  return new ApiError({
    status: response.status,
    code: `http_${response.status}`,
    message: `The server answered ${response.status}${reason}.`,
    retryable,
  });
}

function roomPath(room) {
  return `/api/rooms/${encodeURIComponent(room)}`;
}

/**
 * @param {{fetch: typeof fetch, baseUrl?: string, timeoutMs?: number}} options
 *   `baseUrl` is empty for same-origin use.
 */
export function createApi({ fetch, baseUrl = "", timeoutMs = 15000 }) {
  if (typeof fetch !== "function") throw new TypeError("createApi needs a fetch function");

  async function call(method, path, { body, expect }) {
    const init = {
      method,
      headers: { Accept: "application/json" },
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
      response = await fetch(baseUrl + path, init);
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
    if (response.status !== expect) {
      if (response.ok) {
        throw new ApiError({
          status: response.status,
          code: "unexpected_status",
          message: `The server answered ${response.status} where ${expect} was expected.`,
        });
      }
      throw await errorFromResponse(response);
    }
    if (expect === 202 || expect === 204) return null;
    try {
      return await response.json();
    } catch {
      throw new ApiError({
        status: response.status,
        code: "bad_response",
        message: "The server sent a response that is not JSON.",
        retryable: true,
      });
    }
  }

  return {
    /** Adds this SignalR connection to the room's group (per connection: repeat after every reconnect). */
    joinRoom(room, connectionId) {
      return call("POST", `${roomPath(room)}/join`, { body: { connectionId }, expect: 202 });
    },

    leaveRoom(room, connectionId) {
      return call("POST", `${roomPath(room)}/leave`, { body: { connectionId }, expect: 202 });
    },

    /** Stores a line; `id` makes a repeated POST overwrite instead of duplicating. */
    async postMessage(room, { user, text, id }) {
      const message = await call("POST", `${roomPath(room)}/messages`, {
        body: { user, text, id },
        expect: 201,
      });
      if (!isMessage(message) || message.id !== id) {
        throw new ApiError({
          status: 201,
          code: "bad_response",
          message: "The server stored the message but answered with something unexpected.",
        });
      }
      return message;
    },

    /** Oldest first: the latest `limit` lines, or the first `limit` newer than `after`. */
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

/**
 * POSTs a line, retrying transient failures with the same id (safe: the
 * server upserts by id). Validation errors are not retried: the person has to
 * change something. The final error carries `retryable` for the Retry button.
 */
export async function sendMessage(api, room, body, { delays = [1000, 3000], sleep = sleepFor } = {}) {
  let attempt = 0;
  for (;;) {
    try {
      return await api.postMessage(room, body);
    } catch (err) {
      const retryable = err instanceof ApiError ? err.retryable : false;
      if (!retryable || attempt >= delays.length) throw err;
      await sleep(delays[attempt]);
      attempt += 1;
    }
  }
}

/**
 * True for the app's own negotiate endpoint. The SignalR JS client keeps the
 * previous connection's service token and, on every reconnect, sends it as
 * `Authorization: Bearer` to the app's negotiate too (checked in
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
  return parsed.origin === new URL(pageOrigin).origin && parsed.pathname === `${apiPath}/negotiate`;
}

/** Removes a stale service token from a request to the app's negotiate (see above). */
export function withoutStaleToken(request, pageOrigin) {
  if (request && request.headers && isAppNegotiateUrl(request.url, pageOrigin)) {
    for (const name of Object.keys(request.headers)) {
      if (name.toLowerCase() === "authorization") delete request.headers[name];
    }
  }
  return request;
}

/** Reconnect delays for the SignalR client: quick first, then patient, never a storm. */
export function reconnectDelay(previousRetryCount, { schedule = [0, 2000, 5000, 10000, 20000, 30000], random = Math.random } = {}) {
  if (previousRetryCount >= schedule.length) return null; // hand over to the app's offline loop
  const base = schedule[previousRetryCount];
  // ±20 % jitter so a room full of browsers does not reconnect in lockstep.
  return base === 0 ? 0 : Math.round(base * (0.8 + 0.4 * random()));
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
