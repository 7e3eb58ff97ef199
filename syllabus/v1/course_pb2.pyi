import datetime

from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CourseLevel(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    COURSE_LEVEL_UNSPECIFIED: _ClassVar[CourseLevel]
    COURSE_LEVEL_BEGINNER: _ClassVar[CourseLevel]
    COURSE_LEVEL_INTERMEDIATE: _ClassVar[CourseLevel]
    COURSE_LEVEL_ADVANCED: _ClassVar[CourseLevel]

class DocumentFormat(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DOCUMENT_FORMAT_UNSPECIFIED: _ClassVar[DocumentFormat]
    DOCUMENT_FORMAT_MARKDOWN: _ClassVar[DocumentFormat]
    DOCUMENT_FORMAT_HTML: _ClassVar[DocumentFormat]
    DOCUMENT_FORMAT_PDF: _ClassVar[DocumentFormat]
    DOCUMENT_FORMAT_SCORM_12: _ClassVar[DocumentFormat]
    DOCUMENT_FORMAT_SCORM_2004: _ClassVar[DocumentFormat]
    DOCUMENT_FORMAT_QTI_21: _ClassVar[DocumentFormat]
    DOCUMENT_FORMAT_MOODLE_XML: _ClassVar[DocumentFormat]
    DOCUMENT_FORMAT_GIFT: _ClassVar[DocumentFormat]
    DOCUMENT_FORMAT_EPUB: _ClassVar[DocumentFormat]
COURSE_LEVEL_UNSPECIFIED: CourseLevel
COURSE_LEVEL_BEGINNER: CourseLevel
COURSE_LEVEL_INTERMEDIATE: CourseLevel
COURSE_LEVEL_ADVANCED: CourseLevel
DOCUMENT_FORMAT_UNSPECIFIED: DocumentFormat
DOCUMENT_FORMAT_MARKDOWN: DocumentFormat
DOCUMENT_FORMAT_HTML: DocumentFormat
DOCUMENT_FORMAT_PDF: DocumentFormat
DOCUMENT_FORMAT_SCORM_12: DocumentFormat
DOCUMENT_FORMAT_SCORM_2004: DocumentFormat
DOCUMENT_FORMAT_QTI_21: DocumentFormat
DOCUMENT_FORMAT_MOODLE_XML: DocumentFormat
DOCUMENT_FORMAT_GIFT: DocumentFormat
DOCUMENT_FORMAT_EPUB: DocumentFormat

class Question(_message.Message):
    __slots__ = ("text", "choices", "answer_index", "explanation", "citation")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    CHOICES_FIELD_NUMBER: _ClassVar[int]
    ANSWER_INDEX_FIELD_NUMBER: _ClassVar[int]
    EXPLANATION_FIELD_NUMBER: _ClassVar[int]
    CITATION_FIELD_NUMBER: _ClassVar[int]
    text: str
    choices: _containers.RepeatedScalarFieldContainer[str]
    answer_index: int
    explanation: str
    citation: Citation
    def __init__(self, text: _Optional[str] = ..., choices: _Optional[_Iterable[str]] = ..., answer_index: _Optional[int] = ..., explanation: _Optional[str] = ..., citation: _Optional[_Union[Citation, _Mapping]] = ...) -> None: ...

class Quiz(_message.Message):
    __slots__ = ("questions",)
    QUESTIONS_FIELD_NUMBER: _ClassVar[int]
    questions: _containers.RepeatedCompositeFieldContainer[Question]
    def __init__(self, questions: _Optional[_Iterable[_Union[Question, _Mapping]]] = ...) -> None: ...

class Lesson(_message.Message):
    __slots__ = ("title", "body_markdown", "key_points", "citations")
    TITLE_FIELD_NUMBER: _ClassVar[int]
    BODY_MARKDOWN_FIELD_NUMBER: _ClassVar[int]
    KEY_POINTS_FIELD_NUMBER: _ClassVar[int]
    CITATIONS_FIELD_NUMBER: _ClassVar[int]
    title: str
    body_markdown: str
    key_points: _containers.RepeatedScalarFieldContainer[str]
    citations: _containers.RepeatedCompositeFieldContainer[Citation]
    def __init__(self, title: _Optional[str] = ..., body_markdown: _Optional[str] = ..., key_points: _Optional[_Iterable[str]] = ..., citations: _Optional[_Iterable[_Union[Citation, _Mapping]]] = ...) -> None: ...

class Module(_message.Message):
    __slots__ = ("index", "title", "summary", "objectives", "lesson", "quiz", "findings")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    OBJECTIVES_FIELD_NUMBER: _ClassVar[int]
    LESSON_FIELD_NUMBER: _ClassVar[int]
    QUIZ_FIELD_NUMBER: _ClassVar[int]
    FINDINGS_FIELD_NUMBER: _ClassVar[int]
    index: int
    title: str
    summary: str
    objectives: _containers.RepeatedScalarFieldContainer[str]
    lesson: Lesson
    quiz: Quiz
    findings: _containers.RepeatedCompositeFieldContainer[QualityFinding]
    def __init__(self, index: _Optional[int] = ..., title: _Optional[str] = ..., summary: _Optional[str] = ..., objectives: _Optional[_Iterable[str]] = ..., lesson: _Optional[_Union[Lesson, _Mapping]] = ..., quiz: _Optional[_Union[Quiz, _Mapping]] = ..., findings: _Optional[_Iterable[_Union[QualityFinding, _Mapping]]] = ...) -> None: ...

class QualityFinding(_message.Message):
    __slots__ = ("check", "part", "message", "repaired")
    CHECK_FIELD_NUMBER: _ClassVar[int]
    PART_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    REPAIRED_FIELD_NUMBER: _ClassVar[int]
    check: str
    part: str
    message: str
    repaired: bool
    def __init__(self, check: _Optional[str] = ..., part: _Optional[str] = ..., message: _Optional[str] = ..., repaired: _Optional[bool] = ...) -> None: ...

class Document(_message.Message):
    __slots__ = ("format", "object_name", "content_type", "size_bytes", "sha256", "course_version")
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    OBJECT_NAME_FIELD_NUMBER: _ClassVar[int]
    CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    COURSE_VERSION_FIELD_NUMBER: _ClassVar[int]
    format: DocumentFormat
    object_name: str
    content_type: str
    size_bytes: int
    sha256: str
    course_version: int
    def __init__(self, format: _Optional[_Union[DocumentFormat, str]] = ..., object_name: _Optional[str] = ..., content_type: _Optional[str] = ..., size_bytes: _Optional[int] = ..., sha256: _Optional[str] = ..., course_version: _Optional[int] = ...) -> None: ...

class CostItem(_message.Message):
    __slots__ = ("job_id", "kind", "provider", "model", "input_tokens", "output_tokens", "estimated_cost_usd")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    INPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    ESTIMATED_COST_USD_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    kind: str
    provider: str
    model: str
    input_tokens: int
    output_tokens: int
    estimated_cost_usd: float
    def __init__(self, job_id: _Optional[str] = ..., kind: _Optional[str] = ..., provider: _Optional[str] = ..., model: _Optional[str] = ..., input_tokens: _Optional[int] = ..., output_tokens: _Optional[int] = ..., estimated_cost_usd: _Optional[float] = ...) -> None: ...

class Course(_message.Message):
    __slots__ = ("id", "job_id", "prompt", "audience", "level", "language", "title", "description", "modules", "documents", "provider", "model", "offline_draft", "costs", "input_tokens", "output_tokens", "estimated_cost_usd", "create_time", "update_time", "tenant", "version", "change", "pending_job_ids", "sources")
    ID_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    AUDIENCE_FIELD_NUMBER: _ClassVar[int]
    LEVEL_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    MODULES_FIELD_NUMBER: _ClassVar[int]
    DOCUMENTS_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    OFFLINE_DRAFT_FIELD_NUMBER: _ClassVar[int]
    COSTS_FIELD_NUMBER: _ClassVar[int]
    INPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    ESTIMATED_COST_USD_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    CHANGE_FIELD_NUMBER: _ClassVar[int]
    PENDING_JOB_IDS_FIELD_NUMBER: _ClassVar[int]
    SOURCES_FIELD_NUMBER: _ClassVar[int]
    id: str
    job_id: str
    prompt: str
    audience: str
    level: CourseLevel
    language: str
    title: str
    description: str
    modules: _containers.RepeatedCompositeFieldContainer[Module]
    documents: _containers.RepeatedCompositeFieldContainer[Document]
    provider: str
    model: str
    offline_draft: bool
    costs: _containers.RepeatedCompositeFieldContainer[CostItem]
    input_tokens: int
    output_tokens: int
    estimated_cost_usd: float
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    tenant: str
    version: int
    change: str
    pending_job_ids: _containers.RepeatedScalarFieldContainer[str]
    sources: _containers.RepeatedCompositeFieldContainer[Source]
    def __init__(self, id: _Optional[str] = ..., job_id: _Optional[str] = ..., prompt: _Optional[str] = ..., audience: _Optional[str] = ..., level: _Optional[_Union[CourseLevel, str]] = ..., language: _Optional[str] = ..., title: _Optional[str] = ..., description: _Optional[str] = ..., modules: _Optional[_Iterable[_Union[Module, _Mapping]]] = ..., documents: _Optional[_Iterable[_Union[Document, _Mapping]]] = ..., provider: _Optional[str] = ..., model: _Optional[str] = ..., offline_draft: _Optional[bool] = ..., costs: _Optional[_Iterable[_Union[CostItem, _Mapping]]] = ..., input_tokens: _Optional[int] = ..., output_tokens: _Optional[int] = ..., estimated_cost_usd: _Optional[float] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., tenant: _Optional[str] = ..., version: _Optional[int] = ..., change: _Optional[str] = ..., pending_job_ids: _Optional[_Iterable[str]] = ..., sources: _Optional[_Iterable[_Union[Source, _Mapping]]] = ...) -> None: ...

class CourseVersion(_message.Message):
    __slots__ = ("version", "change", "update_time")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    CHANGE_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    version: int
    change: str
    update_time: _timestamp_pb2.Timestamp
    def __init__(self, version: _Optional[int] = ..., change: _Optional[str] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class CourseEstimate(_message.Message):
    __slots__ = ("provider", "model", "modules", "model_calls", "input_tokens", "output_tokens", "estimated_cost_usd", "budget_usd", "spent_usd", "budget_period_end", "within_budget")
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    MODULES_FIELD_NUMBER: _ClassVar[int]
    MODEL_CALLS_FIELD_NUMBER: _ClassVar[int]
    INPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    ESTIMATED_COST_USD_FIELD_NUMBER: _ClassVar[int]
    BUDGET_USD_FIELD_NUMBER: _ClassVar[int]
    SPENT_USD_FIELD_NUMBER: _ClassVar[int]
    BUDGET_PERIOD_END_FIELD_NUMBER: _ClassVar[int]
    WITHIN_BUDGET_FIELD_NUMBER: _ClassVar[int]
    provider: str
    model: str
    modules: int
    model_calls: int
    input_tokens: int
    output_tokens: int
    estimated_cost_usd: float
    budget_usd: float
    spent_usd: float
    budget_period_end: _timestamp_pb2.Timestamp
    within_budget: bool
    def __init__(self, provider: _Optional[str] = ..., model: _Optional[str] = ..., modules: _Optional[int] = ..., model_calls: _Optional[int] = ..., input_tokens: _Optional[int] = ..., output_tokens: _Optional[int] = ..., estimated_cost_usd: _Optional[float] = ..., budget_usd: _Optional[float] = ..., spent_usd: _Optional[float] = ..., budget_period_end: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., within_budget: _Optional[bool] = ...) -> None: ...

class Source(_message.Message):
    __slots__ = ("id", "name", "content_type", "size_bytes", "sha256", "pages", "passages", "tenant", "create_time")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    PAGES_FIELD_NUMBER: _ClassVar[int]
    PASSAGES_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    content_type: str
    size_bytes: int
    sha256: str
    pages: int
    passages: int
    tenant: str
    create_time: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., content_type: _Optional[str] = ..., size_bytes: _Optional[int] = ..., sha256: _Optional[str] = ..., pages: _Optional[int] = ..., passages: _Optional[int] = ..., tenant: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Passage(_message.Message):
    __slots__ = ("id", "source_id", "locator", "text")
    ID_FIELD_NUMBER: _ClassVar[int]
    SOURCE_ID_FIELD_NUMBER: _ClassVar[int]
    LOCATOR_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    id: str
    source_id: str
    locator: str
    text: str
    def __init__(self, id: _Optional[str] = ..., source_id: _Optional[str] = ..., locator: _Optional[str] = ..., text: _Optional[str] = ...) -> None: ...

class SourceText(_message.Message):
    __slots__ = ("source", "passages")
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    PASSAGES_FIELD_NUMBER: _ClassVar[int]
    source: Source
    passages: _containers.RepeatedCompositeFieldContainer[Passage]
    def __init__(self, source: _Optional[_Union[Source, _Mapping]] = ..., passages: _Optional[_Iterable[_Union[Passage, _Mapping]]] = ...) -> None: ...

class Citation(_message.Message):
    __slots__ = ("source_id", "source_name", "locator", "passage_id")
    SOURCE_ID_FIELD_NUMBER: _ClassVar[int]
    SOURCE_NAME_FIELD_NUMBER: _ClassVar[int]
    LOCATOR_FIELD_NUMBER: _ClassVar[int]
    PASSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    source_id: str
    source_name: str
    locator: str
    passage_id: str
    def __init__(self, source_id: _Optional[str] = ..., source_name: _Optional[str] = ..., locator: _Optional[str] = ..., passage_id: _Optional[str] = ...) -> None: ...
