// Workers: every worker process alive, live from the gateway's worker stream.
import { get } from '../api.js';
import { h, replace, table } from '../dom.js';
import { clock, shortId, when } from '../format.js';
import { follow, liveStatus } from '../live.js';

function workerRow(worker) {
  const pool = worker.queue.startsWith('pool-');
  const jobs = worker.jobIds || [];
  return h('tr', { 'data-worker': worker.workerId, 'data-pid': worker.pid },
    h('td', { class: 'id', title: worker.workerId }, shortId(worker.workerId)),
    h('td', null, worker.queue),
    h('td', null, pool ? `task pool ${worker.queue.slice(5)}` : 'service'),
    h('td', null, worker.host),
    h('td', { class: 'num', 'data-field': 'pid' }, worker.pid),
    h('td', { class: 'num' }, worker.concurrency),
    h('td', null, `${jobs.length}`, jobs.length ? ': ' : '',
      jobs.map((id, i) => [i ? ', ' : '', h('a', { href: `#/jobs/${encodeURIComponent(id)}`, class: 'id' }, shortId(id))])),
    h('td', null, h('time', { datetime: worker.heartbeatTime }, clock(worker.heartbeatTime))),
    h('td', null, when(worker.startTime)),
    h('td', null, (worker.kinds || []).join(', ')),
    h('td', null, worker.version));
}

const HEADERS = ['Worker', 'Queue', 'Runs as', 'Host', ['PID', 'num'], ['Concurrency', 'num'], 'Jobs in hand',
  'Last heartbeat', 'Started', 'Kinds or tasks', 'Version'];

export default async function workers(view, ctx) {
  const status = liveStatus();
  const list = h('div', { id: 'workers' });
  replace(view, h('h1', null, 'Workers'), status.element, list,
    h('p', { class: 'muted' }, 'A worker that stops leaves the list at once; one killed outright leaves once its ',
      'heartbeat is 15 s old.'));
  const show = (answer) => {
    const rows = (answer.workers || []).slice().sort((a, b) => a.queue.localeCompare(b.queue) || a.pid - b.pid);
    replace(list, table(HEADERS, rows.map(workerRow), { empty: 'No worker is running.' }));
    status.on();
  };
  show(await get('/v1/admin/workers', { signal: ctx.signal }));
  follow(ctx, '/v1/admin/workers:watch', {
    status,
    onMessage: show,
    fallback: () => status.off('Not live: this gateway has no worker stream. Reload the page to see changes.'),
  });
}
