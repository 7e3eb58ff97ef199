import datetime

from buf.validate import validate_pb2 as _validate_pb2
from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.protobuf import any_pb2 as _any_pb2
from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from syllabus.v1 import course_pb2 as _course_pb2
from syllabus.v1 import options_pb2 as _options_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Priority(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PRIORITY_UNSPECIFIED: _ClassVar[Priority]
    PRIORITY_INTERACTIVE: _ClassVar[Priority]
    PRIORITY_BATCH: _ClassVar[Priority]

class JobState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    JOB_STATE_UNSPECIFIED: _ClassVar[JobState]
    JOB_STATE_SCHEDULED: _ClassVar[JobState]
    JOB_STATE_QUEUED: _ClassVar[JobState]
    JOB_STATE_RUNNING: _ClassVar[JobState]
    JOB_STATE_RETRYING: _ClassVar[JobState]
    JOB_STATE_SUCCEEDED: _ClassVar[JobState]
    JOB_STATE_FAILED: _ClassVar[JobState]
    JOB_STATE_CANCELED: _ClassVar[JobState]
    JOB_STATE_WAITING: _ClassVar[JobState]

class JobEventType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    JOB_EVENT_TYPE_UNSPECIFIED: _ClassVar[JobEventType]
    JOB_EVENT_TYPE_SCHEDULED: _ClassVar[JobEventType]
    JOB_EVENT_TYPE_QUEUED: _ClassVar[JobEventType]
    JOB_EVENT_TYPE_STARTED: _ClassVar[JobEventType]
    JOB_EVENT_TYPE_PROGRESS: _ClassVar[JobEventType]
    JOB_EVENT_TYPE_RETRYING: _ClassVar[JobEventType]
    JOB_EVENT_TYPE_SUCCEEDED: _ClassVar[JobEventType]
    JOB_EVENT_TYPE_FAILED: _ClassVar[JobEventType]
    JOB_EVENT_TYPE_CANCELED: _ClassVar[JobEventType]
    JOB_EVENT_TYPE_DEAD_LETTERED: _ClassVar[JobEventType]
    JOB_EVENT_TYPE_CANCEL_REQUESTED: _ClassVar[JobEventType]
    JOB_EVENT_TYPE_WAITING: _ClassVar[JobEventType]
    JOB_EVENT_TYPE_RESUMED: _ClassVar[JobEventType]
    JOB_EVENT_TYPE_STALLED: _ClassVar[JobEventType]

class ScheduleOverlapPolicy(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SCHEDULE_OVERLAP_POLICY_UNSPECIFIED: _ClassVar[ScheduleOverlapPolicy]
    SCHEDULE_OVERLAP_POLICY_SKIP: _ClassVar[ScheduleOverlapPolicy]
    SCHEDULE_OVERLAP_POLICY_ALLOW_ALL: _ClassVar[ScheduleOverlapPolicy]
PRIORITY_UNSPECIFIED: Priority
PRIORITY_INTERACTIVE: Priority
PRIORITY_BATCH: Priority
JOB_STATE_UNSPECIFIED: JobState
JOB_STATE_SCHEDULED: JobState
JOB_STATE_QUEUED: JobState
JOB_STATE_RUNNING: JobState
JOB_STATE_RETRYING: JobState
JOB_STATE_SUCCEEDED: JobState
JOB_STATE_FAILED: JobState
JOB_STATE_CANCELED: JobState
JOB_STATE_WAITING: JobState
JOB_EVENT_TYPE_UNSPECIFIED: JobEventType
JOB_EVENT_TYPE_SCHEDULED: JobEventType
JOB_EVENT_TYPE_QUEUED: JobEventType
JOB_EVENT_TYPE_STARTED: JobEventType
JOB_EVENT_TYPE_PROGRESS: JobEventType
JOB_EVENT_TYPE_RETRYING: JobEventType
JOB_EVENT_TYPE_SUCCEEDED: JobEventType
JOB_EVENT_TYPE_FAILED: JobEventType
JOB_EVENT_TYPE_CANCELED: JobEventType
JOB_EVENT_TYPE_DEAD_LETTERED: JobEventType
JOB_EVENT_TYPE_CANCEL_REQUESTED: JobEventType
JOB_EVENT_TYPE_WAITING: JobEventType
JOB_EVENT_TYPE_RESUMED: JobEventType
JOB_EVENT_TYPE_STALLED: JobEventType
SCHEDULE_OVERLAP_POLICY_UNSPECIFIED: ScheduleOverlapPolicy
SCHEDULE_OVERLAP_POLICY_SKIP: ScheduleOverlapPolicy
SCHEDULE_OVERLAP_POLICY_ALLOW_ALL: ScheduleOverlapPolicy

class JobSpec(_message.Message):
    __slots__ = ("generate_course", "generate_lesson", "generate_quiz", "summarize_text", "render_document", "task", "render_report")
    GENERATE_COURSE_FIELD_NUMBER: _ClassVar[int]
    GENERATE_LESSON_FIELD_NUMBER: _ClassVar[int]
    GENERATE_QUIZ_FIELD_NUMBER: _ClassVar[int]
    SUMMARIZE_TEXT_FIELD_NUMBER: _ClassVar[int]
    RENDER_DOCUMENT_FIELD_NUMBER: _ClassVar[int]
    TASK_FIELD_NUMBER: _ClassVar[int]
    RENDER_REPORT_FIELD_NUMBER: _ClassVar[int]
    generate_course: GenerateCourse
    generate_lesson: GenerateLesson
    generate_quiz: GenerateQuiz
    summarize_text: SummarizeText
    render_document: RenderDocument
    task: Task
    render_report: RenderReport
    def __init__(self, generate_course: _Optional[_Union[GenerateCourse, _Mapping]] = ..., generate_lesson: _Optional[_Union[GenerateLesson, _Mapping]] = ..., generate_quiz: _Optional[_Union[GenerateQuiz, _Mapping]] = ..., summarize_text: _Optional[_Union[SummarizeText, _Mapping]] = ..., render_document: _Optional[_Union[RenderDocument, _Mapping]] = ..., task: _Optional[_Union[Task, _Mapping]] = ..., render_report: _Optional[_Union[RenderReport, _Mapping]] = ...) -> None: ...

class Task(_message.Message):
    __slots__ = ("name", "json", "message")
    NAME_FIELD_NUMBER: _ClassVar[int]
    JSON_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    name: str
    json: _struct_pb2.Struct
    message: _any_pb2.Any
    def __init__(self, name: _Optional[str] = ..., json: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., message: _Optional[_Union[_any_pb2.Any, _Mapping]] = ...) -> None: ...

class ModelSelection(_message.Message):
    __slots__ = ("provider", "model")
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    provider: str
    model: str
    def __init__(self, provider: _Optional[str] = ..., model: _Optional[str] = ...) -> None: ...

class GenerateCourse(_message.Message):
    __slots__ = ("prompt", "modules", "audience", "level", "language", "model", "course_id", "source_ids")
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    MODULES_FIELD_NUMBER: _ClassVar[int]
    AUDIENCE_FIELD_NUMBER: _ClassVar[int]
    LEVEL_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    COURSE_ID_FIELD_NUMBER: _ClassVar[int]
    SOURCE_IDS_FIELD_NUMBER: _ClassVar[int]
    prompt: str
    modules: int
    audience: str
    level: _course_pb2.CourseLevel
    language: str
    model: ModelSelection
    course_id: str
    source_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, prompt: _Optional[str] = ..., modules: _Optional[int] = ..., audience: _Optional[str] = ..., level: _Optional[_Union[_course_pb2.CourseLevel, str]] = ..., language: _Optional[str] = ..., model: _Optional[_Union[ModelSelection, _Mapping]] = ..., course_id: _Optional[str] = ..., source_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class GenerateLesson(_message.Message):
    __slots__ = ("course_id", "module_index", "model", "instruction", "course_version")
    COURSE_ID_FIELD_NUMBER: _ClassVar[int]
    MODULE_INDEX_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    INSTRUCTION_FIELD_NUMBER: _ClassVar[int]
    COURSE_VERSION_FIELD_NUMBER: _ClassVar[int]
    course_id: str
    module_index: int
    model: ModelSelection
    instruction: str
    course_version: int
    def __init__(self, course_id: _Optional[str] = ..., module_index: _Optional[int] = ..., model: _Optional[_Union[ModelSelection, _Mapping]] = ..., instruction: _Optional[str] = ..., course_version: _Optional[int] = ...) -> None: ...

class GenerateQuiz(_message.Message):
    __slots__ = ("course_id", "module_index", "questions", "model", "instruction", "course_version")
    COURSE_ID_FIELD_NUMBER: _ClassVar[int]
    MODULE_INDEX_FIELD_NUMBER: _ClassVar[int]
    QUESTIONS_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    INSTRUCTION_FIELD_NUMBER: _ClassVar[int]
    COURSE_VERSION_FIELD_NUMBER: _ClassVar[int]
    course_id: str
    module_index: int
    questions: int
    model: ModelSelection
    instruction: str
    course_version: int
    def __init__(self, course_id: _Optional[str] = ..., module_index: _Optional[int] = ..., questions: _Optional[int] = ..., model: _Optional[_Union[ModelSelection, _Mapping]] = ..., instruction: _Optional[str] = ..., course_version: _Optional[int] = ...) -> None: ...

class SummarizeText(_message.Message):
    __slots__ = ("text", "max_words", "model")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    MAX_WORDS_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    text: str
    max_words: int
    model: ModelSelection
    def __init__(self, text: _Optional[str] = ..., max_words: _Optional[int] = ..., model: _Optional[_Union[ModelSelection, _Mapping]] = ...) -> None: ...

class RenderDocument(_message.Message):
    __slots__ = ("course_id", "formats", "course_version")
    COURSE_ID_FIELD_NUMBER: _ClassVar[int]
    FORMATS_FIELD_NUMBER: _ClassVar[int]
    COURSE_VERSION_FIELD_NUMBER: _ClassVar[int]
    course_id: str
    formats: _containers.RepeatedScalarFieldContainer[_course_pb2.DocumentFormat]
    course_version: int
    def __init__(self, course_id: _Optional[str] = ..., formats: _Optional[_Iterable[_Union[_course_pb2.DocumentFormat, str]]] = ..., course_version: _Optional[int] = ...) -> None: ...

class RenderReport(_message.Message):
    __slots__ = ("title", "subtitle", "figures", "sections", "formats")
    TITLE_FIELD_NUMBER: _ClassVar[int]
    SUBTITLE_FIELD_NUMBER: _ClassVar[int]
    FIGURES_FIELD_NUMBER: _ClassVar[int]
    SECTIONS_FIELD_NUMBER: _ClassVar[int]
    FORMATS_FIELD_NUMBER: _ClassVar[int]
    title: str
    subtitle: str
    figures: _containers.RepeatedCompositeFieldContainer[ReportFigure]
    sections: _containers.RepeatedCompositeFieldContainer[ReportSection]
    formats: _containers.RepeatedScalarFieldContainer[_course_pb2.DocumentFormat]
    def __init__(self, title: _Optional[str] = ..., subtitle: _Optional[str] = ..., figures: _Optional[_Iterable[_Union[ReportFigure, _Mapping]]] = ..., sections: _Optional[_Iterable[_Union[ReportSection, _Mapping]]] = ..., formats: _Optional[_Iterable[_Union[_course_pb2.DocumentFormat, str]]] = ...) -> None: ...

class ReportFigure(_message.Message):
    __slots__ = ("label", "value")
    LABEL_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    label: str
    value: str
    def __init__(self, label: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...

class ReportSection(_message.Message):
    __slots__ = ("heading", "body_markdown", "tables")
    HEADING_FIELD_NUMBER: _ClassVar[int]
    BODY_MARKDOWN_FIELD_NUMBER: _ClassVar[int]
    TABLES_FIELD_NUMBER: _ClassVar[int]
    heading: str
    body_markdown: str
    tables: _containers.RepeatedCompositeFieldContainer[ReportTable]
    def __init__(self, heading: _Optional[str] = ..., body_markdown: _Optional[str] = ..., tables: _Optional[_Iterable[_Union[ReportTable, _Mapping]]] = ...) -> None: ...

class ReportTable(_message.Message):
    __slots__ = ("caption", "columns", "rows")
    CAPTION_FIELD_NUMBER: _ClassVar[int]
    COLUMNS_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    caption: str
    columns: _containers.RepeatedScalarFieldContainer[str]
    rows: _containers.RepeatedCompositeFieldContainer[ReportRow]
    def __init__(self, caption: _Optional[str] = ..., columns: _Optional[_Iterable[str]] = ..., rows: _Optional[_Iterable[_Union[ReportRow, _Mapping]]] = ...) -> None: ...

class ReportRow(_message.Message):
    __slots__ = ("cells",)
    CELLS_FIELD_NUMBER: _ClassVar[int]
    cells: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, cells: _Optional[_Iterable[str]] = ...) -> None: ...

class JobOptions(_message.Message):
    __slots__ = ("priority", "run_at", "idempotency_key", "max_attempts", "timeout", "labels")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    RUN_AT_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    MAX_ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    priority: Priority
    run_at: _timestamp_pb2.Timestamp
    idempotency_key: str
    max_attempts: int
    timeout: _duration_pb2.Duration
    labels: _containers.ScalarMap[str, str]
    def __init__(self, priority: _Optional[_Union[Priority, str]] = ..., run_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., idempotency_key: _Optional[str] = ..., max_attempts: _Optional[int] = ..., timeout: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., labels: _Optional[_Mapping[str, str]] = ...) -> None: ...

class JobProgress(_message.Message):
    __slots__ = ("percent", "message")
    PERCENT_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    percent: float
    message: str
    def __init__(self, percent: _Optional[float] = ..., message: _Optional[str] = ...) -> None: ...

class Usage(_message.Message):
    __slots__ = ("input_tokens", "output_tokens", "estimated_cost_usd")
    INPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    ESTIMATED_COST_USD_FIELD_NUMBER: _ClassVar[int]
    input_tokens: int
    output_tokens: int
    estimated_cost_usd: float
    def __init__(self, input_tokens: _Optional[int] = ..., output_tokens: _Optional[int] = ..., estimated_cost_usd: _Optional[float] = ...) -> None: ...

class JobResult(_message.Message):
    __slots__ = ("reference", "text", "usage", "json", "message", "artifacts")
    REFERENCE_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    JSON_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    ARTIFACTS_FIELD_NUMBER: _ClassVar[int]
    reference: str
    text: str
    usage: Usage
    json: _struct_pb2.Struct
    message: _any_pb2.Any
    artifacts: _containers.RepeatedCompositeFieldContainer[Artifact]
    def __init__(self, reference: _Optional[str] = ..., text: _Optional[str] = ..., usage: _Optional[_Union[Usage, _Mapping]] = ..., json: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., message: _Optional[_Union[_any_pb2.Any, _Mapping]] = ..., artifacts: _Optional[_Iterable[_Union[Artifact, _Mapping]]] = ...) -> None: ...

class Artifact(_message.Message):
    __slots__ = ("name", "content_type", "size_bytes", "sha256")
    NAME_FIELD_NUMBER: _ClassVar[int]
    CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    name: str
    content_type: str
    size_bytes: int
    sha256: str
    def __init__(self, name: _Optional[str] = ..., content_type: _Optional[str] = ..., size_bytes: _Optional[int] = ..., sha256: _Optional[str] = ...) -> None: ...

class JobError(_message.Message):
    __slots__ = ("attempt", "time", "type", "message", "permanent")
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    PERMANENT_FIELD_NUMBER: _ClassVar[int]
    attempt: int
    time: _timestamp_pb2.Timestamp
    type: str
    message: str
    permanent: bool
    def __init__(self, attempt: _Optional[int] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., type: _Optional[str] = ..., message: _Optional[str] = ..., permanent: _Optional[bool] = ...) -> None: ...

class Job(_message.Message):
    __slots__ = ("id", "spec", "options", "state", "kind", "attempt", "max_attempts", "create_time", "start_time", "end_time", "update_time", "progress", "result", "errors", "parent_id", "tenant", "cancel_requested", "parent_result", "lease", "status_message", "attempts", "stall_count", "schedule_id", "trace_id", "trace_parent")
    ID_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    MAX_ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    PARENT_ID_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    CANCEL_REQUESTED_FIELD_NUMBER: _ClassVar[int]
    PARENT_RESULT_FIELD_NUMBER: _ClassVar[int]
    LEASE_FIELD_NUMBER: _ClassVar[int]
    STATUS_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    STALL_COUNT_FIELD_NUMBER: _ClassVar[int]
    SCHEDULE_ID_FIELD_NUMBER: _ClassVar[int]
    TRACE_ID_FIELD_NUMBER: _ClassVar[int]
    TRACE_PARENT_FIELD_NUMBER: _ClassVar[int]
    id: str
    spec: JobSpec
    options: JobOptions
    state: JobState
    kind: str
    attempt: int
    max_attempts: int
    create_time: _timestamp_pb2.Timestamp
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    progress: JobProgress
    result: JobResult
    errors: _containers.RepeatedCompositeFieldContainer[JobError]
    parent_id: str
    tenant: str
    cancel_requested: bool
    parent_result: JobResult
    lease: int
    status_message: str
    attempts: _containers.RepeatedCompositeFieldContainer[JobAttempt]
    stall_count: int
    schedule_id: str
    trace_id: str
    trace_parent: str
    def __init__(self, id: _Optional[str] = ..., spec: _Optional[_Union[JobSpec, _Mapping]] = ..., options: _Optional[_Union[JobOptions, _Mapping]] = ..., state: _Optional[_Union[JobState, str]] = ..., kind: _Optional[str] = ..., attempt: _Optional[int] = ..., max_attempts: _Optional[int] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., progress: _Optional[_Union[JobProgress, _Mapping]] = ..., result: _Optional[_Union[JobResult, _Mapping]] = ..., errors: _Optional[_Iterable[_Union[JobError, _Mapping]]] = ..., parent_id: _Optional[str] = ..., tenant: _Optional[str] = ..., cancel_requested: _Optional[bool] = ..., parent_result: _Optional[_Union[JobResult, _Mapping]] = ..., lease: _Optional[int] = ..., status_message: _Optional[str] = ..., attempts: _Optional[_Iterable[_Union[JobAttempt, _Mapping]]] = ..., stall_count: _Optional[int] = ..., schedule_id: _Optional[str] = ..., trace_id: _Optional[str] = ..., trace_parent: _Optional[str] = ...) -> None: ...

class JobAttempt(_message.Message):
    __slots__ = ("attempt", "worker_id", "host", "start_time", "end_time", "outcome", "message_sequence")
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    HOST_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    attempt: int
    worker_id: str
    host: str
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    outcome: JobState
    message_sequence: int
    def __init__(self, attempt: _Optional[int] = ..., worker_id: _Optional[str] = ..., host: _Optional[str] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., outcome: _Optional[_Union[JobState, str]] = ..., message_sequence: _Optional[int] = ...) -> None: ...

class JobEvent(_message.Message):
    __slots__ = ("sequence", "job_id", "type", "state", "attempt", "time", "kind", "tenant", "parent_id", "progress", "error", "retry_delay", "result", "terminal", "labels")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    PARENT_ID_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    RETRY_DELAY_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    TERMINAL_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    job_id: str
    type: JobEventType
    state: JobState
    attempt: int
    time: _timestamp_pb2.Timestamp
    kind: str
    tenant: str
    parent_id: str
    progress: JobProgress
    error: JobError
    retry_delay: _duration_pb2.Duration
    result: JobResult
    terminal: bool
    labels: _containers.ScalarMap[str, str]
    def __init__(self, sequence: _Optional[int] = ..., job_id: _Optional[str] = ..., type: _Optional[_Union[JobEventType, str]] = ..., state: _Optional[_Union[JobState, str]] = ..., attempt: _Optional[int] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., kind: _Optional[str] = ..., tenant: _Optional[str] = ..., parent_id: _Optional[str] = ..., progress: _Optional[_Union[JobProgress, _Mapping]] = ..., error: _Optional[_Union[JobError, _Mapping]] = ..., retry_delay: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., result: _Optional[_Union[JobResult, _Mapping]] = ..., terminal: _Optional[bool] = ..., labels: _Optional[_Mapping[str, str]] = ...) -> None: ...

class Schedule(_message.Message):
    __slots__ = ("id", "cron", "time_zone", "spec", "options", "paused", "next_run_time", "create_time", "tenant", "interval", "overlap_policy", "catchup_window", "next_run_times", "recent_runs", "update_time", "description")
    ID_FIELD_NUMBER: _ClassVar[int]
    CRON_FIELD_NUMBER: _ClassVar[int]
    TIME_ZONE_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    PAUSED_FIELD_NUMBER: _ClassVar[int]
    NEXT_RUN_TIME_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    INTERVAL_FIELD_NUMBER: _ClassVar[int]
    OVERLAP_POLICY_FIELD_NUMBER: _ClassVar[int]
    CATCHUP_WINDOW_FIELD_NUMBER: _ClassVar[int]
    NEXT_RUN_TIMES_FIELD_NUMBER: _ClassVar[int]
    RECENT_RUNS_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    id: str
    cron: str
    time_zone: str
    spec: JobSpec
    options: JobOptions
    paused: bool
    next_run_time: _timestamp_pb2.Timestamp
    create_time: _timestamp_pb2.Timestamp
    tenant: str
    interval: _duration_pb2.Duration
    overlap_policy: ScheduleOverlapPolicy
    catchup_window: _duration_pb2.Duration
    next_run_times: _containers.RepeatedCompositeFieldContainer[_timestamp_pb2.Timestamp]
    recent_runs: _containers.RepeatedCompositeFieldContainer[ScheduleRun]
    update_time: _timestamp_pb2.Timestamp
    description: str
    def __init__(self, id: _Optional[str] = ..., cron: _Optional[str] = ..., time_zone: _Optional[str] = ..., spec: _Optional[_Union[JobSpec, _Mapping]] = ..., options: _Optional[_Union[JobOptions, _Mapping]] = ..., paused: _Optional[bool] = ..., next_run_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., tenant: _Optional[str] = ..., interval: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., overlap_policy: _Optional[_Union[ScheduleOverlapPolicy, str]] = ..., catchup_window: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., next_run_times: _Optional[_Iterable[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]]] = ..., recent_runs: _Optional[_Iterable[_Union[ScheduleRun, _Mapping]]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., description: _Optional[str] = ...) -> None: ...

class ScheduleRun(_message.Message):
    __slots__ = ("fire_time", "job_id", "state", "skipped", "triggered", "actual_time")
    FIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    SKIPPED_FIELD_NUMBER: _ClassVar[int]
    TRIGGERED_FIELD_NUMBER: _ClassVar[int]
    ACTUAL_TIME_FIELD_NUMBER: _ClassVar[int]
    fire_time: _timestamp_pb2.Timestamp
    job_id: str
    state: JobState
    skipped: str
    triggered: bool
    actual_time: _timestamp_pb2.Timestamp
    def __init__(self, fire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., job_id: _Optional[str] = ..., state: _Optional[_Union[JobState, str]] = ..., skipped: _Optional[str] = ..., triggered: _Optional[bool] = ..., actual_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...
