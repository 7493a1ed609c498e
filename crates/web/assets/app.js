// The entry point: restores the session and the language, draws the top bar, and maps the
// client-side routes to their views. Each view module owns one page.

import { api, ApiError, onUnauthorized, setToken, token } from './api.js';
import { h, mount, toast } from './dom.js';
import { lang, onLangChange, setLang, setTimeZone, t } from './i18n.js';
import { fallback, navigate, render, route, start } from './router.js';
import { startTicking } from './sla.js';
import { session } from './session.js';
import { inboxView } from './views/inbox.js';
import { instanceView } from './views/instance.js';
import { loginView } from './views/login.js';
import { managerView } from './views/manager.js';
import { processView } from './views/process.js';
import { taskView } from './views/task.js';

const LANG_KEY = 'sopflow.lang';

function storedLang() {
  try {
    return localStorage.getItem(LANG_KEY);
  } catch {
    return null;
  }
}

function storeLang(value) {
  try {
    localStorage.setItem(LANG_KEY, value);
  } catch {
    // Without storage the server's preference still applies after the next sign-in.
  }
}

/** Loads the signed-in user; answers false when there is no valid session. */
export async function loadMe() {
  if (!token()) return false;
  try {
    const me = await api('/me');
    session.me = me;
    setTimeZone(me.organisation?.time_zone);
    // The language is remembered per user by the server; this browser's last choice is only
    // the fallback for an older server or before sign-in.
    setLang(me.lang || storedLang() || lang());
    storeLang(lang());
    return true;
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) {
      setToken(null);
      session.me = null;
      return false;
    }
    throw e;
  }
}

/** Whether the user sees the manager views in the menu (the API still decides what they read). */
function isManager(me) {
  if (!me) return false;
  // The server says who manages a dealer (its `--manager-roles`); administrators and
  // headquarters read the same views.
  return Boolean(me.manager || me.admin || me.organisation?.kind === 'hq');
}

async function switchLang() {
  const next = lang() === 'zh' ? 'en' : 'zh';
  setLang(next);
  storeLang(next);
  if (session.me) {
    session.me.lang = next;
    api('/me/preferences', { method: 'PUT', body: { lang: next } }).catch(() => {
      // Kept in this browser; the server learns it next time.
    });
  }
}

function drawTopbar() {
  const bar = document.getElementById('topbar');
  const me = session.me;
  if (!me) {
    bar.hidden = false;
    mount(bar,
      h('a', { class: 'brand', href: '/login' }, h('img', { src: document.querySelector('link[rel=icon]').href, alt: '', width: 28, height: 28 }), 'sopflow'),
      h('div', { class: 'spacer' }),
      langButton());
    return;
  }
  const path = window.location.pathname;
  const link = (href, text, active) => h('a', { href, class: active ? 'active' : '', 'aria-current': active ? 'page' : null }, text);
  bar.hidden = false;
  mount(bar,
    h('a', { class: 'brand', href: '/tasks' }, h('img', { src: document.querySelector('link[rel=icon]').href, alt: '', width: 28, height: 28 }), 'sopflow'),
    h('nav', { 'aria-label': t('nav.main') },
      link('/tasks', t('nav.tasks'), path === '/' || path.startsWith('/tasks')),
      isManager(me) ? link('/manager', t('nav.manager'), path.startsWith('/manager')) : null),
    h('div', { class: 'spacer' }),
    h('span', { class: 'who' }, h('strong', {}, me.name || me.id), h('span', { class: 'org' }, me.organisation?.name || '')),
    langButton(),
    h('button', { type: 'button', class: 'secondary', onclick: signOut }, t('nav.signout')));
}

function langButton() {
  const other = lang() === 'zh' ? 'en' : 'zh-Hans';
  return h('button', { type: 'button', class: 'secondary lang', 'aria-label': t('lang.switch.label'), onclick: switchLang },
    h('span', { lang: other }, t('lang.switch')));
}

function signOut() {
  setToken(null);
  session.me = null;
  navigate('/login');
}

/** Wraps a view: signed-in pages send anonymous visitors to the login page first. */
function guarded(view) {
  return async (params, query) => {
    if (!session.me && !(await loadMe())) {
      const next = window.location.pathname + window.location.search;
      return navigate(`/login?next=${encodeURIComponent(next)}`, { replace: true });
    }
    drawTopbar();
    return view(params, query);
  };
}

function notFoundView() {
  drawTopbar();
  const main = document.getElementById('main');
  document.title = 'sopflow';
  mount(main, h('h1', {}, t('err.notFound')), h('p', {}, h('a', { href: '/tasks' }, t('task.back'))));
}

async function main() {
  setLang(storedLang() || (navigator.language?.startsWith('zh') ? 'zh' : 'en'));
  onLangChange(() => {
    drawTopbar();
    render();
  });
  onUnauthorized(() => {
    if (!session.me) return;
    setToken(null);
    session.me = null;
    toast(t('err.session'), 'error');
    navigate(`/login?next=${encodeURIComponent(window.location.pathname)}`, { replace: true });
  });
  route('/', guarded(() => navigate(session.me?.organisation?.kind === 'hq' ? '/manager' : '/tasks', { replace: true })));
  route('/login', async (params, query) => {
    drawTopbar();
    return loginView(query, async (next) => {
      await loadMe();
      navigate(next && next.startsWith('/') && !next.startsWith('//') ? next : '/tasks');
    });
  });
  route('/tasks', guarded(inboxView));
  route('/tasks/:id', guarded(taskView));
  route('/instances/:id', guarded(instanceView));
  route('/manager', guarded(managerView));
  route('/processes/:id', guarded(processView));
  fallback(notFoundView);
  start();
  startTicking();
  await render();
}

main();
