"""Which passages of a course's sources a module's lesson and quiz are written from: BM25 (bm25s), offline, with
the module's title, summary and objectives as the query. Passages that share no word with the query are left
out, so a module the sources do not speak about gets none rather than unrelated ones."""

from __future__ import annotations

from collections.abc import Sequence

from generator.tasks import ModuleContext
from syllabus.v1 import course_pb2

PASSAGES_PER_MODULE = 4


def module_query(module: ModuleContext) -> str:
    return " ".join([module.title, module.summary, *module.objectives])


def rank(
    passages: Sequence[course_pb2.Passage], query: str, k: int = PASSAGES_PER_MODULE, language: str = "en"
) -> list[course_pb2.Passage]:
    """The k passages that match the query best, best first."""
    if not passages or k <= 0:
        return []
    # Imported here: numpy is loaded only by a generator writing a grounded course.
    import bm25s

    stopwords = "en" if language.lower().startswith("en") else None
    retriever = bm25s.BM25()
    corpus = bm25s.tokenize([p.text for p in passages], stopwords=stopwords, show_progress=False)
    retriever.index(corpus, show_progress=False)
    query_tokens = bm25s.tokenize([query], stopwords=stopwords, show_progress=False)
    found, scores = retriever.retrieve(query_tokens, k=min(k, len(passages)), show_progress=False)
    return [passages[int(i)] for i, score in zip(found[0], scores[0], strict=True) if score > 0]
