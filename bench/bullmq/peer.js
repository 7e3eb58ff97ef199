// BullMQ through the scenarios python -m bench runs Syllabus through, on the Valkey the bench starts.
//
//   node peer.js worker URL QUEUE CONCURRENCY   a worker process of no-op jobs, until SIGTERM
//   node peer.js drain URL QUEUE COUNT          add COUNT jobs (addBulk, chunks of 1,000), wait until all completed
//   node peer.js round-trips URL QUEUE COUNT    add one job, wait until it completed; COUNT times in a row
//
// The two client commands print one JSON line: the seconds taken and their own CPU, or each round trip's ms.
// Completions are seen through QueueEvents, BullMQ's own event stream, as Syllabus's are through its events.
'use strict';

const { Queue, QueueEvents, Worker } = require('bullmq');

const PAYLOAD = 'x'.repeat(100); // about the size of the bench's summarize_text input
const CHUNK = 1000;

function connection(url) {
  const parsed = new URL(url);
  return { host: parsed.hostname, port: Number(parsed.port), maxRetriesPerRequest: null };
}

async function worker(url, queue, concurrency) {
  const running = new Worker(queue, async () => null, { connection: connection(url), concurrency });
  await running.waitUntilReady();
  process.on('SIGTERM', () => running.close().then(() => process.exit(0)));
}

async function drain(url, queue, count) {
  const jobs = new Queue(queue, { connection: connection(url) });
  const events = new QueueEvents(queue, { connection: connection(url) });
  await Promise.all([jobs.waitUntilReady(), events.waitUntilReady()]);
  // Completions are heard as they come; the queue's count of completed jobs is also read now and then, since
  // QueueEvents misses what finishes before its first blocking read (see warmUp).
  const before = await jobs.getCompletedCount();
  let completed = 0;
  let poll;
  const all = new Promise((resolve) => {
    events.on('completed', () => {
      completed += 1;
      if (completed === count) resolve();
    });
    poll = setInterval(async () => {
      if ((await jobs.getCompletedCount()) - before >= count) resolve();
    }, 250);
  });
  const cpu = process.cpuUsage();
  const started = process.hrtime.bigint();
  for (let first = 0; first < count; first += CHUNK) {
    const size = Math.min(CHUNK, count - first);
    await jobs.addBulk(Array.from({ length: size }, (_, i) => ({ name: 'noop', data: { i: first + i, PAYLOAD } })));
  }
  await all;
  clearInterval(poll);
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const used = process.cpuUsage(cpu);
  console.log(JSON.stringify({ seconds, cpu_seconds: (used.user + used.system) / 1e6 }));
  await Promise.all([jobs.close(), events.close()]);
}

// QueueEvents reads its stream from the moment its first blocking read starts, which may come after
// waitUntilReady(): a job finished before then is never announced. Warm-up trips, not measured, wait for that.
const WARM_UP_TRIPS = 20;

async function warmUp(jobs, events) {
  for (let i = 0; i < WARM_UP_TRIPS; i += 1) {
    const job = await jobs.add('noop', { i, PAYLOAD });
    try {
      await job.waitUntilFinished(events, 2000);
    } catch (error) {
      if (!(await job.isCompleted())) throw error;
    }
  }
}

async function roundTrips(url, queue, count) {
  const jobs = new Queue(queue, { connection: connection(url) });
  const events = new QueueEvents(queue, { connection: connection(url) });
  await Promise.all([jobs.waitUntilReady(), events.waitUntilReady()]);
  await warmUp(jobs, events);
  const ms = [];
  for (let i = 0; i < count; i += 1) {
    const started = process.hrtime.bigint();
    const job = await jobs.add('noop', { i, PAYLOAD });
    await job.waitUntilFinished(events, 30000);
    ms.push(Number(process.hrtime.bigint() - started) / 1e6);
  }
  console.log(JSON.stringify({ ms }));
  await Promise.all([jobs.close(), events.close()]);
}

const COMMANDS = { worker, drain, 'round-trips': roundTrips };

const [command, url, queue, number] = process.argv.slice(2);
if (!COMMANDS[command] || !url || !queue || !(Number(number) > 0)) {
  console.error('usage: node peer.js worker|drain|round-trips REDIS_URL QUEUE NUMBER');
  process.exit(2);
}
COMMANDS[command](url, queue, Number(number)).catch((error) => {
  console.error(`peer.js ${command}: ${error.message}`);
  process.exit(1);
});
