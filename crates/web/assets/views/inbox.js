// The inbox ("My tasks"): the caller's tasks with filters (mine, my roles' unclaimed, overdue,
// due today, process), search by business key, a live SLA badge per row, and claim/release in
// one click. The filters live in the URL, so a reload or the back button keeps them.

import { api, serverNow } from '../api.js';
import { h, mount, toast } from '../dom.js';
import { label, lang, t } from '../i18n.js';
import { navigate } from '../router.js';
import { isMe } from '../session.js';
import { slaBadge } from '../sla.js';
import { endOfDay, toRfc3339 } from '../time.js';
import { errorBox, page, priorityBadge, time, who } from './common.js';

const VIEWS = [
  ['any', 'f.any', 'total'],
  ['me', 'f.me', 'mine'],
  ['nobody', 'f.nobody', 'unassigned'],
  ['overdue', 'f.overdue', 'overdue'],
  ['today', 'f.today', 'due_today'],
];

let processes = null;

function queryFor(view, process, q, cursor) {
  const query = { process, q, cursor };
  if (view === 'me' || view === 'nobody' || view === 'any') query.assignee = view;
  if (view === 'overdue') query.overdue = 'true';
  if (view === 'today') query.due_before = toRfc3339(endOfDay(serverNow()));
  return query;
}

export async function inboxView(params, query) {
  const view = VIEWS.some(([v]) => v === query.get('view')) ? query.get('view') : 'any';
  const process = query.get('process') || '';
  const q = query.get('q') || '';

  const setFilter = (changes) => {
    const next = new URLSearchParams({ view, process, q, ...changes });
    for (const [k, v] of [...next]) if (!v || (k === 'view' && v === 'any')) next.delete(k);
    const s = next.toString();
    navigate(`/tasks${s ? `?${s}` : ''}`, { replace: true });
  };

  const tabs = h('div', { class: 'segmented', role: 'group', 'aria-label': t('inbox.view') });
  const processSelect = h('select', { id: 'filter-process', onchange: (e) => setFilter({ process: e.target.value }) },
    h('option', { value: '' }, t('inbox.allProcesses')));
  const search = h('input', { id: 'filter-q', type: 'search', value: q, placeholder: t('inbox.searchHint'), autocomplete: 'off' });
  const filters = h('form', {
    class: 'filters', role: 'search', 'aria-label': t('inbox.filters'),
    onsubmit: (e) => { e.preventDefault(); setFilter({ q: search.value.trim() }); },
  },
  h('div', { class: 'field' }, h('label', { for: 'filter-process' }, t('inbox.process')), processSelect),
  h('div', { class: 'field grow' }, h('label', { for: 'filter-q' }, t('inbox.search')), h('div', { class: 'with-button' }, search,
    h('button', { type: 'submit', class: 'secondary' }, t('inbox.search')))),
  h('button', { type: 'button', class: 'secondary refresh', onclick: () => load() }, t('inbox.refresh')));

  const status = h('p', { class: 'muted count', role: 'status' });
  const list = h('div', { class: 'task-list' });
  const more = h('div', { class: 'more' });
  page(t('inbox.title'), tabs, filters, status, list, more);

  const drawTabs = (counts) => {
    mount(tabs, VIEWS.map(([v, key, countKey]) => h('button', {
      type: 'button', 'aria-pressed': String(v === view), class: v === view ? 'active' : '',
      dataset: { view: v }, onclick: () => setFilter({ view: v }),
    }, t(key), counts && counts[countKey] !== undefined ? h('span', { class: `count-pill ${v === 'overdue' && counts.overdue ? 'alert' : ''}` }, String(counts[countKey])) : null)));
  };
  drawTabs(null);

  // The process list changes rarely: fetched once per page load.
  const fillProcesses = (list2) => {
    for (const p of list2) processSelect.append(h('option', { value: p.id, selected: p.id === process }, label(p.title, p.id)));
  };
  if (processes) fillProcesses(processes);
  else {
    api('/processes').then((answer) => {
      const items = Array.isArray(answer) ? answer : answer?.items || [];
      const seen = new Set();
      processes = items.filter((p) => !seen.has(p.id) && seen.add(p.id));
      fillProcesses(processes);
    }).catch(() => {});
  }

  let items = [];
  async function load(cursor) {
    try {
      const answer = await api('/tasks', { query: queryFor(view, process, q, cursor) });
      items = cursor ? items.concat(answer.items) : answer.items;
      drawTabs(answer.counts || null);
      draw(answer.next_cursor);
    } catch (e) {
      mount(list, errorBox(e));
    }
  }

  function draw(nextCursor) {
    const focusedId = document.activeElement?.closest?.('tr')?.dataset.task;
    status.textContent = t('inbox.count', { n: items.length });
    if (!items.length) {
      mount(list, h('p', { class: 'empty' }, t('inbox.empty')));
    } else {
      mount(list, h('div', { class: 'table-wrap' }, h('table', { class: 'tasks' },
        h('caption', { class: 'sr-only' }, t('inbox.title')),
        h('thead', {}, h('tr', {},
          ['col.sla', 'col.task', 'col.process', 'col.key', 'col.due', 'col.who', 'col.action'].map((k) => h('th', { scope: 'col' }, t(k))))),
        h('tbody', {}, items.map(row)))));
    }
    mount(more, nextCursor ? h('button', { type: 'button', class: 'secondary', onclick: () => load(nextCursor) }, t('inbox.more')) : null);
    if (focusedId) list.querySelector(`tr[data-task="${CSS.escape(focusedId)}"] button`)?.focus();
  }

  function row(task) {
    const title = label(task.title, task.step);
    const mine = isMe(task.assignee);
    let action = null;
    if (!task.assignee) {
      action = h('button', { type: 'button', class: 'primary small', 'aria-label': t('claim.label', { t: title }), onclick: () => act(task, 'claim') }, t('claim'));
    } else if (mine) {
      action = h('button', { type: 'button', class: 'secondary small', 'aria-label': t('unclaim.label', { t: title }), onclick: () => act(task, 'unclaim') }, t('unclaim'));
    }
    return h('tr', { dataset: { task: task.id, step: task.step } },
      h('td', {}, slaBadge(task)),
      h('td', { class: 'task-title' }, h('a', { href: `/tasks/${encodeURIComponent(task.id)}` }, title), ' ', priorityBadge(task.priority)),
      h('td', {}, label(task.process_title, task.process),
        h('div', { class: 'muted small task-roles' }, (task.role_names || []).map((r) => label(r, r.id)).join(lang() === 'zh' ? '、' : ', '))),
      h('td', { class: 'key' }, task.business_key ? h('a', { href: `/instances/${encodeURIComponent(task.instance)}` }, task.business_key) : '—'),
      h('td', {}, task.due_at ? time(task.due_at) : h('span', { class: 'muted' }, t('noDue'))),
      h('td', {}, who(task.assignee)),
      h('td', {}, action));
  }

  async function act(task, what) {
    try {
      await api(`/tasks/${encodeURIComponent(task.id)}/${what}`, { method: 'POST' });
      toast(t(what === 'claim' ? 'claimed' : 'unclaimed'));
      await load();
    } catch (e) {
      toast(errorBox(e).textContent, 'error');
      await load();
    }
  }

  await load();
}
