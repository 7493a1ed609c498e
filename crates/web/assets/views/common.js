// Pieces shared by the pages: the page frame (title, heading, focus after navigation), error
// messages from API failures, and small formatters.

import { ApiError, NetworkError } from '../api.js';
import { h, mount } from '../dom.js';
import { formatDateTime, t } from '../i18n.js';
import { isMe } from '../session.js';

/**
 * Mounts a page in `<main>`: sets the document title, and moves focus to the heading so a
 * screen reader announces the new page (a single-page app has no page load to do it).
 */
export function page(title, ...children) {
  const main = document.getElementById('main');
  document.title = `${title} · sopflow`;
  const heading = h('h1', { tabindex: '-1' }, title);
  mount(main, heading, ...children);
  if (document.activeElement === document.body || document.activeElement === main || !main.contains(document.activeElement)) {
    heading.focus({ preventScroll: true });
  }
  return main;
}

/** A person-readable sentence for an API failure. */
export function describeError(e) {
  if (e instanceof NetworkError) return t('err.network');
  if (e instanceof ApiError) {
    if (e.status === 404) return t('err.notFound');
    if (e.status === 403) return t('err.forbidden');
    if (e.status === 409) return t('err.conflict', { m: e.detail || e.title });
    return t('err.generic', { m: e.detail || e.title || e.status });
  }
  return t('err.generic', { m: e?.message || String(e) });
}

/** An error block with `role="alert"`. */
export function errorBox(e) {
  return h('div', { class: 'notice error', role: 'alert' }, describeError(e));
}

/** A user id as shown: "Me" for the signed-in user. */
export function who(userId) {
  if (!userId) return t('nobody');
  return isMe(userId) ? `${t('me')} (${userId})` : userId;
}

/** A `<time>` element with the machine-readable instant. */
export function time(iso) {
  if (!iso) return '';
  return h('time', { datetime: iso }, formatDateTime(iso));
}

/** A priority badge, only for what is not normal. */
export function priorityBadge(priority) {
  if (!priority || priority === 'normal') return null;
  return h('span', { class: `badge prio prio-${priority}` }, t(`prio.${priority}`));
}

/** A definition list from `[term, value]` pairs, leaving out empty values. */
export function facts(pairs) {
  const rows = pairs.filter(([, v]) => v !== undefined && v !== null && v !== '');
  return h('dl', { class: 'facts' }, rows.map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]));
}

/** A compact JSON rendering of a value for people (strings unquoted). */
export function show(value) {
  if (value === null || value === undefined) return '—';
  if (typeof value === 'boolean') return value ? t('yes') : t('no');
  if (typeof value === 'string') return value;
  const text = JSON.stringify(value);
  return text.length > 160 ? `${text.slice(0, 157)}…` : text;
}
