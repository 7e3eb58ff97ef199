// Runs a job (submitted and watched, then in one call), writes a course, regenerates its first lesson and uploads
// and deletes a source through the gRPC API, printing each step.
//
//   node example.js [host:port] [--out DIR] [--skip-course]
//
// The address defaults to $SYLLABUS_GRPC_ADDR, else 127.0.0.1:50051. The course document is written to DIR
// (default: the current directory) as course-<id>.pdf, and fetched again as the course job's artifact course.pdf.
// Exits non-zero if anything does not succeed.
'use strict';

const fs = require('node:fs');
const path = require('node:path');
const { SyllabusClient } = require('./client');

function parseArgs(argv) {
  const args = { address: process.env.SYLLABUS_GRPC_ADDR || '127.0.0.1:50051', out: '.', course: true };
  for (let i = 0; i < argv.length; i += 1) {
    if (argv[i] === '--out') {
      args.out = argv[++i];
    } else if (argv[i] === '--skip-course') {
      args.course = false;
    } else {
      args.address = argv[i];
    }
  }
  return args;
}

function describe(event) {
  const progress = event.progress ? ` ${event.progress.percent}% ${event.progress.message}`.trimEnd() : '';
  return `event ${event.sequence} ${event.type} ${event.state}${progress}`;
}

async function runJob(client) {
  const { job, created } = await client.submitJob({
    spec: { summarizeText: { text: 'NATS JetStream keeps messages until they are acknowledged, so no job is lost.' } },
  });
  console.log(`submitted job ${job.id} (${job.state}, created: ${created})`);
  await client.watchJob(job.id, { onEvent: (event) => console.log(describe(event)) });
  const done = await client.getJob(job.id);
  console.log(`job ${done.id} ${done.state}: ${done.result ? done.result.text : ''}`);
  if (done.state !== 'JOB_STATE_SUCCEEDED') {
    throw new Error(`job ${done.id} ended ${done.state}`);
  }
  // Submit and wait for the end in one call.
  const ran = await client.runJob({ spec: { summarizeText: { text: 'One call submits a job and follows it.' } } });
  console.log(`ran job ${ran.job.id}: ${ran.events.map((event) => event.type).join(', ')}: ${ran.end.result.text}`);
  if (ran.end.state !== 'JOB_STATE_SUCCEEDED') {
    throw new Error(`job ${ran.job.id} ended ${ran.end.state}`);
  }
}

async function runCourse(client, out) {
  if (!(await client.servesCourses())) {
    console.log(`CourseService is not served by ${client.address} yet: skipping the course part`);
    return;
  }
  const { course, job } = await client.createCourse({
    course: { prompt: 'An introduction to message queues', modules: 2, level: 'COURSE_LEVEL_BEGINNER' },
  });
  console.log(`created course ${course.id} (job ${job.id})`);
  await client.watchJob(job.id, { onEvent: (event) => console.log(describe(event)) });
  const written = await client.getCourse(course.id);
  console.log(`course ${written.id}: "${written.title}", ${written.modules.length} modules`);
  const document = await client.getCourseDocument(course.id, 'DOCUMENT_FORMAT_PDF');
  const file = path.join(out, `course-${course.id}.pdf`);
  fs.writeFileSync(file, document.data);
  console.log(`document ${document.contentType}, ${document.data.length} bytes, written to ${file}`);
  // The same file is one of the course job's artifacts, downloadable as any job's are.
  const artifact = await client.getJobArtifact(job.id, 'course.pdf');
  const same = artifact.data.equals(document.data) ? 'the same bytes' : 'other bytes';
  console.log(`artifact ${artifact.filename} of job ${job.id}: ${artifact.contentType}, ${artifact.data.length} bytes, ${same}`);
  // Lesson 1 written again, simpler: the course's next version.
  const { job: rewrite } = await client.regenerateCoursePart({
    courseId: course.id,
    moduleIndex: 0,
    part: 'COURSE_PART_LESSON',
    instruction: 'simpler',
  });
  await client.watchJob(rewrite.id);
  const versions = await client.listCourseVersions(course.id);
  console.log(`versions of course ${course.id}: ${versions.map((v) => `${v.version} "${v.change}"`).join(', ')}`);
  // A source to ground courses on: uploaded, listed, deleted.
  const notes = Buffer.from('# Queues\n\nA queue keeps messages until a consumer acknowledges them.\n');
  const source = await client.uploadSource({ filename: 'notes.md', data: notes });
  const listed = (await client.listSources()).some((s) => s.id === source.id);
  console.log(`source ${source.id}: ${source.name}, ${source.passages} passages, listed: ${listed}`);
  await client.deleteSource(source.id);
  const still = (await client.listSources()).some((s) => s.id === source.id);
  console.log(`source ${source.id} deleted, listed: ${still}`);
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const client = new SyllabusClient(args.address);
  try {
    await runJob(client);
    if (args.course) {
      await runCourse(client, args.out);
    }
  } finally {
    client.close();
  }
}

main().catch((error) => {
  console.error(`failed: ${error.message}`);
  process.exit(1);
});
