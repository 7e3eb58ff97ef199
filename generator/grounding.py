"""Grounding a course's tasks on its sources: the outline sees how each page or section of them opens; a lesson or
quiz gets the passages retrieval picks for its module (BM25, fused with embedding similarity when an embeddings
endpoint is configured), each with the citation the written part records when it uses it."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from typing import TypeVar, cast

from generator.embeddings import Embedder, EmbeddingError
from generator.retrieval import PASSAGES_PER_MODULE, module_query, rank, rank_hybrid
from generator.tasks import Grounding, LessonTask, ModuleContext, QuizTask, Task
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


async def best_passages(
    passages: list[course_pb2.Passage], module: ModuleContext, embedder: Embedder | None = None
) -> list[course_pb2.Passage]:
    """The module's passages, best first: by BM25, or BM25 and embeddings fused; an embeddings endpoint that fails
    leaves BM25 alone rather than failing the job."""
    query = module_query(module)
    loop = asyncio.get_running_loop()
    if embedder is not None and passages:
        try:
            *vectors, query_vector = await embedder.embed([*(p.text for p in passages), query])
        except EmbeddingError as exc:
            log.warning(
                "embeddings unavailable (%s), module %r is grounded by BM25 alone: %s",
                embedder.model,
                module.title,
                exc,
            )
        else:
            # Ranking (and the first import of bm25s and numpy) is CPU work: off the event loop.
            return await loop.run_in_executor(
                None, rank_hybrid, passages, query, vectors, query_vector, PASSAGES_PER_MODULE, module.language
            )
    return await loop.run_in_executor(None, rank, passages, query, PASSAGES_PER_MODULE, module.language)


async def ground(
    shelf: SourceShelf, course: course_pb2.Course, task: Task[T], embedder: Embedder | None = None
) -> Task[T]:
    """The task with its module's passages, or the task as it is for a course without sources."""
    if not course.sources or not isinstance(task, LessonTask | QuizTask):
        return task
    best = await best_passages(await _passages(shelf, course), task.module, embedder)
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
