"""Logging set-up shared by every process: text for people, JSON lines for machines.

Every line logged while a worker handles a job says which: the worker sets the attempt's fields once
(`log_attempt`, a context variable, so they hold in the attempt's task and in whatever it starts), and the
handler's filter adds them to each record (JSON: fields of their own; text: `job=... kind=...` appended).
"""

from __future__ import annotations

import json
import logging
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import NamedTuple

from syllabus import redaction
from syllabus.config import CommonConfig
from syllabus.v1 import job_pb2


class AttemptFields(NamedTuple):
    job_id: str
    kind: str
    attempt: int
    tenant: str
    worker: str
    trace_id: str


_attempt: ContextVar[AttemptFields | None] = ContextVar("syllabus_attempt", default=None)


def log_attempt(job: job_pb2.Job, worker: str) -> None:
    """The job and attempt the current task (and what it starts) works on, for every line it logs."""
    _attempt.set(AttemptFields(job.id, job.kind, job.attempt, job.tenant, worker, job.trace_id))


class AttemptFilter(logging.Filter):
    """Puts the current attempt's fields on each record, as `record.attempt_fields` (None outside an attempt)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.attempt_fields = _attempt.get()
        return True


def _fields(record: logging.LogRecord) -> AttemptFields | None:
    fields: AttemptFields | None = getattr(record, "attempt_fields", None)
    return fields


class _TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = _fields(record)
        if fields is None:
            return line
        return (
            f"{line} job={fields.job_id} kind={fields.kind} attempt={fields.attempt} tenant={fields.tenant} "
            f"worker={fields.worker} trace_id={fields.trace_id or '-'}"
        )


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = _fields(record)
        if fields is not None:
            entry |= fields._asdict()
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


# Libraries that narrate their routine work at INFO (fontTools: a hundred lines per PDF's font subset; httpx:
# every model request): at the default level only their warnings are worth a person's attention.
CHATTY_LIBRARIES = ("fontTools", "fpdf", "httpx", "httpcore", "google_genai", "markdown_it", "urllib3")


def setup_logging(config: CommonConfig, process: str) -> None:
    redaction.install(config.secrets)
    handler = logging.StreamHandler(sys.stderr)
    if config.log_format == "json":
        formatter: logging.Formatter = _JsonFormatter()
    else:
        formatter = _TextFormatter(f"%(asctime)s {process:<9} %(levelname)-7s %(name)s: %(message)s")
    handler.setFormatter(redaction.RedactingFormatter(formatter))
    handler.addFilter(AttemptFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(config.log_level.upper())
    # nats-py logs every reconnect attempt at error level; ours say what matters.
    logging.getLogger("nats").setLevel(logging.CRITICAL)
    for name in CHATTY_LIBRARIES:
        logging.getLogger(name).setLevel(logging.NOTSET if config.log_level == "debug" else logging.WARNING)
