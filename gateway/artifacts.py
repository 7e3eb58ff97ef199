"""Downloads from the artifacts object store: a job's artifacts (GetJobArtifact) and a course's documents
(GetCourseDocument, and GetJobArtifact for the course's jobs) go through the same code.

The answer is a google.api.HttpBody with the stored content type; its file name travels as `content-disposition`
header metadata, which the REST shim sends as the Content-Disposition header. An object that is not (or no longer)
stored is NOT_FOUND, like an unknown job or name: never a 5xx.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NoReturn

from google.api import httpbody_pb2
from google.rpc import code_pb2, error_details_pb2
from nats.js.client import JetStreamContext
from nats.js.errors import NotFoundError, ObjectNotFoundError

from gateway.status import Context, abort, build_status
from syllabus.artifacts import job_object_name
from syllabus.store.base import Store
from syllabus.v1 import course_pb2, job_pb2

ARTIFACT_RESOURCE = "syllabus.v1.Artifact"


@dataclass(frozen=True)
class Stored:
    """A file in the artifacts bucket, as a download names it."""

    object_name: str
    content_type: str
    # The name a download saves it under.
    filename: str
    # What a NOT_FOUND names: its resource type and name.
    resource_type: str
    resource_name: str


async def not_found(context: Context, resource_type: str, resource_name: str, message: str) -> NoReturn:
    info = error_details_pb2.ResourceInfo(resource_type=resource_type, resource_name=resource_name)
    await abort(context, build_status(code_pb2.NOT_FOUND, message, info))


async def download(context: Context, js: JetStreamContext, bucket_name: str, stored: Stored) -> httpbody_pb2.HttpBody:
    try:
        bucket = await js.object_store(bucket_name)
        result = await bucket.get(stored.object_name)
    except (ObjectNotFoundError, NotFoundError):
        await not_found(context, stored.resource_type, stored.resource_name, f"{stored.resource_name} is not stored")
    # Names are validated (no quotes or path), so the header needs no escaping.
    await context.send_initial_metadata((("content-disposition", f'attachment; filename="{stored.filename}"'),))
    return httpbody_pb2.HttpBody(content_type=stored.content_type, data=result.data or b"")


def document_name(document: course_pb2.Document) -> str:
    """A course document's artifact name: its object's file name, e.g. course.pdf."""
    return document.object_name.rsplit("/", 1)[-1]


async def job_artifacts(store: Store, job: job_pb2.Job) -> dict[str, Stored]:
    """Every file a download can name for the job: its result's artifacts and, for a course's course job and
    render job, the course's documents."""
    found: dict[str, Stored] = {}
    for artifact in job.result.artifacts:
        found[artifact.name] = Stored(
            object_name=job_object_name(job.id, artifact.name),
            content_type=artifact.content_type,
            filename=artifact.name,
            resource_type=ARTIFACT_RESOURCE,
            resource_name=f"jobs/{job.id}/artifacts/{artifact.name}",
        )
    kind = job.spec.WhichOneof("kind")
    course_id = {
        "generate_course": job.spec.generate_course.course_id,
        "render_document": job.spec.render_document.course_id,
    }.get(kind or "", "")
    if course_id:
        course = await store.get_course(course_id)
        if course is not None and course.tenant == job.tenant:
            for document in course.documents:
                name = document_name(document)
                found.setdefault(
                    name,
                    Stored(
                        object_name=document.object_name,
                        content_type=document.content_type,
                        filename=name,
                        resource_type=ARTIFACT_RESOURCE,
                        resource_name=f"jobs/{job.id}/artifacts/{name}",
                    ),
                )
    return found
