// Live updates of a page: its streams, closed when the page is left (its signal aborts).
import { stream } from './api.js';
import { h, replace } from './dom.js';
import { clock } from './format.js';

// A line saying whether the page is live, for people and for tests (data-live="on|off|ended").
export function liveStatus() {
  const element = h('p', { class: 'muted live', role: 'status', 'data-live': 'connecting' }, 'Connecting…');
  return {
    element,
    on() { element.dataset.live = 'on'; replace(element, `Live · updated ${clock(new Date().toISOString())}`); },
    ended(text) { element.dataset.live = 'ended'; replace(element, text); },
    off(text) { element.dataset.live = 'off'; replace(element, text); },
  };
}

/*
 * Follows `path` (a server stream) for the page's lifetime. When the gateway has no such stream (404) and a
 * fallback is given, runs that instead; any other refusal is shown in `status`.
 */
export function follow(ctx, path, { onMessage, onConnect, resume = false, status, fallback }) {
  stream(path, { signal: ctx.signal, onMessage, onConnect, resume })
    .then((ended) => {
      if (ended && status) status.ended('Ended: nothing more will change.');
    })
    .catch((error) => {
      if (ctx.signal.aborted) return;
      if (error.status === 404 && fallback) fallback();
      else if (status) status.off(`Not live: ${error.message}`);
    });
}

// Every event of the caller's jobs as they happen (WatchJobs); onConnect after each (re)connection.
export function followJobEvents(ctx, { onEvent, onConnect, kind = '', status }) {
  const path = `/v1/jobs:watch${kind ? `?kind=${encodeURIComponent(kind)}` : ''}`;
  follow(ctx, path, { onMessage: (message) => onEvent(message.event || {}), onConnect, status });
}
