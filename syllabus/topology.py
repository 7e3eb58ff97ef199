"""Names of every stream, subject, consumer and bucket, and which service runs which job kind.

All names derive from one namespace so several deployments (or test cases) can share a NATS server.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from syllabus.v1 import job_pb2, options_pb2

# The JobSpec kind of user-defined work: its jobs go to the pool that declared the task's name.
TASK_KIND = "task"


def _kind_services() -> dict[str, str]:
    """Which worker service runs each built-in JobSpec kind: the `service` option on the kind's field."""
    services = {}
    for field in job_pb2.JobSpec.DESCRIPTOR.oneofs_by_name["kind"].fields:
        if field.name == TASK_KIND:
            continue
        service: str = field.GetOptions().Extensions[options_pb2.service]  # type: ignore[index]  # protoc stubs
        if not service:
            raise RuntimeError(f"JobSpec.{field.name} names no service: give it a (syllabus.v1.service) option")
        services[field.name] = service
    return services


KIND_SERVICE: dict[str, str] = _kind_services()
WORKER_SERVICES: tuple[str, ...] = tuple(sorted(set(KIND_SERVICE.values())))


def kinds_of(service: str) -> frozenset[str]:
    return frozenset(kind for kind, runs in KIND_SERVICE.items() if runs == service)


def check_handlers(service: str, kinds: Iterable[str]) -> None:
    """A worker service's handlers must be exactly the kinds its option names: one handler per kind."""
    given, wanted = frozenset(kinds), kinds_of(service)
    if given != wanted:
        missing, extra = sorted(wanted - given), sorted(given - wanted)
        raise RuntimeError(f"the {service} service's handlers do not match its kinds: missing {missing}, extra {extra}")


# Served in this order: a worker takes batch jobs only when no interactive job waits.
PRIORITIES: tuple[str, ...] = ("interactive", "batch")


def priority_name(priority: int) -> str:
    return "batch" if priority == job_pb2.PRIORITY_BATCH else "interactive"


def pool_queue_name(pool: str) -> str:
    """A task pool's queue, named apart from the services' ("pool-acme")."""
    return f"pool-{pool}"


@dataclass(frozen=True)
class WorkQueue:
    """What one kind of worker consumes: a durable pull consumer per priority, each with its filter subjects."""

    name: str
    subjects: dict[str, tuple[str, ...]]
    # A task pool's task names; empty for a service, whose kinds its handlers are.
    tasks: tuple[str, ...] = ()

    def consumer(self, priority: str) -> str:
        return f"{self.name}-{priority}"


@dataclass(frozen=True)
class Topology:
    namespace: str = ""
    # Copies a NATS cluster keeps of every stream and bucket made for it (CommonConfig.stream_replicas).
    replicas: int = 1

    def _stream(self, name: str) -> str:
        return f"{self.namespace.upper()}_{name}" if self.namespace else name

    def _subject(self, root: str) -> str:
        return f"{self.namespace}.{root}" if self.namespace else root

    @property
    def jobs_stream(self) -> str:
        return self._stream("JOBS")

    @property
    def events_stream(self) -> str:
        return self._stream("EVENTS")

    @property
    def scheduled_stream(self) -> str:
        return self._stream("SCHEDULED")

    @property
    def dlq_stream(self) -> str:
        return self._stream("DLQ")

    @property
    def artifacts_bucket(self) -> str:
        return f"{self.namespace}_artifacts" if self.namespace else "artifacts"

    @property
    def jobs_subjects(self) -> str:
        return self._subject("jobs.>")

    @property
    def scheduled_subjects(self) -> str:
        """Where delayed jobs wait as JetStream message schedules until they fire into jobs.*."""
        return self._subject("scheduled.>")

    def job_subject(self, job: job_pb2.Job) -> str:
        """jobs.<service>.<kind>.<priority>, or jobs.tasks.<task name>.<priority> for a task."""
        if job.kind == TASK_KIND:
            return self.task_subject(job.spec.task.name, priority_name(job.options.priority))
        return self._subject(f"jobs.{KIND_SERVICE[job.kind]}.{job.kind}.{priority_name(job.options.priority)}")

    def task_subject(self, name: str, priority: str) -> str:
        # A task name's dots make subject tokens of their own; the priority stays the last token.
        return self._subject(f"jobs.tasks.{name}.{priority}")

    def service_queue(self, service: str) -> WorkQueue:
        return WorkQueue(service, {p: (self._subject(f"jobs.{service}.*.{p}"),) for p in PRIORITIES})

    def pool_queue(self, pool: str, tasks: Iterable[str]) -> WorkQueue:
        names = sorted(tasks)
        subjects = {p: tuple(self.task_subject(name, p) for name in names) for p in PRIORITIES}
        return WorkQueue(pool_queue_name(pool), subjects, tuple(names))

    @property
    def workers_bucket(self) -> str:
        """Which worker processes are alive (syllabus.presence)."""
        return f"{self.namespace}_workers" if self.namespace else "workers"

    @property
    def paused_bucket(self) -> str:
        """Which work queues are paused (syllabus.queuecontrol)."""
        return f"{self.namespace}_paused" if self.namespace else "paused"

    @property
    def tasks_bucket(self) -> str:
        """Which pool serves which task name, with the task's defaults (syllabus.taskregistry)."""
        return f"{self.namespace}_tasks" if self.namespace else "tasks"

    @property
    def keys_bucket(self) -> str:
        """API keys, by id, each stored as a hash with its tenant and scopes (syllabus.apikeys)."""
        return f"{self.namespace}_api_keys" if self.namespace else "api_keys"

    def schedule_subject(self, job_id: str) -> str:
        """Holds a delayed job's JetStream message schedule (header Nats-Schedule: @at <time>)."""
        return self._subject(f"scheduled.at.{job_id}")

    def due_subject(self, job_id: str) -> str:
        """Where the schedule fires; the scheduler relays from here into JOBS."""
        return self._subject(f"scheduled.due.{job_id}")

    @property
    def due_subjects(self) -> str:
        return self._subject("scheduled.due.*")

    def timer_subject(self, schedule_id: str) -> str:
        """Holds a recurring schedule's timer (header Nats-Schedule: a cron expression or @every)."""
        return self._subject(f"scheduled.recurring.{schedule_id}")

    def fired_subject(self, schedule_id: str) -> str:
        """Where a recurring schedule's timer fires; the scheduler makes the jobs from here."""
        return self._subject(f"scheduled.fired.{schedule_id}")

    @property
    def fired_subjects(self) -> str:
        return self._subject("scheduled.fired.*")

    def consumer(self, service: str, priority: str) -> str:
        return self.service_queue(service).consumer(priority)

    def event_subject(self, tenant: str, job_id: str) -> str:
        return self._subject(f"events.{tenant}.{job_id}")

    def job_events_filter(self, job_id: str) -> str:
        return self._subject(f"events.*.{job_id}")

    @property
    def events_subjects(self) -> str:
        return self._subject("events.>")

    def dead_letter_subject(self, job_id: str) -> str:
        return self._subject(f"deadletters.{job_id}")

    @property
    def dead_letter_subjects(self) -> str:
        return self._subject("deadletters.>")

    @property
    def advisories_stream(self) -> str:
        """JetStream's max-deliveries advisories about JOBS' consumers, kept until the scheduler has read them."""
        return self._stream("JOB_ADVISORIES")

    @property
    def max_deliveries_subjects(self) -> str:
        # JetStream's own subject: the namespace is in the stream's name, not in a prefix.
        return f"$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.{self.jobs_stream}.*"

    def cancel_subject(self, job_id: str) -> str:
        """Core NATS (not stored): tells whichever worker runs the job to stop it."""
        return self._subject(f"control.cancel.{job_id}")

    @property
    def cancel_subjects(self) -> str:
        return self._subject("control.cancel.*")
