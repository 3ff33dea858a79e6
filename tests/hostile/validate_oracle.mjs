// Answers, one JSON line per JSON line on stdin, what www/js/validate.js says of {user, text}: the
// client-side rules, driven by tests/hostile/test_hostile_validators.py against the server's.
// `{sweep: [[first, last, step], ...]}` answers for every code point in the ranges at once (see sweepCode).
import { createInterface } from "node:readline";
import { normaliseInput, validateOutgoing, validateRoom, validateText, validateUser } from "../../www/js/validate.js";

/** One character per code point: four verdicts as bits, the same four the Python side computes. */
function sweepCode(ch) {
  const bits =
    (validateUser(`a${ch}b`).ok ? 1 : 0) |
    (validateText(`a${ch}b`).ok ? 2 : 0) |
    (validateText(ch).ok ? 4 : 0) |
    (validateUser(`${ch}a`).ok ? 8 : 0);
  return String.fromCharCode(48 + bits);
}

function sweep(ranges) {
  let codes = "";
  const changed = {};
  for (const [first, last, step] of ranges) {
    for (let cp = first; cp <= last; cp += step) {
      const ch = String.fromCodePoint(cp);
      codes += sweepCode(ch);
      const typed = `a${ch}\u0323\u0301`;
      const value = normaliseInput(typed);
      if (value !== typed) changed[cp] = value;
    }
  }
  return { codes, changed };
}

const lines = createInterface({ input: process.stdin });
for await (const line of lines) {
  const q = JSON.parse(line);
  let out;
  if (q.sweep !== undefined) out = sweep(q.sweep);
  else if (q.room !== undefined) out = validateRoom(q.room);
  else out = validateOutgoing({ user: q.user, text: q.text });
  process.stdout.write(JSON.stringify(out) + "\n");
}
