"""`syllabus course "PROMPT"`: write a course through a running gateway, show its progress, save the document.

Progress comes from the course job's own events (the outline, "lesson 3 of 6 written", "rendering PDF"): a
progress bar on a terminal, one line per step otherwise. Exit 0 once the document is written, 1 when the course
failed (with the reason) or the gateway could not be reached, 2 for invalid input.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

import grpc

from cli.gatewaycalls import run_against_gateway
from syllabus import credentials
from syllabus.client import SyllabusClient, error_from
from syllabus.config import ClientConfig, GatewayConfig
from syllabus.coursecontract import DEFAULT_LANGUAGE, DEFAULT_MODULES
from syllabus.v1 import course_pb2, course_service_pb2, course_service_pb2_grpc, job_pb2

EXIT_SUCCEEDED = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
# Seconds each call (not the whole course) may take.
CALL_TIMEOUT = 30.0
FORMATS = {
    "pdf": (course_pb2.DOCUMENT_FORMAT_PDF, ".pdf"),
    "html": (course_pb2.DOCUMENT_FORMAT_HTML, ".html"),
    "markdown": (course_pb2.DOCUMENT_FORMAT_MARKDOWN, ".md"),
    "epub": (course_pb2.DOCUMENT_FORMAT_EPUB, ".epub"),
    "scorm12": (course_pb2.DOCUMENT_FORMAT_SCORM_12, ".scorm12.zip"),
    "scorm2004": (course_pb2.DOCUMENT_FORMAT_SCORM_2004, ".scorm2004.zip"),
    "qti": (course_pb2.DOCUMENT_FORMAT_QTI_21, ".qti21.zip"),
    "moodle": (course_pb2.DOCUMENT_FORMAT_MOODLE_XML, ".moodle.xml"),
    "gift": (course_pb2.DOCUMENT_FORMAT_GIFT, ".gift.txt"),
}
# Only suffixes that name one format: a .zip or .xml could be several.
_FORMAT_BY_SUFFIX = {
    ".pdf": "pdf",
    ".html": "html",
    ".htm": "html",
    ".md": "markdown",
    ".markdown": "markdown",
    ".epub": "epub",
    ".gift": "gift",
}
LEVELS = {
    "beginner": course_pb2.COURSE_LEVEL_BEGINNER,
    "intermediate": course_pb2.COURSE_LEVEL_INTERMEDIATE,
    "advanced": course_pb2.COURSE_LEVEL_ADVANCED,
}
_BAR_WIDTH = 28


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "course",
        help="write a course from a prompt and save it as PDF, HTML, Markdown, EPUB or an LMS export",
        description="Write a course from a prompt through a running gateway (`syllabus up`), show its progress "
        "and save the rendered document.",
        epilog="exit codes:\n  0  the document was written\n  1  the course failed, or the gateway failed or "
        "could not be reached\n  2  invalid input",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("prompt", help='what the course is about, e.g. "Intro to Rust for Python developers"')
    parser.add_argument(
        "--modules", type=int, default=DEFAULT_MODULES, help=f"number of modules, 1 to 20 (default {DEFAULT_MODULES})"
    )
    parser.add_argument("--audience", default="", help='who it is for, e.g. "Python developers"')
    parser.add_argument("--level", choices=sorted(LEVELS), help="beginner, intermediate or advanced")
    parser.add_argument("--language", default="", help=f"BCP 47 language tag of the text (default {DEFAULT_LANGUAGE})")
    parser.add_argument("--provider", choices=["gemini", "openai", "offline"], help="model provider for this course")
    parser.add_argument("--model", default="", help="model name as the provider knows it, e.g. gemini-2.5-flash")
    parser.add_argument("--format", choices=sorted(FORMATS), help="document format (default: from --out, else pdf)")
    parser.add_argument("--out", metavar="PATH", help="where to write the document (default course.<extension>)")
    parser.add_argument(
        "--estimate",
        action="store_true",
        help="only print what the course would cost (model calls, tokens, price, the budget left) and start no "
        "course; a --source file is still uploaded, and its id printed for --source-id",
    )
    parser.add_argument("--key", default="", help="idempotency key: running the command again resumes that course")
    parser.add_argument(
        "--source",
        action="append",
        default=[],
        metavar="FILE",
        help="ground the course on this file (Markdown, text, PDF or HTML), uploaded first; may be repeated",
    )
    parser.add_argument(
        "--source-id",
        action="append",
        default=[],
        metavar="ID",
        help="ground the course on a source uploaded before (its id); may be repeated",
    )
    parser.add_argument(
        "--addr",
        metavar="HOST:PORT",
        help="the gateway's gRPC address (default: $SYLLABUS_GRPC_ADDR, else 127.0.0.1:50051)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    document_format = args.format or _FORMAT_BY_SUFFIX.get(Path(args.out or "").suffix.lower(), "pdf")
    out = Path(args.out or f"course{FORMATS[document_format][1]}")
    if not 1 <= args.modules <= 20:
        print("syllabus: --modules must be from 1 to 20", file=sys.stderr)
        return EXIT_USAGE
    try:
        sources = [(Path(path).name, Path(path).read_bytes()) for path in args.source]
    except OSError as exc:
        print(f"syllabus: cannot read the source {exc.filename}: {exc.strerror}", file=sys.stderr)
        return EXIT_USAGE
    addr = args.addr or GatewayConfig.from_env().grpc_addr
    request = course_service_pb2.CreateCourseRequest(
        course=job_pb2.GenerateCourse(
            prompt=args.prompt,
            modules=args.modules,
            audience=args.audience,
            level=LEVELS.get(args.level or "", course_pb2.COURSE_LEVEL_UNSPECIFIED),
            language=args.language,
            model=job_pb2.ModelSelection(provider=args.provider or "", model=args.model),
            source_ids=args.source_id,
        ),
        options=job_pb2.JobOptions(idempotency_key=args.key),
        validate_only=args.estimate,
    )
    return run_against_gateway(write_course(addr, request, FORMATS[document_format][0], out, sys.stderr, sources))


async def write_course(
    addr: str,
    request: course_service_pb2.CreateCourseRequest,
    document_format: course_pb2.DocumentFormat,
    out: Path,
    stream: TextIO,
    sources: Sequence[tuple[str, bytes]] = (),
) -> int:
    """Upload the `sources` (file name, data) and ground the course on them, create the course, follow its job to
    the end, and write the document to `out` (with validate_only: print the estimate alone). Returns the exit
    code."""
    channel = credentials.configured_channel(addr, ClientConfig.from_env())
    client = SyllabusClient(channel, addr, timeout=CALL_TIMEOUT)
    courses = course_service_pb2_grpc.CourseServiceStub(channel)
    try:
        try:
            for filename, data in sources:
                upload = course_service_pb2.UploadSourceRequest(filename=filename, data=data)
                uploaded: course_service_pb2.UploadSourceResponse = await courses.UploadSource(
                    upload, timeout=CALL_TIMEOUT
                )
                source = uploaded.source
                print(f"source {source.id}: {source.name} ({source.passages} passages)", file=stream)
                request.course.source_ids.append(source.id)
            created: course_service_pb2.CreateCourseResponse = await courses.CreateCourse(request, timeout=CALL_TIMEOUT)
        except grpc.aio.AioRpcError as exc:
            raise error_from(exc, addr) from None
        if request.validate_only:
            print(estimate_line(created.estimate), file=stream)
            return EXIT_SUCCEEDED
        print(f"course {created.course.id} (job {created.job.id}): {created.course.prompt}", file=stream)
        print(estimate_line(created.estimate), file=stream)
        progress = Progress(stream)
        last: job_pb2.JobEvent | None = None
        async for event in client.watch(created.job.id):
            progress.show(event)
            last = event
        progress.close()
        if last is None or last.type != job_pb2.JOB_EVENT_TYPE_SUCCEEDED:
            reason = f"{last.error.type}: {last.error.message}" if last is not None and last.error.type else "it ended"
            state = job_pb2.JobState.Name(last.state).removeprefix("JOB_STATE_") if last else "UNKNOWN"
            print(f"syllabus: the course {state.lower()}: {reason}", file=stream)
            return EXIT_FAILED
        try:
            body = await courses.GetCourseDocument(
                course_service_pb2.GetCourseDocumentRequest(course_id=created.course.id, format=document_format),
                timeout=CALL_TIMEOUT,
            )
            course: course_service_pb2.GetCourseResponse = await courses.GetCourse(
                course_service_pb2.GetCourseRequest(course_id=created.course.id), timeout=CALL_TIMEOUT
            )
        except grpc.aio.AioRpcError as exc:
            raise error_from(exc, addr) from None
        await asyncio.to_thread(out.write_bytes, body.data)
        print(f"wrote {out} ({len(body.data) / 1024:.0f} KiB): {course.course.title}", file=stream)
        print(_summary(course.course), file=stream)
        for line in review_lines(course.course):
            print(line, file=stream)
        return EXIT_SUCCEEDED
    finally:
        await client.close()


def estimate_line(estimate: course_pb2.CourseEstimate) -> str:
    """ "estimate: 13 model calls to openai gpt-4o, ~24,000 tokens, about $0.1234; $0.80 of the $1 budget spent" """
    model = " ".join(part for part in (estimate.provider, estimate.model) if part)
    tokens = estimate.input_tokens + estimate.output_tokens
    price = f"about ${estimate.estimated_cost_usd:.4f}" if estimate.estimated_cost_usd else "no cost"
    line = f"estimate: {estimate.model_calls} model calls to {model}, ~{tokens:,} tokens, {price}"
    if estimate.budget_usd:
        ends = estimate.budget_period_end.ToDatetime()
        line += f"; ${estimate.spent_usd:.2f} of the ${estimate.budget_usd:g} budget spent until {ends:%Y-%m-%d} UTC"
        if not estimate.within_budget:
            line += " (more than is left: the course would be refused)"
    return line


def _summary(course: course_pb2.Course) -> str:
    if course.offline_draft:
        return "an offline draft (no model configured); set GEMINI_API_KEY or SYLLABUS_OPENAI_BASE_URL for real content"
    tokens = course.input_tokens + course.output_tokens
    return f"written by {course.provider} {course.model}: {tokens:,} tokens, about ${course.estimated_cost_usd:.4f}"


def review_lines(course: course_pb2.Course) -> list[str]:
    """The quality findings the repair did not fix (generator.quality): what a reviewer should look at."""
    open_findings = [
        (module, finding) for module in course.modules for finding in module.findings if not finding.repaired
    ]
    if not open_findings:
        return []
    lines = [f"needs review: {len(open_findings)} quality finding{'s' if len(open_findings) > 1 else ''}"]
    lines += [
        f"  module {module.index + 1} {finding.part} ({finding.check}): {finding.message}"
        for module, finding in open_findings
    ]
    return lines


class Progress:
    """A bar redrawn in place on a terminal; one line per step (no repeats) anywhere else."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._tty = stream.isatty()
        self._percent = 0.0
        self._step = "queued"
        self._last_line = ""

    def show(self, event: job_pb2.JobEvent) -> None:
        step = _step(event)
        if step is None:
            return
        if event.type == job_pb2.JOB_EVENT_TYPE_PROGRESS:
            self._percent = max(self._percent, event.progress.percent)
        elif event.type == job_pb2.JOB_EVENT_TYPE_SUCCEEDED:
            self._percent = 100.0
        self._step = step
        if self._tty:
            filled = round(_BAR_WIDTH * self._percent / 100)
            bar = "#" * filled + "-" * (_BAR_WIDTH - filled)
            self._stream.write(f"\r\x1b[2K[{bar}] {self._percent:3.0f}%  {self._step}"[:200])
            self._stream.flush()
        else:
            line = f"{self._percent:3.0f}%  {self._step}"
            if line != self._last_line:
                print(line, file=self._stream, flush=True)
                self._last_line = line

    def close(self) -> None:
        if self._tty:
            self._stream.write("\n")
            self._stream.flush()


def _step(event: job_pb2.JobEvent) -> str | None:
    """What a watcher should read for this event, or None for events that say nothing new."""
    kind = event.type
    if kind == job_pb2.JOB_EVENT_TYPE_PROGRESS:
        return event.progress.message or None
    if kind == job_pb2.JOB_EVENT_TYPE_QUEUED:
        if event.error.type:
            delay = event.retry_delay.ToNanoseconds() / 1e9
            return f"waiting {delay:.0f}s: {event.error.message}"
        return "queued"
    if kind == job_pb2.JOB_EVENT_TYPE_STARTED:
        return "writing the outline" if event.attempt <= 1 else f"writing the outline (attempt {event.attempt})"
    if kind == job_pb2.JOB_EVENT_TYPE_RETRYING:
        delay = event.retry_delay.ToNanoseconds() / 1e9
        return f"retrying in {delay:.0f}s after {event.error.type}: {event.error.message}"
    if kind == job_pb2.JOB_EVENT_TYPE_WAITING:
        return "writing the lessons and quizzes"
    if kind == job_pb2.JOB_EVENT_TYPE_RESUMED:
        return "resumed: a failed part is being retried"
    if kind == job_pb2.JOB_EVENT_TYPE_SUCCEEDED:
        return "done"
    if kind == job_pb2.JOB_EVENT_TYPE_FAILED:
        return f"failed: {event.error.message}"
    if kind == job_pb2.JOB_EVENT_TYPE_CANCELED:
        return "canceled"
    return None
