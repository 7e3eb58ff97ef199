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
  let completed = 0;
  const all = new Promise((resolve) => {
    events.on('completed', () => {
      completed += 1;
      if (completed === count) resolve();
    });
  });
  const cpu = process.cpuUsage();
  const started = process.hrtime.bigint();
  for (let first = 0; first < count; first += CHUNK) {
    const size = Math.min(CHUNK, count - first);
    await jobs.addBulk(Array.from({ length: size }, (_, i) => ({ name: 'noop', data: { i: first + i, PAYLOAD } })));
  }
  await all;
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const used = process.cpuUsage(cpu);
  console.log(JSON.stringify({ seconds, cpu_seconds: (used.user + used.system) / 1e6 }));
  await Promise.all([jobs.close(), events.close()]);
}

async function roundTrips(url, queue, count) {
  const jobs = new Queue(queue, { connection: connection(url) });
  const events = new QueueEvents(queue, { connection: connection(url) });
  await Promise.all([jobs.waitUntilReady(), events.waitUntilReady()]);
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
