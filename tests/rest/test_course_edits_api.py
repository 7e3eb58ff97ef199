"""Course edits over REST: the README's curl examples run as written on a finished course, and bad edits answered
with a 4xx naming the field (no workers: the answers come before any job runs)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from syllabus.ids import new_id
from syllabus.v1 import course_pb2
from tests.rest.conftest import ROOT, Rest
from tests.rest.test_readme import run_examples


def edit_examples() -> str:
    """The curl lines of the README's "Edits and versions" section."""
    text = (ROOT / "README.md").read_text()
    section = text.split("### Edits and versions", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", section, re.S)
    script = "\n".join(block for block in blocks)
    # The curl commands only (with their continuation lines); the CLI lines need a running gateway of their own.
    return script[script.index("curl ") :]


async def finished_course(rest: Rest) -> course_pb2.Course:
    course = course_pb2.Course(id=new_id(), job_id=new_id(), tenant="default", version=1, title="Rust")
    for index in range(3):
        module = course.modules.add(index=index, title=f"Module {index + 1}", objectives=["Explain it"])
        module.lesson.body_markdown = f"# Lesson {index + 1}"
        module.quiz.questions.add(text="Which?", choices=["a", "b"], answer_index=1, explanation="Because b.")
    course.documents.add(format=course_pb2.DOCUMENT_FORMAT_MARKDOWN, object_name="x", course_version=1)
    await rest.pipeline.store.insert_course(course)
    return course


async def test_readme_edit_examples(rest: Rest, tmp_path: Path) -> None:
    course = await finished_course(rest)
    script = f"COURSE_ID={course.id}\n" + edit_examples()
    script = script.replace("curl -s", "curl -sS --fail-with-body -w '\\n'")
    code, out, err = await run_examples(script, rest.url.removeprefix("http://"), tmp_path)
    assert code == 0, f"stdout:\n{out}\nstderr:\n{err}"
    edited, regenerated, versions, first = (json.loads(line) for line in out.splitlines() if line.strip())
    assert (
        edited["course"]["version"] == "2" and edited["course"]["modules"][1]["lesson"]["bodyMarkdown"] == "# My lesson"
    )
    assert edited["renderJob"]["kind"] == "render_document"
    assert regenerated["course"]["version"] == "3" and regenerated["job"]["kind"] == "generate_lesson"
    assert regenerated["job"]["spec"]["generateLesson"]["instruction"] == "simpler"
    # No worker runs here: the lesson job is still pending on the course.
    assert regenerated["course"]["pendingJobIds"] == [regenerated["job"]["id"]]
    assert [v["version"] for v in versions["versions"]] == ["1", "2", "3"]
    assert first["course"]["version"] == "1" and first["course"]["modules"][1]["lesson"]["bodyMarkdown"] == "# Lesson 2"


async def test_bad_edits_are_4xx_naming_the_field(rest: Rest) -> None:
    course = await finished_course(rest)
    base = f"/v1/courses/{course.id}/modules"
    question = {"text": "Q?", "choices": ["a", "b"], "answerIndex": 2, "explanation": "e"}
    answer = await rest.http.patch(f"{base}/0/questions/0", json={"question": question})
    assert answer.status_code == 400
    assert [v["field"] for v in answer.json()["details"][0]["fieldViolations"]] == ["question.answer_index"]
    answer = await rest.http.patch(f"{base}/7/lesson", json={"bodyMarkdown": "# Mine"})
    assert answer.status_code == 400 and "module_index" in answer.text
    answer = await rest.http.patch(f"{base}/0/lesson", json={"bodyMarkdown": "# Mine", "expectedVersion": 5})
    assert answer.status_code == 409 and answer.json()["code"] == 10  # ABORTED
    answer = await rest.http.patch(f"{base}/0/lesson", json={"bodyMarkdown": "# Mine", "expectedVersion": 1})
    assert answer.status_code == 200 and answer.json()["course"]["version"] == "2"
    assert answer.json()["renderJob"]["spec"]["renderDocument"]["courseVersion"] == "2"
    versions = (await rest.http.get(f"/v1/courses/{course.id}/versions")).json()["versions"]
    assert [(v["version"], v.get("change", "")) for v in versions] == [
        ("1", ""),
        ("2", "edited the lesson of module 1"),
    ]
    assert (await rest.http.get(f"/v1/courses/{course.id}?version=9")).status_code == 404
