// Languages: the zh and en dictionaries, the current language, and how dates, times and the
// {zh, en} labels of processes and forms are shown. Chinese is shown as written in the packs
// (the standard pack uses traditional characters); the page's `lang` is zh-Hans per the
// dealer network's locale, so screen readers pick a Mandarin voice.

const dict = {
  en: {
    app: 'sopflow',
    skip: 'Skip to content',
    loading: 'Loading…',
    'nav.tasks': 'My tasks',
    'nav.manager': 'Manager',
    'nav.signout': 'Sign out',
    'nav.main': 'Main',
    'lang.switch': '中文',
    'lang.switch.label': 'Switch the language to Chinese',
    'login.title': 'Sign in',
    'login.intro': 'Sign in with your organisation, user name and password, or paste an access token.',
    'login.password': 'Password',
    'login.token': 'Access token',
    'login.organisation': 'Organisation',
    'login.username': 'User name',
    'login.submit': 'Sign in',
    'login.method': 'How to sign in',
    'login.byPassword': 'With a password',
    'login.byToken': 'With an access token',
    'login.failed': 'Sign-in failed: the organisation, user name or password is wrong.',
    'login.badtoken': 'This token is not valid (any more).',
    'inbox.title': 'My tasks',
    'inbox.filters': 'Filters',
    'inbox.view': 'Show',
    'f.any': 'All',
    'f.me': 'Mine',
    'f.nobody': 'Unclaimed in my roles',
    'f.overdue': 'Overdue',
    'f.today': 'Due today',
    'inbox.process': 'Process',
    'inbox.allProcesses': 'All processes',
    'inbox.search': 'Search',
    'inbox.searchHint': 'Plate, VIN, customer or order number',
    'inbox.refresh': 'Refresh',
    'inbox.empty': 'Nothing to do here.',
    'inbox.more': 'Load more',
    'inbox.count': '{n} tasks',
    'col.sla': 'SLA',
    'col.task': 'Task',
    'col.process': 'Process',
    'col.key': 'Business key',
    'col.due': 'Due',
    'col.who': 'Assignee',
    'col.action': 'Action',
    'col.role': 'Role',
    'col.person': 'Person',
    'col.open': 'Open',
    'col.overdue': 'Overdue',
    'col.status': 'Status',
    'col.started': 'Started',
    'col.dealer': 'Dealer',
    'claim': 'Claim',
    'unclaim': 'Release',
    'claim.label': 'Claim “{t}”',
    'unclaim.label': 'Release “{t}”',
    'claimed': 'Claimed.',
    'unclaimed': 'Released to the pool.',
    'nobody': 'Unclaimed',
    'me': 'Me',
    'noDue': 'No due time',
    'sla.on_time': 'On time',
    'sla.due_soon': 'Due soon',
    'sla.overdue': 'Overdue',
    'sla.none': 'No SLA',
    'prio.urgent': 'Urgent',
    'prio.high': 'High',
    'prio.low': 'Low',
    'task.back': 'Back to my tasks',
    'task.context': 'Order',
    'task.done': 'Steps done',
    'task.noneDone': 'No steps done yet.',
    'task.data': 'All data',
    'task.submit': 'Complete the task',
    'task.submitting': 'Sending…',
    'task.completed': 'Task completed.',
    'task.readonly': 'You can read this task but not complete it.',
    'task.claimFirst': 'This task is someone else’s.',
    'task.noForm': 'This task has no form: completing it confirms it is done.',
    'task.instance': 'Open the order',
    'task.gone': 'This task is no longer open (completed or cancelled).',
    'task.roles': 'For',
    'form.required': 'required',
    'form.errors': 'The form has {n} errors. Please correct them:',
    'form.error1': 'The form has an error. Please correct it:',
    'form.add': 'Add',
    'form.addRow': 'Add a row to {t}',
    'form.remove': 'Remove',
    'form.removeRow': 'Remove row {n} of {t}',
    'form.row': 'row {n}',
    'form.item': '{t} {n}',
    'form.choose': '— choose —',
    'form.actions': 'Actions',
    'form.noRows': 'No rows yet.',
    'form.serverSaid': 'The server refused the form:',
    'v.required': 'is required',
    'v.checked': 'must be ticked',
    'v.number': 'must be a number',
    'v.integer': 'must be a whole number',
    'v.min': 'must be at least {n}',
    'v.max': 'must be at most {n}',
    'v.minLength': 'must have at least {n} characters',
    'v.maxLength': 'must have at most {n} characters',
    'v.pattern': 'has the wrong format',
    'v.enum': 'is not one of the choices',
    'v.minItems': 'needs at least {n} rows',
    'v.maxItems': 'takes at most {n} rows',
    'v.datetime': 'must be a date and time',
    'v.notField': 'is not a field of this form',
    'inst.title': 'Order',
    'inst.status.running': 'Running',
    'inst.status.ended': 'Ended',
    'inst.now': 'Where it stands',
    'inst.tasks': 'Open tasks',
    'inst.noTasks': 'No open tasks.',
    'inst.timers': 'Timers',
    'inst.noTimers': 'No timers armed.',
    'inst.incidents': 'Incidents',
    'inst.links': 'Linked orders',
    'inst.parent': 'Started by',
    'inst.children': 'Started here',
    'inst.diagram': 'Process diagram',
    'inst.diagramMissing': 'The diagram is not available from this server; the flowchart source follows.',
    'inst.timeline': 'Timeline',
    'inst.started': 'Started',
    'inst.ended': 'Ended',
    'inst.outcome': 'Outcome',
    'inst.data': 'Data',
    'inst.verified': 'Audit trail intact',
    'inst.broken': 'Audit trail broken at {at}',
    'inst.waiting': 'waiting for {w}',
    'inst.fires': 'fires',
    'tl.by': 'by {who}',
    'tl.because': 'Why',
    'tl.changed': 'Changed',
    'tl.default': 'none of the branches held: default',
    'tl.goes': '→ {to}',
    'kind.started': 'Started',
    'kind.task_claimed': 'Task claimed',
    'kind.task_unclaimed': 'Task released',
    'kind.task_delegated': 'Task delegated',
    'kind.task_completed': 'Task completed',
    'kind.message_received': 'Message received',
    'kind.timer_fired': 'Timer fired',
    'kind.action_succeeded': 'Action done',
    'kind.action_failed': 'Action failed',
    'kind.child_ended': 'Linked order ended',
    'kind.cancelled': 'Cancelled',
    'kind.incident_retried': 'Incident retried',
    'kind.incident_skipped': 'Incident skipped',
    'ev.sla_breached': 'SLA breached: “{t}” was due',
    'ev.task_opened': 'New task: {t}',
    'actor.system': 'the engine',
    'actor.timer': 'a timer',
    'actor.message': 'a message',
    'actor.action': 'action {a}',
    'mgr.title': 'Manager',
    'mgr.dealer': 'Dealer',
    'mgr.allDealers': 'All dealers',
    'mgr.show': 'Show',
    'mgr.workload': 'Open work',
    'mgr.byRole': 'By role',
    'mgr.byPerson': 'By person',
    'mgr.breaches': 'SLA breaches',
    'mgr.noBreaches': 'No task is overdue.',
    'mgr.kpis': 'KPIs of the standard pack',
    'mgr.orders': 'Running orders',
    'mgr.noOrders': 'No running orders.',
    'mgr.unavailable': 'Not available on this server yet.',
    'mgr.period': 'Last 30 days',
    'mgr.total': '{open} open · {soon} due within the hour · {overdue} overdue',
    'col.dueSoon': 'Due soon',
    'kpi.followup_coverage': 'Follow-up coverage',
    'kpi.followup_success_rate': 'Follow-up success rate',
    'kpi.complaint_rate': 'Complaint rate',
    'kpi.major_complaint_rate': 'Major complaint rate',
    'kpi.first_time_fix_rate': 'First-time-fix rate',
    'kpi.target': 'target',
    'kpi.met': '(met)',
    'kpi.missed': '(missed)',
    'kpi.step': 'Step',
    'kpi.onTime': 'On time',
    'kpi.breaches': 'Breaches',
    'kpi.overdueByRole': 'Overdue now, by role',
    'err.network': 'The server cannot be reached. Check the connection and try again.',
    'err.generic': 'Something went wrong: {m}',
    'err.notFound': 'Not found, or not visible to you.',
    'err.forbidden': 'This is not yours to do.',
    'err.conflict': 'Someone was quicker: {m}',
    'err.session': 'Your session has ended. Please sign in again.',
    'yes': 'Yes',
    'no': 'No',
  },
  zh: {
    app: 'sopflow',
    skip: '跳至主要內容',
    loading: '載入中…',
    'nav.tasks': '我的任務',
    'nav.manager': '管理看板',
    'nav.signout': '登出',
    'nav.main': '主選單',
    'lang.switch': 'English',
    'lang.switch.label': '切換為英文',
    'login.title': '登入',
    'login.intro': '以組織、使用者名稱與密碼登入，或貼上存取權杖。',
    'login.password': '密碼',
    'login.token': '存取權杖',
    'login.organisation': '組織',
    'login.username': '使用者名稱',
    'login.submit': '登入',
    'login.method': '登入方式',
    'login.byPassword': '使用密碼',
    'login.byToken': '使用存取權杖',
    'login.failed': '登入失敗：組織、使用者名稱或密碼不正確。',
    'login.badtoken': '此權杖無效或已過期。',
    'inbox.title': '我的任務',
    'inbox.filters': '篩選',
    'inbox.view': '顯示',
    'f.any': '全部',
    'f.me': '我的',
    'f.nobody': '我的角色待領取',
    'f.overdue': '已逾期',
    'f.today': '今日到期',
    'inbox.process': '流程',
    'inbox.allProcesses': '全部流程',
    'inbox.search': '搜尋',
    'inbox.searchHint': '車牌、VIN、客戶或工單號',
    'inbox.refresh': '重新整理',
    'inbox.empty': '目前沒有任務。',
    'inbox.more': '載入更多',
    'inbox.count': '共 {n} 項任務',
    'col.sla': '時效',
    'col.task': '任務',
    'col.process': '流程',
    'col.key': '業務編號',
    'col.due': '到期時間',
    'col.who': '處理人',
    'col.action': '操作',
    'col.role': '角色',
    'col.person': '人員',
    'col.open': '未完成',
    'col.overdue': '逾期',
    'col.status': '狀態',
    'col.started': '開始時間',
    'col.dealer': '經銷商',
    'claim': '領取',
    'unclaim': '退回',
    'claim.label': '領取「{t}」',
    'unclaim.label': '退回「{t}」',
    'claimed': '已領取。',
    'unclaimed': '已退回任務池。',
    'nobody': '待領取',
    'me': '我',
    'noDue': '無時限',
    'sla.on_time': '正常',
    'sla.due_soon': '即將到期',
    'sla.overdue': '已逾期',
    'sla.none': '無時限',
    'prio.urgent': '緊急',
    'prio.high': '高',
    'prio.low': '低',
    'task.back': '返回我的任務',
    'task.context': '工單',
    'task.done': '已完成步驟',
    'task.noneDone': '尚無已完成步驟。',
    'task.data': '全部資料',
    'task.submit': '完成任務',
    'task.submitting': '送出中…',
    'task.completed': '任務已完成。',
    'task.readonly': '您可以查看此任務，但無法完成它。',
    'task.claimFirst': '此任務由他人處理中。',
    'task.noForm': '此任務沒有表單：完成即表示已辦理。',
    'task.instance': '開啟工單',
    'task.gone': '此任務已不在待辦中（已完成或已取消）。',
    'task.roles': '角色',
    'form.required': '必填',
    'form.errors': '表單有 {n} 處錯誤，請修正：',
    'form.error1': '表單有 1 處錯誤，請修正：',
    'form.add': '新增',
    'form.addRow': '新增一列「{t}」',
    'form.remove': '刪除',
    'form.removeRow': '刪除「{t}」第 {n} 列',
    'form.row': '第 {n} 列',
    'form.item': '{t} {n}',
    'form.choose': '— 請選擇 —',
    'form.actions': '操作',
    'form.noRows': '尚無資料列。',
    'form.serverSaid': '伺服器拒絕了表單：',
    'v.required': '為必填',
    'v.checked': '必須勾選',
    'v.number': '必須是數字',
    'v.integer': '必須是整數',
    'v.min': '不得小於 {n}',
    'v.max': '不得大於 {n}',
    'v.minLength': '至少需要 {n} 個字元',
    'v.maxLength': '最多 {n} 個字元',
    'v.pattern': '格式不正確',
    'v.enum': '不在可選範圍內',
    'v.minItems': '至少需要 {n} 列',
    'v.maxItems': '最多 {n} 列',
    'v.datetime': '必須是日期與時間',
    'v.notField': '不是此表單的欄位',
    'inst.title': '工單',
    'inst.status.running': '進行中',
    'inst.status.ended': '已結束',
    'inst.now': '目前位置',
    'inst.tasks': '待辦任務',
    'inst.noTasks': '沒有待辦任務。',
    'inst.timers': '計時器',
    'inst.noTimers': '沒有計時器。',
    'inst.incidents': '異常',
    'inst.links': '關聯流程',
    'inst.parent': '由此發起',
    'inst.children': '由此啟動',
    'inst.diagram': '流程圖',
    'inst.diagramMissing': '伺服器未提供流程圖；以下為流程圖原始碼。',
    'inst.timeline': '時間軸',
    'inst.started': '開始',
    'inst.ended': '結束',
    'inst.outcome': '結果',
    'inst.data': '資料',
    'inst.verified': '稽核鏈完整',
    'inst.broken': '稽核鏈於 {at} 處中斷',
    'inst.waiting': '等待：{w}',
    'inst.fires': '觸發時間',
    'tl.by': '由 {who}',
    'tl.because': '原因',
    'tl.changed': '變更',
    'tl.default': '所有條件皆不成立：走預設分支',
    'tl.goes': '→ {to}',
    'kind.started': '已啟動',
    'kind.task_claimed': '領取任務',
    'kind.task_unclaimed': '退回任務',
    'kind.task_delegated': '轉派任務',
    'kind.task_completed': '完成任務',
    'kind.message_received': '收到訊息',
    'kind.timer_fired': '計時器觸發',
    'kind.action_succeeded': '自動動作完成',
    'kind.action_failed': '自動動作失敗',
    'kind.child_ended': '關聯流程結束',
    'kind.cancelled': '已取消',
    'kind.incident_retried': '異常已重試',
    'kind.incident_skipped': '異常已略過',
    'ev.sla_breached': '逾期：「{t}」的到期時間為',
    'ev.task_opened': '新任務：{t}',
    'actor.system': '系統',
    'actor.timer': '計時器',
    'actor.message': '訊息',
    'actor.action': '動作 {a}',
    'mgr.title': '管理看板',
    'mgr.dealer': '經銷商',
    'mgr.allDealers': '全部經銷商',
    'mgr.show': '顯示',
    'mgr.workload': '未完成工作',
    'mgr.byRole': '依角色',
    'mgr.byPerson': '依人員',
    'mgr.breaches': '逾期任務',
    'mgr.noBreaches': '沒有逾期任務。',
    'mgr.kpis': '標準流程包 KPI',
    'mgr.orders': '進行中的工單',
    'mgr.noOrders': '沒有進行中的工單。',
    'mgr.unavailable': '此伺服器尚未提供。',
    'mgr.period': '最近 30 天',
    'mgr.total': '未完成 {open} · 一小時內到期 {soon} · 逾期 {overdue}',
    'col.dueSoon': '即將到期',
    'kpi.followup_coverage': '回訪覆蓋率',
    'kpi.followup_success_rate': '回訪成功率',
    'kpi.complaint_rate': '客訴率',
    'kpi.major_complaint_rate': '重大客訴率',
    'kpi.first_time_fix_rate': '一次修復率',
    'kpi.target': '目標',
    'kpi.met': '（達成）',
    'kpi.missed': '（未達成）',
    'kpi.step': '步驟',
    'kpi.onTime': '準時',
    'kpi.breaches': '逾期次數',
    'kpi.overdueByRole': '目前逾期（按角色）',
    'err.network': '無法連線到伺服器，請檢查網路後重試。',
    'err.generic': '發生錯誤：{m}',
    'err.notFound': '找不到，或您無權查看。',
    'err.forbidden': '這不是您可以辦理的。',
    'err.conflict': '已有人先處理：{m}',
    'err.session': '登入已過期，請重新登入。',
    'yes': '是',
    'no': '否',
  },
};

/** Server messages that have a translation (the API answers in English). */
const serverMessages = {
  'is required': 'v.required',
  'is not a field of this form': 'v.notField',
};

let current = 'en';
const listeners = new Set();

/** The current language, `zh` or `en`. */
export function lang() {
  return current;
}

/** Sets the language: the `lang` attribute, the skip link, and every listener (re-render). */
export function setLang(next) {
  current = next === 'zh' ? 'zh' : 'en';
  document.documentElement.lang = current === 'zh' ? 'zh-Hans' : 'en';
  const skip = document.querySelector('.skip-link');
  if (skip) skip.textContent = t('skip');
  for (const fn of listeners) fn(current);
}

/** Calls `fn` after every language change. */
export function onLangChange(fn) {
  listeners.add(fn);
}

/** The text for `key`, with `{name}` placeholders filled from `params`. */
export function t(key, params = {}) {
  const text = dict[current][key] ?? dict.en[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => (params[name] ?? `{${name}}`));
}

/** A `{zh, en}` label in the current language, falling back to the other one. */
export function label(value, fallback = '') {
  if (!value) return fallback;
  if (typeof value === 'string') return value;
  const first = current === 'zh' ? value.zh : value.en;
  const second = current === 'zh' ? value.en : value.zh;
  return first || second || fallback;
}

/** A server field message in the current language when we know it, else as sent. */
export function serverMessage(message) {
  const key = serverMessages[message];
  return key ? t(key) : message;
}

const locales = { zh: 'zh-CN', en: 'en-GB' };
let timeZone;

/** The dealer's time zone (from the user's organisation); times are shown in it. */
export function setTimeZone(tz) {
  try {
    new Intl.DateTimeFormat('en', { timeZone: tz });
    timeZone = tz;
  } catch {
    timeZone = undefined;
  }
}

export function getTimeZone() {
  return timeZone;
}

/** A moment as date and time in the dealer's zone, e.g. `2 Mar 2026, 09:15`. */
export function formatDateTime(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  return new Intl.DateTimeFormat(locales[current], {
    timeZone, year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', hourCycle: 'h23',
  }).format(d);
}

/** A duration in minutes, as `3 h 20 min` / `3 小時 20 分`. */
export function formatMinutes(total) {
  const m = Math.abs(Math.round(total));
  const hours = Math.floor(m / 60);
  const mins = m % 60;
  const days = Math.floor(hours / 24);
  if (current === 'zh') {
    if (days >= 2) return `${days} 天`;
    return hours ? `${hours} 小時 ${mins} 分` : `${mins} 分鐘`;
  }
  if (days >= 2) return `${days} days`;
  return hours ? `${hours} h ${mins} min` : `${mins} min`;
}
