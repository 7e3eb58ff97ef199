// Courses: a form that starts one from a prompt, and the courses there are.
import { get, post } from '../api.js';
import { errorBox, h, replace, table } from '../dom.js';
import { timeCell } from '../format.js';

function form(ctx) {
  const notice = h('div');
  const field = (id, label, input, wide) => h('label', { for: id, class: wide ? 'wide' : undefined }, label, input);
  const prompt = h('textarea', { id: 'c-prompt', name: 'prompt', required: true, minlength: 3, maxlength: 4000, rows: 3,
    placeholder: 'e.g. An introduction to message queues' });
  const modules = h('input', { id: 'c-modules', name: 'modules', type: 'number', min: 1, max: 20, value: '4' });
  const audience = h('input', { id: 'c-audience', name: 'audience', maxlength: 200, placeholder: 'e.g. Python developers' });
  const level = h('select', { id: 'c-level', name: 'level' }, h('option', { value: '' }, 'any'),
    ['BEGINNER', 'INTERMEDIATE', 'ADVANCED'].map((name) => h('option', { value: `COURSE_LEVEL_${name}` }, name.toLowerCase())));
  const provider = h('select', { id: 'c-provider', name: 'provider' }, h('option', { value: '' }, 'the gateway\'s default'),
    ['offline', 'gemini', 'openai'].map((name) => h('option', { value: name }, name)));
  const model = h('input', { id: 'c-model', name: 'model', maxlength: 128, placeholder: 'the provider\'s default' });
  const submit = h('button', { type: 'submit' }, 'Write the course');
  return h('form', { class: 'grid', id: 'course-form', onsubmit: async (event) => {
    event.preventDefault();
    const course = { prompt: prompt.value.trim(), modules: Number(modules.value || 0), audience: audience.value.trim() };
    if (level.value) course.level = level.value;
    if (provider.value || model.value.trim()) course.model = { provider: provider.value, model: model.value.trim() };
    submit.disabled = true;
    try {
      const answer = await post('/v1/courses', { course });
      ctx.go(`/courses/${encodeURIComponent(answer.course.id)}`);
    } catch (error) {
      replace(notice, errorBox(error));
      submit.disabled = false;
    }
  } },
  field('c-prompt', 'What the course is about', prompt, true),
  field('c-modules', 'Modules', modules), field('c-audience', 'Audience', audience), field('c-level', 'Level', level),
  field('c-provider', 'Provider', provider), field('c-model', 'Model', model),
  h('div', { class: 'wide' }, notice, submit));
}

export default async function courses(view, ctx) {
  const list = h('div', { id: 'courses' });
  replace(view, h('h1', null, 'Courses'), h('h2', null, 'New course'), form(ctx), h('h2', null, 'Courses'), list);
  const answer = await get('/v1/courses?pageSize=100', { signal: ctx.signal });
  replace(list, table(['Course', 'Modules', 'Documents', 'Created'], (answer.courses || []).map((course) => h('tr', null,
    h('td', null, h('a', { href: `#/courses/${encodeURIComponent(course.id)}` }, course.title || course.prompt)),
    h('td', { class: 'num' }, (course.modules || []).length || ''),
    h('td', null, (course.documents || []).length ? 'ready' : 'being written'),
    h('td', null, timeCell(course.createTime)))), { empty: 'No course yet.' }));
}
