"""Grounding a course's tasks on its sources: the outline sees how each page or section of them opens; a lesson or
quiz gets the passages retrieval picks for its module, each with the citation the written part records when it
uses it."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from typing import TypeVar, cast

from generator.retrieval import PASSAGES_PER_MODULE, module_query, rank
from generator.tasks import Grounding, LessonTask, QuizTask, Task
from syllabus.sources import SourceShelf
from syllabus.v1 import course_pb2

T = TypeVar("T")
log = logging.getLogger(__name__)
# What the outline prompt shows of the sources: at most this many pages or sections, each by its first words.
OUTLINE_LINES = 60
OUTLINE_WORDS = 25


async def _passages(shelf: SourceShelf, course: course_pb2.Course) -> list[course_pb2.Passage]:
    passages: list[course_pb2.Passage] = []
    for source in course.sources:
        text = await shelf.text(course.tenant, source.id)
        if text is None:
            log.warning("course %s: the text of source %s is no longer stored", course.id, source.id)
            continue
        passages.extend(text.passages)
    return passages


async def outline_material(shelf: SourceShelf, course: course_pb2.Course) -> tuple[str, ...]:
    """One line per page or section of the course's sources ("handbook.pdf, page 3: Kneading develops ..."), in
    reading order; a long source is sampled evenly so that every part of it is seen."""
    if not course.sources:
        return ()
    names = {source.id: source.name for source in course.sources}
    firsts: dict[tuple[str, str], course_pb2.Passage] = {}
    for passage in await _passages(shelf, course):
        firsts.setdefault((passage.source_id, passage.locator), passage)
    openings = list(firsts.values())
    if len(openings) > OUTLINE_LINES:
        step = len(openings) / OUTLINE_LINES
        openings = [openings[int(i * step)] for i in range(OUTLINE_LINES)]
    return tuple(
        f"{names.get(p.source_id, p.source_id)}, {p.locator}: {' '.join(p.text.split()[:OUTLINE_WORDS])}"
        for p in openings
    )


async def ground(shelf: SourceShelf, course: course_pb2.Course, task: Task[T]) -> Task[T]:
    """The task with its module's passages, or the task as it is for a course without sources."""
    if not course.sources or not isinstance(task, LessonTask | QuizTask):
        return task
    passages = await _passages(shelf, course)
    module = task.module
    loop = asyncio.get_running_loop()
    # Ranking (and bm25s's first import) is CPU work: off the event loop.
    best = await loop.run_in_executor(None, rank, passages, module_query(module), PASSAGES_PER_MODULE, module.language)
    names = {source.id: source.name for source in course.sources}
    grounding = tuple(
        Grounding(
            citation=course_pb2.Citation(
                source_id=passage.source_id,
                source_name=names.get(passage.source_id, ""),
                locator=passage.locator,
                passage_id=passage.id,
            ),
            text=passage.text,
        )
        for passage in best
    )
    return cast(Task[T], dataclasses.replace(task, grounding=grounding))
