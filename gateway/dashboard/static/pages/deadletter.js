// One dead letter: why it died, every error, and a retry as it was or with an edited payload.
import { get, post } from '../api.js';
import { button, errorBox, h, replace, table } from '../dom.js';
import { jobKind, json, timeCell } from '../format.js';

export default async function deadLetter(view, ctx) {
  const id = ctx.params[0];
  const path = `/v1/admin/deadletters/${encodeURIComponent(id)}`;
  const { deadLetter: letter } = await get(path, { signal: ctx.signal });
  const job = letter.job || {};
  const spec = h('textarea', { id: 'dl-spec', name: 'spec', rows: 10, spellcheck: 'false' });
  spec.value = json(job.spec);
  const options = h('textarea', { id: 'dl-options', name: 'options', rows: 6, spellcheck: 'false' });
  options.value = json(job.options || {});
  const notice = h('div');

  const retry = async (edited, control) => {
    const body = {};
    if (edited) {
      try {
        body.spec = JSON.parse(spec.value);
        body.options = JSON.parse(options.value || '{}');
      } catch (error) {
        replace(notice, errorBox(`The edit is not JSON: ${error.message}`));
        return;
      }
    }
    control.disabled = true;
    try {
      await post(`${path}:retry`, body);
      ctx.go(`/jobs/${encodeURIComponent(id)}`);
    } catch (error) {
      replace(notice, errorBox(error));
      control.disabled = false;
    }
  };

  replace(view,
    h('h1', null, 'Dead letter ', h('span', { class: 'id' }, id)),
    h('dl', { class: 'facts' },
      h('dt', null, 'Kind or task'), h('dd', null, jobKind(job)),
      h('dt', null, 'Reason'), h('dd', null, letter.reason),
      h('dt', null, 'Dead-lettered'), h('dd', null, timeCell(letter.deadLetterTime)),
      h('dt', null, 'Subject'), h('dd', { class: 'id' }, letter.subject),
      h('dt', null, 'Job'), h('dd', null, h('a', { href: `#/jobs/${encodeURIComponent(id)}` }, 'the job\'s page'))),
    h('h2', null, 'Errors'),
    table(['Attempt', 'Time', 'Type', 'Message'], (job.errors || []).map((error) => h('tr', null,
      h('td', { class: 'num' }, error.attempt), h('td', null, timeCell(error.time)), h('td', null, error.type),
      h('td', null, error.message)))),
    h('h2', null, 'Retry'),
    notice,
    h('div', { class: 'actions' }, button('Retry as it was', (event) => retry(false, event.currentTarget))),
    h('p', null, 'Or edit the payload (the same kind) and its options, then retry with them:'),
    h('label', { for: 'dl-spec' }, 'Spec (JSON)', spec),
    h('label', { for: 'dl-options' }, 'Options (JSON)', options),
    h('div', { class: 'actions' }, button('Retry with these edits', (event) => retry(true, event.currentTarget))));
}
