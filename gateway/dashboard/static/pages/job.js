// One job: its facts, live event timeline, attempts with their workers, errors, input and result, cancel.
import { download, get, post, settings } from '../api.js';
import { button, debounce, errorBox, h, replace, table } from '../dom.js';
import { badge, between, eventName, FINAL, jobKind, json, span, stateName, timeCell, when } from '../format.js';
import { follow, liveStatus } from '../live.js';

function facts(job) {
  const labels = Object.entries((job.options && job.options.labels) || {}).map(([k, v]) => `${k}=${v}`).join(', ');
  const course = job.spec && job.spec.generateCourse && job.spec.generateCourse.courseId;
  const progress = job.progress || {};
  const rows = [
    ['State', h('span', { id: 'job-state' }, badge(job.state))],
    ['Progress', h('span', { id: 'job-progress' }, `${Math.round(Number(progress.percent || 0))}% ${progress.message || ''}`)],
    job.statusMessage ? ['Waiting because', job.statusMessage] : null,
    ['Kind or task', jobKind(job)],
    ['Attempt', `${job.attempt || 0} of ${job.maxAttempts || 0}`],
    ['Created', timeCell(job.createTime)],
    ['Started', timeCell(job.startTime)],
    ['Ended', timeCell(job.endTime)],
    job.traceId ? ['Trace id', trace(job.traceId)] : null,
    job.tenant ? ['Tenant', job.tenant] : null,
    labels ? ['Labels', labels] : null,
    job.parentId ? ['Parent', h('a', { href: `#/jobs/${encodeURIComponent(job.parentId)}`, class: 'id' }, job.parentId)] : null,
    job.scheduleId ? ['Schedule', job.scheduleId] : null,
    course ? ['Course', h('a', { href: `#/courses/${encodeURIComponent(course)}` }, 'read the course')] : null,
    job.stallCount ? ['Stalls', job.stallCount] : null,
    job.cancelRequested ? ['Cancel', 'requested'] : null,
  ].filter(Boolean);
  return h('dl', { class: 'facts' }, rows.map(([term, value]) => [h('dt', null, term), h('dd', null, value)]));
}

// The trace id, a link to the trace where the gateway is told where traces are shown (SYLLABUS_DASHBOARD_TRACE_URL).
function trace(traceId) {
  const shown = h('span', { class: 'id', id: 'trace-id' }, traceId);
  settings().then(({ traceUrl }) => {
    if (traceUrl) {
      const href = traceUrl.replaceAll('{trace_id}', encodeURIComponent(traceId));
      shown.replaceChildren(h('a', { href, rel: 'noopener noreferrer' }, traceId));
    }
  });
  return shown;
}

function attempts(job) {
  return table(['Attempt', 'Worker', 'Host', 'Started', 'Ended', 'Took', 'Outcome'], (job.attempts || []).map((attempt) =>
    h('tr', null,
      h('td', { class: 'num' }, attempt.attempt),
      h('td', { class: 'id' }, attempt.workerId || ''),
      h('td', null, attempt.host || ''),
      h('td', null, timeCell(attempt.startTime)),
      h('td', null, timeCell(attempt.endTime)),
      h('td', null, span(between(attempt.startTime, attempt.endTime))),
      h('td', null, attempt.endTime ? badge(attempt.outcome) : 'running'))), { empty: 'No attempt has started.' });
}

function errors(job) {
  return table(['Attempt', 'Time', 'Type', 'Message', 'Permanent'], (job.errors || []).map((error) =>
    h('tr', null, h('td', { class: 'num' }, error.attempt), h('td', null, timeCell(error.time)),
      h('td', null, error.type), h('td', null, error.message), h('td', null, error.permanent ? 'yes' : 'no'))),
  { empty: 'No error.' });
}

function artifacts(job) {
  const files = (job.result && job.result.artifacts) || [];
  if (!files.length) return null;
  return h('div', { class: 'actions' }, files.map((file) => button(`Download ${file.name}`, () =>
    download(`/v1/jobs/${encodeURIComponent(job.id)}/artifacts/${encodeURIComponent(file.name)}`, file.name),
  { class: 'secondary' })));
}

function eventItem(event) {
  const parts = [h('time', { datetime: event.time }, when(event.time)), ' ', h('strong', null, eventName(event.type))];
  if (event.attempt) parts.push(` · attempt ${event.attempt}`);
  if (event.progress && (event.progress.message || event.progress.percent)) {
    parts.push(` · ${Math.round(Number(event.progress.percent || 0))}% ${event.progress.message || ''}`);
  }
  if (event.error) parts.push(` · ${event.error.type || 'error'}: ${event.error.message || ''}`);
  if (event.retryDelay) parts.push(` · next attempt in ${event.retryDelay}`);
  return h('li', { 'data-event': eventName(event.type) }, parts);
}

export default async function jobPage(view, ctx) {
  const id = ctx.params[0];
  const path = `/v1/jobs/${encodeURIComponent(id)}`;
  const status = liveStatus();
  const top = h('div');
  const timeline = h('ol', { class: 'timeline', id: 'timeline' });
  const body = h('div');
  replace(view, h('h1', null, 'Job ', h('span', { class: 'id' }, id)), status.element, top,
    h('h2', null, 'Events'), timeline, body);

  const show = (job) => {
    const final = FINAL.has(stateName(job.state));
    const actions = h('div', { class: 'actions' },
      final ? null : button('Cancel job', async (event) => {
        event.currentTarget.disabled = true;
        try {
          show((await post(`${path}:cancel`, { reason: 'canceled from the dashboard' })).job);
        } catch (error) {
          top.append(errorBox(error));
        }
      }, { class: 'danger' }),
      stateName(job.state) === 'FAILED' && ctx.admin
        ? h('a', { class: 'button secondary', href: `#/deadletters/${encodeURIComponent(job.id)}` }, 'Dead letter: retry or edit') : null,
      h('a', { href: `#/jobs?kind=${encodeURIComponent(jobKind(job))}` }, 'Jobs of this kind'));
    replace(top, facts(job), actions);
    const result = job.result && Object.keys(job.result).length ? job.result : null;
    replace(body,
      h('h2', null, 'Attempts'), attempts(job),
      h('h2', null, 'Errors'), errors(job),
      h('h2', null, 'Input'), h('pre', { id: 'job-input' }, json({ spec: job.spec, options: job.options })),
      h('h2', null, 'Result'), result ? [artifacts(job), h('pre', { id: 'job-result' }, json(result))] : h('p', { class: 'muted' }, 'None yet.'));
  };
  show((await get(path, { signal: ctx.signal })).job);
  status.on();
  const reload = debounce(async () => {
    try {
      show((await get(path, { signal: ctx.signal })).job);
    } catch (error) {
      if (!ctx.signal.aborted) top.prepend(errorBox(error));
    }
  }, 300);
  follow(ctx, `${path}:watch`, {
    status,
    resume: true,
    onMessage: (message) => {
      timeline.append(eventItem(message.event || {}));
      reload();
    },
  });
}
