// SLA badges: on time, due soon or overdue, recomputed every 30 seconds at the server's time
// (not the browser's: a virtual clock in tests, or a tablet with a wrong clock, would mislead).
// The rule is the server's: due soon within 30 minutes or 10% of the SLA, whichever is larger.

import { serverNow } from './api.js';
import { formatMinutes, t } from './i18n.js';
import { h } from './dom.js';

const order = { on_time: 0, due_soon: 1, overdue: 2 };

/** Where a task stands at `now`: `on_time`, `due_soon`, `overdue`, or `none` (no due time). */
export function slaAt(task, now = serverNow()) {
  if (!task.due_at) return 'none';
  const due = Date.parse(task.due_at);
  const created = Date.parse(task.created_at);
  const left = due - now.getTime();
  let computed = 'on_time';
  if (left <= 0) computed = 'overdue';
  else {
    const span = Number.isNaN(created) ? 0 : due - created;
    if (left <= Math.max(30 * 60000, span * 0.1)) computed = 'due_soon';
  }
  // Time only moves on: what the server said at fetch time is a floor, so a badge never looks
  // better than the server's own verdict, even if our clock estimate lags a virtual clock.
  const server = task.sla in order ? task.sla : 'on_time';
  return order[server] > order[computed] ? server : computed;
}

/** A badge element kept live by `startTicking`. */
export function slaBadge(task) {
  const el = h('span', { class: 'badge sla', dataset: { sla: '' } });
  el.slaTask = task;
  refresh(el);
  return el;
}

function refresh(el) {
  const task = el.slaTask;
  const state = slaAt(task);
  el.dataset.sla = state;
  el.className = `badge sla sla-${state}`;
  if (state === 'none') {
    el.textContent = t('sla.none');
    el.title = '';
    return;
  }
  const minutes = (Date.parse(task.due_at) - serverNow().getTime()) / 60000;
  el.textContent = t(`sla.${state}`);
  el.title = state === 'overdue' ? `−${formatMinutes(minutes)}` : formatMinutes(minutes);
}

/** Recomputes every badge on the page now. */
export function refreshBadges(root = document) {
  for (const el of root.querySelectorAll('.badge.sla')) if (el.slaTask) refresh(el);
}

let timer = null;
/** Starts the 30-second tick (once). */
export function startTicking() {
  if (timer) return;
  timer = setInterval(() => refreshBadges(), 30000);
  document.addEventListener('visibilitychange', () => {
    if (!document.hidden) refreshBadges();
  });
}
