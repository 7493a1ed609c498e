// What the end-to-end tests share: the server's address, a headless Chromium launched from the
// system's binary with a fresh profile, API calls for set-up (starting an order, moving the
// virtual clock), form labels read from the forms themselves, and screenshots for the docs.

import { mkdtempSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
export const repo = resolve(here, '../../../..');

/** The server under test (`scripts/e2e` starts one and sets this). */
export const base = process.env.SOPFLOW_URL || 'http://127.0.0.1:8080';
if (!/^http:\/\/(127\.0\.0\.1|localhost)(:\d+)?$/.test(base)) {
  throw new Error(`SOPFLOW_URL must be a loopback address, not ${base}`);
}

/** Where screenshots go (unset: none are taken). */
const shotsDir = process.env.SOPFLOW_SCREENSHOTS || '';

/** The flags of a headless run on a machine without network, sandbox or GPU. */
const FLAGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--disable-features=Translate,MediaRouter,OptimizationHints', '--lang=en-GB',
];

/** Launches Chromium with a fresh profile; answers `{ context, page, close }`. */
export async function launch() {
  const profile = mkdtempSync(join(tmpdir(), 'sopflow-e2e-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: FLAGS,
    viewport: { width: 1280, height: 800 },
    locale: 'en-GB',
    timezoneId: 'Asia/Shanghai',
  });
  // Nothing leaves the machine: any request to another host fails the test loudly.
  const offsite = [];
  await context.route((url) => !url.href.startsWith(base), (route) => {
    offsite.push(route.request().url());
    return route.abort();
  });
  context.setDefaultTimeout(15000);
  const page = context.pages()[0] || (await context.newPage());
  return {
    context,
    page,
    offsite,
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** Calls the API with a bearer token; answers the parsed body, throws on a non-2xx answer. */
export async function api(token, method, path, body) {
  const res = await fetch(`${base}/api/v1${path}`, {
    method,
    headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json', Accept: 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

/** Logs in a demo user through the API (password `demo`) and answers its token. */
export async function login(user, organisation = user.split('.')[0]) {
  const res = await fetch(`${base}/api/v1/auth/login`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ organisation, username: user, password: 'demo' }),
  });
  if (!res.ok) throw new Error(`login ${user}: ${res.status} ${await res.text()}`);
  return (await res.json()).token;
}

const forms = new Map();
/** A field's label in a language, read from `schemas/forms/<form>.json` (`x-title`). */
export function labelOf(form, pointer, lang = 'en') {
  if (!forms.has(form)) forms.set(form, JSON.parse(readFileSync(join(repo, 'schemas/forms', `${form}.json`), 'utf8')));
  let node = forms.get(form);
  for (const key of pointer.split('/').filter(Boolean)) node = key === '*' ? node.items : node.properties[key];
  return node['x-title']?.[lang] || node.title;
}

/** Saves a PNG of the page for the docs (1280 x 800, the viewport). */
export async function screenshot(page, name) {
  if (!shotsDir) return;
  mkdirSync(shotsDir, { recursive: true });
  // The top of the page is what a person sees first.
  await page.evaluate(() => window.scrollTo(0, 0));
  // The caret blinks and animations run: freeze both, so the image only changes with the UI.
  await page.screenshot({ path: join(shotsDir, `${name}.png`), animations: 'disabled', caret: 'hide' });
}
