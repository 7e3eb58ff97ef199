import datetime

from buf.validate import validate_pb2 as _validate_pb2
from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from syllabus.v1 import job_pb2 as _job_pb2
from syllabus.v1 import options_pb2 as _options_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class WorkRequest(_message.Message):
    __slots__ = ("hello", "progress", "outcome", "drain")
    HELLO_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    DRAIN_FIELD_NUMBER: _ClassVar[int]
    hello: WorkerHello
    progress: AttemptProgress
    outcome: AttemptOutcome
    drain: WorkerDrain
    def __init__(self, hello: _Optional[_Union[WorkerHello, _Mapping]] = ..., progress: _Optional[_Union[AttemptProgress, _Mapping]] = ..., outcome: _Optional[_Union[AttemptOutcome, _Mapping]] = ..., drain: _Optional[_Union[WorkerDrain, _Mapping]] = ...) -> None: ...

class WorkerHello(_message.Message):
    __slots__ = ("pool", "tasks", "concurrency", "description", "host", "pid")
    POOL_FIELD_NUMBER: _ClassVar[int]
    TASKS_FIELD_NUMBER: _ClassVar[int]
    CONCURRENCY_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    HOST_FIELD_NUMBER: _ClassVar[int]
    PID_FIELD_NUMBER: _ClassVar[int]
    pool: str
    tasks: _containers.RepeatedCompositeFieldContainer[TaskDefinition]
    concurrency: int
    description: str
    host: str
    pid: int
    def __init__(self, pool: _Optional[str] = ..., tasks: _Optional[_Iterable[_Union[TaskDefinition, _Mapping]]] = ..., concurrency: _Optional[int] = ..., description: _Optional[str] = ..., host: _Optional[str] = ..., pid: _Optional[int] = ...) -> None: ...

class TaskDefinition(_message.Message):
    __slots__ = ("name", "max_attempts", "timeout")
    NAME_FIELD_NUMBER: _ClassVar[int]
    MAX_ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    name: str
    max_attempts: int
    timeout: _duration_pb2.Duration
    def __init__(self, name: _Optional[str] = ..., max_attempts: _Optional[int] = ..., timeout: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class WorkerDrain(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class AttemptProgress(_message.Message):
    __slots__ = ("attempt_id", "percent", "message")
    ATTEMPT_ID_FIELD_NUMBER: _ClassVar[int]
    PERCENT_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    attempt_id: str
    percent: float
    message: str
    def __init__(self, attempt_id: _Optional[str] = ..., percent: _Optional[float] = ..., message: _Optional[str] = ...) -> None: ...

class AttemptOutcome(_message.Message):
    __slots__ = ("attempt_id", "result_json", "result", "failure", "deferral")
    ATTEMPT_ID_FIELD_NUMBER: _ClassVar[int]
    RESULT_JSON_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    FAILURE_FIELD_NUMBER: _ClassVar[int]
    DEFERRAL_FIELD_NUMBER: _ClassVar[int]
    attempt_id: str
    result_json: str
    result: _job_pb2.JobResult
    failure: AttemptFailure
    deferral: AttemptDeferral
    def __init__(self, attempt_id: _Optional[str] = ..., result_json: _Optional[str] = ..., result: _Optional[_Union[_job_pb2.JobResult, _Mapping]] = ..., failure: _Optional[_Union[AttemptFailure, _Mapping]] = ..., deferral: _Optional[_Union[AttemptDeferral, _Mapping]] = ...) -> None: ...

class AttemptFailure(_message.Message):
    __slots__ = ("type", "message", "permanent", "retry_after")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    PERMANENT_FIELD_NUMBER: _ClassVar[int]
    RETRY_AFTER_FIELD_NUMBER: _ClassVar[int]
    type: str
    message: str
    permanent: bool
    retry_after: _duration_pb2.Duration
    def __init__(self, type: _Optional[str] = ..., message: _Optional[str] = ..., permanent: _Optional[bool] = ..., retry_after: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class AttemptDeferral(_message.Message):
    __slots__ = ("delay", "reason")
    DELAY_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    delay: _duration_pb2.Duration
    reason: str
    def __init__(self, delay: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., reason: _Optional[str] = ...) -> None: ...

class WorkResponse(_message.Message):
    __slots__ = ("welcome", "assignment", "cancel")
    WELCOME_FIELD_NUMBER: _ClassVar[int]
    ASSIGNMENT_FIELD_NUMBER: _ClassVar[int]
    CANCEL_FIELD_NUMBER: _ClassVar[int]
    welcome: WorkerWelcome
    assignment: Assignment
    cancel: AttemptCancel
    def __init__(self, welcome: _Optional[_Union[WorkerWelcome, _Mapping]] = ..., assignment: _Optional[_Union[Assignment, _Mapping]] = ..., cancel: _Optional[_Union[AttemptCancel, _Mapping]] = ...) -> None: ...

class WorkerWelcome(_message.Message):
    __slots__ = ("worker_id",)
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    worker_id: str
    def __init__(self, worker_id: _Optional[str] = ...) -> None: ...

class Assignment(_message.Message):
    __slots__ = ("attempt_id", "job_id", "task", "input_json", "input", "attempt", "max_attempts", "labels", "deadline", "traceparent")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ATTEMPT_ID_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    TASK_FIELD_NUMBER: _ClassVar[int]
    INPUT_JSON_FIELD_NUMBER: _ClassVar[int]
    INPUT_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    MAX_ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    DEADLINE_FIELD_NUMBER: _ClassVar[int]
    TRACEPARENT_FIELD_NUMBER: _ClassVar[int]
    attempt_id: str
    job_id: str
    task: str
    input_json: str
    input: _job_pb2.Task
    attempt: int
    max_attempts: int
    labels: _containers.ScalarMap[str, str]
    deadline: _timestamp_pb2.Timestamp
    traceparent: str
    def __init__(self, attempt_id: _Optional[str] = ..., job_id: _Optional[str] = ..., task: _Optional[str] = ..., input_json: _Optional[str] = ..., input: _Optional[_Union[_job_pb2.Task, _Mapping]] = ..., attempt: _Optional[int] = ..., max_attempts: _Optional[int] = ..., labels: _Optional[_Mapping[str, str]] = ..., deadline: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., traceparent: _Optional[str] = ...) -> None: ...

class AttemptCancel(_message.Message):
    __slots__ = ("attempt_id", "reason")
    ATTEMPT_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    attempt_id: str
    reason: str
    def __init__(self, attempt_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...
