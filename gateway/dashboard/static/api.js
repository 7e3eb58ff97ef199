// The gateway's REST API from the page: same-origin fetch() with the session's credentials, and Server-Sent
// Events read from a streamed fetch() body (EventSource cannot send an Authorization header).

const TOKEN_KEY = 'syllabus.token';
const TENANT_KEY = 'syllabus.tenant';

// Credentials live in sessionStorage: for this browser tab's session only, and never in a cookie.
export const session = {
  get token() { return sessionStorage.getItem(TOKEN_KEY) || ''; },
  set token(value) { store(TOKEN_KEY, value); },
  get tenant() { return sessionStorage.getItem(TENANT_KEY) || ''; },
  set tenant(value) { store(TENANT_KEY, value); },
};

function store(key, value) {
  if (value) sessionStorage.setItem(key, value);
  else sessionStorage.removeItem(key);
}

export class ApiError extends Error {
  constructor(status, body) {
    super(body && body.message ? body.message : `HTTP ${status}`);
    this.status = status;
    this.code = body && body.code;
    this.details = (body && body.details) || [];
  }
}

// Told when a call comes back 401, so the app can ask for a token.
const unauthenticated = new EventTarget();
export function onUnauthenticated(listener) {
  unauthenticated.addEventListener('unauthenticated', listener);
}

function headers(extra = {}) {
  const result = { Accept: 'application/json', ...extra };
  if (session.token) result.Authorization = `Bearer ${session.token}`;
  if (session.tenant) result['Grpc-Metadata-X-Syllabus-Tenant'] = session.tenant;
  return result;
}

async function failure(response) {
  const text = await response.text();
  let body;
  try {
    body = JSON.parse(text);
  } catch {
    body = { message: text || response.statusText };
  }
  const error = new ApiError(response.status, body);
  if (response.status === 401) unauthenticated.dispatchEvent(new CustomEvent('unauthenticated', { detail: error }));
  return error;
}

// The gateway's settings for the pages (GatewayConfig: where a job's trace is shown), asked for once.
let asked;
export function settings() {
  asked ||= fetch('/dashboard/settings.json', { credentials: 'omit' })
    .then((response) => (response.ok ? response.json() : {}))
    .catch(() => ({}));
  return asked;
}

export async function call(method, path, body, { signal } = {}) {
  const init = { method, signal, credentials: 'omit', cache: 'no-store', headers: headers() };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  if (!response.ok) throw await failure(response);
  const text = await response.text();
  return text ? JSON.parse(text) : {};
}

export const get = (path, options) => call('GET', path, undefined, options);
export const post = (path, body = {}, options) => call('POST', path, body, options);
export const remove = (path, options) => call('DELETE', path, undefined, options);

// "?a=1&b=x&b=y" from an object; arrays repeat their key, empty values are left out.
export function query(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    for (const item of Array.isArray(value) ? value : [value]) {
      if (item !== undefined && item !== null && item !== '') search.append(key, String(item));
    }
  }
  const text = search.toString();
  return text ? `?${text}` : '';
}

function parseEvent(block) {
  const event = { id: '', type: 'message', data: '' };
  const data = [];
  for (const line of block.split('\n')) {
    if (!line || line.startsWith(':')) continue;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
    if (field === 'data') data.push(value);
    else if (field === 'event') event.type = value;
    else if (field === 'id') event.id = value;
  }
  event.data = data.join('\n');
  return event;
}

const sleep = (ms, signal) => new Promise((resolve) => {
  const timer = setTimeout(resolve, ms);
  signal.addEventListener('abort', () => { clearTimeout(timer); resolve(); }, { once: true });
});

/*
 * Follows a server stream as Server-Sent Events until it ends, `signal` aborts, or it fails for good.
 * onMessage(message) gets each message; onConnect() is called each time a connection answers (after a drop,
 * to reload what a live-only stream missed). A dropped connection is opened again with back-off, with
 * Last-Event-ID when `resume` is set (a job's watch continues after the last event seen). Resolves true when
 * the stream ended normally; rejects with ApiError when the server refuses it (404 for a route this gateway
 * lacks, 403 without the scope, a Status sent as an `error` event).
 */
export async function stream(path, { signal, onMessage, onConnect, resume = false }) {
  let lastId = '';
  let backoff = 500;
  while (!signal.aborted) {
    let response;
    try {
      const extra = { Accept: 'text/event-stream' };
      if (resume && lastId) extra['Last-Event-ID'] = lastId;
      response = await fetch(path, { headers: headers(extra), signal, credentials: 'omit', cache: 'no-store' });
    } catch (error) {
      if (signal.aborted) return false;
      await sleep(backoff, signal);
      backoff = Math.min(backoff * 2, 10000);
      continue;
    }
    if (!response.ok) {
      const error = await failure(response);
      if (response.status < 500) throw error;
      await sleep(backoff, signal);
      backoff = Math.min(backoff * 2, 10000);
      continue;
    }
    backoff = 500;
    if (onConnect) onConnect();
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = '';
    try {
      read: for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value.replace(/\r\n?/g, '\n');
        let end;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const event = parseEvent(buffer.slice(0, end));
          buffer = buffer.slice(end + 2);
          if (event.type === 'end') return true;
          const payload = event.data ? JSON.parse(event.data) : {};
          if (event.type === 'error') {
            const error = new ApiError(0, payload);
            if (payload.code !== 14) throw error; // UNAVAILABLE (a gateway stopping): connect again.
            break read;
          }
          if (event.id) lastId = event.id;
          onMessage(payload);
        }
      }
    } catch (error) {
      if (signal.aborted) return false;
      if (error instanceof ApiError) throw error;
    } finally {
      reader.cancel().catch(() => {});
    }
    await sleep(backoff, signal);
  }
  return false;
}

function filename(disposition, fallback) {
  const match = /filename="?([^";]+)"?/i.exec(disposition || '');
  return match ? match[1] : fallback;
}

// Saves a file the API serves (a course's PDF, a job's artifact) with the session's credentials.
export async function download(path, fallback) {
  const response = await fetch(path, { headers: headers({ Accept: '*/*' }), credentials: 'omit', cache: 'no-store' });
  if (!response.ok) throw await failure(response);
  const blob = await response.blob();
  const url = URL.createObjectURL(blob);
  const link = document.createElement('a');
  link.href = url;
  link.download = filename(response.headers.get('Content-Disposition'), fallback);
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60000);
}
