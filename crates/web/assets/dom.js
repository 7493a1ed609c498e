// DOM helpers: build elements from data without innerHTML, so text from the server (customer
// names, form answers, guard sources) can never become markup.

/**
 * Creates an element. `attrs` keys: `class`, `text`, `on*` (event listeners), `dataset`,
 * boolean attributes (`hidden: true`), `aria-*`, anything else as an attribute. Falsy
 * attribute values are left out; children may be nodes, strings, arrays, null or false.
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === 'class') el.className = value;
    else if (key === 'text') el.textContent = value;
    else if (key === 'dataset') Object.assign(el.dataset, value);
    else if (key.startsWith('on') && typeof value === 'function') el.addEventListener(key.slice(2), value);
    else if (key === 'value' && 'value' in el) el.value = value;
    else if (key === 'checked' || key === 'selected' || key === 'disabled') el[key] = Boolean(value);
    else el.setAttribute(key, value === true ? '' : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : String(child));
  }
}

/** Replaces every child of `el`. */
export function mount(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

let counter = 0;
/** A document-unique id for label/field pairs. */
export function uid(prefix = 'id') {
  counter += 1;
  return `${prefix}-${counter}`;
}

/** Shows a short message in the live region (read out by screen readers). */
export function toast(message, kind = 'info') {
  const el = document.getElementById('toast');
  if (!el) return;
  el.className = `toast ${kind} visible`;
  el.textContent = message;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => el.classList.remove('visible'), 5000);
}

/** A visually hidden text for screen readers. */
export function srOnly(text) {
  return h('span', { class: 'sr-only', text });
}
