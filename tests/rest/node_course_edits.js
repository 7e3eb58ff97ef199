// The Node client's course edits and sources, each called once against a gateway, for
// tests/rest/test_courses_e2e.py: writes a 2-module course, then prints one line per call.
'use strict';

const { SyllabusClient } = require('../../clients/node/client');

async function main() {
  const client = new SyllabusClient(process.argv[2]);
  try {
    const { course, job } = await client.createCourse({ course: { prompt: 'Queues and streams', modules: 2 } });
    await client.watchJob(job.id);
    const courseId = course.id;
    const bodyMarkdown = '# Streams\n\nA stream keeps every message.\n';
    const lesson = await client.updateLesson({ courseId, moduleIndex: 1, bodyMarkdown });
    console.log(`updateLesson: version ${lesson.course.version}, render job ${lesson.renderJob.kind}`);
    const question = {
      text: 'What does a stream keep?',
      choices: ['Every message', 'Nothing'],
      answerIndex: 0,
      explanation: 'It keeps them all.',
    };
    const expectedVersion = lesson.course.version;
    const edited = await client.updateQuestion({
      courseId,
      moduleIndex: 1,
      questionIndex: 0,
      question,
      expectedVersion,
    });
    const text = edited.course.modules[1].quiz.questions[0].text;
    console.log(`updateQuestion: version ${edited.course.version}, "${text}"`);
    const reordered = await client.reorderModules({ courseId, order: [1, 0] });
    const first = reordered.course.modules[0].lesson.bodyMarkdown.split('\n')[0];
    console.log(`reorderModules: version ${reordered.course.version}, first "${first}"`);
    const added = await client.addModule({ courseId, title: 'Consumers', objectives: ['Name a consumer'] });
    await Promise.all(added.jobs.map((one) => client.watchJob(one.id)));
    console.log(`addModule: version ${added.course.version}, ${added.jobs.length} jobs`);
    const removed = await client.removeModule({ courseId, moduleIndex: 2 });
    console.log(`removeModule: version ${removed.course.version}, ${removed.course.modules.length} modules`);
    const data = Buffer.from('Consumers acknowledge messages.');
    const source = await client.uploadSource({ filename: 'notes.txt', data });
    const got = await client.getSource(source.id);
    console.log(`getSource: ${got.source.name}, ${got.passages.length} passages, "${got.passages[0].text}"`);
    await client.deleteSource(source.id);
    try {
      await client.getSource(source.id);
    } catch (error) {
      console.log(`getSource after deleteSource: ${error.code}`);
    }
  } finally {
    client.close();
  }
}

main().catch((error) => {
  console.error(`failed: ${error.message}`);
  process.exit(1);
});
