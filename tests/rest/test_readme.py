"""The README's "REST (curl)" examples, run as written with the real curl and bash, so they cannot rot.

The job examples run here against the in-process gateway; the course examples need the generator and renderer
and run against `syllabus up` in test_courses_e2e.py.
"""

from __future__ import annotations

import asyncio
import re
import shutil
from pathlib import Path

from tests.pipeline.conftest import StartWorker
from tests.rest.conftest import ROOT, Rest

README = ROOT / "README.md"
# The address the examples are written for; the tests put the gateway under test in its place.
WRITTEN_FOR = "127.0.0.1:8080"


def rest_examples() -> list[str]:
    """The ```sh blocks of the README's "REST (curl)" section, in order (a "# ..." line in a block is a comment)."""
    blocks: list[str] = []
    in_section = False
    fence: str | None = None  # the language of the code block we are in
    lines: list[str] = []
    for line in README.read_text().splitlines():
        if fence is not None:
            if line.startswith("```"):
                if in_section and fence == "sh":
                    blocks.append("\n".join(lines) + "\n")
                fence = None
            else:
                lines.append(line)
        elif line.startswith("```"):
            fence, lines = line[3:].strip(), []
        elif re.match(r"#{1,3} ", line):
            in_section = line.strip() == "### REST (curl)"
    return blocks


def job_examples() -> str:
    return "\n".join(block for block in rest_examples() if "/v1/courses" not in block)


def course_examples() -> str:
    return "\n".join(block for block in rest_examples() if "/v1/courses" in block)


async def run_examples(script: str, address: str, cwd: Path) -> tuple[int, str, str]:
    """Runs the examples as one bash script that stops at the first failing command."""
    assert shutil.which("curl"), "the README examples need curl"
    process = await asyncio.create_subprocess_exec(
        "bash",
        "-c",
        "set -euo pipefail\n" + script.replace(WRITTEN_FOR, address),
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def test_the_section_has_job_and_course_examples() -> None:
    blocks = rest_examples()
    assert len(blocks) == 4
    assert "curl -N" in job_examples() and "Accept: text/event-stream" in job_examples()
    assert "/document" in course_examples()
    assert "/v1/sources" in job_examples()


async def test_readme_job_examples(rest: Rest, start_worker: StartWorker, tmp_path: Path) -> None:
    await start_worker()
    code, out, err = await run_examples(job_examples(), rest.url.removeprefix("http://"), tmp_path)
    assert code == 0, f"stdout:\n{out}\nstderr:\n{err}"
    # The first submission prints the stored job (the second one's answer goes into JOB_ID), and so does the run.
    assert out.count('"created":true') == 2
    # The watch as NDJSON, then as SSE, then the run's events: each reaches the end of its job.
    assert out.count('{"result":{"event":') >= 6
    assert out.count('"type":"JOB_EVENT_TYPE_SUCCEEDED"') == 3
    assert re.search(r'^\{"result":\{"submitted":\{"job":\{"id":"\w+"', out, re.M), out
    assert '"text":"done by attempt 1: One call submits a job and follows it to its end."' in out
    assert re.search(r"^id: \d+\ndata: \{\"event\":", out, re.M)
    assert "event: end\ndata: {}" in out
    # The fetch and the list.
    assert '"state":"JOB_STATE_SUCCEEDED"' in out and '{"jobs":[' in out
    # The errors, with their HTTP statuses.
    assert '"field":"spec.summarize_text.text"' in out and " HTTP 400" in out
    assert '"code":5,"message":"job \'no-such-job\' not found"' in out and " HTTP 404" in out
    # The source: uploaded as base64, then read back with its passage and listed.
    assert '"name":"notes.md","contentType":"text/markdown"' in out
    assert '"locator":"section \'Queues\'","text":"A queue keeps messages until a consumer acknowledges them."' in out
    assert '{"sources":[{' in out
    # Deleted, then not found.
    assert "{} HTTP 200" in out
    assert re.search(r'"code":5,"message":"source \'\w+\' not found".* HTTP 404', out), out
