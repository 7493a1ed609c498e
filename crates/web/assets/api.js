// The API client: every call to /api/v1 goes through `api()`, which adds the bearer token,
// turns RFC 9457 problem+json answers into `ApiError`s, and keeps the server's clock offset
// (SLA badges are computed at the server's time, which a virtual clock may have moved).

const TOKEN_KEY = 'sopflow.token';

/** An answer that was not 2xx, with the problem's fields. */
export class ApiError extends Error {
  constructor(status, problem) {
    super(problem?.detail || problem?.title || `HTTP ${status}`);
    this.status = status;
    this.type = problem?.type || '';
    this.title = problem?.title || '';
    this.detail = problem?.detail || '';
    /** Field errors: `[{ path: '/lines/0/price', message }]`. */
    this.errors = Array.isArray(problem?.errors) ? problem.errors : [];
  }

  /** The last part of the problem type (`validation-failed`, `conflict`, ...). */
  get kind() {
    return this.type.split('/').pop();
  }
}

/** The server could not be reached at all. */
export class NetworkError extends Error {}

export function token() {
  try {
    return localStorage.getItem(TOKEN_KEY);
  } catch {
    return null;
  }
}

export function setToken(value) {
  try {
    if (value) localStorage.setItem(TOKEN_KEY, value);
    else localStorage.removeItem(TOKEN_KEY);
  } catch {
    // Private mode without storage: the session lasts as long as the page.
  }
}

let offsetMs = 0;
let offsetKnown = false;
const unauthorizedHandlers = new Set();

/** The server's current time, estimated from the last answer's clock. */
export function serverNow() {
  return new Date(Date.now() + offsetMs);
}

/** Learns the server's clock from an answer: a `now` field in the body wins (a virtual clock
 * reports there), then the `Date` header (second precision, fine for SLA minutes). */
export function learnClock(nowIso, dateHeader) {
  const at = Date.parse(nowIso || dateHeader || '');
  if (Number.isNaN(at)) return;
  // The header is truncated to the second: keep the finer estimate if it agrees.
  const candidate = at - Date.now();
  if (nowIso || !offsetKnown || Math.abs(candidate - offsetMs) > 1500) offsetMs = candidate;
  offsetKnown = true;
}

/** Calls `fn` when an answer says the token is no longer valid. */
export function onUnauthorized(fn) {
  unauthorizedHandlers.add(fn);
}

/**
 * Calls the API. `path` is under `/api/v1`; `query` values that are empty are left out.
 * Answers the parsed JSON (or text for non-JSON answers), or throws `ApiError`/`NetworkError`.
 */
export async function api(path, { method = 'GET', body, query, headers = {}, raw = false } = {}) {
  const url = new URL(`/api/v1${path}`, window.location.origin);
  for (const [k, v] of Object.entries(query || {})) {
    if (v !== undefined && v !== null && v !== '') url.searchParams.set(k, String(v));
  }
  const init = { method, headers: { Accept: 'application/json', ...headers } };
  const tok = token();
  if (tok) init.headers.Authorization = `Bearer ${tok}`;
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(url, init);
  } catch (e) {
    throw new NetworkError(e.message);
  }
  const type = res.headers.get('Content-Type') || '';
  if (!res.ok) {
    let problem = null;
    if (type.includes('json')) {
      try {
        problem = await res.json();
      } catch {
        problem = null;
      }
    }
    const err = new ApiError(res.status, problem);
    if (res.status === 401 && path !== '/auth/login') for (const fn of unauthorizedHandlers) fn(err);
    throw err;
  }
  if (raw) return res;
  if (res.status === 204) return null;
  if (type.includes('json')) {
    const data = await res.json();
    learnClock(data && typeof data === 'object' ? data.now : undefined, res.headers.get('Date'));
    return data;
  }
  learnClock(undefined, res.headers.get('Date'));
  return res.text();
}

/** `api()` that answers `null` for a 404 (an endpoint this server does not have yet). */
export async function apiOptional(path, options) {
  try {
    return await api(path, options);
  } catch (e) {
    if (e instanceof ApiError && (e.status === 404 || e.status === 405 || e.status === 501)) return null;
    throw e;
  }
}
