// The client-side router: path patterns to view functions, History API navigation, and links
// (`<a href="/tasks/...">`) handled without a page load. The server answers index.html for
// these paths, so reloading or sharing a link works.

const routes = [];
let notFound = () => {};
let current = null;

/** Registers a view for a pattern such as `/tasks/:id`. */
export function route(pattern, view) {
  const names = [];
  const re = new RegExp(`^${pattern.replace(/:(\w+)/g, (_, n) => { names.push(n); return '([^/]+)'; })}/?$`);
  routes.push({ re, names, view });
}

export function fallback(view) {
  notFound = view;
}

/** Goes to a path (pushing history unless `replace`). */
export function navigate(path, { replace = false } = {}) {
  if (replace) history.replaceState({}, '', path);
  else history.pushState({}, '', path);
  return render();
}

/** Renders the view of the current location again (after a language change, say). */
export async function render() {
  const url = new URL(window.location.href);
  for (const r of routes) {
    const m = r.re.exec(url.pathname);
    if (m) {
      const params = Object.fromEntries(r.names.map((n, i) => [n, decodeURIComponent(m[i + 1])]));
      current = { view: r.view, params, query: url.searchParams };
      return r.view(params, url.searchParams);
    }
  }
  current = null;
  return notFound();
}

export function currentRoute() {
  return current;
}

/** Handles clicks on same-origin links and the back/forward buttons. */
export function start() {
  document.addEventListener('click', (e) => {
    const a = e.target.closest('a[href]');
    if (!a || a.target || a.hasAttribute('download') || e.defaultPrevented) return;
    if (e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
    const url = new URL(a.href);
    if (url.origin !== window.location.origin || url.pathname.startsWith('/api/')) return;
    if (a.getAttribute('href').startsWith('#')) return;
    e.preventDefault();
    navigate(url.pathname + url.search);
  });
  window.addEventListener('popstate', () => render());
}
