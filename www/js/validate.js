// Client-side copies of the server's input rules (issue 2, "Validation").
// They exist so a person learns about a mistake before a round trip; the
// server stays the authority and its error message is shown when it differs.
// DOM-free so Node's test runner can exercise every rule.

/** Room names: the same pattern the Function App enforces on `{room}`. */
export const ROOM_PATTERN = /^[a-z0-9][a-z0-9-]{0,31}$/;
export const DEFAULT_ROOM = "general";
export const MAX_USER = 32;
export const MAX_TEXT = 2000;
/** SaveChat answers 413 above this many bytes of request body. */
export const MAX_BODY_BYTES = 8 * 1024;

// Unicode "Cc" (C0, DEL, C1): what the server calls control characters.
const CONTROL = /\p{Cc}/u;
const CONTROL_EXCEPT_NEWLINE = /[^\P{Cc}\n]/u;

/** Length in Unicode code points, as the server counts (not UTF-16 units). */
export function codePointLength(value) {
  let n = 0;
  // eslint-disable-next-line no-unused-vars
  for (const _ of value) n += 1;
  return n;
}

function describeControl(ch) {
  const code = ch.codePointAt(0);
  if (code === 9) return "a tab";
  if (code === 13) return "a carriage return";
  return `control character U+${code.toString(16).toUpperCase().padStart(4, "0")}`;
}

/**
 * A result is `{ok: true, value}` with the normalised value to send, or
 * `{ok: false, field, message}` with a sentence meant for a person.
 */
function fail(field, message) {
  return { ok: false, field, message };
}

/** Normalises what a person typed as a room name (trim, lower case) and checks the rule. */
export function validateRoom(input) {
  if (typeof input !== "string") return fail("room", "Room name is required.");
  const value = input.trim().toLowerCase().replace(/^#/, "");
  if (value === "") return fail("room", "Room name is required.");
  if (value.length > 32) return fail("room", "Room name can be at most 32 characters.");
  if (!ROOM_PATTERN.test(value)) {
    return fail(
      "room",
      "Room name may use only a–z, 0–9 and '-', and must start with a letter or digit.",
    );
  }
  return { ok: true, value };
}

/**
 * Room named by a location hash (`#room`). An empty hash means the default
 * room; a hash that normalises to a valid name ("#General") names that room
 * (the caller rewrites the hash to the canonical form); anything else falls
 * back to the default with `valid: false` so the person can be told.
 */
export function roomFromHash(hash) {
  let raw = typeof hash === "string" ? hash.replace(/^#/, "") : "";
  try {
    raw = decodeURIComponent(raw);
  } catch {
    return { room: DEFAULT_ROOM, valid: false };
  }
  if (raw === "") return { room: DEFAULT_ROOM, valid: true };
  const result = validateRoom(raw);
  if (!result.ok) return { room: DEFAULT_ROOM, valid: false, message: result.message };
  return { room: result.value, valid: true };
}

export function validateUser(input) {
  if (typeof input !== "string") return fail("user", "Display name is required.");
  const value = input.trim();
  if (value === "") return fail("user", "Display name is required.");
  if (codePointLength(value) > MAX_USER) {
    return fail("user", `Display name can be at most ${MAX_USER} characters.`);
  }
  const bad = value.match(CONTROL);
  if (bad) return fail("user", `Display name cannot contain ${describeControl(bad[0])}.`);
  return { ok: true, value };
}

export function validateText(input) {
  if (typeof input !== "string") return fail("text", "Message is empty.");
  const value = input.trim();
  if (value === "") return fail("text", "Message is empty.");
  const length = codePointLength(value);
  if (length > MAX_TEXT) {
    return fail("text", `Message is ${length} characters; the limit is ${MAX_TEXT}.`);
  }
  const bad = value.match(CONTROL_EXCEPT_NEWLINE);
  if (bad) return fail("text", `Message cannot contain ${describeControl(bad[0])}.`);
  return { ok: true, value };
}

/** Byte size of the JSON body SaveChat receives, so a 413 is caught before sending. */
export function bodyBytes(body) {
  return new TextEncoder().encode(JSON.stringify(body)).length;
}

/**
 * Validates a whole outgoing message: display name, text and the encoded size.
 * Returns `{ok: true, value: {user, text}}` or the first failure.
 */
export function validateOutgoing({ user, text, id }) {
  const u = validateUser(user);
  if (!u.ok) return u;
  const t = validateText(text);
  if (!t.ok) return t;
  const body = { user: u.value, text: t.value, id: id ?? "00000000-0000-4000-8000-000000000000" };
  if (bodyBytes(body) > MAX_BODY_BYTES) {
    return fail("text", `Message is too large to send (over ${MAX_BODY_BYTES} bytes once encoded).`);
  }
  return { ok: true, value: { user: u.value, text: t.value } };
}
