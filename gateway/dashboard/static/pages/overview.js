// Overview: every queue with its counts, live; throughput, queue depth and job durations over the last hour.
import { get, post } from '../api.js';
import { barChart, lineChart } from '../charts.js';
import { button, debounce, errorBox, h, replace, table, throttle } from '../dom.js';
import { clock, count, seconds, span } from '../format.js';
import { follow, followJobEvents, liveStatus } from '../live.js';

function totals(queue) {
  const sum = { waiting: 0, running: 0, retrying: 0, scheduled: 0, waitingForChildren: 0, succeeded: 0, failed: 0, canceled: 0 };
  for (const counts of queue.counts || []) for (const key of Object.keys(sum)) sum[key] += count(counts[key]);
  return sum;
}

function queueRow(queue, minutes, onToggle) {
  const sum = totals(queue);
  const paused = Boolean(queue.paused);
  const rate = (value) => `${value} (${(value / minutes).toFixed(1)}/min)`;
  return h('tr', { 'data-queue': queue.queue },
    h('th', { scope: 'row' }, queue.queue),
    h('td', null, h('span', { class: `badge ${paused ? 'paused' : 'serving'}` }, paused ? 'paused' : 'serving')),
    h('td', { class: 'num', 'data-field': 'workers' }, count(queue.workers)),
    h('td', { class: 'num', 'data-field': 'waiting' }, sum.waiting),
    h('td', { class: 'num', 'data-field': 'running' }, sum.running),
    h('td', { class: 'num' }, sum.retrying),
    h('td', { class: 'num' }, sum.scheduled),
    h('td', { class: 'num' }, sum.waitingForChildren),
    h('td', { class: 'num', 'data-field': 'succeeded' }, rate(sum.succeeded)),
    h('td', { class: 'num' }, rate(sum.failed)),
    h('td', { class: 'num', 'data-field': 'oldest' }, span(seconds(queue.oldestWaitingAge)) || '—'),
    h('td', null, button(paused ? 'Resume' : 'Pause', (event) => onToggle(queue.queue, paused, event.currentTarget),
      { class: paused ? '' : 'secondary', 'aria-label': `${paused ? 'Resume' : 'Pause'} queue ${queue.queue}` })));
}

const HEADERS = ['Queue', 'State', ['Workers', 'num'], ['Waiting', 'num'], ['Running', 'num'], ['Retrying', 'num'],
  ['Scheduled', 'num'], ['Waiting for children', 'num'], ['Succeeded', 'num'], ['Failed', 'num'],
  ['Oldest waiting', 'num'], 'Action'];

function activityCharts(activity) {
  const buckets = activity.buckets || [];
  const labels = buckets.map((bucket) => clock(bucket.startTime));
  const series = (key) => buckets.map((bucket) => count(bucket[key]));
  // Fixed bounds (the last one open-ended, without leSeconds): shown up to the longest run there is.
  const durations = activity.durations || [];
  let shown = durations.length;
  while (shown > 1 && !count(durations[shown - 1].count)) shown -= 1;
  const bars = durations.slice(0, Math.max(shown, Math.min(durations.length, 6))).map((bucket, index, all) => ({
    label: Number.isFinite(Number(bucket.leSeconds))
      ? `≤${span(Number(bucket.leSeconds))}`
      : `>${span(Number(all[index - 1]?.leSeconds || 0))}`,
    value: count(bucket.count),
  }));
  const quantiles = ['p50', 'p95', 'p99'].filter((key) => activity[key] !== undefined)
    .map((key) => `${key} ${span(seconds(activity[key]))}`).join(' · ');
  return [
    h('section', { class: 'card' }, h('h2', null, 'Throughput per minute'),
      lineChart('Jobs started, succeeded and failed per minute over the last hour', labels, [
        { name: 'succeeded', values: series('succeeded') },
        { name: 'failed', values: series('failed') },
        { name: 'started', values: series('started') },
      ])),
    h('section', { class: 'card' }, h('h2', null, 'Queue depth'),
      lineChart('Jobs waiting at the end of each minute over the last hour', labels, [
        { name: 'created', values: series('created') },
        { name: 'canceled', values: series('canceled') },
        { name: 'waiting', values: series('waiting') },
      ])),
    h('section', { class: 'card' }, h('h2', null, 'Job durations'),
      barChart('How long jobs that ended in the last hour ran', bars),
      h('p', { class: 'muted' }, quantiles || 'No job ended in the window.')),
  ];
}

export default async function overview(view, ctx) {
  const status = liveStatus();
  const queues = h('div', { id: 'queues' });
  const charts = h('div', { class: 'cards', id: 'activity' });
  replace(view, h('h1', null, 'Overview'), status.element, h('h2', null, 'Queues'), queues,
    h('h2', null, 'The last hour'), charts);

  let last = null;
  const show = (stats) => {
    last = stats;
    const minutes = Math.max((seconds(stats.window) || 3600) / 60, 1);
    const rows = (stats.queues || []).map((queue) => queueRow(queue, minutes, toggle));
    replace(queues, table(HEADERS, rows, { empty: 'No queue yet.' }),
      h('p', { class: 'muted' }, `Counts of finished jobs are over the last ${span(minutes * 60)}.`));
    status.on();
  };
  const toggle = async (queue, paused, control) => {
    control.disabled = true;
    try {
      const answer = await post(`/v1/admin/queues/${encodeURIComponent(queue)}:${paused ? 'resume' : 'pause'}`);
      if (answer.queue && last) show({ ...last, queues: last.queues.map((q) => (q.queue === queue ? answer.queue : q)) });
    } catch (error) {
      queues.prepend(errorBox(error));
      control.disabled = false;
    }
  };
  const loadActivity = throttle(async () => {
    try {
      replace(charts, activityCharts(await get('/v1/admin/activity', { signal: ctx.signal })));
    } catch (error) {
      if (!ctx.signal.aborted) replace(charts, h('p', { class: 'muted' }, `No activity figures: ${error.message}`));
    }
  }, 5000);

  show(await get('/v1/admin/queues', { signal: ctx.signal }));
  loadActivity();
  follow(ctx, '/v1/admin/queues:watch', {
    status,
    onMessage: (message) => {
      show(message.queues ? message : message.stats || message);
      loadActivity();
    },
    // A gateway without the queue stream: the stats again after job events, a second apart at most.
    fallback: () => {
      const reload = debounce(async () => {
        show(await get('/v1/admin/queues', { signal: ctx.signal }));
        loadActivity();
      }, 1000);
      followJobEvents(ctx, { onEvent: reload, status });
    },
  });
}
