// What the person reads: local-time stamps, connection wording, and the
// small helpers that pick ids and transports.
import { test } from "node:test";
import assert from "node:assert/strict";

import { authorTag, connectionLabel, formatFull, formatStamp, rateLimitLabel, retryLabel } from "../../www/js/format.js";
import { newMessageId, transportFromQuery } from "../../www/js/api.js";

const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

test("stamps are in the reader's time zone: time only today, with the date otherwise", () => {
  const now = new Date("2026-11-27T21:30:00.000Z");
  const opts = { now, locale: "en-GB" };
  assert.equal(formatStamp("2026-11-27T21:05:09.123Z", { ...opts, timeZone: "UTC" }), "21:05");
  // 02:35 on 28 Nov in Kolkata, where "now" is 03:00 the same day.
  assert.equal(formatStamp("2026-11-27T21:05:09.123Z", { ...opts, timeZone: "Asia/Kolkata" }), "02:35");
  // 22:00 on 26 Nov in New York, where "now" is already 27 Nov.
  assert.equal(formatStamp("2026-11-27T03:00:00.000Z", { ...opts, timeZone: "America/New_York" }), "26 Nov, 22:00");
  assert.equal(formatStamp("2026-11-26T21:05:00.000Z", { ...opts, timeZone: "UTC" }), "26 Nov, 21:05");
  assert.equal(formatStamp("2025-11-27T21:05:00.000Z", { ...opts, timeZone: "UTC" }), "27 Nov 2025, 21:05");
  assert.equal(formatStamp("not a date", opts), "");
});

test("the full stamp names the day and seconds", () => {
  const full = formatFull("2026-11-27T21:05:09.123Z", { locale: "en-GB", timeZone: "UTC" });
  assert.match(full, /Friday/);
  assert.match(full, /21:05:09/);
  assert.equal(formatFull("", {}), "");
});

test("connection states read as words; the countdown is separate from the live label", () => {
  assert.equal(connectionLabel("connecting"), "Connecting…");
  assert.equal(connectionLabel("live"), "Live");
  assert.equal(connectionLabel("reconnecting"), "Reconnecting…");
  assert.equal(connectionLabel("offline"), "Offline");
  assert.equal(connectionLabel("offline", { online: false }), "Offline: no network");
  assert.equal(retryLabel(9600), "retrying in 10 s");
  assert.equal(retryLabel(-50), "retrying in 1 s");
  assert.equal(retryLabel(null), "");
});

test("message ids are UUID v4, with or without crypto.randomUUID", () => {
  assert.match(newMessageId(), UUID_V4);
  const insecure = { getRandomValues: (a) => crypto.getRandomValues(a) };
  const ids = new Set(Array.from({ length: 200 }, () => newMessageId(insecure)));
  assert.equal(ids.size, 200);
  for (const id of ids) assert.match(id, UUID_V4);
});

test("?transport= forces one SignalR transport; anything else lets SignalR choose", () => {
  assert.equal(transportFromQuery("?transport=websockets"), 1);
  assert.equal(transportFromQuery("?transport=sse"), 2);
  assert.equal(transportFromQuery("?transport=ServerSentEvents"), 2);
  assert.equal(transportFromQuery("?transport=long-polling"), 4);
  assert.equal(transportFromQuery("?transport=carrier-pigeon"), null);
  assert.equal(transportFromQuery(""), null);
});

test("the author tag is # and the first 4 characters of the identity id, or nothing without one", () => {
  assert.equal(authorTag("k3F9aaaaaaaaaaaaaaaaaa"), "#k3F9");
  assert.equal(authorTag("_-x9bbbbbbbbbbbbbbbbbb"), "#_-x9");
  assert.notEqual(authorTag("k3F9aaaaaaaaaaaaaaaaaa"), authorTag("Qx7_bbbbbbbbbbbbbbbbbb"), "two Anas told apart");
  assert.equal(authorTag("ab"), "#ab");
  assert.equal(authorTag(""), "");
  assert.equal(authorTag(null), "");
  assert.equal(authorTag(undefined), "");
  assert.equal(authorTag(42), "");
});

test("the rate-limit status names the wait in whole seconds, rounded up", () => {
  assert.equal(rateLimitLabel(7000), "Sending too fast: retrying in 7 s");
  assert.equal(rateLimitLabel(6100), "Sending too fast: retrying in 7 s");
  assert.equal(rateLimitLabel(0), "Sending too fast: retrying in 1 s");
  assert.equal(rateLimitLabel(undefined), "Sending too fast: retrying in 1 s");
});
