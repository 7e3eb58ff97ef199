// Dead letters: jobs that failed for good, to inspect, retry or purge.
import { get, post, query } from '../api.js';
import { button, confirmButton, debounce, errorBox, h, replace, table } from '../dom.js';
import { jobKind, shortId, timeCell } from '../format.js';
import { follow, liveStatus } from '../live.js';

function row(letter, retry) {
  const job = letter.job || {};
  const errors = job.errors || [];
  const last = errors[errors.length - 1];
  const link = `#/deadletters/${encodeURIComponent(letter.jobId)}`;
  return h('tr', { 'data-job': letter.jobId },
    h('td', null, h('a', { href: link, class: 'id', title: letter.jobId }, shortId(letter.jobId))),
    h('td', null, jobKind(job)),
    h('td', null, letter.reason),
    h('td', null, last ? `${last.type}: ${last.message}` : ''),
    h('td', null, timeCell(letter.deadLetterTime)),
    h('td', null, h('div', { class: 'actions' },
      h('a', { class: 'button secondary', href: link, 'aria-label': `Inspect or edit ${letter.jobId}` }, 'Inspect'),
      button('Retry', (event) => retry(letter.jobId, event.currentTarget), { 'aria-label': `Retry ${letter.jobId}` }))));
}

export default async function deadLetters(view, ctx) {
  const kind = ctx.query.get('kind') || '';
  const status = liveStatus();
  const list = h('div', { id: 'deadletters' });
  const notice = h('div');
  const kindInput = h('input', { id: 'dl-kind', name: 'kind', value: kind, placeholder: 'any' });
  const filter = h('form', { class: 'filters', onsubmit: (event) => {
    event.preventDefault();
    ctx.go(`/deadletters${kindInput.value.trim() ? `?kind=${encodeURIComponent(kindInput.value.trim())}` : ''}`);
  } }, h('label', { for: 'dl-kind' }, 'Kind', kindInput), h('div', null, h('button', { type: 'submit' }, 'Filter')));
  const purge = confirmButton(kind ? `Purge every ${kind} dead letter` : 'Purge every dead letter', 'Press again to purge for good',
    async () => {
      const answer = await post('/v1/admin/deadletters:purge', { kind });
      replace(notice, h('p', { class: 'notice', role: 'status' }, `${answer.purged || 0} dead letter(s) purged.`));
      await load();
    });
  replace(view, h('h1', null, 'Dead letters'), status.element, filter, notice, list, h('div', { class: 'actions' }, purge));

  const retry = async (jobId, control) => {
    control.disabled = true;
    try {
      await post(`/v1/admin/deadletters/${encodeURIComponent(jobId)}:retry`, {});
      ctx.go(`/jobs/${encodeURIComponent(jobId)}`);
    } catch (error) {
      replace(notice, errorBox(error));
      control.disabled = false;
    }
  };
  const load = async () => {
    const answer = await get(`/v1/admin/deadletters${query({ kind, pageSize: 200 })}`, { signal: ctx.signal });
    replace(list, table(['Job', 'Kind or task', 'Reason', 'Last error', 'Dead-lettered', 'Actions'],
      (answer.deadLetters || []).slice().reverse().map((letter) => row(letter, retry)), { empty: 'No dead letter.' }));
  };
  await load();
  const reload = debounce(() => load().catch(() => {}), 800);
  // The queues' counts change with every job that dies or is retried. Their stream answers once it follows the
  // jobs' events, so the list read again at its first message misses no dead letter after it.
  follow(ctx, '/v1/admin/queues:watch', {
    status,
    onMessage: () => {
      status.on();
      reload();
    },
  });
}
