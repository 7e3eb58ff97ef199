// Jobs: search by state, kind or task name, labels and creation time; newest or most recently ended first;
// states and progress move live.
import { get, query } from '../api.js';
import { button, debounce, errorBox, h, replace } from '../dom.js';
import { badge, FINAL, jobKind, shortId, stateName, STATES, timeCell } from '../format.js';
import { followJobEvents, liveStatus } from '../live.js';

const KINDS = ['generate_course', 'generate_lesson', 'generate_quiz', 'summarize_text', 'render_document',
  'render_report', 'task'];

function progressCell(job) {
  const progress = job.progress || {};
  const percent = Math.round(Number(progress.percent || 0));
  return h('div', { class: 'progress' },
    h('progress', { max: 100, value: percent, 'aria-label': `${percent}%` }),
    h('span', null, progress.message || job.statusMessage || ''));
}

export function jobRow(job) {
  return h('tr', { 'data-job': job.id, 'data-state': stateName(job.state) },
    h('td', null, h('a', { href: `#/jobs/${encodeURIComponent(job.id)}`, class: 'id', title: job.id }, shortId(job.id))),
    h('td', null, jobKind(job)),
    h('td', { 'data-field': 'state' }, badge(job.state)),
    h('td', { 'data-field': 'progress' }, progressCell(job)),
    h('td', { class: 'num' }, `${job.attempt || 0}/${job.maxAttempts || 0}`),
    h('td', null, timeCell(job.createTime)),
    h('td', null, timeCell(job.endTime)));
}

export const JOB_HEADERS = ['Job', 'Kind or task', 'State', 'Progress', ['Attempt', 'num'], 'Created', 'Ended'];

// "2026-01-31T09:00" (a datetime-local input, local time) as RFC 3339.
function instant(local) {
  if (!local) return '';
  const date = new Date(local);
  return Number.isNaN(date.getTime()) ? '' : date.toISOString();
}

function filtersForm(current, ctx) {
  const field = (name, label, input) => h('label', { for: `f-${name}` }, label, input);
  const state = h('select', { id: 'f-state', name: 'state' }, h('option', { value: '' }, 'any'),
    STATES.map((name) => h('option', { value: name, selected: current.get('state') === name }, name.toLowerCase())));
  const kind = h('input', { id: 'f-kind', name: 'kind', list: 'kinds', value: current.get('kind') || '',
    placeholder: 'e.g. summarize_text or math.stats' });
  const labels = h('input', { id: 'f-labels', name: 'labels', value: current.get('labels') || '', placeholder: 'key=value, …' });
  const after = h('input', { id: 'f-after', name: 'after', type: 'datetime-local', value: current.get('after') || '' });
  const before = h('input', { id: 'f-before', name: 'before', type: 'datetime-local', value: current.get('before') || '' });
  const order = h('select', { id: 'f-order', name: 'order' },
    h('option', { value: '' }, 'newest first'),
    h('option', { value: 'ended', selected: current.get('order') === 'ended' }, 'recently finished first'));
  return h('form', { class: 'filters', role: 'search', onsubmit: (event) => {
    event.preventDefault();
    const next = new URLSearchParams();
    for (const [key, input] of Object.entries({ state, kind, labels, after, before, order })) {
      if (input.value.trim()) next.set(key, input.value.trim());
    }
    const text = next.toString();
    ctx.go(`/jobs${text ? `?${text}` : ''}`);
  } },
  field('state', 'State', state), field('kind', 'Kind or task name', kind),
  h('datalist', { id: 'kinds' }, KINDS.map((name) => h('option', { value: name }))),
  field('labels', 'Labels', labels), field('after', 'Created after', after), field('before', 'Created before', before),
  field('order', 'Order', order), h('div', null, h('button', { type: 'submit' }, 'Search')));
}

function request(current, pageToken) {
  const labels = (current.get('labels') || '').split(',').map((part) => part.trim()).filter(Boolean);
  return query({
    states: current.get('state') ? `JOB_STATE_${current.get('state')}` : '',
    kind: current.get('kind') || '',
    labels,
    createdAfter: instant(current.get('after')),
    createdBefore: instant(current.get('before')),
    orderBy: current.get('order') === 'ended' ? 'JOB_ORDER_END_TIME_DESC' : '',
    pageSize: 50,
    pageToken,
  });
}

function headerRow() {
  return h('tr', null, JOB_HEADERS.map((name) => (Array.isArray(name)
    ? h('th', { scope: 'col', class: name[1] }, name[0]) : h('th', { scope: 'col' }, name))));
}

export default async function jobs(view, ctx) {
  const current = ctx.query;
  const status = liveStatus();
  const summary = h('p', { class: 'muted', id: 'jobs-total' });
  const body = h('tbody');
  const more = h('div', { class: 'actions' });
  const failure = h('div');
  replace(view, h('h1', null, 'Jobs'), filtersForm(current, ctx), status.element, failure, summary,
    h('div', { class: 'table-wrap' }, h('table', { id: 'jobs' }, h('thead', null, headerRow()), body)), more);

  const rows = new Map();
  const listed = new Map();
  const load = async (pageToken = '') => {
    let answer;
    try {
      answer = await get(`/v1/jobs${request(current, pageToken)}`, { signal: ctx.signal });
    } catch (error) {
      if (!ctx.signal.aborted) replace(failure, errorBox(error));
      return;
    }
    replace(failure);
    if (!pageToken) {
      body.replaceChildren();
      rows.clear();
      listed.clear();
    }
    for (const job of answer.jobs || []) {
      const row = jobRow(job);
      rows.set(job.id, row);
      listed.set(job.id, job);
      body.append(row);
    }
    if (!rows.size) body.append(h('tr', null, h('td', { colspan: JOB_HEADERS.length, class: 'muted' }, 'No job matches.')));
    replace(summary, `${rows.size} of ${answer.totalSize || rows.size} job(s)`);
    replace(more, answer.nextPageToken ? button('More', () => load(answer.nextPageToken), { class: 'secondary' }) : null);
  };
  await load();
  status.on();

  // A listed job changes in place from its events; one not listed yet (new, or now matching) reloads the list.
  const reload = debounce(() => load(), 800);
  const wanted = current.get('state');
  const ended = current.get('order') === 'ended';
  followJobEvents(ctx, {
    status,
    onConnect: () => status.on(),
    onEvent: (event) => {
      const known = listed.get(event.jobId);
      if (!known) {
        const state = stateName(event.state);
        if ((!wanted || wanted === state) && (!ended || FINAL.has(state))) reload();
        return;
      }
      const job = { ...known, state: event.state || known.state, attempt: event.attempt || known.attempt };
      if (event.progress) job.progress = event.progress;
      if (event.terminal) job.endTime = event.time;
      listed.set(job.id, job);
      const fresh = jobRow(job);
      rows.get(job.id).replaceWith(fresh);
      rows.set(job.id, fresh);
    },
  });
}
