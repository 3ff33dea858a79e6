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

// Unicode version: the server (Python's unicodedata, 14.0) and this file (the browser's ICU, often newer)
// must classify every code point the same, so both pin Unicode 14.0. The code points below were assigned
// after 14.0 (up to 17.0): they count as unassigned (Cn) whatever the browser knows, and NFC treats them as
// 14.0 does, as inert starters. The same table, the reasons and the test that keeps both sides equal are in
// functions/chat/validation.py (AFTER_UNICODE_14).
const AFTER_UNICODE_14 = `
088F 0897 0C5C 0CDC 0CF3 0ECE 1ACF-1ADD 1AE0-1AEB 1B4E-1B4F 1B7F 1C89-1C8A 20C1 2427-2429 2B96
2FFC-2FFF 31E4-31E5 31EF A7CB-A7CF A7D2 A7D4 A7DA-A7DC A7F1 FBC3-FBD2 FD90-FD91 FDC8-FDCE
105C0-105F3 10940-10959 10D40-10D65 10D69-10D85 10D8E-10D8F 10EC2-10EC7 10ED0-10ED8 10EFA-10EFF
1123F-11241 11380-11389 1138B 1138E 11390-113B5 113B7-113C0 113C2 113C5 113C7-113CA 113CC-113D5
113D7-113D8 113E1-113E2 116D0-116E3 11B00-11B09 11B60-11B67 11BC0-11BE1 11BF0-11BF9 11DB0-11DDB
11DE0-11DE9 11F00-11F10 11F12-11F3A 11F3E-11F5A 1342F 13439-13455 13460-143FA 16100-16139
16D40-16D79 16EA0-16EB8 16EBB-16ED3 16FF2-16FF6 187F8-187FF 18CFF 18D09-18D1E 18D80-18DF2 1B132
1B155 1CC00-1CCFC 1CD00-1CEB3 1CEBA-1CED0 1CEE0-1CEF0 1D2C0-1D2D3 1DF25-1DF2A 1E030-1E06D 1E08F
1E4D0-1E4F9 1E5D0-1E5FA 1E5FF 1E6C0-1E6DE 1E6E0-1E6F5 1E6FE-1E6FF 1F6D8 1F6DC 1F774-1F77F 1F7D9
1F8B2-1F8BB 1F8C0-1F8C1 1F8D0-1F8D8 1FA54-1FA57 1FA75-1FA77 1FA87-1FA8A 1FA8E-1FA8F 1FAAD-1FAAF
1FABB-1FABF 1FAC6 1FAC8 1FACD-1FACF 1FADA-1FADC 1FADF 1FAE8-1FAEA 1FAEF 1FAF7-1FAF8 1FBCB-1FBEF
1FBFA 2B739-2B73F 2CEA2-2CEAD 2EBF0-2EE5D 31350-33479
`;
// Blank letters and marks that are not format characters (Hangul fillers, braille blank, combining grapheme
// joiner, variation selectors, Khmer inherent vowels, Mongolian selectors, musical null notehead and beams).
const INVISIBLE_EXTRA = `
034F 115F-1160 17B4-17B5 180B-180F 2800 3164 FE00-FE0F FFA0 1D159 1D173-1D17A E0100-E01EF
`;
// Bidi embeddings, overrides and isolates: they reorder the rest of the line; nobody types them.
const BIDI_CONTROLS = "202A-202E 2066-2069";
// What the server's trim (Python's str.strip()) removes; String.prototype.trim() differs (U+FEFF, U+0085).
const TRIM = new Set(
  "\t\n\v\f\r\x1c\x1d\x1e\x1f \x85\xa0\u1680" +
    "\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000",
);

/** A character class from a table of hex code points and ranges ("0041 0061-007A"). */
function charClass(table) {
  const hex = (h) => `\\u{${h}}`;
  const parts = table.trim().split(/\s+/).map((t) => t.split("-").map(hex).join("-"));
  return `[${parts.join("")}]`;
}

const NEWER = new RegExp(`^${charClass(AFTER_UNICODE_14)}$`, "u");
const NEWER_SPLIT = new RegExp(`(${charClass(AFTER_UNICODE_14)})`, "u");
const EXTRA = new RegExp(`^${charClass(INVISIBLE_EXTRA)}$`, "u");
const BIDI = new RegExp(charClass(BIDI_CONTROLS), "u");
const SHOWS_NOTHING = /^[\p{Cc}\p{Cf}\p{Z}]$/u;
const NOT_IN_NAME = /^[\p{C}\p{Z}]$/u;
const MARK = /^\p{M}$/u;
const SURROGATE = /\p{Cs}/u;

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

/** NFC as Unicode 14.0 defines it: characters assigned later are inert, so the pieces between them are
 * normalised on their own (the browser's newer data would compose or reorder around them). */
function nfc14(value) {
  return value
    .split(NEWER_SPLIT)
    .map((piece, i) => (i % 2 ? piece : piece.normalize("NFC")))
    .join("");
}

/** Python's str.strip(); a loop, as a regex for the trailing side is quadratic on long inner runs. */
function trim(value) {
  let start = 0;
  let end = value.length;
  while (start < end && TRIM.has(value[start])) start += 1;
  while (end > start && TRIM.has(value[end - 1])) end -= 1;
  return value.slice(start, end);
}

/** Trimmed, NFC, trimmed again, as the server stores it: one spelling per name, and idempotent. */
export function normaliseInput(value) {
  return trim(nfc14(trim(value)));
}

function codeOf(ch) {
  return `U+${ch.codePointAt(0).toString(16).toUpperCase().padStart(4, "0")}`;
}

/** Shows nothing: a space, a control or format character, or a known blank letter or mark. */
function showsNothing(ch) {
  return !NEWER.test(ch) && (SHOWS_NOTHING.test(ch) || EXTRA.test(ch));
}

/** Invisible, unassigned (as of Unicode 14.0) or private in a name; only the plain space is allowed. */
function notInName(ch) {
  return ch !== " " && (NEWER.test(ch) || NOT_IN_NAME.test(ch) || EXTRA.test(ch));
}

/** Why a name could pass for another one, or null: invisibles, doubled spaces, a leading combining mark. */
function nameProblem(value) {
  const bad = [...value].find(notInName);
  if (bad) return `Display name cannot contain invisible or special characters (${codeOf(bad)}).`;
  if (value.includes("  ")) return "Display name cannot contain two spaces in a row.";
  const first = String.fromCodePoint(value.codePointAt(0));
  if (MARK.test(first) && !NEWER.test(first)) {
    return `Display name cannot start with a combining mark (${codeOf(first)}).`;
  }
  return null;
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

/** The server's rules for `user`, checked in the server's order; the value is what it would store. */
export function validateUser(input) {
  if (typeof input !== "string") return fail("user", "Display name is required.");
  if (SURROGATE.test(input)) return fail("user", "Display name contains a broken character.");
  const value = normaliseInput(input);
  if (value === "") return fail("user", "Display name is required.");
  if (codePointLength(value) > MAX_USER) {
    return fail("user", `Display name can be at most ${MAX_USER} characters.`);
  }
  const bad = value.match(CONTROL);
  if (bad) return fail("user", `Display name cannot contain ${describeControl(bad[0])}.`);
  if ([...value].every(showsNothing)) return fail("user", "Display name has no visible characters.");
  const problem = nameProblem(value);
  if (problem) return fail("user", problem);
  return { ok: true, value };
}

/** The server's rules for `text`, checked in the server's order; the value is what it would store. */
export function validateText(input) {
  if (typeof input !== "string") return fail("text", "Message is empty.");
  if (SURROGATE.test(input)) return fail("text", "Message contains a broken character.");
  const value = normaliseInput(input);
  if (value === "") return fail("text", "Message is empty.");
  const length = codePointLength(value);
  if (length > MAX_TEXT) {
    return fail("text", `Message is ${length} characters; the limit is ${MAX_TEXT}.`);
  }
  const bad = value.match(CONTROL_EXCEPT_NEWLINE);
  if (bad) return fail("text", `Message cannot contain ${describeControl(bad[0])}.`);
  if ([...value].every(showsNothing)) return fail("text", "Message has no visible characters.");
  const bidi = value.match(BIDI);
  if (bidi) return fail("text", `Message cannot contain text-direction controls (${codeOf(bidi[0])}).`);
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
