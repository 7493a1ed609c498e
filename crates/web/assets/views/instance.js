// The instance page: where an order stands (position, open tasks with SLA badges, timers,
// incidents, linked orders), the process diagram with the current steps highlighted, and the
// timeline read from the audit trail: who did what, when, and why (the guards that decided).

import { api, ApiError } from '../api.js';
import { h, mount } from '../dom.js';
import { label, lang, t } from '../i18n.js';
import { render } from '../router.js';
import { session } from '../session.js';
import { slaBadge } from '../sla.js';
import { errorBox, facts, page, priorityBadge, show, time, who } from './common.js';

export async function instanceView({ id }) {
  const enc = encodeURIComponent(id);
  let inst;
  try {
    inst = await api(`/instances/${enc}`);
  } catch (e) {
    page(t('inst.title'), errorBox(e));
    return;
  }
  const title = `${label(inst.process_title, inst.process)}${inst.business_key ? ` · ${inst.business_key}` : ''}`;
  const diagramBox = h('div', { class: 'diagram-box' }, h('p', { class: 'muted' }, t('loading')));
  const timelineBox = h('div', { class: 'timeline-box' }, h('p', { class: 'muted' }, t('loading')));

  const status = h('span', { class: `badge status-${inst.status}` }, t(`inst.status.${inst.status}`));
  page(title,
    h('div', { class: 'task-meta' }, status, inst.outcome ? h('span', {}, `${t('inst.outcome')}: ${inst.outcome}`) : null,
      h('span', {}, `${t('inst.started')}: `, time(inst.started_at)),
      inst.ended_at ? h('span', {}, `${t('inst.ended')}: `, time(inst.ended_at)) : null,
      h('span', { class: 'muted' }, `${inst.process} v${inst.version} · ${inst.dealer}`)),
    h('div', { class: 'instance-grid' },
      h('div', { class: 'col' },
        section('now', t('inst.now'), positionList(inst)),
        section('tasks', t('inst.tasks'), taskTable(inst)),
        section('timers', t('inst.timers'), timerList(inst)),
        inst.incidents?.length ? section('incidents', t('inst.incidents'), h('ul', {}, inst.incidents.map((i) => incidentItem(i, inst)))) : null,
        links(inst),
        section('data', t('inst.data'), h('details', {}, h('summary', {}, t('task.data')), facts(Object.entries(inst.data || {}).map(([k, v]) => [k, show(v)]))))),
      h('div', { class: 'col wide' },
        section('diagram', t('inst.diagram'), diagramBox),
        section('timeline', t('inst.timeline'), timelineBox))));

  const [graph, audit] = await Promise.allSettled([loadDiagram(enc), api(`/instances/${enc}/audit`)]);
  const titles = stepTitles(inst, audit.value);
  if (graph.status === 'fulfilled') {
    mount(diagramBox, graph.value);
    for (const g of graph.value.querySelectorAll?.('g[data-step]') || []) {
      const name = g.querySelector('title')?.textContent?.split('\n')[0].replace(/ \(.*\)$/, '');
      if (name && !titles.has(g.dataset.step)) titles.set(g.dataset.step, name);
    }
    scrollToCurrent(graph.value);
  } else {
    mount(diagramBox, errorBox(graph.reason));
  }
  if (audit.status === 'fulfilled') mount(timelineBox, timeline(audit.value, titles));
  else mount(timelineBox, errorBox(audit.reason));
}

/** An incident, with retry and skip for an administrator of the instance's dealer. */
function incidentItem(incident, inst) {
  const me = session.me;
  const mayResolve = me?.admin && me?.organisation?.kind !== 'hq' && me?.organisation?.id === inst.dealer;
  const act = (what) => async (ev) => {
    ev.target.disabled = true;
    try {
      await api(`/incidents/${encodeURIComponent(incident.id)}/${what}`, { method: 'POST' });
      await render();
    } catch (e) {
      ev.target.disabled = false;
      ev.target.after(errorBox(e));
    }
  };
  return h('li', { class: 'incident' }, time(incident.at), ' ', incident.step, ': ', incident.message,
    mayResolve ? h('span', { class: 'incident-actions' },
      h('button', { type: 'button', onclick: act('retry') }, t('inst.retry')),
      h('button', { type: 'button', class: 'secondary', onclick: act('skip') }, t('inst.skip'))) : null);
}

function section(key, heading, ...content) {
  const hid = `sec-${key}`;
  return h('section', { class: `card sec-${key}`, 'aria-labelledby': hid }, h('h2', { id: hid }, heading), content);
}

function positionList(inst) {
  if (!inst.position?.length) return h('p', { class: 'muted' }, inst.status === 'ended' ? t('inst.status.ended') : '—');
  return h('ul', { class: 'position' }, inst.position.map((p) => h('li', {},
    h('strong', {}, label(p.title, p.step)),
    // "task <id>" says nothing the open tasks below do not; other waits (a message, a
    // linked order, a moment) are worth a line.
    p.waiting_for && !p.waiting_for.startsWith('task ') ? h('span', { class: 'muted' }, ` — ${t('inst.waiting', { w: p.waiting_for })}`) : null,
    p.since ? h('span', { class: 'muted' }, ' · ', time(p.since)) : null)));
}

function taskTable(inst) {
  if (!inst.tasks?.length) return h('p', { class: 'muted' }, t('inst.noTasks'));
  return h('div', { class: 'table-wrap' }, h('table', { class: 'tasks compact' },
    h('thead', {}, h('tr', {}, ['col.sla', 'col.task', 'col.due', 'col.who'].map((k) => h('th', { scope: 'col' }, t(k))))),
    h('tbody', {}, inst.tasks.map((task) => h('tr', { dataset: { task: task.id, step: task.step } },
      h('td', {}, slaBadge(task)),
      h('td', {}, h('a', { href: `/tasks/${encodeURIComponent(task.id)}` }, label(task.title, task.step)), ' ', priorityBadge(task.priority)),
      h('td', {}, task.due_at ? time(task.due_at) : h('span', { class: 'muted' }, t('noDue'))),
      h('td', {}, who(task.assignee)))))));
}

function timerList(inst) {
  if (!inst.timers?.length) return h('p', { class: 'muted' }, t('inst.noTimers'));
  return h('ul', { class: 'timers' }, inst.timers.map((tm) => h('li', {}, h('code', {}, tm.def), ' ', t('inst.fires'), ' ', time(tm.fire_at))));
}

function links(inst) {
  const parent = inst.parent ? h('p', {}, `${t('inst.parent')}: `, h('a', { href: `/instances/${encodeURIComponent(inst.parent.id)}` }, inst.parent.id), ` (${inst.parent.step})`) : null;
  const children = inst.children?.length
    ? h('ul', {}, inst.children.map((c) => h('li', {}, h('a', { href: `/instances/${encodeURIComponent(c.id)}` }, `${c.process}`), ` · ${c.step}${c.outcome ? ` · ${c.outcome}` : ''}`)))
    : null;
  if (!parent && !children) return null;
  return section('links', t('inst.links'), parent, children ? [h('h3', {}, t('inst.children')), children] : null);
}

/** The diagram as inline SVG (drawn by the server), or the Mermaid source when the server only
 * offers that. */
async function loadDiagram(enc) {
  const res = await api(`/instances/${enc}/graph`, {
    query: { lang: lang() }, raw: true, headers: { Accept: 'image/svg+xml, application/json;q=0.5' },
  });
  const type = res.headers.get('Content-Type') || '';
  if (type.includes('svg')) return figure(parseSvg(await res.text()));
  const body = type.includes('json') ? await res.json() : { mermaid: await res.text() };
  return h('div', {}, h('p', { class: 'notice' }, t('inst.diagramMissing')),
    h('details', {}, h('summary', {}, 'Mermaid'), h('pre', { class: 'mermaid-source' }, body.mermaid || '')));
}

/** Inlines the server's SVG (so the page's stylesheet themes it and the current step can be
 * scrolled to). It is parsed as XML and anything active is dropped, belt and braces on top of
 * the page's Content-Security-Policy. */
export function parseSvg(text) {
  const doc = new DOMParser().parseFromString(text, 'image/svg+xml');
  if (doc.querySelector('parsererror') || doc.documentElement.nodeName !== 'svg') throw new ApiError(500, { title: 'bad diagram' });
  for (const n of doc.querySelectorAll('script, foreignObject')) n.remove();
  for (const n of doc.querySelectorAll('*')) {
    for (const a of [...n.attributes]) if (a.name.startsWith('on')) n.removeAttribute(a.name);
  }
  return document.importNode(doc.documentElement, true);
}

export function figure(svg) {
  // A scrollable region must be reachable by keyboard to be scrolled without a mouse.
  return h('figure', { class: 'diagram', tabindex: '0', 'aria-label': t('inst.diagram') }, svg);
}

function scrollToCurrent(fig) {
  const current = fig.querySelector?.('.current');
  if (!current) return;
  requestAnimationFrame(() => {
    const box = fig.getBoundingClientRect();
    const node = current.getBoundingClientRect();
    fig.scrollTop += node.top - box.top - box.height / 2 + node.height / 2;
    fig.scrollLeft += node.left - box.left - box.width / 2 + node.width / 2;
  });
}

/** Step id -> title, from everything the page has. */
function stepTitles(inst, audit) {
  const map = new Map();
  for (const p of inst.position || []) map.set(p.step, label(p.title, p.step));
  for (const task of inst.tasks || []) map.set(task.step, label(task.title, task.step));
  for (const e of audit?.entries || []) {
    for (const ev of e.entry?.events || []) {
      if (ev.event === 'task_opened' && ev.title) map.set(ev.step, label(ev.title, ev.step));
    }
  }
  return map;
}

function actorName(actor) {
  if (!actor || typeof actor !== 'object') return '';
  switch (actor.type) {
    case 'user': return actor.role ? `${who(actor.id)} · ${actor.role}` : who(actor.id);
    case 'timer': return t('actor.timer');
    case 'message': return t('actor.message');
    case 'action': return t('actor.action', { a: actor.name });
    default: return t('actor.system');
  }
}

function timeline(audit, titles) {
  const entries = [...(audit.entries || [])].reverse();
  const integrity = audit.verified === false
    ? h('p', { class: 'notice error', role: 'status' }, t('inst.broken', { at: audit.broken || '?' }))
    : h('p', { class: 'muted integrity' }, `✓ ${t('inst.verified')}`);
  return h('div', {}, integrity, h('ol', { class: 'timeline', reversed: true }, entries.map((e) => entry(e, titles))));
}

function entry(e, titles) {
  const kindText = t(`kind.${e.kind}`) === `kind.${e.kind}` ? e.kind.replace(/_/g, ' ') : t(`kind.${e.kind}`);
  const stepTitle = e.step ? titles.get(e.step) || e.step : '';
  const events = Array.isArray(e.entry?.events) ? e.entry.events : [];
  const why = [];
  const notes = [];
  for (const ev of events) {
    if (ev.event === 'decided') {
      const guards = (ev.guards || []).map(([src, val]) => h('li', { class: val ? 'guard true' : 'guard false' },
        h('code', {}, src), ` = ${val ? 'true' : 'false'}`));
      why.push(h('div', { class: 'decision' },
        h('span', { class: 'step-title' }, titles.get(ev.step) || ev.step), ' ',
        h('span', { class: 'muted' }, ev.default ? t('tl.default') : ''), ' ',
        h('strong', {}, t('tl.goes', { to: titles.get(ev.to) || ev.to })),
        guards.length ? h('ul', { class: 'guards' }, guards) : null));
    } else if (ev.event === 'sla_breached') {
      notes.push(h('p', { class: 'breach' }, t('ev.sla_breached', { t: titles.get(ev.step) || ev.step }), ' ', time(ev.due_at)));
    } else if (ev.event === 'task_opened') {
      notes.push(h('p', { class: 'muted' }, t('ev.task_opened', { t: label(ev.title, ev.step) })));
    }
  }
  const diff = e.entry?.diff && typeof e.entry.diff === 'object' ? Object.entries(e.entry.diff) : [];
  return h('li', { class: `tl-entry kind-${e.kind}`, dataset: { kind: e.kind } },
    h('div', { class: 'tl-head' }, time(e.at), ' ', h('strong', {}, kindText), stepTitle ? [' · ', h('span', { class: 'step-title' }, stepTitle)] : null),
    h('div', { class: 'tl-who muted' }, t('tl.by', { who: actorName(typeof e.actor === 'string' ? safeJson(e.actor) : e.actor) })),
    notes,
    why.length ? h('details', { open: e.kind !== 'started' }, h('summary', {}, t('tl.because')), why) : null,
    diff.length ? h('details', {}, h('summary', {}, `${t('tl.changed')} (${diff.length})`),
      h('dl', { class: 'facts diff' }, diff.map(([k, v]) => [h('dt', {}, k), h('dd', {}, `${show(v?.before)} → ${show(v?.after)}`)]))) : null);
}

function safeJson(text) {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}
