// The web inbox end to end, in headless Chromium against a real `sopflow serve --demo
// --virtual-clock`: the demo service advisor signs in, takes a service order from greeting to
// quotation and authorisation through the forms (a browser check and a server check shown at
// the fields on the way), and the demo manager follows the order on its page, where the SLA
// badge turns overdue once the virtual clock passes the due time. Screenshots of the main pages
// in English and Chinese are taken on the way.
//
// The steps share one browser and run in order; each waits for what it needs to see, with the
// default deadline of 15 s per wait, and never sleeps.

import assert from 'node:assert/strict';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { api, base, labelOf, launch, login, screenshot } from '../lib/harness.mjs';

const PLATE = '粤B·E2E01';
const ORDER = 'RO-E2E-0001';
/** Monday 09:00 in Shanghai: inside the workshop's opening hours, so SLAs count from now. */
const MONDAY_9AM = '2026-11-30T01:00:00Z';

let browser;
let page;
let broken = false;

/** A step of the story: once one fails, the later ones are skipped (they depend on it)
 * instead of each waiting out its deadline. */
function step(name, fn) {
  it(name, async (t) => {
    if (broken) return t.skip('an earlier step failed');
    try {
      await fn();
    } catch (e) {
      broken = true;
      // What the page showed when the step failed, for whoever reads the log.
      const shot = join(tmpdir(), 'sopflow-e2e-failure.png');
      await page?.screenshot({ path: shot, fullPage: true }).catch(() => {});
      console.error(`the page at the failure: ${shot} (${page?.url()})`);
      throw e;
    }
  });
}

/** The inbox row of a task of the order, by its English or Chinese title. */
function row(title) {
  return page.locator('table.tasks tbody tr').filter({ hasText: PLATE }).filter({ hasText: title });
}

async function openTask(title) {
  await page.goto(`${base}/tasks?q=${encodeURIComponent(PLATE)}`);
  await row(title).getByRole('link', { name: title }).click();
  await page.getByRole('heading', { level: 1, name: title }).waitFor();
}

async function submitAndReturn(lang = 'en') {
  await page.getByRole('button', { name: lang === 'en' ? 'Complete the task' : '完成任務' }).click();
  await page.waitForURL((url) => url.pathname === '/tasks');
  await page.locator('#toast.visible').waitFor();
}

function field(form, pointer, lang = 'en') {
  return page.getByLabel(labelOf(form, pointer, lang), { exact: true });
}

async function signIn(user) {
  await page.goto(`${base}/tasks`);
  await page.waitForURL((url) => url.pathname === '/login');
  const en = (await page.locator('html').getAttribute('lang')) === 'en';
  await page.getByLabel(en ? 'Organisation' : '組織', { exact: true }).fill('demo');
  await page.getByLabel(en ? 'User name' : '使用者名稱', { exact: true }).fill(user);
  await page.getByLabel(en ? 'Password' : '密碼', { exact: true }).fill('demo');
  await page.getByRole('button', { name: en ? 'Sign in' : '登入' }).click();
  await page.waitForURL((url) => url.pathname === '/tasks');
}

async function signOut() {
  await page.locator('.topbar').getByRole('button', { name: /Sign out|登出/ }).click();
  await page.waitForURL((url) => url.pathname === '/login');
}

async function switchLanguage(to) {
  await page.locator('.topbar button.lang').click();
  await page.locator(`html[lang="${to === 'zh' ? 'zh-Hans' : 'en'}"]`).waitFor({ state: 'attached' });
}

describe('the web inbox', () => {
  let advisorToken;

  before(async () => {
    // The virtual clock starts at a known working moment, so due times are predictable.
    await api(await login('demo.service_advisor'), 'POST', '/test/clock', { set: MONDAY_9AM });
    // Logged in again after the clock moved, so the token's lifetime counts from the new time.
    advisorToken = await login('demo.service_advisor');
    const data = { order_no: ORDER, channel: 'walk_in', phone: '13800138000', customer_name: '張偉 Zhang Wei', plate_no: PLATE };
    await api(advisorToken, 'POST', '/instances', { process: 'service_order', data, business_key: PLATE });
    // Two more orders, so the inbox has something to compare with.
    for (const [n, plate] of [[2, '粤B·E2E02'], [3, '粤B·E2E03']]) {
      await api(advisorToken, 'POST', '/instances', {
        process: 'service_order',
        data: { order_no: `RO-E2E-000${n}`, channel: 'walk_in', phone: '13800138000', plate_no: plate },
        business_key: plate,
      });
    }
    browser = await launch();
    page = browser.page;
  });

  after(async () => {
    const offsite = browser?.offsite || [];
    await browser?.close();
    assert.deepEqual(offsite, [], 'the page asked for nothing outside the server');
  });

  step('signs in the service advisor and shows their inbox with SLA badges', async () => {
    await page.goto(`${base}/tasks`);
    await page.waitForURL((url) => url.pathname === '/login');
    await page.getByLabel('Organisation', { exact: true }).fill('demo');
    await page.getByLabel('User name', { exact: true }).fill('demo.service_advisor');
    await page.getByLabel('Password', { exact: true }).fill('wrong');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('alert').filter({ hasText: 'Sign-in failed' }).waitFor();
    await page.getByLabel('Password', { exact: true }).fill('demo');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL((url) => url.pathname === '/tasks');
    await row('Greet the customer').waitFor();
    assert.equal(await page.locator('table.tasks tbody tr').count(), 3);
    // Greeting is due a minute after the customer arrives: due soon from the start.
    assert.equal(await row('Greet the customer').locator('.badge.sla').getAttribute('data-sla'), 'due_soon');
    await screenshot(page, 'inbox-en');
  });

  step('claims and releases a task in one click', async () => {
    const greet = page.locator('table.tasks tbody tr').filter({ hasText: '粤B·E2E02' });
    await greet.getByRole('button', { name: /^Claim/ }).click();
    await greet.getByRole('button', { name: /^Release/ }).waitFor();
    await greet.getByRole('button', { name: /^Release/ }).click();
    await greet.getByRole('button', { name: /^Claim/ }).waitFor();
  });

  step('searches and filters the inbox', async () => {
    await page.getByLabel('Search', { exact: true }).fill('E2E03');
    await page.getByLabel('Search', { exact: true }).press('Enter');
    await page.waitForURL((url) => url.searchParams.get('q') === 'E2E03');
    await page.locator('table.tasks tbody tr').filter({ hasText: '粤B·E2E03' }).waitFor();
    assert.equal(await page.locator('table.tasks tbody tr').count(), 1);
    await page.getByRole('button', { name: /^Mine/ }).click();
    await page.getByText('Nothing to do here.').waitFor();
  });

  step('completes the greeting, a task without a form', async () => {
    await openTask('Greet the customer');
    await page.getByText('This task has no form').waitFor();
    await submitAndReturn();
  });

  step('checks the reception form in the browser, then completes it', async () => {
    const form = 'service_order_reception';
    await openTask('Reception: verify, fit the covers, listen to the fault');
    await page.getByRole('heading', { name: 'Order' }).waitFor();
    await page.locator('aside.context').getByText('張偉 Zhang Wei').waitFor();
    // Sent empty: the browser finds the missing answers, marks them and focuses the first one.
    await page.getByRole('button', { name: 'Complete the task' }).click();
    await page.locator('.error-summary').getByText(/The form has \d+ errors/).waitFor();
    const fault = field(form, '/fault_description');
    assert.equal(await fault.getAttribute('aria-invalid'), 'true');
    const described = await fault.getAttribute('aria-describedby');
    assert.match(await page.locator(`[id="${described.split(' ').pop()}"]`).innerText(), /is required/);
    assert.equal(await page.evaluate(() => document.activeElement?.dataset.path), '/identity_verified');

    await field(form, '/identity_verified').check();
    await field(form, '/covers_fitted').fill('3');
    await fault.fill('Squeal from the front brakes when braking at low speed');
    await field(form, '/needs_repeated_back').check();
    await field(form, '/intake_sheet_confirmed').check();
    await submitAndReturn();
  });

  step('shows the server’s validation error at the field, then completes the walk-around', async () => {
    const form = 'service_order_walkaround';
    await openTask('Walk around the car with the customer and fill in the pre-check form');
    await field(form, '/hood_opened').check();
    await field(form, '/plate_no').fill(PLATE);
    await field(form, '/vin').fill('LSVAU2180N2123456');
    await field(form, '/engine_oil_ok').check();
    await field(form, '/coolant_ok').check();
    await field(form, '/spare_tire_ok').check();
    await field(form, '/fuel_level').selectOption('half');
    await field(form, '/odometer_km').fill('48210');
    await field(form, '/electrics_ok').check();
    // Valuables declared but not listed: only the server knows this rule (`if`/`then`).
    await field(form, '/valuables_declared').check();
    await page.getByRole('button', { name: 'Complete the task' }).click();
    const listError = page.locator('[data-path="/valuables_list"] > .field-error');
    await listError.filter({ hasText: 'is required' }).waitFor();
    await page.locator('.error-summary').getByText('The server refused the form:').waitFor();
    assert.equal(new URL(page.url()).pathname.startsWith('/tasks/'), true, 'still on the form');
    await screenshot(page, 'task-error-en');

    const list = labelOf(form, '/valuables_list');
    await page.getByRole('button', { name: `Add a row to ${list}` }).click();
    await page.getByLabel(`${list} (row 1)`).fill('Dashcam');
    await submitAndReturn();
  });

  step('completes the diagnosis and the repair plan', async () => {
    let form = 'service_order_diagnosis';
    await openTask('Diagnosis: interview, reproduce the fault, test and report');
    await field(form, '/symptoms').fill('Squeal at low speed, front axle');
    await field(form, '/reproduced').check();
    await field(form, '/test_results').fill('Pads worn to 2 mm');
    await field(form, '/possible_causes').fill('Worn front brake pads');
    await field(form, '/repair_direction').fill('Replace the front pads');
    await submitAndReturn();

    form = 'service_order_repair_plan';
    await openTask('Build the repair plan (items, parts, labour hours)');
    await page.getByLabel(`${labelOf(form, '/items/*/item')} (row 1)`).fill('Front brake pads');
    await page.getByLabel(`${labelOf(form, '/items/*/mandatory')} (row 1)`).check();
    await field(form, '/estimated_hours').fill('1.5');
    await submitAndReturn();
  });

  step('completes the quotation, lines and all', async () => {
    const form = 'service_order_quotation';
    await openTask('Issue the quotation and promise the completion time');
    const line = page.getByRole('group', { name: `${labelOf(form, '/lines')} 1` });
    const lineField = (name) => line.getByLabel(labelOf(form, `/lines/*/${name}`), { exact: true });
    await lineField('item').fill('Replace the front brake pads');
    await lineField('parts_price').fill('420');
    await lineField('consumables_fee').fill('30');
    await lineField('labour_fee').fill('150');
    await lineField('price').fill('600');
    await lineField('mandatory').check();
    await lineField('customer_decision').selectOption('accepted');
    await field(form, '/total').fill('600');
    await field(form, '/promised_completion_at').fill('2026-11-30T17:00');
    await field(form, '/explained').check();
    await field(form, '/customer_accepts').check();
    await screenshot(page, 'task-en');
    await submitAndReturn();
  });

  step('switches to Chinese, remembered for the user, and has the customer sign in Chinese', async () => {
    await switchLanguage('zh');
    await page.getByRole('heading', { level: 1, name: '我的任務' }).waitFor();
    // The page switches at once and stores the choice in the background: poll for it.
    let me = await api(advisorToken, 'GET', '/me');
    for (const deadline = Date.now() + 10000; me.lang !== 'zh' && Date.now() < deadline;) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      me = await api(advisorToken, 'GET', '/me');
    }
    assert.equal(me.lang, 'zh', 'the choice is stored on the server for this user');
    await page.goto(`${base}/tasks`);
    await row('客戶在維修工單簽字確認').waitFor();
    await screenshot(page, 'inbox-zh');

    const form = 'service_order_authorisation';
    await openTask('客戶在維修工單簽字確認');
    await field(form, '/customer_signed', 'zh').check();
    await field(form, '/signed_at', 'zh').fill('2026-11-30T09:40');
    await field(form, '/waits_in_lounge', 'zh').check();
    await screenshot(page, 'task-zh');
    await submitAndReturn('zh');
    await signOut();
  });

  step('shows the manager the order’s timeline, and the overdue badge once the clock passes the SLA', async () => {
    await signIn('demo.after_sales_manager');
    // The language is the user's, not the browser's: the advisor chose Chinese, the manager
    // did not.
    await page.locator('html[lang="en"]').waitFor({ state: 'attached' });
    await page.locator('.topbar').getByRole('link', { name: 'Manager' }).click();
    await page.getByRole('heading', { level: 1, name: 'Manager' }).waitFor();
    const order = page.locator('.sec-orders').getByRole('link', { name: PLATE });
    await order.waitFor();
    // The dealer's open work by role (with the catalogue's role names) and the KPIs the
    // server computed from the audit trail.
    await page.locator('.sec-workload .load-role tbody tr').first().waitFor();
    await page.locator('.sec-kpis .kpi[data-kpi="followup_success_rate"]').waitFor();
    await screenshot(page, 'manager-en');

    await order.click();
    await page.getByRole('heading', { level: 1, name: /Service order/ }).waitFor();
    await page.locator('.timeline .tl-entry[data-kind="task_completed"]').nth(6).waitFor();
    assert.ok(await page.locator('.timeline .tl-entry[data-kind="task_completed"]').count() >= 7);
    await page.locator('.timeline').getByText('Why').first().waitFor();
    const dispatch = page.locator('.sec-tasks tbody tr[data-step="dispatch"]');
    await dispatch.waitFor();
    assert.notEqual(await dispatch.locator('.badge.sla').getAttribute('data-sla'), 'overdue');
    // The diagram: the server's SVG with exactly the steps where the order stands highlighted
    // (the dispatch, beside the parts pre-pick on the parallel branch), as the instance's
    // position says, and the steps already done marked as visited.
    await page.locator('.sec-diagram figure.diagram svg').waitFor();
    const current = page.locator('.sec-diagram figure.diagram svg g.current[data-step]');
    await current.first().waitFor();
    const highlighted = await current.evaluateAll((nodes) => nodes.map((n) => n.dataset.step).sort());
    const instanceId = new URL(page.url()).pathname.split('/').pop();
    const position = (await api(await login('demo.after_sales_manager'), 'GET', `/instances/${instanceId}`)).position;
    assert.deepEqual(highlighted, position.map((p) => p.step).sort());
    assert.ok(highlighted.includes('dispatch'), `dispatch is not highlighted: ${highlighted}`);
    assert.equal(await page.locator('.sec-diagram svg g.visited[data-step="reception"]').count(), 1);

    // The dispatch is due five working minutes after authorisation; an hour later it is late.
    const token = await login('demo.after_sales_manager');
    await api(token, 'POST', '/test/clock', { advance: 'PT1H' });
    await page.reload();
    await dispatch.locator('.badge.sla[data-sla="overdue"]').waitFor();
    await page.locator('.timeline .breach').first().waitFor();
    await screenshot(page, 'instance-en');

    await switchLanguage('zh');
    await page.locator('.sec-tasks .badge.sla[data-sla="overdue"]').filter({ hasText: '已逾期' }).waitFor();
    await screenshot(page, 'instance-zh');
    await page.locator('.topbar').getByRole('link', { name: '管理看板' }).click();
    await page.locator('.sec-orders').getByRole('link', { name: PLATE }).waitFor();
    await screenshot(page, 'manager-zh');
  });

  step('keeps each user’s language: the advisor comes back in Chinese', async () => {
    await switchLanguage('en');
    await signOut();
    await page.locator('html[lang="en"]').waitFor({ state: 'attached' });
    await signIn('demo.service_advisor');
    await page.locator('html[lang="zh-Hans"]').waitFor({ state: 'attached' });
    await page.getByRole('heading', { level: 1, name: '我的任務' }).waitFor();
  });
});
