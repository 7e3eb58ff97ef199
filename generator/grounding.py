"""Grounding a lesson or quiz task on the course's sources: the passages retrieval picks for its module, each with
the citation the written part records when it uses it."""

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


async def ground(shelf: SourceShelf, course: course_pb2.Course, task: Task[T]) -> Task[T]:
    """The task with its module's passages, or the task as it is for a course without sources."""
    if not course.sources or not isinstance(task, LessonTask | QuizTask):
        return task
    passages: list[course_pb2.Passage] = []
    for source in course.sources:
        text = await shelf.text(course.tenant, source.id)
        if text is None:
            log.warning("course %s: the text of source %s is no longer stored", course.id, source.id)
            continue
        passages.extend(text.passages)
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
