// The manager views: open work by role and by person, the SLA breaches, the standard pack's
// KPIs and the running orders, for one dealer; headquarters users choose the dealer. Endpoints
// a server does not offer yet (404) show a clear "not available" state instead of failing.

import { api, apiOptional } from '../api.js';
import { h, mount } from '../dom.js';
import { label, t } from '../i18n.js';
import { navigate } from '../router.js';
import { session } from '../session.js';
import { slaBadge } from '../sla.js';
import { errorBox, page, show, time, who } from './common.js';

export async function managerView(params, query) {
  const hq = session.me?.organisation?.kind === 'hq';
  const dealer = query.get('dealer') || (hq ? '' : session.me?.organisation?.id || '');
  const parts = [];

  if (hq) parts.push(await dealerPicker(dealer));

  const workload = h('div', {}, h('p', { class: 'muted' }, t('loading')));
  const breaches = h('div', {}, h('p', { class: 'muted' }, t('loading')));
  const kpis = h('div', {}, h('p', { class: 'muted' }, t('loading')));
  const orders = h('div', {}, h('p', { class: 'muted' }, t('loading')));
  parts.push(h('div', { class: 'manager-grid' },
    section('breaches', t('mgr.breaches'), breaches),
    section('workload', t('mgr.workload'), workload),
    section('kpis', t('mgr.kpis'), kpis),
    section('orders', t('mgr.orders'), orders)));
  page(t('mgr.title'), ...parts);
  if (hq && !dealer) {
    for (const box of [workload, breaches, kpis, orders]) mount(box, h('p', { class: 'muted' }, t('mgr.allDealers')));
    return;
  }

  const scope = { dealer: hq ? dealer : undefined };
  const to = new Date();
  const from = new Date(to.getTime() - 30 * 24 * 3600 * 1000);
  await Promise.all([
    apiOptional('/workload', { query: scope }).then((w) => mount(workload, w ? workloadView(w) : unavailable()), (e) => mount(workload, errorBox(e))),
    api('/tasks', { query: { ...scope, overdue: 'true', assignee: 'any', limit: 100 } }).then((p) => mount(breaches, breachTable(p.items || [])), (e) => mount(breaches, errorBox(e))),
    apiOptional('/kpis', { query: { ...scope, from: from.toISOString(), to: to.toISOString() } }).then((k) => mount(kpis, k ? kpiView(k) : unavailable()), (e) => mount(kpis, errorBox(e))),
    Promise.all([api('/instances', { query: { ...scope, status: 'running', limit: 50 } }), api('/processes').catch(() => [])])
      .then(([p, procs]) => mount(orders, orderTable(p.items || [], procs)), (e) => mount(orders, errorBox(e))),
  ]);
}

function section(key, heading, content) {
  return h('section', { class: `card sec-${key}`, 'aria-labelledby': `sec-${key}` }, h('h2', { id: `sec-${key}` }, heading), content);
}

function unavailable() {
  return h('p', { class: 'notice unavailable', role: 'status' }, t('mgr.unavailable'));
}

async function dealerPicker(dealer) {
  let dealers = [];
  try {
    const answer = await api('/organisations');
    dealers = (Array.isArray(answer) ? answer : answer.items || []).filter((o) => o.kind === 'dealer');
  } catch {
    dealers = [];
  }
  const id = 'mgr-dealer';
  const control = dealers.length
    ? h('select', { id, name: 'dealer' }, h('option', { value: '' }, t('mgr.allDealers')),
      dealers.map((d) => h('option', { value: d.id, selected: d.id === dealer }, `${d.name || d.id} (${d.id})`)))
    : h('input', { id, name: 'dealer', value: dealer, autocomplete: 'off' });
  return h('form', {
    class: 'filters', onsubmit: (e) => {
      e.preventDefault();
      const v = control.value.trim();
      navigate(`/manager${v ? `?dealer=${encodeURIComponent(v)}` : ''}`, { replace: true });
    },
  }, h('div', { class: 'field' }, h('label', { for: id }, t('mgr.dealer')), control),
  h('button', { type: 'submit', class: 'primary' }, t('mgr.show')));
}

function roleTitle(row) {
  const fromMe = (session.me?.roles || []).find((r) => r.id === row.role);
  return label(row.title || row.role_title || fromMe, row.role);
}

function workloadView(w) {
  const byRole = w.by_role || w.roles || [];
  const byPerson = w.by_person || w.people || w.users || [];
  const table = (heading, rows, nameOf) => h('div', {},
    h('h3', {}, heading),
    rows.length ? h('div', { class: 'table-wrap' }, h('table', { class: 'compact' },
      h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, heading), h('th', { scope: 'col', class: 'num' }, t('col.open')), h('th', { scope: 'col', class: 'num' }, t('col.overdue')))),
      h('tbody', {}, rows.map((r) => h('tr', {}, h('th', { scope: 'row' }, nameOf(r)),
        h('td', { class: 'num' }, String(r.open ?? r.total ?? 0)),
        h('td', { class: `num ${r.overdue ? 'alert' : ''}` }, String(r.overdue ?? 0)))))))
      : h('p', { class: 'muted' }, '—'));
  return h('div', { class: 'workload' },
    table(t('mgr.byRole'), byRole, roleTitle),
    table(t('mgr.byPerson'), byPerson, (r) => r.name || who(r.user || r.id)));
}

function breachTable(items) {
  if (!items.length) return h('p', { class: 'ok' }, t('mgr.noBreaches'));
  return h('div', { class: 'table-wrap' }, h('table', { class: 'tasks compact' },
    h('thead', {}, h('tr', {}, ['col.sla', 'col.task', 'col.key', 'col.due', 'col.who'].map((k) => h('th', { scope: 'col' }, t(k))))),
    h('tbody', {}, items.map((task) => h('tr', { dataset: { task: task.id } },
      h('td', {}, slaBadge(task)),
      h('td', {}, h('a', { href: `/instances/${encodeURIComponent(task.instance)}` }, label(task.title, task.step)),
        h('div', { class: 'muted small' }, label(task.process_title, task.process))),
      h('td', {}, task.business_key || '—'),
      h('td', {}, time(task.due_at)),
      h('td', {}, who(task.assignee)))))));
}

function kpiView(k) {
  const list = Array.isArray(k) ? k : k.kpis || k.items || [];
  if (!list.length) {
    return h('dl', { class: 'facts' }, Object.entries(k).map(([key, v]) => [h('dt', {}, key), h('dd', {}, show(v))]));
  }
  return h('div', { class: 'kpis' }, h('p', { class: 'muted' }, t('mgr.period')), h('ul', { class: 'kpi-list' }, list.map((x) => {
    const value = typeof x.value === 'number' ? (Number.isInteger(x.value) ? String(x.value) : x.value.toFixed(2)) : show(x.value);
    return h('li', { class: 'kpi' },
      h('span', { class: 'kpi-value' }, value, x.unit ? h('small', {}, ` ${x.unit}`) : null),
      h('span', { class: 'kpi-title' }, label(x.title, x.id || x.name || '')),
      x.target !== undefined ? h('span', { class: 'muted small' }, `→ ${show(x.target)}`) : null);
  })));
}

function orderTable(items, processes) {
  const titles = new Map((Array.isArray(processes) ? processes : processes?.items || []).map((p) => [p.id, p.title]));
  if (!items.length) return h('p', { class: 'muted' }, t('mgr.noOrders'));
  return h('div', { class: 'table-wrap' }, h('table', { class: 'compact' },
    h('thead', {}, h('tr', {}, ['col.key', 'col.process', 'col.started'].map((k) => h('th', { scope: 'col' }, t(k))))),
    h('tbody', {}, items.map((i) => h('tr', {},
      h('td', {}, h('a', { href: `/instances/${encodeURIComponent(i.id)}` }, i.business_key || i.id)),
      h('td', {}, label(titles.get(i.process), i.process)),
      h('td', {}, time(i.started_at)))))));
}
