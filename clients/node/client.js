// A small Node.js client for the Syllabus gRPC API.
//
// The service definitions are read at run time from the repository's own proto/ and third_party/proto/
// folders, so this client can never drift from the contracts: there is no copy and no generated code.
'use strict';

const fs = require('node:fs');
const path = require('node:path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const ROOT = path.resolve(__dirname, '..', '..');
const INCLUDE_DIRS = [path.join(ROOT, 'proto'), path.join(ROOT, 'third_party', 'proto')];
const FILES = [
  'syllabus/v1/job_service.proto',
  'syllabus/v1/admin_service.proto',
  'syllabus/v1/course_service.proto',
  'syllabus/v1/worker_service.proto',
];
// Transient failures a watch resumes after, from the last event it saw.
const RESUMABLE = new Set([grpc.status.UNAVAILABLE, grpc.status.INTERNAL]);

let loaded;

/** The syllabus.v1 package: service constructors and message types, loaded once. */
function syllabusV1() {
  if (!loaded) {
    const definition = protoLoader.loadSync(FILES, {
      includeDirs: INCLUDE_DIRS,
      // JSON-like objects as protojson spells them: lowerCamelCase fields, enum names, 64-bit ints as strings.
      keepCase: false,
      enums: String,
      longs: String,
      defaults: true,
      oneofs: true,
    });
    loaded = grpc.loadPackageDefinition(definition).syllabus.v1;
  }
  return loaded;
}

/**
 * An interceptor adding the caller's credentials to every call: `token` (a JWT or an API key) as a bearer token,
 * `tenant` as the tenant an admin acts for. Undefined when there is nothing to add.
 */
function credentialsInterceptor({ token, tenant } = {}) {
  if (!token && !tenant) {
    return undefined;
  }
  return (options, nextCall) =>
    new grpc.InterceptingCall(nextCall(options), {
      start(metadata, listener, next) {
        if (token) {
          metadata.set('authorization', `Bearer ${token}`);
        }
        if (tenant) {
          metadata.set('x-syllabus-tenant', tenant);
        }
        next(metadata, listener);
      },
    });
}

/** Client options carrying the interceptor above, to spread into a stub's options. */
function withCredentials(identity) {
  const interceptor = credentialsInterceptor(identity);
  return interceptor ? { interceptors: [interceptor] } : {};
}

/**
 * TLS channel credentials from PEM files: `ca` verifies the gateway's certificate (default: Node's public CAs),
 * `cert` and `key` are the client certificate a gateway with mutual TLS asks for. Pass as `credentials`.
 */
function tlsCredentials({ ca, cert, key } = {}) {
  const read = (file) => (file ? fs.readFileSync(file) : null);
  return grpc.credentials.createSsl(read(ca), read(key), read(cert));
}

function deadline(seconds) {
  return new Date(Date.now() + seconds * 1000);
}

class SyllabusClient {
  /**
   * @param {string} address host:port of the gateway's gRPC server, e.g. "127.0.0.1:50051"
   * @param {{credentials?: grpc.ChannelCredentials, timeoutSeconds?: number, token?: string, tenant?: string}} [options]
   *   credentials: tlsCredentials({ca, cert, key}) for a gateway with TLS; default plaintext;
   *   token: a JWT or an API key, sent as `authorization: Bearer <token>` when the gateway requires one;
   *   tenant: the tenant an admin acts for.
   */
  constructor(address, options = {}) {
    const v1 = syllabusV1();
    const credentials = options.credentials || grpc.credentials.createInsecure();
    this.address = address;
    this.timeoutSeconds = options.timeoutSeconds || 30;
    const identity = withCredentials(options);
    this.jobs = new v1.JobService(address, credentials, identity);
    // The three stubs share one channel.
    const shared = { ...identity, channelOverride: this.jobs.getChannel() };
    this.admin = new v1.AdminService(address, credentials, shared);
    this.courses = new v1.CourseService(address, credentials, shared);
  }

  unary(stub, method, request) {
    return new Promise((resolve, reject) => {
      stub[method](request, { deadline: deadline(this.timeoutSeconds) }, (error, response) =>
        error ? reject(error) : resolve(response),
      );
    });
  }

  /** Submit a job: `{spec: {summarizeText: {text}}, options: {...}}`; resolves with {job, created}. */
  submitJob(request) {
    return this.unary(this.jobs, 'SubmitJob', request);
  }

  /**
   * Submit a job and follow it to its end in one call (RunJob), calling onSubmitted({job, created}) once the job
   * is accepted and onEvent for each event as it arrives. Resolves with {job, created, end, events}: `end` is the
   * terminal event (SUCCEEDED with the result, FAILED with the error, or CANCELED). The answer comes within the
   * client's timeoutSeconds, as submitJob's does (else it rejects with code DEADLINE_EXCEEDED); the end has no
   * deadline of its own. A stream dropped once the job was accepted is followed on with watchJob after the last
   * event seen; one dropped before rejects, as submitJob does.
   */
  async runJob(request, { onEvent = () => {}, onSubmitted = () => {} } = {}) {
    let submitted = null;
    const events = [];
    try {
      await new Promise((resolve, reject) => {
        const call = this.jobs.RunJob(request);
        const answering = setTimeout(() => {
          const error = new Error(`the gateway at ${this.address} did not answer within ${this.timeoutSeconds}s`);
          error.code = grpc.status.DEADLINE_EXCEEDED;
          reject(error);
          call.cancel();
        }, this.timeoutSeconds * 1000);
        call.on('data', (response) => {
          if (response.submitted) {
            clearTimeout(answering);
            submitted = response.submitted;
            onSubmitted(submitted);
            return;
          }
          events.push(response.event);
          onEvent(response.event);
        });
        call.on('error', (error) => {
          clearTimeout(answering);
          reject(error);
        });
        call.on('end', () => {
          clearTimeout(answering);
          resolve();
        });
      });
    } catch (error) {
      if (submitted === null || !RESUMABLE.has(error.code)) {
        throw error;
      }
    }
    if (submitted === null) {
      throw new Error('the gateway ended the run before answering');
    }
    if (!events.some((event) => event.terminal)) {
      const afterSequence = events.length ? events[events.length - 1].sequence : '0';
      events.push(...(await this.watchJob(submitted.job.id, { onEvent, afterSequence })));
    }
    const end = events.filter((event) => event.terminal).pop();
    return { job: submitted.job, created: submitted.created, end, events };
  }

  async getJob(jobId) {
    return (await this.unary(this.jobs, 'GetJob', { jobId })).job;
  }

  async cancelJob(jobId, reason = '') {
    return (await this.unary(this.jobs, 'CancelJob', { jobId, reason })).job;
  }

  /**
   * Every event of a job until its terminal one, calling onEvent for each as it arrives. A dropped stream is
   * resumed after the last event seen (the server replays from there), so no event is lost or repeated.
   * Resolves with the events.
   */
  async watchJob(jobId, { onEvent = () => {}, afterSequence = '0', attempts = 5 } = {}) {
    const events = [];
    let after = afterSequence;
    for (let attempt = 1; ; attempt += 1) {
      try {
        await new Promise((resolve, reject) => {
          const call = this.jobs.WatchJob({ jobId, afterSequence: after });
          call.on('data', (response) => {
            events.push(response.event);
            after = response.event.sequence;
            onEvent(response.event);
          });
          call.on('error', reject);
          call.on('end', resolve);
        });
        return events;
      } catch (error) {
        if (!RESUMABLE.has(error.code) || attempt >= attempts) {
          throw error;
        }
      }
    }
  }

  /**
   * A file the job stored (see JobResult.artifacts): {contentType, data (a Buffer), filename}, the file name
   * being the one the gateway gives it in its content-disposition.
   */
  getJobArtifact(jobId, name) {
    return new Promise((resolve, reject) => {
      let filename = name;
      const call = this.jobs.GetJobArtifact(
        { jobId, name },
        { deadline: deadline(this.timeoutSeconds) },
        (error, body) => (error ? reject(error) : resolve({ contentType: body.contentType, data: body.data, filename })),
      );
      call.on('metadata', (metadata) => {
        const [disposition] = metadata.get('content-disposition');
        const match = /filename="([^"]*)"/.exec(disposition || '');
        filename = match ? match[1] : name;
      });
    });
  }

  createCourse(request) {
    return this.unary(this.courses, 'CreateCourse', request);
  }

  async getCourse(courseId) {
    return (await this.unary(this.courses, 'GetCourse', { courseId })).course;
  }

  /** The rendered document: {contentType, data (a Buffer)}; format e.g. 'DOCUMENT_FORMAT_PDF'. */
  getCourseDocument(courseId, format = 'DOCUMENT_FORMAT_PDF') {
    return this.unary(this.courses, 'GetCourseDocument', { courseId, format });
  }

  /**
   * Write one lesson or quiz of a finished course again: `{courseId, moduleIndex, part: 'COURSE_PART_LESSON' or
   * 'COURSE_PART_QUIZ', instruction, expectedVersion}`; resolves with {course, job}, the job writing the part.
   */
  regenerateCoursePart(request) {
    return this.unary(this.courses, 'RegenerateCoursePart', request);
  }

  /** Hand edits, each a new course version: resolve with {course, renderJob}. */
  updateLesson(request) {
    return this.unary(this.courses, 'UpdateLesson', request);
  }

  updateQuestion(request) {
    return this.unary(this.courses, 'UpdateQuestion', request);
  }

  reorderModules(request) {
    return this.unary(this.courses, 'ReorderModules', request);
  }

  removeModule(request) {
    return this.unary(this.courses, 'RemoveModule', request);
  }

  /** A new module, its lesson and quiz written by jobs: resolves with {course, jobs}. */
  addModule(request) {
    return this.unary(this.courses, 'AddModule', request);
  }

  /** The course's versions, oldest first: [{version, change, updateTime}] (version as a string: an int64). */
  async listCourseVersions(courseId) {
    return (await this.unary(this.courses, 'ListCourseVersions', { courseId })).versions;
  }

  /** Upload a file to ground courses on: {filename, data (a Buffer), contentType?}; resolves with the source. */
  async uploadSource({ filename, data, contentType = '' }) {
    return (await this.unary(this.courses, 'UploadSource', { filename, data, contentType })).source;
  }

  /** The source and its first passages: {source, passages}. */
  getSource(sourceId) {
    return this.unary(this.courses, 'GetSource', { sourceId });
  }

  async listSources() {
    return (await this.unary(this.courses, 'ListSources', {})).sources;
  }

  /** Remove the source's file, text and record; courses grounded on it keep their citations. */
  async deleteSource(sourceId) {
    await this.unary(this.courses, 'DeleteSource', { sourceId });
  }

  /** True when the gateway serves CourseService (a gateway older than it answers UNIMPLEMENTED). */
  async servesCourses() {
    try {
      await this.unary(this.courses, 'ListCourses', { pageSize: 1 });
      return true;
    } catch (error) {
      if (error.code === grpc.status.UNIMPLEMENTED) {
        return false;
      }
      throw error;
    }
  }

  close() {
    this.jobs.close();
  }
}

module.exports = { SyllabusClient, syllabusV1, withCredentials, tlsCredentials, grpc };
