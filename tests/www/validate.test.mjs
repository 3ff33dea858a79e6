// Client-side input rules: they must agree with the server's (issue 2,
// "Validation") so a person is told before sending, in words they understand.
import { test } from "node:test";
import assert from "node:assert/strict";

import {
  DEFAULT_ROOM,
  MAX_BODY_BYTES,
  bodyBytes,
  codePointLength,
  normaliseInput,
  roomFromHash,
  validateOutgoing,
  validateRoom,
  validateText,
  validateUser,
} from "../../www/js/validate.js";

test("room names follow the server's pattern", () => {
  for (const ok of ["general", "a", "0", "dev-ops", "a".repeat(32), "9-lives", "a-"]) {
    assert.deepEqual(validateRoom(ok), { ok: true, value: ok }, ok);
  }
  for (const bad of ["", "  ", "-a", "a_b", "a b", "é", "a".repeat(33), "a/b", "..", "a.b"]) {
    const r = validateRoom(bad);
    assert.equal(r.ok, false, bad);
    assert.equal(r.field, "room");
    assert.match(r.message, /Room name/);
  }
});

test("typed room names are normalised: trimmed, lower-cased, leading # dropped", () => {
  assert.deepEqual(validateRoom("  Random "), { ok: true, value: "random" });
  assert.deepEqual(validateRoom("#Dev-Ops"), { ok: true, value: "dev-ops" });
  assert.equal(validateRoom(42).ok, false);
});

test("the location hash names the room; empty or invalid falls back to general", () => {
  assert.deepEqual(roomFromHash(""), { room: DEFAULT_ROOM, valid: true });
  assert.deepEqual(roomFromHash("#"), { room: DEFAULT_ROOM, valid: true });
  assert.deepEqual(roomFromHash("#random"), { room: "random", valid: true });
  assert.deepEqual(roomFromHash("#Random"), { room: "random", valid: true });
  for (const bad of ["#a_b", "#%3Cscript%3E", "#%E0%A4%A", "#" + "x".repeat(40)]) {
    const r = roomFromHash(bad);
    assert.equal(r.room, DEFAULT_ROOM, bad);
    assert.equal(r.valid, false, bad);
  }
});

test("display names: 1..32 code points after trimming, no control characters", () => {
  assert.deepEqual(validateUser("  Ada  "), { ok: true, value: "Ada" });
  assert.equal(validateUser("🚀".repeat(32)).ok, true, "32 emoji are 32 characters, not 64");
  assert.equal(validateUser("🚀".repeat(33)).ok, false);
  assert.equal(validateUser("a".repeat(33)).message, "Display name can be at most 32 characters.");
  assert.equal(validateUser("   ").message, "Display name is required.");
  assert.equal(validateUser(undefined).ok, false);
  assert.equal(validateUser("a\tb").message, "Display name cannot contain a tab.");
  assert.equal(validateUser("a\nb").ok, false, "no newline in a name");
  assert.equal(validateUser("a\u0085b").ok, false, "C1 controls count too");
  assert.equal(validateUser("<b>Ada</b>").ok, true, "markup is just text, rendered as text");
});

test("message text: 1..2000 code points, newline allowed, other controls refused", () => {
  assert.deepEqual(validateText(" hi\nthere \n"), { ok: true, value: "hi\nthere" });
  assert.equal(validateText("x".repeat(2000)).ok, true);
  assert.equal(validateText("é".repeat(2000)).ok, true);
  assert.equal(validateText("x".repeat(2001)).message, "Message is 2001 characters; the limit is 2000.");
  assert.equal(validateText("\n\n  ").message, "Message is empty.");
  assert.equal(validateText("a\rb").message, "Message cannot contain a carriage return.");
  assert.equal(validateText("a\u0000b").message, "Message cannot contain control character U+0000.");
  assert.equal(validateText("a\u007fb").ok, false);
  assert.equal(validateText("नमस्ते 世界 👋🏽").ok, true, "every script and emoji is accepted");
});

test("code points, not UTF-16 units, are counted", () => {
  assert.equal(codePointLength("👋🏽"), 2);
  assert.equal(codePointLength("abc"), 3);
  assert.equal("👋🏽".length, 4);
});

test("a message whose encoded body would exceed 8 KiB is refused before sending", () => {
  const user = "😀".repeat(32);
  const text = "😀".repeat(2000);
  const result = validateOutgoing({ user, text, id: crypto.randomUUID() });
  assert.ok(bodyBytes({ user, text, id: crypto.randomUUID() }) > MAX_BODY_BYTES);
  assert.equal(result.ok, false);
  assert.equal(result.field, "text");
  assert.match(result.message, /too large/);
  const fine = validateOutgoing({ user: "Ada", text: "😀".repeat(2000), id: crypto.randomUUID() });
  assert.deepEqual(fine, { ok: true, value: { user: "Ada", text: "😀".repeat(2000) } });
});

test("outgoing messages report the first failing field", () => {
  assert.equal(validateOutgoing({ user: "", text: "hi" }).field, "user");
  assert.equal(validateOutgoing({ user: "Ada", text: "" }).field, "text");
});

// Look-alike names and texts: the same cases as tests/functions/test_validation.py, since the server stores
// exactly what these functions return.

test("names and texts are stored in NFC: composed and decomposed spellings are one name", () => {
  assert.deepEqual(validateUser("Ren\u00e9e"), { ok: true, value: "Ren\u00e9e" });
  assert.deepEqual(validateUser("Rene\u0301e"), { ok: true, value: "Ren\u00e9e" });
  assert.deepEqual(validateUser("\u1100\u1161"), { ok: true, value: "\uac00" });
  assert.deepEqual(validateText("A\u030angstr\u00f6m"), { ok: true, value: "\u00c5ngstr\u00f6m" });
  assert.deepEqual(validateUser("e\u0301".repeat(32)), { ok: true, value: "\u00e9".repeat(32) });
  assert.equal(normaliseInput(" \u2000e\u0301 "), "\u00e9");
});

test("validating a stored value again returns it unchanged", () => {
  for (const typed of [" e\u0301\u0327 x", "A\u030a\u212b\u2126", "\u1100\u1161\u11a8 q", "\u0344a"]) {
    const once = validateOutgoing({ user: "ada", text: typed });
    assert.equal(once.ok, true, typed);
    assert.deepEqual(validateOutgoing({ user: "ada", text: once.value.text }), once);
    assert.equal(once.value.text, once.value.text.normalize("NFC"));
  }
});

test("names refuse invisible, format, unassigned and private characters", () => {
  const bad = [
    "ad\u200ba", "ad\u200ca", "ad\u200da", "ad\u2060a", "\ufeffada", "ad\u00ada", "ad\u200ea", "ad\u200fa",
    "\u202eada", "ad\u202aa", "ad\u2066a", "ad\u061ca", "ada\u{e0041}", "ada\u180e",
    "ad\u00a0a", "ad\u2003a", "ad\u202fa", "ad\u3000a", "ad\u2028a", "ad\u2029a",
    "ada\u3164", "ada\u115f", "ada\uffa0", "ada\u2800", "ad\u034fa", "ada\ufe0f", "ada\u{e0100}",
    "ada\u17b4", "ada\u{1d159}", "ada\u{1d173}",
    "ada\ue000", "ada\u0378", "ada\u{1fae8}",
  ];
  for (const name of bad) {
    const r = validateUser(name);
    assert.equal(r.ok, false, JSON.stringify(name));
    assert.match(r.message, /^Display name cannot contain invisible or special characters \(U\+[0-9A-F]+\)/);
  }
  assert.equal(validateUser("a\u200bb").message,
    "Display name cannot contain invisible or special characters (U+200B).");
});

test("names refuse doubled spaces and a combining mark first", () => {
  assert.equal(validateUser("ada  lovelace").message, "Display name cannot contain two spaces in a row.");
  const mark = "Display name cannot start with a combining mark (U+0301).";
  assert.equal(validateUser("\u0301ada").message, mark);
  assert.equal(validateUser("\u20dd").ok, false);
  assert.deepEqual(validateUser("Zoë O'Brien-李"), { ok: true, value: "Zoë O'Brien-李" });
});

test("texts refuse bidi overrides, embeddings and isolates, and keep other format characters", () => {
  for (const text of ["\u202eevil", "a\u202ab", "a\u202bb", "a\u202cb", "a\u202db", "a\u2066b", "a\u2069b"]) {
    const r = validateText(text);
    assert.equal(r.ok, false, JSON.stringify(text));
    assert.match(r.message, /^Message cannot contain text-direction controls \(U\+20[26][0-9A-F]\)\.$/);
  }
  const kept =
    "👨\u200d👩\u200d👧 ❤\ufe0f \u200e\u05e9\u05dc\u05d5\u05dd 🫨 \u0915\u094d\u200d\u0937 a  b\u00a0c";
  assert.deepEqual(validateText(kept), { ok: true, value: kept });
});

test("nothing visible is empty", () => {
  for (const name of ["\u3164", "\u200b", "\u3164 \u115f"]) {
    assert.equal(validateUser(name).message, "Display name has no visible characters.", JSON.stringify(name));
  }
  for (const text of ["\u200b  \u200b", "\u2060\n\ufe0f\u00a0\u3000", "\u200d"]) {
    assert.equal(validateText(text).message, "Message has no visible characters.", JSON.stringify(text));
  }
});

test("trimming is the server's: U+0085 and U+001C are trimmed, U+FEFF is not", () => {
  assert.deepEqual(validateText("\u0085hi\u001c"), { ok: true, value: "hi" });
  assert.equal(validateText("\ufeffhi").value, "\ufeffhi");
  assert.equal(validateUser("\ufeffada").ok, false);
});

test("characters assigned after Unicode 14.0 count as unassigned, as on the server", () => {
  assert.equal(validateUser("ada\u{1fae8}").ok, false, "a Unicode 15 emoji is not in a name");
  assert.deepEqual(validateText("\u{1fae8}"), { ok: true, value: "\u{1fae8}" });
  assert.deepEqual(validateText("\u{13439}"), { ok: true, value: "\u{13439}" }, "Cf only since 15.0");
  // Unicode 16 composes these pairs (to U+16121 and U+105C9), so Node 20.20 would; in 14.0 they are
  // unassigned and NFC keeps them.
  for (const pair of ["\u{1611e}\u{1611e}", "\u{105d2}\u0307"]) {
    assert.deepEqual(validateText(pair), { ok: true, value: pair });
  }
  assert.equal(validateText("\ud800").ok, false, "lone surrogates are refused");
});
