// The manager views: open work by role and by person, the SLA breaches, the standard pack's
// KPIs and the running orders, for one dealer; headquarters sees every dealer summarised and
// may choose one. Endpoints a server does not offer (404) show a clear "not available" state
// instead of failing.

import { api, apiOptional, serverNow } from '../api.js';
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
  const incidents = h('div', {}, h('p', { class: 'muted' }, t('loading')));
  parts.push(h('div', { class: 'manager-grid' },
    section('incidents', t('mgr.incidents'), incidents),
    section('breaches', t('mgr.breaches'), breaches),
    section('workload', t('mgr.workload'), workload),
    section('kpis', t('mgr.kpis'), kpis),
    section('orders', t('mgr.orders'), orders)));
  page(t('mgr.title'), ...parts);

  // Headquarters without a dealer: every dealer summarised, the network's breaches and KPIs.
  const scope = { dealer: dealer || undefined };
  const to = serverNow();
  const from = new Date(to.getTime() - 30 * 24 * 3600 * 1000);
  await Promise.all([
    apiOptional('/workload', { query: scope }).then((w) => {
      mount(workload, w ? workloadView(w) : unavailable());
      mount(breaches, w ? breachTable(w.breaches || []) : unavailable());
    }, (e) => {
      mount(workload, errorBox(e));
      mount(breaches, errorBox(e));
    }),
    apiOptional('/kpis', { query: { ...scope, from: from.toISOString(), to: to.toISOString() } }).then((k) => mount(kpis, k ? kpiView(k) : unavailable()), (e) => mount(kpis, errorBox(e))),
    Promise.all([api('/instances', { query: { ...scope, status: 'running', limit: 50 } }), api('/processes').catch(() => [])])
      .then(([p, procs]) => mount(orders, orderTable(p.items || [], procs)), (e) => mount(orders, errorBox(e))),
    // Orders stopped by an incident wait for an administrator (retry or skip, on their page).
    Promise.all([api('/instances', { query: { ...scope, status: 'incident', limit: 50 } }), api('/processes').catch(() => [])])
      .then(([p, procs]) => mount(incidents, orderTable(p.items || [], procs, 'mgr.noIncidents')), (e) => mount(incidents, errorBox(e))),
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

function loadTable(heading, rows, nameOf, kind) {
  const column = t(`col.${kind}`);
  return h('div', { class: `load load-${kind}` },
    h('h3', {}, heading),
    rows.length ? h('div', { class: 'table-wrap' }, h('table', { class: 'compact' },
      h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, column), ['col.open', 'col.dueSoon', 'col.overdue'].map((k) => h('th', { scope: 'col', class: 'num' }, t(k))))),
      h('tbody', {}, rows.map((r) => h('tr', { dataset: { key: r.role || r.user || r.dealer || '' } }, h('th', { scope: 'row' }, nameOf(r)),
        h('td', { class: 'num' }, String(r.open ?? 0)),
        h('td', { class: `num ${r.due_soon ? 'warn' : ''}` }, String(r.due_soon ?? 0)),
        h('td', { class: `num ${r.overdue ? 'alert' : ''}` }, String(r.overdue ?? 0)))))))
      : h('p', { class: 'muted' }, '—'));
}

function workloadView(w) {
  const total = w.total || {};
  const summary = h('p', { class: 'muted load-total' }, t('mgr.total', { open: total.open ?? 0, soon: total.due_soon ?? 0, overdue: total.overdue ?? 0 }));
  if (!w.dealer) {
    return h('div', {}, summary, h('div', { class: 'workload' },
      loadTable(t('col.dealer'), w.by_dealer || [], (r) => h('a', { href: `/manager?dealer=${encodeURIComponent(r.dealer)}` }, r.dealer), 'dealer')));
  }
  return h('div', {}, summary, h('div', { class: 'workload' },
    loadTable(t('mgr.byRole'), w.by_role || [], (r) => label(r.title, r.role), 'role'),
    loadTable(t('mgr.byPerson'), w.by_person || [], (r) => r.name || who(r.user), 'person')));
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

const RATIOS = ['followup_coverage', 'followup_success_rate', 'complaint_rate', 'major_complaint_rate', 'first_time_fix_rate'];

function percent(ratio) {
  return typeof ratio?.value === 'number' ? `${(ratio.value * 100).toFixed(1)}%` : '—';
}

function kpiView(k) {
  const target = (r) => {
    if (!r.target) return null;
    const sign = r.target.kind === 'at_most' ? '≤' : '≥';
    const met = r.met === undefined || r.met === null ? '' : r.met ? ` ${t('kpi.met')}` : ` ${t('kpi.missed')}`;
    return h('span', { class: `muted small ${r.met === false ? 'alert' : ''}` }, `${t('kpi.target')} ${sign} ${(r.target.value * 100).toFixed(0)}%${met}`);
  };
  const list = h('ul', { class: 'kpi-list' }, RATIOS.filter((key) => k[key]).map((key) => {
    const r = k[key];
    return h('li', { class: 'kpi', dataset: { kpi: key } },
      h('span', { class: 'kpi-value' }, percent(r), h('small', {}, ` (${r.numerator}/${r.denominator})`)),
      h('span', { class: 'kpi-title' }, t(`kpi.${key}`)),
      target(r));
  }));
  const sla = (k.sla || []).length
    ? h('div', { class: 'table-wrap' }, h('table', { class: 'compact kpi-sla' },
      h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, t('kpi.step')), h('th', { scope: 'col', class: 'num' }, t('kpi.onTime')), h('th', { scope: 'col', class: 'num' }, t('kpi.breaches')))),
      h('tbody', {}, k.sla.map((x) => h('tr', {}, h('th', { scope: 'row' }, `${x.process} · ${x.step}`),
        h('td', { class: 'num' }, `${percent(x.on_time)} (${x.on_time.numerator}/${x.on_time.denominator})`),
        h('td', { class: `num ${x.breaches ? 'alert' : ''}` }, String(x.breaches)))))))
    : null;
  const overdue = (k.overdue_by_role || []).length
    ? h('p', { class: 'small' }, `${t('kpi.overdueByRole')}: `, k.overdue_by_role.map((x) => `${roleName(x.key)} ${x.count}`).join(', '))
    : null;
  return h('div', { class: 'kpis' }, h('p', { class: 'muted' }, t('mgr.period')), list, sla, overdue);
}

function roleName(id) {
  const r = (session.me?.roles || []).find((x) => x.id === id);
  return label(r, id);
}

function orderTable(items, processes, empty = 'mgr.noOrders') {
  const titles = new Map((Array.isArray(processes) ? processes : processes?.items || []).map((p) => [p.id, p.title]));
  if (!items.length) return h('p', { class: 'muted' }, t(empty));
  return h('div', { class: 'table-wrap' }, h('table', { class: 'compact' },
    h('thead', {}, h('tr', {}, ['col.key', 'col.process', 'col.started'].map((k) => h('th', { scope: 'col' }, t(k))))),
    h('tbody', {}, items.map((i) => h('tr', {},
      h('td', {}, h('a', { href: `/instances/${encodeURIComponent(i.id)}` }, i.business_key || i.id)),
      h('td', {}, label(titles.get(i.process), i.process)),
      h('td', {}, time(i.started_at)))))));
}
