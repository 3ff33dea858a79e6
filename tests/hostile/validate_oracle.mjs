// Answers, one JSON line per JSON line on stdin, what www/js/validate.js says of {user, text}: the
// client-side rules, driven by tests/hostile/test_hostile_validators.py against the server's.
import { createInterface } from "node:readline";
import { validateOutgoing, validateRoom } from "../../www/js/validate.js";

const lines = createInterface({ input: process.stdin });
for await (const line of lines) {
  const q = JSON.parse(line);
  const out = q.room !== undefined ? validateRoom(q.room) : validateOutgoing({ user: q.user, text: q.text });
  process.stdout.write(JSON.stringify(out) + "\n");
}
