// The page itself (www/index.html): what it loads and how, read as text.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";

const www = new URL("../../www/", import.meta.url);
const read = (path) => readFileSync(new URL(path, www), "utf8");

test("the SignalR bundle URL carries the installed npm version, so it can be cached as immutable", () => {
  const html = read("index.html");
  const src = html.match(/<script defer src="\/lib\/signalr\.min\.js\?v=([^"]+)"><\/script>/);
  assert.ok(src, "index.html loads /lib/signalr.min.js?v=<version>");
  const declared = JSON.parse(read("package.json")).dependencies["@microsoft/signalr"];
  const installed = JSON.parse(read("node_modules/@microsoft/signalr/package.json")).version;
  assert.equal(src[1], declared, "?v= must follow package.json, or browsers keep the old bundle for a year");
  assert.equal(declared, installed);
});

test("no inline script and no HTML-parsing sinks in the client", () => {
  const html = read("index.html");
  assert.doesNotMatch(html, /<script(?![^>]*\bsrc=)[^>]*>/, "every script has a src (the CSP forbids inline)");
  for (const file of ["api.js", "app.js", "format.js", "identity.js", "session.js", "store.js", "ui.js", "validate.js"]) {
    assert.doesNotMatch(read(`js/${file}`), /innerHTML|outerHTML|insertAdjacentHTML|document\.write/, file);
  }
});
