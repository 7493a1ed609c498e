// The task page: the task's form rendered from its JSON Schema, checked in the browser and then
// by the server (whose field errors are shown at the fields), with the order's context beside
// it: customer, vehicle, and the steps already done.

import { api, ApiError } from '../api.js';
import { h, toast } from '../dom.js';
import { label, lang, t } from '../i18n.js';
import { renderForm } from '../form.js';
import { navigate } from '../router.js';
import { isMe, session } from '../session.js';
import { slaBadge } from '../sla.js';
import { describeError, errorBox, facts, page, priorityBadge, show, time, who } from './common.js';

/** Instance data worth showing first, with their names. */
const CONTEXT_FIELDS = {
  order_no: { zh: '工單號', en: 'Order number' },
  customer_name: { zh: '客戶', en: 'Customer' },
  phone: { zh: '電話', en: 'Phone' },
  plate_no: { zh: '車牌', en: 'Plate' },
  vin: { zh: 'VIN', en: 'VIN' },
  model: { zh: '車型', en: 'Model' },
  odometer_km: { zh: '里程（公里）', en: 'Odometer (km)' },
  channel: { zh: '來源', en: 'Channel' },
  promised_at: { zh: '承諾交車', en: 'Promised for' },
};

export async function taskView({ id }) {
  let detail;
  try {
    detail = await api(`/tasks/${encodeURIComponent(id)}`);
  } catch (e) {
    page(t('task.context'), e instanceof ApiError && e.status === 404 ? h('div', { class: 'notice', role: 'status' }, t('task.gone')) : errorBox(e),
      h('p', {}, h('a', { href: '/tasks' }, t('task.back'))));
    return;
  }
  const task = detail.task;
  const title = label(task.title, task.step);
  const schema = detail.form_schema && typeof detail.form_schema === 'object' ? detail.form_schema : null;
  const hasFields = schema && schema.properties && Object.keys(schema.properties).length > 0;
  const othersTask = task.assignee && !isMe(task.assignee);
  const canAct = detail.can_act !== false && !othersTask;

  const form = hasFields ? renderForm(schema) : null;
  const submit = h('button', { type: 'submit', class: 'primary', disabled: !canAct }, t('task.submit'));
  const formEl = h('form', {
    class: 'task-form card', novalidate: true, 'aria-labelledby': 'form-title',
    onsubmit: async (e) => {
      e.preventDefault();
      if (!canAct) return;
      let value = {};
      if (form) {
        form.clearErrors();
        const read = form.read();
        if (read.errors.length) {
          form.showErrors(read.errors);
          return;
        }
        value = read.value;
      }
      submit.disabled = true;
      submit.textContent = t('task.submitting');
      try {
        if (!task.assignee) {
          // Completing an unclaimed task claims it first, so two people cannot both work on it.
          await api(`/tasks/${encodeURIComponent(task.id)}/claim`, { method: 'POST' });
          task.assignee = session.me?.id;
        }
        await api(`/tasks/${encodeURIComponent(task.id)}/complete`, { method: 'POST', body: { form: value } });
        toast(t('task.completed'), 'success');
        navigate('/tasks');
      } catch (err) {
        if (err instanceof ApiError && err.status === 422 && err.errors.length && form) {
          form.showErrors(err.errors, { fromServer: true });
        } else if (form) {
          form.showErrors([{ path: '', message: describeError(err) }]);
        } else {
          toast(describeError(err), 'error');
        }
      } finally {
        submit.disabled = !canAct;
        submit.textContent = t('task.submit');
      }
    },
  },
  h('h2', { id: 'form-title' }, schema ? label(schema['x-title'], schema.title || title) : title),
  !canAct ? h('p', { class: 'notice', role: 'status' }, othersTask ? t('task.claimFirst') : t('task.readonly')) : null,
  form ? form.el : h('p', { class: 'muted' }, t('task.noForm')),
  h('div', { class: 'actions sticky' }, submit));

  const claimButton = !task.assignee && canAct
    ? h('button', { type: 'button', class: 'secondary small', onclick: () => act('claim') }, t('claim'))
    : isMe(task.assignee) ? h('button', { type: 'button', class: 'secondary small', onclick: () => act('unclaim') }, t('unclaim')) : null;

  async function act(what) {
    try {
      await api(`/tasks/${encodeURIComponent(task.id)}/${what}`, { method: 'POST' });
      toast(t(what === 'claim' ? 'claimed' : 'unclaimed'));
      taskView({ id });
    } catch (e) {
      toast(describeError(e), 'error');
    }
  }

  const meta = h('div', { class: 'task-meta' },
    slaBadge(task), priorityBadge(task.priority),
    h('span', {}, label(task.process_title, task.process)),
    task.due_at ? h('span', {}, `${t('col.due')}: `, time(task.due_at)) : null,
    h('span', {}, `${t('col.who')}: ${who(task.assignee)}`),
    h('span', { class: 'muted task-roles' }, `${t('task.roles')}: ${roleNames(task).join(lang() === 'zh' ? '、' : ', ')}`),
    claimButton);

  page(title,
    h('p', {}, h('a', { href: '/tasks', class: 'back' }, `← ${t('task.back')}`)),
    meta,
    h('div', { class: 'two-col' }, formEl, contextPanel(task, detail)));
}

/** The task's candidate roles by name: the server's catalogue names (`role_names`), else the
 * caller's own roles, else the id made readable. */
function roleNames(task) {
  const named = new Map((task.role_names || []).map((r) => [r.id, r]));
  return task.roles.map((id) => {
    const r = named.get(id) || (session.me?.roles || []).find((x) => x.id === id);
    return r ? label(r, id) : id.charAt(0).toUpperCase() + id.slice(1).replace(/_/g, ' ');
  });
}

function contextPanel(task, detail) {
  const data = detail.data || {};
  const pairs = [[t('col.key'), task.business_key || '']];
  for (const [key, name] of Object.entries(CONTEXT_FIELDS)) {
    if (data[key] !== undefined && data[key] !== '') pairs.push([label(name), key === 'promised_at' ? time(data[key]) : show(data[key])]);
  }
  const done = Array.isArray(detail.done) ? detail.done : [];
  const rest = Object.entries(data).filter(([k]) => !(k in CONTEXT_FIELDS));
  return h('aside', { class: 'context card', 'aria-labelledby': 'context-title' },
    h('h2', { id: 'context-title' }, t('task.context')),
    facts(pairs),
    h('p', {}, h('a', { href: `/instances/${encodeURIComponent(task.instance)}` }, `${t('task.instance')} →`)),
    h('h3', {}, t('task.done')),
    done.length
      ? h('ol', { class: 'done-steps' }, done.map((d) => h('li', {},
        h('span', { class: 'step-title' }, label(d.title, d.step)),
        h('span', { class: 'muted' }, [d.by ? who(d.by) : null, d.at ? time(d.at) : null].filter(Boolean).flatMap((x, i) => (i ? [' · ', x] : [x]))))))
      : h('p', { class: 'muted' }, t('task.noneDone')),
    rest.length ? h('details', {}, h('summary', {}, t('task.data')), facts(rest.map(([k, v]) => [k, show(v)]))) : null);
}
