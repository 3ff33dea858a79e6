// Client-side input rules: they must agree with the server's (issue 2,
// "Validation") so a person is told before sending, in words they understand.
import { test } from "node:test";
import assert from "node:assert/strict";

import {
  DEFAULT_ROOM,
  MAX_BODY_BYTES,
  bodyBytes,
  codePointLength,
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
