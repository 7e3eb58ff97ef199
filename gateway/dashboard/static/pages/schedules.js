// Schedules: each with its timing and next runs; create, pause, resume, trigger, delete.
import { get, post, remove } from '../api.js';
import { button, confirmButton, debounce, errorBox, h, replace, table } from '../dom.js';
import { badge, json, timeCell, when } from '../format.js';
import { followJobEvents, liveStatus } from '../live.js';

const EXAMPLE = { summarizeText: { text: 'NATS JetStream keeps messages until a worker acknowledges them.' } };

function timing(schedule) {
  if (schedule.cron) return `cron ${schedule.cron}${schedule.timeZone ? ` (${schedule.timeZone})` : ' (UTC)'}`;
  return `every ${schedule.interval || '?'}`;
}

function kindOf(spec) {
  const [kind] = Object.keys(spec || {});
  return kind === 'task' ? spec.task.name : kind || '';
}

function createForm(onCreated) {
  const notice = h('div');
  const id = h('input', { id: 's-id', name: 'id', maxlength: 64, placeholder: 'generated when empty', pattern: '[A-Za-z0-9_-]*' });
  const every = h('select', { id: 's-timing', name: 'timing' }, h('option', { value: 'interval' }, 'every (interval)'),
    h('option', { value: 'cron' }, 'cron expression'));
  const value = h('input', { id: 's-value', name: 'value', required: true, placeholder: '10s, 5m, 1h or 0 9 * * 1-5', value: '1h' });
  const zone = h('input', { id: 's-zone', name: 'zone', placeholder: 'UTC', maxlength: 64 });
  const description = h('input', { id: 's-description', name: 'description', maxlength: 1024 });
  const spec = h('textarea', { id: 's-spec', name: 'spec', rows: 5, spellcheck: 'false' });
  spec.value = json(EXAMPLE);
  const submit = h('button', { type: 'submit' }, 'Create the schedule');
  return h('form', { class: 'grid', id: 'schedule-form', onsubmit: async (event) => {
    event.preventDefault();
    let parsed;
    try {
      parsed = JSON.parse(spec.value);
    } catch (error) {
      replace(notice, errorBox(`The job is not JSON: ${error.message}`));
      return;
    }
    const schedule = { spec: parsed, description: description.value.trim() };
    if (id.value.trim()) schedule.id = id.value.trim();
    if (every.value === 'cron') {
      schedule.cron = value.value.trim();
      if (zone.value.trim()) schedule.timeZone = zone.value.trim();
    } else {
      const match = /^(\d+(?:\.\d+)?)\s*(s|m|h|d)?$/.exec(value.value.trim());
      const unit = { s: 1, m: 60, h: 3600, d: 86400 }[(match && match[2]) || 's'];
      schedule.interval = match ? `${Number(match[1]) * unit}s` : value.value.trim();
    }
    submit.disabled = true;
    try {
      await post('/v1/schedules', schedule);
      replace(notice);
      onCreated();
    } catch (error) {
      replace(notice, errorBox(error));
    } finally {
      submit.disabled = false;
    }
  } },
  h('label', { for: 's-id' }, 'Id', id), h('label', { for: 's-timing' }, 'Timing', every),
  h('label', { for: 's-value' }, 'Interval or cron', value), h('label', { for: 's-zone' }, 'Time zone (cron)', zone),
  h('label', { for: 's-description', class: 'wide' }, 'Description', description),
  h('label', { for: 's-spec', class: 'wide' }, 'The job each firing makes (a JobSpec as JSON)', spec),
  h('div', { class: 'wide' }, notice, submit));
}

export default async function schedules(view, ctx) {
  const status = liveStatus();
  const list = h('div', { id: 'schedules' });
  const notice = h('div');
  const act = async (control, action) => {
    control.disabled = true;
    try {
      await action();
      replace(notice);
      await load();
    } catch (error) {
      replace(notice, errorBox(error));
      control.disabled = false;
    }
  };
  const row = (schedule) => {
    const base = `/v1/schedules/${encodeURIComponent(schedule.id)}`;
    const lastRun = (schedule.recentRuns || [])[0];
    return h('tr', { 'data-schedule': schedule.id },
      h('th', { scope: 'row', class: 'id' }, schedule.id),
      h('td', null, timing(schedule)),
      h('td', null, kindOf(schedule.spec)),
      h('td', null, schedule.paused ? h('span', { class: 'badge paused' }, 'paused') : when(schedule.nextRunTime)),
      h('td', null, lastRun ? [timeCell(lastRun.fireTime), ' ', lastRun.jobId
        ? h('a', { href: `#/jobs/${encodeURIComponent(lastRun.jobId)}` }, badge(lastRun.state)) : `skipped: ${lastRun.skipped}`] : 'never'),
      h('td', null, schedule.description || ''),
      h('td', null, h('div', { class: 'actions' },
        button(schedule.paused ? 'Resume' : 'Pause', (event) => act(event.currentTarget,
          () => post(`${base}:${schedule.paused ? 'resume' : 'pause'}`)), { class: 'secondary',
          'aria-label': `${schedule.paused ? 'Resume' : 'Pause'} schedule ${schedule.id}` }),
        button('Run now', (event) => act(event.currentTarget, () => post(`${base}:trigger`)),
          { class: 'secondary', 'aria-label': `Run schedule ${schedule.id} now` }),
        confirmButton('Delete', 'Press again to delete', () => act(list, () => remove(base)),
          { 'aria-label': `Delete schedule ${schedule.id}` }))));
  };
  const load = async () => {
    const answer = await get('/v1/schedules', { signal: ctx.signal });
    replace(list, table(['Schedule', 'Timing', 'Job', 'Next run', 'Last run', 'Description', 'Actions'],
      (answer.schedules || []).map(row), { empty: 'No schedule yet.' }));
  };
  replace(view, h('h1', null, 'Schedules'), status.element, notice, list, h('h2', null, 'New schedule'), createForm(load));
  await load();
  status.on();
  // A firing makes a job: its first event is the moment next and last runs change.
  const reload = debounce(() => load().catch(() => {}), 1000);
  followJobEvents(ctx, { status, onEvent: (event) => { if (/QUEUED|SCHEDULED|SUCCEEDED|FAILED/.test(event.type || '')) reload(); } });
}
