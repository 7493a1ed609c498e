// The sign-in page: organisation + user name + password (POST /api/v1/auth/login), or an
// access token pasted from `sopflow token create`. The token is kept in localStorage so a
// workshop tablet stays signed in across reloads.

import { api, ApiError, setToken } from '../api.js';
import { h, uid } from '../dom.js';
import { t } from '../i18n.js';
import { describeError, page } from './common.js';

const ORG_KEY = 'sopflow.organisation';

function field(labelText, attrs) {
  const id = uid('login');
  return h('div', { class: 'field' }, h('label', { for: id }, labelText), h('input', { id, ...attrs }));
}

export function loginView(query, onSignedIn) {
  let method = 'password';
  const status = h('div', { class: 'notice error', role: 'alert', hidden: true });
  const next = query.get('next') || '/tasks';

  let lastOrg = '';
  try {
    lastOrg = localStorage.getItem(ORG_KEY) || '';
  } catch {
    lastOrg = '';
  }
  const org = field(t('login.organisation'), { name: 'organisation', autocomplete: 'organization', required: true, value: lastOrg });
  const user = field(t('login.username'), { name: 'username', autocomplete: 'username', required: true, autocapitalize: 'none' });
  const pass = field(t('login.password'), { name: 'password', type: 'password', autocomplete: 'current-password', required: true });
  const tok = field(t('login.token'), { name: 'token', autocomplete: 'off', required: true, spellcheck: 'false' });
  const passwordFields = h('div', { class: 'fields' }, org, user, pass);
  const tokenFields = h('div', { class: 'fields', hidden: true }, tok);
  for (const input of tokenFields.querySelectorAll('input')) input.disabled = true;

  const choose = (value) => {
    method = value;
    passwordFields.hidden = value !== 'password';
    tokenFields.hidden = value !== 'token';
    for (const input of passwordFields.querySelectorAll('input')) input.disabled = value !== 'password';
    for (const input of tokenFields.querySelectorAll('input')) input.disabled = value !== 'token';
  };
  const radio = (value, text) => {
    const id = uid('method');
    return h('div', { class: 'check' },
      h('input', { type: 'radio', name: 'method', id, value, checked: value === method, onchange: () => choose(value) }),
      h('label', { for: id }, text));
  };

  const submit = h('button', { type: 'submit', class: 'primary' }, t('login.submit'));
  const form = h('form', {
    class: 'card login', novalidate: true,
    onsubmit: async (e) => {
      e.preventDefault();
      status.hidden = true;
      const missing = [...form.querySelectorAll('input:not([disabled])[required]')].find((i) => !i.value.trim());
      if (missing) {
        missing.setAttribute('aria-invalid', 'true');
        missing.focus();
        return;
      }
      submit.disabled = true;
      try {
        if (method === 'password') {
          const organisation = org.querySelector('input').value.trim();
          const answer = await api('/auth/login', {
            method: 'POST',
            body: { organisation, username: user.querySelector('input').value.trim(), password: pass.querySelector('input').value },
          });
          setToken(answer.token);
          try {
            localStorage.setItem(ORG_KEY, organisation);
          } catch {
            // Not remembered; typed again next time.
          }
        } else {
          setToken(tok.querySelector('input').value.trim());
          await api('/me');
        }
        await onSignedIn(next);
      } catch (err) {
        setToken(null);
        status.hidden = false;
        if (err instanceof ApiError && (err.status === 401 || err.status === 422)) {
          status.textContent = method === 'password' ? t('login.failed') : t('login.badtoken');
        } else {
          status.textContent = describeError(err);
        }
        status.focus?.();
      } finally {
        submit.disabled = false;
      }
    },
  },
  h('p', { class: 'muted' }, t('login.intro')),
  h('fieldset', { class: 'method' }, h('legend', {}, t('login.method')),
    h('div', { class: 'choice-list inline' }, radio('password', t('login.byPassword')), radio('token', t('login.byToken')))),
  passwordFields, tokenFields, status, h('div', { class: 'actions' }, submit));

  page(t('login.title'), form);
}
