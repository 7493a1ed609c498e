// Wall-clock time in the dealer's time zone: converting a `datetime-local` input (which has
// no zone) to an RFC 3339 instant and back, and the end of "today" for the due-today filter.
// The browser's own zone is not used: a tablet set to another zone must still show and enter
// the dealer's times.

import { getTimeZone } from './i18n.js';

/** The zone's offset from UTC at an instant, in minutes (e.g. +480 for Asia/Shanghai). */
export function offsetMinutes(instantMs, tz = getTimeZone()) {
  if (!tz) return -new Date(instantMs).getTimezoneOffset();
  const parts = Object.fromEntries(
    new Intl.DateTimeFormat('en-US', {
      timeZone: tz, hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit',
      hour: '2-digit', minute: '2-digit', second: '2-digit',
    }).formatToParts(new Date(instantMs)).map((p) => [p.type, p.value]),
  );
  const asUtc = Date.UTC(+parts.year, +parts.month - 1, +parts.day, +parts.hour % 24, +parts.minute, +parts.second);
  return Math.round((asUtc - Math.floor(instantMs / 1000) * 1000) / 60000);
}

/** `2026-03-02T09:30` (wall time in the zone) -> the instant, as a `Date`. */
export function fromWallTime(value, tz = getTimeZone()) {
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2}))?$/.exec(value || '');
  if (!m) return null;
  const wall = Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +(m[6] || 0));
  // The offset at the guess is right except near a change of offset; one more step fixes that.
  let guess = wall - offsetMinutes(wall, tz) * 60000;
  guess = wall - offsetMinutes(guess, tz) * 60000;
  return new Date(guess);
}

/** An instant -> `2026-03-02T09:30` in the zone, for a `datetime-local` input. */
export function toWallTime(iso, tz = getTimeZone()) {
  const ms = Date.parse(iso);
  if (Number.isNaN(ms)) return '';
  const local = new Date(ms + offsetMinutes(ms, tz) * 60000);
  return local.toISOString().slice(0, 16);
}

/** An instant as RFC 3339 with the zone's offset (`2026-03-02T09:30:00+08:00`). */
export function toRfc3339(date, tz = getTimeZone()) {
  const off = offsetMinutes(date.getTime(), tz);
  const local = new Date(date.getTime() + off * 60000).toISOString().slice(0, 19);
  const sign = off < 0 ? '-' : '+';
  const abs = Math.abs(off);
  return `${local}${sign}${String(Math.floor(abs / 60)).padStart(2, '0')}:${String(abs % 60).padStart(2, '0')}`;
}

/** The first instant of tomorrow in the zone, as seen at `now`. */
export function endOfDay(now, tz = getTimeZone()) {
  const wall = toWallTime(now.toISOString(), tz).slice(0, 10);
  const next = new Date(`${wall}T00:00:00Z`);
  next.setUTCDate(next.getUTCDate() + 1);
  return fromWallTime(next.toISOString().slice(0, 16), tz);
}
