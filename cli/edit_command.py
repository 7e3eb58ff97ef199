"""`syllabus course-edit COURSE_ID ACTION`: change a finished course through a running gateway.

Modules and questions are numbered from 1 here, as the documents number them (the API counts from 0). Each
change makes the course's next version and prints it; a change written by jobs (regenerate, add) prints their
ids, and with --wait follows them to the end and then the version's render job (a hand edit's job is that render
job; the last part job of a regenerate or add submits it, and it is found by its labels). Exit 0 on success, 1 when the
gateway refused or failed (with the reason), 2 for invalid input.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any, TextIO

import grpc

from cli.gatewaycalls import run_against_gateway
from syllabus import credentials
from syllabus.client import SyllabusClient, error_from
from syllabus.config import ClientConfig, GatewayConfig
from syllabus.courseversions import version_labels
from syllabus.v1 import course_pb2, course_service_pb2, course_service_pb2_grpc, job_pb2

EXIT_SUCCEEDED = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
CALL_TIMEOUT = 30.0
S = course_service_pb2
PARTS = {"lesson": S.COURSE_PART_LESSON, "quiz": S.COURSE_PART_QUIZ}


class UsageError(ValueError):
    pass


def _number(text: str) -> int:
    """A module or question number as the documents show it (from 1), as the API's index (from 0)."""
    number = int(text)
    if number < 1:
        raise argparse.ArgumentTypeError("numbers start at 1")
    return number - 1


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "course-edit",
        help="change a finished course: regenerate a lesson or quiz, edit by hand, reorder/add/remove modules",
        description="Change a finished course through a running gateway. Every change makes the course's next "
        "version; earlier versions are kept (`versions` lists them). Modules and questions are numbered from 1.",
    )
    parser.add_argument("course_id", help="the course's id")
    parser.add_argument("--addr", metavar="HOST:PORT", help="the gateway's gRPC address")
    parser.add_argument(
        "--expect-version",
        type=int,
        default=0,
        metavar="N",
        help="refuse the change if the course is no longer at version N (someone else changed it)",
    )
    parser.add_argument("--wait", action="store_true", help="follow the change's jobs until they end")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    regenerate = actions.add_parser("regenerate", help="write one lesson or quiz again")
    regenerate.add_argument("part", choices=sorted(PARTS))
    regenerate.add_argument("module", type=_number, help="module number, from 1")
    regenerate.add_argument("--instruction", default="", help='what to change, e.g. "simpler"')

    lesson = actions.add_parser("lesson", help="replace a lesson's Markdown with a file's")
    lesson.add_argument("module", type=_number, help="module number, from 1")
    lesson.add_argument("file", type=Path, help="the Markdown file ('-' reads standard input)")

    question = actions.add_parser("question", help="replace one quiz question")
    question.add_argument("module", type=_number, help="module number, from 1")
    question.add_argument("question", type=_number, help="question number, from 1")
    question.add_argument("--text", required=True)
    question.add_argument("--choice", action="append", required=True, help="a choice (repeat for each)")
    question.add_argument("--answer", type=_number, required=True, help="the right choice's number, from 1")
    question.add_argument("--explanation", required=True, help="why the answer is right")

    reorder = actions.add_parser("reorder", help="put the modules in a new order")
    reorder.add_argument("order", type=_number, nargs="+", help="the current module numbers in their new order")

    add = actions.add_parser("add", help="add a module; its lesson and quiz are written by jobs")
    add.add_argument("--title", required=True)
    add.add_argument("--summary", default="")
    add.add_argument("--objective", action="append", required=True, help="a learning objective (repeat for each)")
    add.add_argument("--position", type=_number, help="the module number it gets (default: last)")

    remove = actions.add_parser("remove", help="remove a module")
    remove.add_argument("module", type=_number, help="module number, from 1")

    actions.add_parser("versions", help="list the course's versions")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    addr = args.addr or GatewayConfig.from_env().grpc_addr
    try:
        return run_against_gateway(edit(addr, args, sys.stderr))
    except UsageError as exc:
        print(f"syllabus: {exc}", file=sys.stderr)
        return EXIT_USAGE


async def _read(path: Path) -> str:
    if str(path) == "-":
        return await asyncio.to_thread(sys.stdin.read)
    try:
        return await asyncio.to_thread(path.read_text, encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from None


async def _call(
    courses: course_service_pb2_grpc.CourseServiceStub, args: argparse.Namespace
) -> tuple[course_pb2.Course, list[job_pb2.Job]]:
    """The action's request; the course version it made and the jobs that finish it."""
    common = {"course_id": args.course_id, "expected_version": args.expect_version}
    action = args.action
    if action == "regenerate":
        request = S.RegenerateCoursePartRequest(
            module_index=args.module, part=PARTS[args.part], instruction=args.instruction, **common
        )
        regenerated = await courses.RegenerateCoursePart(request, timeout=CALL_TIMEOUT)
        return regenerated.course, [regenerated.job]
    if action == "lesson":
        body = await _read(args.file)
        lesson = await courses.UpdateLesson(
            S.UpdateLessonRequest(module_index=args.module, body_markdown=body, **common), timeout=CALL_TIMEOUT
        )
        return lesson.course, [lesson.render_job]
    if action == "question":
        question = course_pb2.Question(
            text=args.text, choices=args.choice, answer_index=args.answer, explanation=args.explanation
        )
        asked = await courses.UpdateQuestion(
            S.UpdateQuestionRequest(
                module_index=args.module, question_index=args.question, question=question, **common
            ),
            timeout=CALL_TIMEOUT,
        )
        return asked.course, [asked.render_job]
    if action == "reorder":
        reordered = await courses.ReorderModules(
            S.ReorderModulesRequest(order=args.order, **common), timeout=CALL_TIMEOUT
        )
        return reordered.course, [reordered.render_job]
    if action == "add":
        request_add = S.AddModuleRequest(title=args.title, summary=args.summary, objectives=args.objective, **common)
        if args.position is not None:
            request_add.position = args.position
        added = await courses.AddModule(request_add, timeout=CALL_TIMEOUT)
        return added.course, list(added.jobs)
    removed = await courses.RemoveModule(
        S.RemoveModuleRequest(module_index=args.module, **common), timeout=CALL_TIMEOUT
    )
    return removed.course, [removed.render_job]


async def edit(addr: str, args: argparse.Namespace, stream: TextIO) -> int:
    channel = credentials.configured_channel(addr, ClientConfig.from_env())
    client = SyllabusClient(channel, addr, timeout=CALL_TIMEOUT)
    courses = course_service_pb2_grpc.CourseServiceStub(channel)
    try:
        try:
            if args.action == "versions":
                listed = await courses.ListCourseVersions(
                    S.ListCourseVersionsRequest(course_id=args.course_id), timeout=CALL_TIMEOUT
                )
                for version in listed.versions:
                    print(f"{version.version:>4}  {version.change or 'written'}", file=stream)
                return EXIT_SUCCEEDED
            course, jobs = await _call(courses, args)
        except grpc.aio.AioRpcError as exc:
            raise error_from(exc, addr) from None
        print(f"course {course.id} is at version {course.version}: {course.change}", file=stream)
        for job in jobs:
            print(f"  {job.kind} job {job.id}", file=stream)
        if not args.wait:
            return EXIT_SUCCEEDED
        code = await _follow(client, jobs, stream)
        if code != EXIT_SUCCEEDED or any(job.kind == "render_document" for job in jobs):
            return code
        # The part jobs are done; the last of them submitted the version's render job, found by its labels.
        page = await client.list(kind="render_document", labels=version_labels(course.id, course.version))
        if not page.items:
            print(f"syllabus: no render job of version {course.version} was found", file=stream)
            return EXIT_FAILED
        return await _follow(client, page.items, stream)
    finally:
        await client.close()


async def _follow(client: SyllabusClient, jobs: list[job_pb2.Job], stream: TextIO) -> int:
    for job in jobs:
        last: job_pb2.JobEvent | None = None
        async for event in client.watch(job.id):
            last = event
        if last is None or last.type != job_pb2.JOB_EVENT_TYPE_SUCCEEDED:
            reason = last.error.message if last is not None else "it ended"
            print(f"syllabus: {job.kind} job {job.id} did not succeed: {reason}", file=stream)
            return EXIT_FAILED
        print(f"  {job.kind} job {job.id} succeeded", file=stream)
    return EXIT_SUCCEEDED
