from buf.validate import validate_pb2 as _validate_pb2
from google.api import annotations_pb2 as _annotations_pb2
from google.api import httpbody_pb2 as _httpbody_pb2
from syllabus.v1 import course_pb2 as _course_pb2
from syllabus.v1 import job_pb2 as _job_pb2
from syllabus.v1 import options_pb2 as _options_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CreateCourseRequest(_message.Message):
    __slots__ = ("course", "options")
    COURSE_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    course: _job_pb2.GenerateCourse
    options: _job_pb2.JobOptions
    def __init__(self, course: _Optional[_Union[_job_pb2.GenerateCourse, _Mapping]] = ..., options: _Optional[_Union[_job_pb2.JobOptions, _Mapping]] = ...) -> None: ...

class CreateCourseResponse(_message.Message):
    __slots__ = ("course", "job")
    COURSE_FIELD_NUMBER: _ClassVar[int]
    JOB_FIELD_NUMBER: _ClassVar[int]
    course: _course_pb2.Course
    job: _job_pb2.Job
    def __init__(self, course: _Optional[_Union[_course_pb2.Course, _Mapping]] = ..., job: _Optional[_Union[_job_pb2.Job, _Mapping]] = ...) -> None: ...

class GetCourseRequest(_message.Message):
    __slots__ = ("course_id",)
    COURSE_ID_FIELD_NUMBER: _ClassVar[int]
    course_id: str
    def __init__(self, course_id: _Optional[str] = ...) -> None: ...

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
    __slots__ = ("course_id", "format")
    COURSE_ID_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    course_id: str
    format: _course_pb2.DocumentFormat
    def __init__(self, course_id: _Optional[str] = ..., format: _Optional[_Union[_course_pb2.DocumentFormat, str]] = ...) -> None: ...

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
