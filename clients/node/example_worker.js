// An example task pool in Node.js: `node example_worker.js [host:port] [--pool NAME]`.
//
//   strings.reverse {"text": "..."} -> {"text": "...", "length": N}; {"flaky": true} fails its first attempt
//                 (retried), a missing "text" fails for good (dead-lettered; retry it with an edited input).
//   timer.wait      {"seconds": N} waits, reporting progress each second, and stops when canceled.
'use strict';

const { TaskWorker, PermanentError, RetryableError } = require('./worker');

const args = process.argv.slice(2);
const poolAt = args.indexOf('--pool');
const pool = poolAt >= 0 ? args.splice(poolAt, 2)[1] : 'node-example';
const address = args[0] || '127.0.0.1:50051';

const worker = new TaskWorker(address, { pool, concurrency: 4 });

worker.task('strings.reverse', { maxAttempts: 3, timeoutSeconds: 30 }, async (ctx, input) => {
  if (typeof input.text !== 'string') {
    throw new PermanentError('the input needs a "text" string', { type: 'InvalidInput' });
  }
  if (input.flaky && ctx.attempt === 1) {
    throw new RetryableError('flaky on its first attempt, as asked', { type: 'Flaky' });
  }
  ctx.progress(50, 'reversing');
  return { text: [...input.text].reverse().join(''), length: input.text.length, attempt: ctx.attempt };
});

worker.task('timer.wait', { maxAttempts: 1, timeoutSeconds: 3600 }, async (ctx, input) => {
  const seconds = Number(input.seconds) || 1;
  for (let second = 0; second < seconds; second += 1) {
    ctx.progress((100 * second) / seconds, `second ${second} of ${seconds}`);
    await new Promise((resolve, reject) => {
      const timer = setTimeout(resolve, 1000);
      ctx.signal.addEventListener('abort', () => {
        clearTimeout(timer);
        reject(ctx.signal.reason);
      });
    });
  }
  return { waited: seconds };
});

worker.run().then(
  () => console.error(`syllabus worker ${pool}: stopped`),
  (error) => {
    console.error(`syllabus worker ${pool}: ${error.code !== undefined ? `${error.code} ` : ''}${error.details || error.message}`);
    process.exitCode = 1;
  },
);
