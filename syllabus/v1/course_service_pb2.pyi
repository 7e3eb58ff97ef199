from buf.validate import validate_pb2 as _validate_pb2
from google.api import annotations_pb2 as _annotations_pb2
from google.api import httpbody_pb2 as _httpbody_pb2
from syllabus.v1 import course_pb2 as _course_pb2
from syllabus.v1 import job_pb2 as _job_pb2
from syllabus.v1 import options_pb2 as _options_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CoursePart(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    COURSE_PART_UNSPECIFIED: _ClassVar[CoursePart]
    COURSE_PART_LESSON: _ClassVar[CoursePart]
    COURSE_PART_QUIZ: _ClassVar[CoursePart]
COURSE_PART_UNSPECIFIED: CoursePart
COURSE_PART_LESSON: CoursePart
COURSE_PART_QUIZ: CoursePart

class CreateCourseRequest(_message.Message):
    __slots__ = ("course", "options", "validate_only")
    COURSE_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    VALIDATE_ONLY_FIELD_NUMBER: _ClassVar[int]
    course: _job_pb2.GenerateCourse
    options: _job_pb2.JobOptions
    validate_only: bool
    def __init__(self, course: _Optional[_Union[_job_pb2.GenerateCourse, _Mapping]] = ..., options: _Optional[_Union[_job_pb2.JobOptions, _Mapping]] = ..., validate_only: _Optional[bool] = ...) -> None: ...

class CreateCourseResponse(_message.Message):
    __slots__ = ("course", "job", "estimate")
    COURSE_FIELD_NUMBER: _ClassVar[int]
    JOB_FIELD_NUMBER: _ClassVar[int]
    ESTIMATE_FIELD_NUMBER: _ClassVar[int]
    course: _course_pb2.Course
    job: _job_pb2.Job
    estimate: _course_pb2.CourseEstimate
    def __init__(self, course: _Optional[_Union[_course_pb2.Course, _Mapping]] = ..., job: _Optional[_Union[_job_pb2.Job, _Mapping]] = ..., estimate: _Optional[_Union[_course_pb2.CourseEstimate, _Mapping]] = ...) -> None: ...

class GetCourseRequest(_message.Message):
    __slots__ = ("course_id", "version")
    COURSE_ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    course_id: str
    version: int
    def __init__(self, course_id: _Optional[str] = ..., version: _Optional[int] = ...) -> None: ...

class GetCourseResponse(_message.Message):
    __slots__ = ("course",)
    COURSE_FIELD_NUMBER: _ClassVar[int]
    course: _course_pb2.Course
    def __init__(self, course: _Optional[_Union[_course_pb2.Course, _Mapping]] = ...) -> None: ...

class ListCoursesRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListCoursesResponse(_message.Message):
    __slots__ = ("courses", "next_page_token")
    COURSES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    courses: _containers.RepeatedCompositeFieldContainer[_course_pb2.Course]
    next_page_token: str
    def __init__(self, courses: _Optional[_Iterable[_Union[_course_pb2.Course, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class GetCourseDocumentRequest(_message.Message):
    __slots__ = ("course_id", "format", "version")
    COURSE_ID_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    course_id: str
    format: _course_pb2.DocumentFormat
    version: int
    def __init__(self, course_id: _Optional[str] = ..., format: _Optional[_Union[_course_pb2.DocumentFormat, str]] = ..., version: _Optional[int] = ...) -> None: ...

class RegenerateCoursePartRequest(_message.Message):
    __slots__ = ("course_id", "module_index", "part", "instruction", "expected_version", "options")
    COURSE_ID_FIELD_NUMBER: _ClassVar[int]
    MODULE_INDEX_FIELD_NUMBER: _ClassVar[int]
    PART_FIELD_NUMBER: _ClassVar[int]
    INSTRUCTION_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_VERSION_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    course_id: str
    module_index: int
    part: CoursePart
    instruction: str
    expected_version: int
    options: _job_pb2.JobOptions
    def __init__(self, course_id: _Optional[str] = ..., module_index: _Optional[int] = ..., part: _Optional[_Union[CoursePart, str]] = ..., instruction: _Optional[str] = ..., expected_version: _Optional[int] = ..., options: _Optional[_Union[_job_pb2.JobOptions, _Mapping]] = ...) -> None: ...

class RegenerateCoursePartResponse(_message.Message):
    __slots__ = ("course", "job")
    COURSE_FIELD_NUMBER: _ClassVar[int]
    JOB_FIELD_NUMBER: _ClassVar[int]
    course: _course_pb2.Course
    job: _job_pb2.Job
    def __init__(self, course: _Optional[_Union[_course_pb2.Course, _Mapping]] = ..., job: _Optional[_Union[_job_pb2.Job, _Mapping]] = ...) -> None: ...

class UpdateLessonRequest(_message.Message):
    __slots__ = ("course_id", "module_index", "body_markdown", "expected_version")
    COURSE_ID_FIELD_NUMBER: _ClassVar[int]
    MODULE_INDEX_FIELD_NUMBER: _ClassVar[int]
    BODY_MARKDOWN_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_VERSION_FIELD_NUMBER: _ClassVar[int]
    course_id: str
    module_index: int
    body_markdown: str
    expected_version: int
    def __init__(self, course_id: _Optional[str] = ..., module_index: _Optional[int] = ..., body_markdown: _Optional[str] = ..., expected_version: _Optional[int] = ...) -> None: ...

class UpdateLessonResponse(_message.Message):
    __slots__ = ("course", "render_job")
    COURSE_FIELD_NUMBER: _ClassVar[int]
    RENDER_JOB_FIELD_NUMBER: _ClassVar[int]
    course: _course_pb2.Course
    render_job: _job_pb2.Job
    def __init__(self, course: _Optional[_Union[_course_pb2.Course, _Mapping]] = ..., render_job: _Optional[_Union[_job_pb2.Job, _Mapping]] = ...) -> None: ...

class UpdateQuestionRequest(_message.Message):
    __slots__ = ("course_id", "module_index", "question_index", "question", "expected_version")
    COURSE_ID_FIELD_NUMBER: _ClassVar[int]
    MODULE_INDEX_FIELD_NUMBER: _ClassVar[int]
    QUESTION_INDEX_FIELD_NUMBER: _ClassVar[int]
    QUESTION_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_VERSION_FIELD_NUMBER: _ClassVar[int]
    course_id: str
    module_index: int
    question_index: int
    question: _course_pb2.Question
    expected_version: int
    def __init__(self, course_id: _Optional[str] = ..., module_index: _Optional[int] = ..., question_index: _Optional[int] = ..., question: _Optional[_Union[_course_pb2.Question, _Mapping]] = ..., expected_version: _Optional[int] = ...) -> None: ...

class UpdateQuestionResponse(_message.Message):
    __slots__ = ("course", "render_job")
    COURSE_FIELD_NUMBER: _ClassVar[int]
    RENDER_JOB_FIELD_NUMBER: _ClassVar[int]
    course: _course_pb2.Course
    render_job: _job_pb2.Job
    def __init__(self, course: _Optional[_Union[_course_pb2.Course, _Mapping]] = ..., render_job: _Optional[_Union[_job_pb2.Job, _Mapping]] = ...) -> None: ...

class ReorderModulesRequest(_message.Message):
    __slots__ = ("course_id", "order", "expected_version")
    COURSE_ID_FIELD_NUMBER: _ClassVar[int]
    ORDER_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_VERSION_FIELD_NUMBER: _ClassVar[int]
    course_id: str
    order: _containers.RepeatedScalarFieldContainer[int]
    expected_version: int
    def __init__(self, course_id: _Optional[str] = ..., order: _Optional[_Iterable[int]] = ..., expected_version: _Optional[int] = ...) -> None: ...

class ReorderModulesResponse(_message.Message):
    __slots__ = ("course", "render_job")
    COURSE_FIELD_NUMBER: _ClassVar[int]
    RENDER_JOB_FIELD_NUMBER: _ClassVar[int]
    course: _course_pb2.Course
    render_job: _job_pb2.Job
    def __init__(self, course: _Optional[_Union[_course_pb2.Course, _Mapping]] = ..., render_job: _Optional[_Union[_job_pb2.Job, _Mapping]] = ...) -> None: ...

class AddModuleRequest(_message.Message):
    __slots__ = ("course_id", "title", "summary", "objectives", "position", "expected_version", "options")
    COURSE_ID_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    OBJECTIVES_FIELD_NUMBER: _ClassVar[int]
    POSITION_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_VERSION_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    course_id: str
    title: str
    summary: str
    objectives: _containers.RepeatedScalarFieldContainer[str]
    position: int
    expected_version: int
    options: _job_pb2.JobOptions
    def __init__(self, course_id: _Optional[str] = ..., title: _Optional[str] = ..., summary: _Optional[str] = ..., objectives: _Optional[_Iterable[str]] = ..., position: _Optional[int] = ..., expected_version: _Optional[int] = ..., options: _Optional[_Union[_job_pb2.JobOptions, _Mapping]] = ...) -> None: ...

class AddModuleResponse(_message.Message):
    __slots__ = ("course", "jobs")
    COURSE_FIELD_NUMBER: _ClassVar[int]
    JOBS_FIELD_NUMBER: _ClassVar[int]
    course: _course_pb2.Course
    jobs: _containers.RepeatedCompositeFieldContainer[_job_pb2.Job]
    def __init__(self, course: _Optional[_Union[_course_pb2.Course, _Mapping]] = ..., jobs: _Optional[_Iterable[_Union[_job_pb2.Job, _Mapping]]] = ...) -> None: ...

class RemoveModuleRequest(_message.Message):
    __slots__ = ("course_id", "module_index", "expected_version")
    COURSE_ID_FIELD_NUMBER: _ClassVar[int]
    MODULE_INDEX_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_VERSION_FIELD_NUMBER: _ClassVar[int]
    course_id: str
    module_index: int
    expected_version: int
    def __init__(self, course_id: _Optional[str] = ..., module_index: _Optional[int] = ..., expected_version: _Optional[int] = ...) -> None: ...

class RemoveModuleResponse(_message.Message):
    __slots__ = ("course", "render_job")
    COURSE_FIELD_NUMBER: _ClassVar[int]
    RENDER_JOB_FIELD_NUMBER: _ClassVar[int]
    course: _course_pb2.Course
    render_job: _job_pb2.Job
    def __init__(self, course: _Optional[_Union[_course_pb2.Course, _Mapping]] = ..., render_job: _Optional[_Union[_job_pb2.Job, _Mapping]] = ...) -> None: ...

class ListCourseVersionsRequest(_message.Message):
    __slots__ = ("course_id",)
    COURSE_ID_FIELD_NUMBER: _ClassVar[int]
    course_id: str
    def __init__(self, course_id: _Optional[str] = ...) -> None: ...

class ListCourseVersionsResponse(_message.Message):
    __slots__ = ("versions",)
    VERSIONS_FIELD_NUMBER: _ClassVar[int]
    versions: _containers.RepeatedCompositeFieldContainer[_course_pb2.CourseVersion]
    def __init__(self, versions: _Optional[_Iterable[_Union[_course_pb2.CourseVersion, _Mapping]]] = ...) -> None: ...

class UploadSourceRequest(_message.Message):
    __slots__ = ("filename", "content_type", "data")
    FILENAME_FIELD_NUMBER: _ClassVar[int]
    CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    filename: str
    content_type: str
    data: bytes
    def __init__(self, filename: _Optional[str] = ..., content_type: _Optional[str] = ..., data: _Optional[bytes] = ...) -> None: ...

class UploadSourceResponse(_message.Message):
    __slots__ = ("source",)
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    source: _course_pb2.Source
    def __init__(self, source: _Optional[_Union[_course_pb2.Source, _Mapping]] = ...) -> None: ...

class GetSourceRequest(_message.Message):
    __slots__ = ("source_id",)
    SOURCE_ID_FIELD_NUMBER: _ClassVar[int]
    source_id: str
    def __init__(self, source_id: _Optional[str] = ...) -> None: ...

class GetSourceResponse(_message.Message):
    __slots__ = ("source", "passages")
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    PASSAGES_FIELD_NUMBER: _ClassVar[int]
    source: _course_pb2.Source
    passages: _containers.RepeatedCompositeFieldContainer[_course_pb2.Passage]
    def __init__(self, source: _Optional[_Union[_course_pb2.Source, _Mapping]] = ..., passages: _Optional[_Iterable[_Union[_course_pb2.Passage, _Mapping]]] = ...) -> None: ...

class ListSourcesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListSourcesResponse(_message.Message):
    __slots__ = ("sources",)
    SOURCES_FIELD_NUMBER: _ClassVar[int]
    sources: _containers.RepeatedCompositeFieldContainer[_course_pb2.Source]
    def __init__(self, sources: _Optional[_Iterable[_Union[_course_pb2.Source, _Mapping]]] = ...) -> None: ...

class DeleteSourceRequest(_message.Message):
    __slots__ = ("source_id",)
    SOURCE_ID_FIELD_NUMBER: _ClassVar[int]
    source_id: str
    def __init__(self, source_id: _Optional[str] = ...) -> None: ...

class DeleteSourceResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...
