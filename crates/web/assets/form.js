// The task form renderer: a form's JSON Schema becomes labelled HTML controls, the answers are
// read back as JSON, checked in the browser, and the server's field errors (JSON pointers such
// as `/lines/0/price`) are shown next to the matching control.
//
// What the browser checks is what each field says about itself: required, type, enum, const,
// minimum/maximum, minLength/maxLength, pattern, minItems/maxItems. Rules that tie fields
// together (`if`/`then`, `allOf`, `dependentRequired`) are left to the server, which validates
// every submission against the same schema anyway; its answer is shown the same way.
//
// Every control is built with a fixed JSON pointer; adding or removing a row of a list rebuilds
// that list from the values read so far, so pointers never go stale.

import { h, uid } from './dom.js';
import { label, serverMessage, t } from './i18n.js';
import { fromWallTime, toRfc3339, toWallTime } from './time.js';

/**
 * Renders a form. Answers `{ el, read, showErrors, clearErrors }`:
 * - `read()` -> `{ value, errors }`, the JSON to submit and the browser's findings;
 * - `showErrors(errors)` marks the fields (`[{path, message}]`), fills the summary and moves
 *   focus to the first error;
 * - `clearErrors()` removes every mark.
 */
export function renderForm(schema, { value = {} } = {}) {
  const summary = h('div', { class: 'error-summary', tabindex: '-1', hidden: true });
  const root = objectControl(normalise(schema), '', value || {}, { mode: 'root', required: true });
  const el = h('div', { class: 'schema-form' }, summary, root.el);

  function clearErrors() {
    summary.hidden = true;
    summary.replaceChildren();
    root.show(new Map(), []);
  }

  function showErrors(errors, { fromServer = false } = {}) {
    const byPath = new Map();
    for (const e of errors) {
      const path = e.path === '/' ? '' : e.path || '';
      if (!byPath.has(path)) byPath.set(path, []);
      byPath.get(path).push(fromServer ? serverMessage(e.message) : e.message);
    }
    const shown = [];
    root.show(byPath, shown);
    const shownPaths = new Set(shown.map((s) => s.path));
    const items = [];
    for (const s of shown) {
      for (const m of byPath.get(s.path)) {
        items.push(h('li', {}, h('a', { href: `#${s.target.id}`, onclick: (ev) => { ev.preventDefault(); s.target.focus(); } }, `${s.label}: ${m}`)));
      }
    }
    for (const [path, messages] of byPath) {
      if (shownPaths.has(path)) continue;
      for (const m of messages) items.push(h('li', {}, path ? `${path}: ${m}` : m));
    }
    const n = items.length;
    summary.replaceChildren(...[
      fromServer ? h('p', { class: 'server-said', text: t('form.serverSaid') }) : null,
      h('p', { class: 'summary-title', text: n === 1 ? t('form.error1') : t('form.errors', { n }) }),
      h('ul', {}, items),
    ].filter(Boolean));
    summary.hidden = n === 0;
    summary.setAttribute('role', 'alert');
    if (shown.length) shown[0].target.focus();
    else if (n) summary.focus();
  }

  function read() {
    const errors = [];
    const v = root.read(errors);
    return { value: v === undefined ? {} : v, errors };
  }

  return { el, read, showErrors, clearErrors };
}

/** The label of a property: `x-title` in the current language, else `title`, else the key. */
function titleOf(schema, key) {
  return label(schema['x-title'], '') || schema.title || humanise(key);
}

function descriptionOf(schema) {
  return label(schema['x-description'], '') || schema.description || '';
}

function humanise(key) {
  const s = String(key ?? '').replace(/_/g, ' ');
  return s.charAt(0).toUpperCase() + s.slice(1);
}

/** The schema's single type (`["string", "null"]` reads as `string`). */
function typeOf(schema) {
  const ty = schema.type;
  if (Array.isArray(ty)) return ty.find((x) => x !== 'null') || 'string';
  if (ty) return ty;
  if (schema.properties) return 'object';
  if (schema.items) return 'array';
  if (schema.enum) return typeof schema.enum[0] === 'number' ? 'number' : 'string';
  if (typeof schema.const === 'boolean') return 'boolean';
  return 'string';
}

function normalise(schema) {
  return schema && typeof schema === 'object' ? schema : {};
}

function isScalar(schema) {
  const ty = typeOf(schema);
  return ty !== 'object' && ty !== 'array';
}

/** The child pointer of `path` for a property or index (RFC 6901 escaping). */
function child(path, key) {
  return `${path}/${String(key).replace(/~/g, '~0').replace(/\//g, '~1')}`;
}

/** Shows `messages` in an error element and marks `input` for assistive technology. */
function mark(input, errorEl, hintId, messages) {
  const has = messages && messages.length > 0;
  errorEl.hidden = !has;
  errorEl.textContent = has ? messages.join('; ') : '';
  if (has) input.setAttribute('aria-invalid', 'true');
  else input.removeAttribute('aria-invalid');
  const ids = [hintId, has ? errorEl.id : null].filter(Boolean).join(' ');
  if (ids) input.setAttribute('aria-describedby', ids);
  else input.removeAttribute('aria-describedby');
}

function requiredMark() {
  return h('span', { class: 'req', 'aria-hidden': 'true', title: t('form.required') }, '*');
}

// ---------------------------------------------------------------------------------------------
// Objects: the whole form, a nested fieldset, a card of a list, or a row of a table.

function objectControl(schema, path, value, { mode, required, title, rowLabel }) {
  const props = schema.properties || {};
  const req = new Set(schema.required || []);
  const children = [];
  for (const [key, sub] of Object.entries(props)) {
    const s = normalise(sub);
    const childValue = value && typeof value === 'object' ? value[key] : undefined;
    children.push({
      key,
      ctl: control(s, child(path, key), childValue, {
        key,
        required: req.has(key),
        mode: mode === 'row' ? 'cell' : 'field',
        rowLabel,
      }),
    });
  }
  let el;
  if (mode === 'row') {
    el = h('tr', {}, children.map((c) => h('td', {}, c.ctl.el)));
  } else if (mode === 'root') {
    el = h('div', { class: 'fields' }, children.map((c) => c.ctl.el));
  } else {
    el = h('fieldset', { class: mode === 'card' ? 'card-item' : 'group', dataset: { path } },
      h('legend', {}, title, required && mode !== 'card' ? requiredMark() : null),
      h('div', { class: 'fields' }, children.map((c) => c.ctl.el)));
  }
  const errorEl = h('p', { class: 'field-error', id: uid('err'), hidden: true });
  if (mode !== 'row' && mode !== 'root') el.append(errorEl);
  if (mode !== 'row') el.tabIndex = -1;

  return {
    el,
    peek() {
      const out = {};
      for (const c of children) {
        const v = c.ctl.peek();
        if (v !== undefined) out[c.key] = v;
      }
      return out;
    },
    read(errors) {
      const out = {};
      for (const c of children) {
        const v = c.ctl.read(errors);
        if (v !== undefined) out[c.key] = v;
      }
      if (mode === 'group' && !required && Object.keys(out).length === 0) return undefined;
      return out;
    },
    show(byPath, shown) {
      const own = byPath.get(path);
      if (mode !== 'row' && mode !== 'root') {
        errorEl.hidden = !own;
        errorEl.textContent = own ? own.join('; ') : '';
        if (own) shown.push({ path, target: el, label: title });
      }
      for (const c of children) c.ctl.show(byPath, shown);
    },
  };
}

// ---------------------------------------------------------------------------------------------

function control(schema, path, value, opts) {
  const ty = typeOf(schema);
  if (ty === 'object' && schema.properties) {
    return objectControl(schema, path, value, { mode: 'group', required: opts.required, title: titleOf(schema, opts.key) });
  }
  if (ty === 'array') {
    const items = normalise(schema.items);
    if (items.enum && isScalar(items)) return multiChoice(schema, items, path, value, opts);
    return listControl(schema, items, path, value, opts);
  }
  return leaf(schema, path, value, opts);
}

/** A scalar: text, number, date and time, a choice, or a checkbox. */
function leaf(schema, path, value, { key, required, mode, rowLabel }) {
  const ty = typeOf(schema);
  const title = titleOf(schema, key);
  const id = uid('fld');
  const hint = descriptionOf(schema);
  const hintId = hint && mode !== 'cell' ? uid('hint') : null;
  const errorEl = h('p', { class: 'field-error', id: uid('err'), hidden: true });
  const initial = value !== undefined ? value : schema.default;
  const mustBeTrue = schema.const === true;
  const isRequired = required || mustBeTrue;
  const common = {
    id,
    name: path,
    dataset: { path },
    required: isRequired && ty !== 'boolean',
    'aria-label': mode === 'cell' ? `${title} (${rowLabel})` : null,
  };
  let input;
  let kind;
  if (ty === 'boolean') {
    kind = 'boolean';
    input = h('input', { ...common, type: 'checkbox', checked: initial === true, required: mustBeTrue });
  } else if (schema.enum) {
    kind = 'enum';
    const titles = schema['x-enum-titles'];
    const names = titles ? (label(titles) || []) : [];
    input = h('select', common,
      h('option', { value: '' }, t('form.choose')),
      schema.enum.map((v, i) => h('option', { value: String(v), selected: initial !== undefined && String(initial) === String(v) }, names[i] || humanise(v))));
  } else if (ty === 'integer' || ty === 'number') {
    kind = ty;
    input = h('input', {
      ...common,
      type: 'number',
      inputmode: ty === 'integer' ? 'numeric' : 'decimal',
      step: ty === 'integer' ? '1' : 'any',
      min: schema.minimum ?? null,
      max: schema.maximum ?? null,
      value: initial !== undefined && initial !== null ? String(initial) : '',
    });
  } else if (schema.format === 'date-time') {
    kind = 'date-time';
    input = h('input', { ...common, type: 'datetime-local', value: initial ? toWallTime(initial) : '' });
  } else if (schema.format === 'date' || schema.format === 'time') {
    kind = schema.format;
    input = h('input', { ...common, type: schema.format, value: initial || '' });
  } else if (isLongText(schema, key)) {
    kind = 'string';
    input = h('textarea', { ...common, rows: mode === 'cell' ? 2 : 3, maxlength: schema.maxLength ?? null }, initial ?? '');
  } else {
    kind = 'string';
    input = h('input', {
      ...common,
      type: schema.format === 'email' ? 'email' : 'text',
      autocomplete: 'off',
      maxlength: schema.maxLength ?? null,
      value: initial ?? '',
    });
  }
  if (hintId) input.setAttribute('aria-describedby', hintId);

  let el;
  // The star sits beside the label, not in it, so the label's text is just the field's name;
  // assistive technology learns "required" from the control itself.
  const labelEl = h('span', { class: 'label-row' }, h('label', { for: id }, title), isRequired ? requiredMark() : null);
  const hintEl = hintId ? h('p', { class: 'hint', id: hintId, text: hint }) : null;
  if (mode === 'cell') {
    el = h('div', { class: `cell ${kind === 'boolean' ? 'check' : ''}` }, input, errorEl);
  } else if (kind === 'boolean') {
    el = h('div', { class: 'field check', dataset: { path } }, input, labelEl, hintEl, errorEl);
  } else {
    el = h('div', { class: `field ${kind === 'string' && input.tagName === 'TEXTAREA' ? 'wide' : ''}`, dataset: { path } }, labelEl, input, hintEl, errorEl);
  }

  function peek() {
    if (kind === 'boolean') return input.checked;
    const raw = input.value.trim();
    if (raw === '') return undefined;
    if (kind === 'integer' || kind === 'number') return Number(raw);
    if (kind === 'date-time') {
      const d = fromWallTime(raw);
      return d ? toRfc3339(d) : raw;
    }
    if (kind === 'enum') {
      const match = schema.enum.find((v) => String(v) === raw);
      return match === undefined ? raw : match;
    }
    return input.tagName === 'TEXTAREA' ? input.value : raw;
  }

  function read(errors) {
    const v = peek();
    const fail = (key2, params) => errors.push({ path, message: t(key2, params) });
    if (kind === 'boolean') {
      if (mustBeTrue && v !== true) fail('v.checked');
      return v;
    }
    if (v === undefined) {
      if (required) fail('v.required');
      return undefined;
    }
    if (kind === 'integer' || kind === 'number') {
      if (!Number.isFinite(v) || input.validity.badInput) return fail('v.number'), undefined;
      if (kind === 'integer' && !Number.isInteger(v)) fail('v.integer');
      if (schema.minimum !== undefined && v < schema.minimum) fail('v.min', { n: schema.minimum });
      if (schema.maximum !== undefined && v > schema.maximum) fail('v.max', { n: schema.maximum });
      if (schema.exclusiveMinimum !== undefined && v <= schema.exclusiveMinimum) fail('v.min', { n: schema.exclusiveMinimum });
      if (schema.exclusiveMaximum !== undefined && v >= schema.exclusiveMaximum) fail('v.max', { n: schema.exclusiveMaximum });
      return v;
    }
    if (kind === 'date-time' && !/[+-]\d{2}:\d{2}$|Z$/.test(v)) fail('v.datetime');
    if (kind === 'string') {
      const n = [...v].length;
      if (schema.minLength !== undefined && n < schema.minLength) fail('v.minLength', { n: schema.minLength });
      if (schema.maxLength !== undefined && n > schema.maxLength) fail('v.maxLength', { n: schema.maxLength });
      if (schema.pattern) {
        try {
          if (!new RegExp(schema.pattern, 'u').test(v)) fail('v.pattern');
        } catch {
          // A pattern JavaScript cannot read is left to the server.
        }
      }
    }
    if (schema.enum && !schema.enum.some((x) => x === v)) fail('v.enum');
    return v;
  }

  return {
    el,
    peek,
    read,
    show(byPath, shown) {
      const messages = byPath.get(path);
      mark(input, errorEl, hintId, messages);
      if (messages) shown.push({ path, target: input, label: mode === 'cell' ? `${title} (${rowLabel})` : title });
    },
  };
}

/** Free text that deserves more than a line. */
function isLongText(schema, key) {
  if (schema['x-widget'] === 'textarea') return true;
  if (schema.maxLength !== undefined && schema.maxLength <= 80) return false;
  return /(description|notes?|remarks?|comments?|reason|explanation|symptoms|results)$/.test(String(key));
}

/** A list of choices (`type: array` of `enum`): a group of checkboxes. */
function multiChoice(schema, items, path, value, { key, required }) {
  const title = titleOf(schema, key);
  const names = items['x-enum-titles'] ? (label(items['x-enum-titles']) || []) : [];
  const chosen = new Set(Array.isArray(value) ? value.map(String) : []);
  const boxes = items.enum.map((v, i) => {
    const id = uid('opt');
    const box = h('input', { type: 'checkbox', id, value: String(v), checked: chosen.has(String(v)) });
    return { v, box, el: h('div', { class: 'check' }, box, h('label', { for: id }, names[i] || humanise(v))) };
  });
  const errorEl = h('p', { class: 'field-error', id: uid('err'), hidden: true });
  const el = h('fieldset', { class: 'group choices', dataset: { path }, tabindex: '-1' },
    h('legend', {}, title, required ? requiredMark() : null),
    h('div', { class: 'choice-list' }, boxes.map((b) => b.el)), errorEl);
  const peek = () => {
    const out = boxes.filter((b) => b.box.checked).map((b) => b.v);
    return out.length || required ? out : undefined;
  };
  return {
    el,
    peek,
    read(errors) {
      const v = peek();
      const n = v ? v.length : 0;
      if (schema.minItems !== undefined && n < schema.minItems && (required || n > 0)) {
        errors.push({ path, message: t('v.minItems', { n: schema.minItems }) });
      }
      return v;
    },
    show(byPath, shown) {
      const messages = byPath.get(path);
      errorEl.hidden = !messages;
      errorEl.textContent = messages ? messages.join('; ') : '';
      if (messages) shown.push({ path, target: boxes[0]?.box || el, label: title });
    },
  };
}

/**
 * A list of rows. Rows of scalars (or records of scalars) are a table, one column per field;
 * rows holding lists of their own (a quotation line with its parts) are cards.
 */
function listControl(schema, items, path, value, { key, required }) {
  const title = titleOf(schema, key);
  const scalarItems = isScalar(items);
  const props = items.properties || {};
  const asTable = scalarItems || Object.values(props).every((p) => isScalar(normalise(p)));
  const errorEl = h('p', { class: 'field-error', id: uid('err'), hidden: true });
  const body = h('div', { class: 'rows' });
  const addBtn = h('button', { type: 'button', class: 'secondary add', 'aria-label': t('form.addRow', { t: title }) }, `+ ${t('form.add')}`);
  const el = h('fieldset', { class: `group list ${asTable ? 'as-table' : 'as-cards'}`, dataset: { path }, tabindex: '-1' },
    h('legend', {}, title, required || schema.minItems ? requiredMark() : null),
    body, addBtn, errorEl);
  let rows = [];

  function build(values) {
    rows = values.map((v, i) => {
      const rowPath = child(path, i);
      const rowLabel = t('form.row', { n: i + 1 });
      const remove = h('button', {
        type: 'button', class: 'secondary remove', 'aria-label': t('form.removeRow', { n: i + 1, t: title }),
        onclick: () => {
          const current = rows.map((r) => r.ctl.peek());
          current.splice(i, 1);
          build(current);
          (rows[Math.min(i, rows.length - 1)]?.focusEl || addBtn).focus();
        },
      }, t('form.remove'));
      let ctl;
      if (scalarItems) {
        ctl = leaf(items, rowPath, v, { key: title, required: true, mode: 'cell', rowLabel });
        ctl.row = h('tr', {}, h('td', {}, ctl.el), h('td', { class: 'row-actions' }, remove));
      } else if (asTable) {
        ctl = objectControl(items, rowPath, v ?? {}, { mode: 'row', required: true, rowLabel });
        ctl.row = ctl.el;
        ctl.row.append(h('td', { class: 'row-actions' }, remove));
      } else {
        ctl = objectControl(items, rowPath, v ?? {}, { mode: 'card', required: true, title: t('form.item', { t: title, n: i + 1 }) });
        ctl.row = ctl.el;
        ctl.row.append(h('div', { class: 'row-actions' }, remove));
      }
      return { ctl, focusEl: ctl.row.querySelector('input, select, textarea') };
    });
    if (asTable) {
      const headers = scalarItems
        ? [h('th', { scope: 'col' }, title)]
        : Object.entries(props).map(([k, p]) => h('th', { scope: 'col' }, titleOf(normalise(p), k),
          (items.required || []).includes(k) || normalise(p).const === true ? requiredMark() : null));
      body.replaceChildren(rows.length
        ? h('div', { class: 'table-wrap' }, h('table', { class: 'rows-table' },
          h('thead', {}, h('tr', {}, headers, h('th', { scope: 'col' }, h('span', { class: 'sr-only' }, t('form.actions'))))),
          h('tbody', {}, rows.map((r) => r.ctl.row))))
        : h('p', { class: 'muted', text: t('form.noRows') }));
    } else {
      body.replaceChildren(...(rows.length ? rows.map((r) => r.ctl.row) : [h('p', { class: 'muted', text: t('form.noRows') })]));
    }
  }

  addBtn.addEventListener('click', () => {
    const current = rows.map((r) => r.ctl.peek());
    current.push(undefined);
    build(current);
    rows[rows.length - 1].focusEl?.focus();
  });

  const initial = Array.isArray(value) ? value : [];
  const minRows = Math.max(initial.length, required ? schema.minItems || 0 : 0);
  build(Array.from({ length: minRows }, (_, i) => initial[i]));

  return {
    el,
    peek() {
      return rows.map((r) => r.ctl.peek());
    },
    read(errors) {
      const out = rows.map((r) => r.ctl.read(errors));
      if (out.length === 0 && !required) return undefined;
      if (schema.minItems !== undefined && out.length < schema.minItems) {
        errors.push({ path, message: t('v.minItems', { n: schema.minItems }) });
      }
      if (schema.maxItems !== undefined && out.length > schema.maxItems) {
        errors.push({ path, message: t('v.maxItems', { n: schema.maxItems }) });
      }
      return out;
    },
    show(byPath, shown) {
      const messages = byPath.get(path);
      errorEl.hidden = !messages;
      errorEl.textContent = messages ? messages.join('; ') : '';
      if (messages) {
        el.setAttribute('aria-describedby', errorEl.id);
        shown.push({ path, target: rows[0]?.focusEl || addBtn, label: title });
      } else {
        el.removeAttribute('aria-describedby');
      }
      for (const r of rows) r.ctl.show(byPath, shown);
    },
  };
}
