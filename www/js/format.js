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
