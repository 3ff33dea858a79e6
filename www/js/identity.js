// This browser profile's identity: `{id, token}` from `POST /api/identities`,
// kept in localStorage so every tab of the profile shares it. The token goes
// as `Authorization: Bearer` on every call except history (api.js); the id
// decides which lines are "mine" (store.js) and is the SignalR user id of
// every connection of the profile. DOM-free.

import { ApiError, requestJson } from "./api.js";

export const IDENTITY_KEY = "cosmic-chat.identity";
/** What the server issues as an identity id: 22 characters of base64url. */
export const IDENTITY_ID_PATTERN = /^[A-Za-z0-9_-]{22}$/;

/** `{id, token}` if `value` has the issued shape, else null. */
export function asIdentity(value) {
  if (value === null || typeof value !== "object") return null;
  const { id, token } = value;
  if (typeof id !== "string" || !IDENTITY_ID_PATTERN.test(id)) return null;
  if (typeof token !== "string" || token === "" || /[\s\p{Cc}]/u.test(token)) return null;
  return { id, token };
}

/** The stored text as an identity, or null for anything else (missing, not JSON, edited). */
export function parseIdentity(raw) {
  if (typeof raw !== "string" || raw === "") return null;
  try {
    return asIdentity(JSON.parse(raw));
  } catch {
    return null;
  }
}

/**
 * @param {{fetch: typeof fetch, storage: {get(key: string): string|null, set(key: string, value: string): void,
 *   remove(key: string): void}, baseUrl?: string, timeoutMs?: number, key?: string,
 *   onChange?: (identity: {id: string, token: string}|null) => void}} options
 *   `storage` is localStorage behind a try/catch (app.js); when it does not
 *   keep anything the identity lives as long as the page.
 */
export function createIdentity({ fetch, storage, baseUrl = "", timeoutMs = 15000, key = IDENTITY_KEY, onChange = () => {} }) {
  let memory = null;
  let pending = null;
  let announced = null;

  function changed(identity) {
    if ((identity?.token ?? null) === (announced?.token ?? null)) return;
    announced = identity;
    onChange(identity);
  }

  /** Storage first (another tab may have replaced the identity), then this page's copy. */
  function current() {
    const stored = parseIdentity(storage.get(key));
    if (stored) memory = stored;
    if (memory) changed(memory);
    return memory;
  }

  async function issue() {
    const { data } = await requestJson(fetch, `${baseUrl}/api/identities`, {
      method: "POST",
      body: {},
      expect: 201,
      timeoutMs,
    });
    const issued = asIdentity(data);
    if (!issued) {
      throw new ApiError({
        status: 201,
        code: "bad_response",
        message: "The server's new identity is not {id, token}.",
        retryable: true,
      });
    }
    // Another tab may have stored one while this request was out: keep that one, so the tabs agree.
    const meanwhile = parseIdentity(storage.get(key));
    if (meanwhile) {
      memory = meanwhile;
    } else {
      memory = issued;
      storage.set(key, JSON.stringify(issued));
    }
    return memory;
  }

  return {
    current,

    /** The identity, asking the server for one first if there is none (one request at a time). */
    async get() {
      const identity = current();
      if (identity) return identity;
      if (!pending) {
        pending = issue().finally(() => {
          pending = null;
        });
      }
      const issued = await pending;
      changed(issued);
      return issued;
    },

    /** The server refused `identity` (401): forget it, unless another tab already replaced it. */
    discard(identity) {
      if (memory && memory.token === identity.token) memory = null;
      const stored = parseIdentity(storage.get(key));
      if (stored === null || stored.token === identity.token) storage.remove(key);
      if (announced && announced.token === identity.token) changed(null);
    },
  };
}
