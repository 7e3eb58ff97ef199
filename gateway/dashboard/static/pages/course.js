// One course: live progress through outline, lessons, quizzes and rendering; then the course to read, its
// documents to download, and what each step cost.
import { download, get } from '../api.js';
import { button, debounce, errorBox, h, replace, table } from '../dom.js';
import { badge, count, FINAL, stateName, usd } from '../format.js';
import { follow, followJobEvents, liveStatus } from '../live.js';
import { markdown } from '../markdown.js';

// Label, format, file extension; a course offers the ones it was rendered in.
const FORMATS = [['PDF', 'DOCUMENT_FORMAT_PDF', 'pdf'], ['HTML', 'DOCUMENT_FORMAT_HTML', 'html'],
  ['Markdown', 'DOCUMENT_FORMAT_MARKDOWN', 'md'], ['EPUB', 'DOCUMENT_FORMAT_EPUB', 'epub'],
  ['SCORM 1.2', 'DOCUMENT_FORMAT_SCORM_12', 'scorm12.zip'], ['SCORM 2004', 'DOCUMENT_FORMAT_SCORM_2004', 'scorm2004.zip'],
  ['QTI 2.1', 'DOCUMENT_FORMAT_QTI_21', 'qti21.zip'], ['Moodle XML', 'DOCUMENT_FORMAT_MOODLE_XML', 'moodle.xml'],
  ['GIFT', 'DOCUMENT_FORMAT_GIFT', 'gift.txt']];

function steps(course, job) {
  const modules = course.modules || [];
  const lessons = modules.filter((module) => module.lesson && module.lesson.title).length;
  const quizzes = modules.filter((module) => module.quiz && (module.quiz.questions || []).length).length;
  const done = stateName(job.state) === 'SUCCEEDED';
  const rendered = (course.documents || []).length > 0;
  const list = [
    ['Outline', modules.length > 0],
    [`Lessons ${lessons}/${modules.length || '?'}`, modules.length > 0 && lessons === modules.length],
    [`Quizzes ${quizzes}/${modules.length || '?'}`, modules.length > 0 && quizzes === modules.length],
    ['Rendering', rendered || done],
    ['Done', done],
  ];
  const current = list.findIndex(([, finished]) => !finished);
  return h('ol', { class: 'steps', id: 'course-steps', 'aria-label': 'Progress' }, list.map(([label, finished], index) =>
    h('li', { class: finished ? 'done' : index === current ? 'current' : '', 'aria-current': index === current ? 'step' : undefined },
      finished ? `✓ ${label}` : label)));
}

// Where a cited passage is: "handbook.pdf, page 12".
function place(citation) {
  return [citation.sourceName || citation.sourceId, citation.locator].filter(Boolean).join(', ');
}

function question(item, index) {
  const choices = item.choices || [];
  const answer = Number(item.answerIndex || 0);
  return h('li', { class: 'question' }, h('p', null, item.text),
    h('ol', { type: 'A', class: 'choices' }, choices.map((choice) => h('li', null, choice))),
    h('details', { class: 'answer' }, h('summary', null, `Show the answer to question ${index + 1}`),
      h('p', { class: 'revealed' }, h('strong', null, `Answer: ${String.fromCharCode(65 + answer)}. ${choices[answer] || ''}`)),
      item.explanation ? h('p', null, item.explanation) : null,
      item.citation ? h('p', { class: 'muted' }, `Source: ${place(item.citation)}`) : null));
}

// The quality findings its repair did not fix: what a reviewer should look at.
function openFindings(module) {
  return (module.findings || []).filter((finding) => !finding.repaired);
}

function review(module) {
  const open = openFindings(module);
  if (!open.length) return null;
  return h('div', { class: 'notice findings' }, h('span', { class: 'badge review' }, 'needs review'),
    h('ul', null, open.map((finding) => h('li', null, `${finding.part} (${finding.check}): ${finding.message}`))));
}

function moduleSection(module) {
  const lesson = module.lesson || {};
  const quiz = module.quiz || {};
  return h('section', { class: 'module card', 'data-module': module.index || 0 },
    h('h2', null, `${Number(module.index || 0) + 1}. ${module.title || ''}`),
    review(module),
    module.summary ? h('p', { class: 'muted' }, module.summary) : null,
    (module.objectives || []).length ? h('ul', null, module.objectives.map((item) => h('li', null, item))) : null,
    lesson.title ? h('article', { class: 'lesson' }, h('h3', { class: 'lesson-title' }, lesson.title),
      markdown(lesson.bodyMarkdown),
      (lesson.keyPoints || []).length ? [h('h4', null, 'Key points'), h('ul', null, lesson.keyPoints.map((p) => h('li', null, p)))] : null,
      (lesson.citations || []).length ? [h('h4', null, 'Sources'),
        h('ul', null, [...new Set(lesson.citations.map(place))].map((p) => h('li', null, p)))] : null)
      : h('p', { class: 'muted' }, 'Lesson being written…'),
    (quiz.questions || []).length ? [h('h3', null, 'Quiz'), h('ol', { class: 'quiz' }, quiz.questions.map(question))]
      : h('p', { class: 'muted' }, 'Quiz being written…'));
}

function reviewSummary(course) {
  const modules = (course.modules || []).filter((module) => openFindings(module).length);
  if (!modules.length) return null;
  return h('p', { class: 'notice', id: 'course-review' }, h('span', { class: 'badge review' }, 'needs review'),
    ` ${count(modules.length)} module${modules.length > 1 ? 's' : ''} failed quality checks that one repair did not fix.`);
}

function costs(course) {
  const rows = (course.costs || []).map((item) => h('tr', null,
    h('td', null, item.kind), h('td', { class: 'id' }, h('a', { href: `#/jobs/${encodeURIComponent(item.jobId)}` }, item.jobId)),
    h('td', null, [item.provider, item.model].filter(Boolean).join(' / ')),
    h('td', { class: 'num' }, count(item.inputTokens)), h('td', { class: 'num' }, count(item.outputTokens)),
    h('td', { class: 'num' }, usd(item.estimatedCostUsd))));
  rows.push(h('tr', null, h('th', { scope: 'row', colspan: 3 }, 'Total'),
    h('td', { class: 'num' }, count(course.inputTokens)), h('td', { class: 'num' }, count(course.outputTokens)),
    h('td', { class: 'num' }, usd(course.estimatedCostUsd))));
  return table(['Step', 'Job', 'Provider / model', ['Input tokens', 'num'], ['Output tokens', 'num'], ['Estimated cost', 'num']], rows);
}

export default async function coursePage(view, ctx) {
  const id = ctx.params[0];
  const path = `/v1/courses/${encodeURIComponent(id)}`;
  const status = liveStatus();
  const head = h('div');
  const body = h('div');
  replace(view, h('h1', { id: 'course-title' }, 'Course'), status.element, head, body);
  let course = (await get(path, { signal: ctx.signal })).course;
  let job = (await get(`/v1/jobs/${encodeURIComponent(course.jobId)}`, { signal: ctx.signal })).job;
  const notice = h('div');

  const show = () => {
    const final = FINAL.has(stateName(job.state));
    const progress = job.progress || {};
    replace(view.querySelector('#course-title'), course.title || course.prompt);
    replace(head,
      h('div', { class: 'actions' }, h('span', { id: 'course-state' }, badge(job.state)),
        h('progress', { max: 100, value: Math.round(Number(progress.percent || 0)), 'aria-label': 'Course progress' }),
        h('span', { id: 'course-message' }, final ? '' : progress.message || ''),
        h('a', { href: `#/jobs/${encodeURIComponent(course.jobId)}` }, 'the course job')),
      steps(course, job),
      course.offlineDraft ? h('p', { class: 'notice' }, 'An offline draft: written without a model.') : null,
      reviewSummary(course),
      course.description ? h('p', null, course.description) : null,
      (course.sources || []).length ? h('p', { id: 'course-sources' }, `Sources: ${course.sources.map((source) => source.name).join(', ')}`) : null,
      (course.documents || []).length ? h('div', { class: 'actions', id: 'downloads' }, FORMATS
        .filter(([, format]) => course.documents.some((document) => document.format === format))
        .map(([label, format, extension]) =>
        button(`Download ${label}`, async () => {
          try {
            await download(`${path}/document?format=${format}`, `course-${id}.${extension}`);
          } catch (error) {
            replace(notice, errorBox(error));
          }
        }, { class: 'secondary' }))) : null,
      notice,
      stateName(job.state) === 'FAILED' ? errorBox((job.errors || []).map((e) => e.message).pop() || 'The course failed.') : null);
    replace(body, (course.modules || []).map(moduleSection),
      h('h2', null, 'Tokens and cost per step'), costs(course));
    if (final) status.ended(stateName(job.state) === 'SUCCEEDED' ? 'Finished.' : 'Ended.');
  };
  show();
  if (FINAL.has(stateName(job.state))) return;
  status.on();

  const reload = debounce(async () => {
    try {
      [course, job] = await Promise.all([
        get(path, { signal: ctx.signal }).then((answer) => answer.course),
        get(`/v1/jobs/${encodeURIComponent(course.jobId)}`, { signal: ctx.signal }).then((answer) => answer.job),
      ]);
      show();
    } catch (error) {
      if (!ctx.signal.aborted) replace(notice, errorBox(error));
    }
  }, 300);
  // The course job's own events (its progress messages), and those of the lesson, quiz and render jobs it fans out.
  follow(ctx, `/v1/jobs/${encodeURIComponent(course.jobId)}:watch`, { resume: true, onMessage: reload });
  followJobEvents(ctx, { onEvent: (event) => { if (event.parentId === course.jobId) reload(); }, onConnect: reload });
}
