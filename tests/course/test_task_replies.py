"""The generation tasks' replies: the JSON schema each task's one declaration gives, the protobuf messages it
reads a fitting reply into, and the repair messages for replies that do not fit. Also the course contract's
progress bands."""

from __future__ import annotations

import json
from typing import Any

import pytest

from generator.shapes import InvalidOutput
from generator.tasks import LessonTask, ModuleContext, OutlineTask, QuizTask, SummaryTask, Task, parse_reply
from syllabus import coursecontract
from syllabus.v1 import course_pb2

MODULE = ModuleContext("C", "d", "", "general", "en", 0, ("M",), "M", "s", ("o",))
STRING = {"type": "string"}
STRINGS = {"type": "array", "items": STRING, "minItems": 1}


def outline(modules: int = 2) -> dict[str, Any]:
    return {
        "title": " Rust ",
        "description": "A course.",
        "modules": [{"title": f"M{i}", "summary": "s", "objectives": ["o", " p "]} for i in range(modules)],
    }


def question(**fields: Any) -> dict[str, Any]:
    return {"text": "Q?", "choices": ["a", "b", "c"], "answer_index": 2, "explanation": "e", **fields}


def problem(task: Task[Any], data: Any) -> str:
    with pytest.raises(InvalidOutput) as caught:
        parse_reply(task, json.dumps(data))
    return str(caught.value)


def test_schemas_are_inline_objects_with_exact_counts() -> None:
    # What providers get: nested objects in place (Gemini takes no $ref or $defs), every field required.
    module = {
        "type": "object",
        "properties": {"title": STRING, "summary": STRING, "objectives": STRINGS},
        "required": ["title", "summary", "objectives"],
    }
    assert OutlineTask("p", 3, "", "general", "en").schema() == {
        "type": "object",
        "properties": {
            "title": STRING,
            "description": STRING,
            "modules": {"type": "array", "items": module, "minItems": 3, "maxItems": 3},
        },
        "required": ["title", "description", "modules"],
    }
    assert LessonTask(MODULE).schema() == {
        "type": "object",
        "properties": {"title": STRING, "body_markdown": STRING, "key_points": STRINGS},
        "required": ["title", "body_markdown", "key_points"],
    }
    quiz = QuizTask(MODULE, 2).schema()
    assert quiz["properties"]["questions"]["minItems"] == quiz["properties"]["questions"]["maxItems"] == 2
    assert quiz["properties"]["questions"]["items"]["properties"]["answer_index"] == {"type": "integer", "minimum": 0}
    assert quiz["properties"]["questions"]["items"]["properties"]["choices"]["minItems"] == 2
    assert SummaryTask("t", 5).schema() == {
        "type": "object",
        "properties": {"summary": STRING},
        "required": ["summary"],
    }
    assert "$ref" not in json.dumps([quiz, OutlineTask("p", 1, "", "general", "en").schema()])


def test_a_fitting_reply_becomes_protobuf_messages() -> None:
    parsed = parse_reply(OutlineTask("p", 2, "", "general", "en"), json.dumps(outline()))
    assert (parsed.title, parsed.description) == ("Rust", "A course.")
    assert parsed.modules == (
        course_pb2.Module(index=0, title="M0", summary="s", objectives=["o", "p"]),
        course_pb2.Module(index=1, title="M1", summary="s", objectives=["o", "p"]),
    )
    lesson = {"title": "L", "body_markdown": "# B\n", "key_points": ["k"]}
    assert parse_reply(LessonTask(MODULE), json.dumps(lesson)) == course_pb2.Lesson(
        title="L", body_markdown="# B", key_points=["k"]
    )
    quiz = parse_reply(QuizTask(MODULE, 1), json.dumps({"questions": [question()]}))
    assert quiz == course_pb2.Quiz(
        questions=[course_pb2.Question(text="Q?", choices=["a", "b", "c"], answer_index=2, explanation="e")]
    )
    assert parse_reply(SummaryTask("t", 5), '{"summary": " short "}') == "short"


def test_problems_name_their_path() -> None:
    task = OutlineTask("p", 3, "", "general", "en")
    assert problem(task, []) == "the answer must be a JSON object"
    assert problem(task, outline(2)) == "modules must be a list of exactly 3 items (got 2)"
    assert problem(task, {**outline(3), "modules": None}) == "modules must be a list of exactly 3 items (got none)"
    broken = outline(3)
    broken["modules"][2]["title"] = " "
    assert problem(task, broken) == "modules[2].title must be a non-empty string"
    broken["modules"][2] = "M2"
    assert problem(task, broken) == "modules[2] must be a JSON object"
    broken = outline(3)
    broken["modules"][1]["objectives"] = []
    assert problem(task, broken) == "modules[1].objectives must be a list of at least 1 strings"
    broken["modules"][1]["objectives"] = ["o", 3]
    assert problem(task, broken) == "modules[1].objectives[1] must be a non-empty string"
    assert problem(task, {k: v for k, v in outline(3).items() if k != "description"}) == (
        "description must be a non-empty string"
    )


def test_rules_across_fields() -> None:
    repeated = outline(3)
    repeated["modules"][2]["title"] = " m0"
    assert problem(OutlineTask("p", 3, "", "general", "en"), repeated) == (
        "modules[2].title repeats an earlier module title ('m0')"
    )
    quiz = QuizTask(MODULE, 2)
    outside = {"questions": [question(), question(answer_index=3)]}
    assert problem(quiz, outside) == "questions[1].answer_index must be an integer from 0 to 2"
    assert problem(quiz, {"questions": [question(), question(answer_index=True)]}) == (
        "questions[1].answer_index must be an integer of at least 0"
    )
    assert (
        problem(quiz, {"questions": [question(choices=["a"])]}) == "questions must be a list of exactly 2 items (got 1)"
    )
    assert problem(quiz, {"questions": [question(), question(choices=["a"])]}) == (
        "questions[1].choices must be a list of at least 2 strings"
    )
    assert problem(SummaryTask("t", 2), {"summary": "one two three"}) == "summary must have at most 2 words (got 3)"


def test_progress_bands_only_grow() -> None:
    c = coursecontract
    children = [c.children_progress(done, 3) for done in range(7)]
    rendering = [c.render_progress(step, 3) for step in range(3)]
    steps = [c.OUTLINE_START, c.OUTLINE_DONE, *children[1:], *rendering, 100.0]
    assert steps == sorted(steps) and len(set(steps)) == len(steps)
    assert children[0] == c.OUTLINE_DONE and children[-1] == c.CHILDREN_DONE
    assert rendering[0] > c.CHILDREN_DONE and rendering[-1] < c.RENDER_DONE
