// Times and days in the reader's zone and locale (12 or 24 hours, the
// order of day and month: whatever the browser's language uses). No DOM.

// One sender's messages closer together than this form a group; notices
// of the same kind within it are told together.
export const GROUP_GAP_S = 300;

/**
 * Formatters for `locales` (undefined: the browser's own), built once: a
 * formatter is costly to set up and every message shows a time.
 */
export function formats(locales) {
  const time = new Intl.DateTimeFormat(locales, { timeStyle: 'short' });
  const date = new Intl.DateTimeFormat(locales, { dateStyle: 'full' });
  const dateTime = new Intl.DateTimeFormat(locales, { dateStyle: 'full', timeStyle: 'short' });
  const number = new Intl.NumberFormat(locales);
  return {
    /** The time of a server ts (seconds since the epoch): "15:04", "3:04 PM". */
    clock: (ts) => time.format(new Date(ts * 1000)),
    /** The date and time, for a tooltip. */
    longTime: (ts) => dateTime.format(new Date(ts * 1000)),
    /** "Today", "Yesterday", or the date ("Monday, 24 November 2025"), seen at `now`. */
    dayLabel(ts, now = new Date()) {
      const key = dayKey(ts);
      if (key === dayKey(now.getTime() / 1000)) { return 'Today'; }
      const yesterday = new Date(now.getFullYear(), now.getMonth(), now.getDate() - 1, 12);
      if (key === dayKey(yesterday.getTime() / 1000)) { return 'Yesterday'; }
      return date.format(new Date(ts * 1000));
    },
    /** A count, with the locale's digit grouping. */
    number: (n) => number.format(n),
  };
}

function pad(n) { return String(n).padStart(2, '0'); }

/** The reader's calendar day of a ts, as YYYY-MM-DD (sortable, comparable). */
export function dayKey(ts) {
  const d = new Date(ts * 1000);
  return d.getFullYear() + '-' + pad(d.getMonth() + 1) + '-' + pad(d.getDate());
}

/** Milliseconds from `now` until just after the reader's next midnight. */
export function untilMidnight(now = new Date()) {
  const midnight = new Date(now.getFullYear(), now.getMonth(), now.getDate() + 1, 0, 0, 1);
  return midnight - now;
}
