// A task worker for Syllabus in Node.js: your handlers, on one WorkerService.Work stream to a gateway.
//
// The gateway runs the worker runtime for the stream (leases, heartbeats, time limits, retries with backoff,
// dead letters), so this file is only the protocol: say hello, run each assignment, send its outcome.
//
//   const { TaskWorker, PermanentError } = require('./worker');
//   const worker = new TaskWorker('127.0.0.1:50051', { pool: 'node-tasks', concurrency: 8 });
//   worker.task('text.reverse', { maxAttempts: 3, timeoutSeconds: 30 }, async (ctx, input) => {
//     await ctx.progress(50, 'reversing');
//     return { text: [...input.text].reverse().join('') };
//   });
//   await worker.run();   // until worker.stop() (SIGTERM and SIGINT call it)
'use strict';

const os = require('node:os');
const { syllabusV1, withCredentials, grpc } = require('./client');

// A handler's error that is retried with backoff (the default for any error a handler throws).
class RetryableError extends Error {
  /** @param {string} message @param {{type?: string, retryAfterSeconds?: number}} [options] */
  constructor(message, { type, retryAfterSeconds } = {}) {
    super(message);
    this.type = type || this.constructor.name;
    this.retryAfterSeconds = retryAfterSeconds;
  }
}

// A handler's error that is not retried: the job is dead-lettered at once.
class PermanentError extends RetryableError {}

// Not a failure: the attempt is handed back uncounted and offered again after `delaySeconds`.
class Defer extends Error {
  constructor(delaySeconds, reason) {
    super(reason);
    this.delaySeconds = delaySeconds;
  }
}

function duration(seconds) {
  const whole = Math.floor(seconds);
  return { seconds: String(whole), nanos: Math.round((seconds - whole) * 1e9) };
}

/** What a handler gets beside its input. `signal` aborts when the attempt is taken away (cancel, time limit). */
class TaskContext {
  constructor(assignment, send, signal) {
    this.jobId = assignment.jobId;
    this.task = assignment.task;
    this.attempt = assignment.attempt;
    this.maxAttempts = assignment.maxAttempts;
    this.labels = assignment.labels;
    this.signal = signal;
    this._attemptId = assignment.attemptId;
    this._send = send;
  }

  /** Stored on the job and streamed to its watchers. */
  progress(percent, message = '') {
    this._send({ progress: { attemptId: this._attemptId, percent, message } });
  }
}

function outcomeOf(attemptId, value, error) {
  if (error === undefined) {
    if (typeof value === 'string') {
      return { attemptId, result: { text: value } };
    }
    return { attemptId, resultJson: JSON.stringify(value === undefined || value === null ? {} : value) };
  }
  if (error instanceof Defer) {
    return { attemptId, deferral: { delay: duration(error.delaySeconds), reason: error.message } };
  }
  const failure = {
    type: (error && (error.type || error.name)) || 'Error',
    message: String((error && error.message) || error).slice(0, 2000),
    permanent: error instanceof PermanentError,
  };
  if (error instanceof RetryableError && error.retryAfterSeconds !== undefined) {
    failure.retryAfter = duration(error.retryAfterSeconds);
  }
  return { attemptId, failure };
}

class TaskWorker {
  /**
   * @param {string} address host:port of the gateway's gRPC server
   * @param {{pool: string, concurrency?: number, credentials?: grpc.ChannelCredentials, token?: string,
   *          log?: (line: string) => void, graceSeconds?: number}} options
   *   token: a JWT or an API key with the `work` scope, when the gateway requires credentials.
   */
  constructor(
    address,
    { pool, concurrency = 10, credentials, token, log = (line) => console.error(line), graceSeconds = 20 },
  ) {
    this.address = address;
    this._identity = withCredentials({ token });
    this.pool = pool;
    this.concurrency = concurrency;
    this.graceSeconds = graceSeconds;
    this._credentials = credentials || grpc.credentials.createInsecure();
    this._log = log;
    this._tasks = new Map();
    this._inHand = new Map(); // attemptId -> AbortController
    this._stopping = false;
    this._call = null;
  }

  /** Serve `name` with `handler(ctx, input)`; input is the task's JSON (a typed input in its "@type" form). */
  task(name, { maxAttempts = 0, timeoutSeconds } = {}, handler) {
    const definition = { name, maxAttempts };
    if (timeoutSeconds !== undefined) {
      definition.timeout = duration(timeoutSeconds);
    }
    this._tasks.set(name, { definition, handler });
    return this;
  }

  /**
   * Serve until stop(). A lost gateway is reconnected to (its attempts were already handed back by the runtime);
   * a refused hello (a bad task name, a name another pool serves) rejects with the gateway's error.
   */
  async run() {
    const onSignal = () => this.stop();
    process.once('SIGTERM', onSignal);
    process.once('SIGINT', onSignal);
    try {
      let backoff = 0.5;
      while (!this._stopping) {
        const welcomed = await this._session();
        if (this._stopping) {
          break;
        }
        backoff = welcomed ? 0.5 : Math.min(backoff * 2, 10);
        this._log(`syllabus worker ${this.pool}: gateway ${this.address} lost; reconnecting in ${backoff}s`);
        await new Promise((resolve) => setTimeout(resolve, backoff * 1000));
      }
    } finally {
      process.removeListener('SIGTERM', onSignal);
      process.removeListener('SIGINT', onSignal);
    }
  }

  /** Take nothing more; attempts in hand finish (or are handed back after graceSeconds); run() then resolves. */
  stop() {
    if (this._stopping) {
      return;
    }
    this._stopping = true;
    if (this._call) {
      this._send({ drain: {} });
      this._grace = setTimeout(() => {
        for (const [attemptId, controller] of this._inHand) {
          controller.abort();
          this._send({ outcome: outcomeOf(attemptId, undefined, new Defer(0, 'the worker stopped before it finished')) });
        }
        this._inHand.clear();
      }, this.graceSeconds * 1000);
      this._grace.unref();
    }
  }

  _send(message) {
    if (this._call) {
      this._call.write(message);
    }
  }

  // One stream, until it ends. Resolves with whether the gateway welcomed it; rejects if it refused the hello.
  _session() {
    const v1 = syllabusV1();
    const client = new v1.WorkerService(this.address, this._credentials, this._identity);
    return new Promise((resolve, reject) => {
      let welcomed = false;
      const call = client.Work();
      this._call = call;
      call.on('data', (response) => this._receive(response, () => (welcomed = true)));
      call.on('error', (error) => {
        this._abandon();
        client.close();
        if (!welcomed && error.code !== grpc.status.UNAVAILABLE) {
          reject(error);
        } else {
          resolve(welcomed);
        }
      });
      call.on('end', () => {
        this._abandon();
        client.close();
        resolve(welcomed);
      });
      call.write({
        hello: {
          pool: this.pool,
          tasks: [...this._tasks.values()].map((task) => task.definition),
          concurrency: this.concurrency,
          description: `node ${process.version} on ${os.hostname()} pid ${process.pid}`,
          host: os.hostname(),
          pid: process.pid,
        },
      });
      if (this._stopping) {
        this._send({ drain: {} });
      }
    });
  }

  _receive(response, welcome) {
    if (response.welcome) {
      welcome();
      this._log(`syllabus worker ${this.pool}: connected to ${this.address} as ${response.welcome.workerId}`);
    } else if (response.assignment) {
      this._start(response.assignment);
    } else if (response.cancel) {
      const controller = this._inHand.get(response.cancel.attemptId);
      if (controller) {
        this._inHand.delete(response.cancel.attemptId);
        controller.abort(new Error(`attempt stopped: ${response.cancel.reason}`));
      }
    }
  }

  async _start(assignment) {
    const { attemptId } = assignment;
    const controller = new AbortController();
    this._inHand.set(attemptId, controller);
    const send = (message) => {
      // Once the attempt is taken away nothing more of it is sent (the gateway would drop it anyway).
      if (this._inHand.get(attemptId) === controller) {
        this._send(message);
      }
    };
    let value;
    let error;
    try {
      const task = this._tasks.get(assignment.task);
      if (!task) {
        throw new Defer(1, `this worker does not serve task ${assignment.task}`);
      }
      value = await task.handler(new TaskContext(assignment, send, controller.signal), JSON.parse(assignment.inputJson));
    } catch (caught) {
      error = caught === undefined ? new Error('undefined thrown') : caught;
    }
    send({ outcome: outcomeOf(attemptId, value, error) });
    this._inHand.delete(attemptId);
    if (this._stopping && this._inHand.size === 0 && this._call) {
      this._call.end();
    }
  }

  // The stream is gone: the gateway's runtime has handed every attempt back, so their handlers are stopped.
  _abandon() {
    for (const controller of this._inHand.values()) {
      controller.abort(new Error('the connection to the gateway was lost'));
    }
    this._inHand.clear();
    this._call = null;
    clearTimeout(this._grace);
  }
}

module.exports = { TaskWorker, TaskContext, RetryableError, PermanentError, Defer };
