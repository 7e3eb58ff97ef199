"""OpenTelemetry tracing: one trace from the call that submits a job to every attempt of it and of its children.

- `context`: a job's trace context, stamped on its record when it is built and read back by its attempts;
- `setup`: the process's tracer provider (syllabus.config.TracingConfig);
- `rpc`: the gateway's span for each unary call, parented on the caller's `traceparent` metadata;
- `hook`: the worker hook giving every attempt its span, current while its handler runs.
"""
