// Presentation helpers without the DOM: local-time stamps and connection
// state wording. Kept apart from ui.js so Node can test them.

/**
 * Short local time for a line: "21:05" today, "27 Nov, 21:05" this year,
 * "27 Nov 2025, 21:05" before. `timeZone` and `locale` exist for tests; the
 * page uses the person's own.
 */
export function formatStamp(iso, { now = new Date(), locale = undefined, timeZone = undefined } = {}) {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return "";
  const dayKey = new Intl.DateTimeFormat("en-CA", { timeZone, year: "numeric", month: "2-digit", day: "2-digit" });
  const time = new Intl.DateTimeFormat(locale, { timeZone, hour: "2-digit", minute: "2-digit" }).format(date);
  if (dayKey.format(date) === dayKey.format(now)) return time;
  const sameYear =
    new Intl.DateTimeFormat("en-CA", { timeZone, year: "numeric" }).format(date) ===
    new Intl.DateTimeFormat("en-CA", { timeZone, year: "numeric" }).format(now);
  const day = new Intl.DateTimeFormat(locale, {
    timeZone,
    day: "numeric",
    month: "short",
    ...(sameYear ? {} : { year: "numeric" }),
  }).format(date);
  return `${day}, ${time}`;
}

/** Full local date and time, for the tooltip and screen readers. */
export function formatFull(iso, { locale = undefined, timeZone = undefined } = {}) {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return "";
  return new Intl.DateTimeFormat(locale, { timeZone, dateStyle: "full", timeStyle: "medium" }).format(date);
}

/**
 * Words for the connection indicator. This text sits in a live region, so it
 * changes only when the state does; the retry countdown is separate.
 */
export function connectionLabel(state, { online = true } = {}) {
  switch (state) {
    case "connecting":
      return "Connecting…";
    case "live":
      return "Live";
    case "reconnecting":
      return "Reconnecting…";
    case "offline":
      return online ? "Offline" : "Offline: no network";
    default:
      return state;
  }
}

/** The countdown shown next to "Offline" (not announced every second). */
export function retryLabel(retryInMs) {
  if (retryInMs === null || retryInMs === undefined) return "";
  const seconds = Math.max(1, Math.round(retryInMs / 1000));
  return `retrying in ${seconds} s`;
}

/** Characters of the author's identity id shown next to the name. */
export const AUTHOR_TAG_LENGTH = 4;

/**
 * The short tag that tells two people with the same display name apart:
 * "#" and the first 4 characters of the author's identity id ("Ana #k3F9").
 * Empty for lines without an authorId (stored before identities).
 */
export function authorTag(authorId) {
  if (typeof authorId !== "string" || authorId === "") return "";
  return `#${[...authorId].slice(0, AUTHOR_TAG_LENGTH).join("")}`;
}

/** What a person reads while their lines wait out a 429: "Sending too fast: retrying in 7 s". */
export function rateLimitLabel(waitMs) {
  const seconds = Math.max(1, Math.ceil((Number(waitMs) || 0) / 1000));
  return `Sending too fast: retrying in ${seconds} s`;
}
