"""`syllabus course`: submits, follows the course job's progress, writes the document; exit 1 with the reason."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import pytest

from cli import main as cli
from cli.course_command import Progress
from generator import estimate
from generator.providers.registry import Registry
from syllabus.v1 import course_service_pb2, job_pb2
from tests.course.conftest import CourseStack
from tests.course.test_course_flow import BrokenLesson


def tokens_of(modules: int) -> int:
    """The tokens the estimate counts for a course of `modules` modules: an outline, a lesson and a quiz each."""
    return sum(estimate.OUTLINE) + modules * (sum(estimate.LESSON) + sum(estimate.QUIZ))


async def test_course_command_writes_the_document_and_shows_progress(
    stack: CourseStack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    await stack.start_workers()
    out = tmp_path / "rust.html"
    argv = ["course", "Intro to Rust", "--modules", "3", "--level", "beginner", "--out", str(out), "--addr", stack.addr]
    # The command runs its own event loop, as it does from a shell.
    code = await asyncio.to_thread(cli.main, argv)
    err = capsys.readouterr().err
    assert code == 0, err
    page = out.read_text()
    assert page.startswith("<!DOCTYPE html>") and "Intro to Rust" in page
    lines = err.splitlines()
    assert lines[0].startswith("course ") and "Intro to Rust" in lines[0]
    assert lines[1] == f"estimate: 7 model calls to offline, ~{tokens_of(3):,} tokens, no cost", lines[1]
    assert any(line.endswith("outline ready: 3 modules") for line in lines)
    assert any("lesson 3 of 3 written" in line or "quiz 3 of 3 written" in line for line in lines)
    assert any("rendering HTML" in line for line in lines)
    assert "100%  done" in err and f"wrote {out}" in err and "offline draft" in err
    # Plain lines, no terminal control codes, when the output is not a terminal.
    assert "\r" not in err and "\x1b" not in err


async def test_course_command_fails_with_the_reason(
    stack: CourseStack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    provider = BrokenLesson(module_index=0)
    await stack.start_workers(stack.models(Registry("offline", {"offline": lambda model: provider})))
    out = tmp_path / "course.pdf"
    code = await asyncio.to_thread(
        cli.main, ["course", "Intro to Rust", "--modules", "1", "--out", str(out), "--addr", stack.addr]
    )
    err = capsys.readouterr().err
    assert code == 1
    assert "the course failed: ChildFailed" in err and "the model refused this lesson" in err
    assert not out.exists()


async def test_course_command_estimate_prints_the_cost_and_writes_nothing(
    stack: CourseStack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "course.pdf"
    argv = ["course", "Intro to Rust", "--modules", "4", "--provider", "offline", "--estimate", "--out", str(out)]
    code = await asyncio.to_thread(cli.main, [*argv, "--addr", stack.addr])
    err = capsys.readouterr().err
    assert code == 0, err
    assert err.splitlines() == [f"estimate: 9 model calls to offline, ~{tokens_of(4):,} tokens, no cost"]
    assert not out.exists()
    listed = await stack.courses.ListCourses(course_service_pb2.ListCoursesRequest(), timeout=10)
    assert not listed.courses


def test_course_command_rejects_bad_input(capsys: pytest.CaptureFixture[str], closed_addr: str) -> None:
    assert cli.main(["course", "Intro to Rust", "--modules", "0", "--addr", closed_addr]) == 2
    assert "--modules" in capsys.readouterr().err


async def test_course_command_without_a_gateway(capsys: pytest.CaptureFixture[str], closed_addr: str) -> None:
    code = await asyncio.to_thread(cli.main, ["course", "Intro to Rust", "--addr", closed_addr])
    assert code == 1 and "cannot reach the gateway" in capsys.readouterr().err


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_on_a_terminal() -> None:
    screen = Terminal()
    progress = Progress(screen)
    event = job_pb2.JobEvent(type=job_pb2.JOB_EVENT_TYPE_PROGRESS)
    event.progress.percent = 50
    event.progress.message = "lesson 3 of 6 written"
    progress.show(event)
    progress.close()
    assert screen.getvalue() == f"\r\x1b[2K[{'#' * 14}{'-' * 14}]  50%  lesson 3 of 6 written\n"
