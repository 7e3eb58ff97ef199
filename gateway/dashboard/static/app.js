// The dashboard's shell: sign-in, the admin's tenant, and the routes (#/jobs/ID, ...) to the pages.
import { get, onUnauthenticated, session } from './api.js';
import { button, errorBox, h, replace } from './dom.js';

const ROUTES = [
  [/^\/?$/, 'overview', true],
  [/^\/jobs$/, 'jobs', false],
  [/^\/jobs\/([^/]+)$/, 'job', false],
  [/^\/workers$/, 'workers', true],
  [/^\/deadletters$/, 'deadletters', true],
  [/^\/deadletters\/([^/]+)$/, 'deadletter', true],
  [/^\/courses$/, 'courses', false],
  [/^\/courses\/([^/]+)$/, 'course', false],
  [/^\/schedules$/, 'schedules', false],
];

const view = document.getElementById('view');
const state = { admin: false, ready: false, controller: null };

function location() {
  const [path, search = ''] = (window.location.hash.replace(/^#/, '') || '/').split('?');
  return { path: decodeURIComponent(path), query: new URLSearchParams(search) };
}

export function go(path) {
  window.location.hash = `#${path}`;
}

function markNav(path) {
  for (const link of document.querySelectorAll('#nav a')) {
    const target = link.getAttribute('href').slice(1);
    const current = target === '/' ? path === '/' || path === '' : path === target || path.startsWith(`${target}/`);
    if (current) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  for (const item of document.querySelectorAll('#nav [data-admin]')) item.hidden = !state.admin;
}

async function route(focus) {
  if (!state.ready) return;
  if (state.controller) state.controller.abort();
  const controller = new AbortController();
  state.controller = controller;
  const { path, query } = location();
  const found = ROUTES.map(([pattern, name, admin]) => [pattern.exec(path), name, admin]).find(([match]) => match);
  markNav(path);
  if (!found) {
    replace(view, h('h1', null, 'Not found'), h('p', null, 'No page here. ', h('a', { href: '#/jobs' }, 'Jobs')));
    return;
  }
  const [match, name, adminOnly] = found;
  if (adminOnly && !state.admin) {
    if (name === 'overview') {
      go('/jobs');
      return;
    }
    replace(view, h('h1', null, 'Admins only'),
      h('p', { class: 'notice' }, 'This page needs a token with the admin scope.'));
    return;
  }
  replace(view, h('p', { class: 'muted' }, 'Loading…'));
  try {
    const page = await import(`./pages/${name}.js`);
    if (controller.signal.aborted) return;
    await page.default(view, {
      params: match.slice(1),
      query,
      signal: controller.signal,
      admin: state.admin,
      go,
    });
  } catch (error) {
    if (!controller.signal.aborted) replace(view, h('h1', null, 'Something went wrong'), errorBox(error));
  }
  if (focus && !controller.signal.aborted) view.focus();
}

function renderSession() {
  const box = document.getElementById('session');
  const parts = [];
  if (state.admin) {
    const input = h('input', { id: 'tenant', name: 'tenant', value: session.tenant, placeholder: 'your own',
      size: 12, autocomplete: 'off' });
    parts.push(h('form', { class: 'inline', onsubmit: (event) => {
      event.preventDefault();
      session.tenant = input.value.trim();
      route(false);
    } }, h('label', { class: 'inline', for: 'tenant' }, 'Tenant', input), h('button', { type: 'submit', class: 'secondary' }, 'Show')));
  }
  if (session.token) {
    parts.push(button('Sign out', () => {
      session.token = '';
      session.tenant = '';
      window.location.reload();
    }, { class: 'secondary' }));
  }
  replace(box, parts);
}

function askForToken(error) {
  state.ready = false;
  if (state.controller) state.controller.abort();
  replace(document.getElementById('session'));
  for (const item of document.querySelectorAll('#nav [data-admin]')) item.hidden = true;
  const input = h('input', { id: 'token', name: 'token', type: 'password', autocomplete: 'off', required: true });
  const form = h('form', { class: 'token-form', onsubmit: (event) => {
    event.preventDefault();
    session.token = input.value.trim();
    session.tenant = '';
    start();
  } },
  h('h1', null, 'Sign in'),
  h('p', null, 'This gateway needs credentials. Enter a token or API key: it is kept for this browser tab only ',
    '(sessionStorage) and sent with each call as ', h('code', null, 'Authorization: Bearer'), '.'),
  session.token && error ? errorBox(error) : null,
  h('label', { for: 'token' }, 'Token or API key', input),
  h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Sign in')));
  replace(view, form);
  input.focus();
}

async function start() {
  try {
    await get('/v1/jobs?pageSize=1');
  } catch (error) {
    if (error.status === 401) return; // onUnauthenticated asks for a token
    replace(view, h('h1', null, 'The gateway did not answer'), errorBox(error));
    return;
  }
  try {
    await get('/v1/admin/workers');
    state.admin = true;
  } catch (error) {
    if (error.status === 401) return;
    state.admin = false;
  }
  state.ready = true;
  renderSession();
  await route(false);
}

onUnauthenticated((event) => askForToken(event.detail));
window.addEventListener('hashchange', () => route(true));
start();
