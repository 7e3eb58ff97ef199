"""Which passages of a course's sources a module's lesson and quiz are written from: BM25 (bm25s), offline, with
the module's title, summary and objectives as the query. Passages that share no word with the query are left
out, so a module the sources do not speak about gets none rather than unrelated ones. With embedding vectors
(generator.embeddings), BM25's list and the passages ordered by cosine similarity to the query are fused by
reciprocal rank fusion, so a passage that says the same thing in other words is found too."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from generator.tasks import ModuleContext
from syllabus.v1 import course_pb2

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

PASSAGES_PER_MODULE = 4
# Reciprocal rank fusion's constant (Cormack et al.): a passage scores 1 / (RRF_K + rank) in each list.
RRF_K = 60


def module_query(module: ModuleContext) -> str:
    return " ".join([module.title, module.summary, *module.objectives])


def rank(
    passages: Sequence[course_pb2.Passage], query: str, k: int = PASSAGES_PER_MODULE, language: str = "en"
) -> list[course_pb2.Passage]:
    """The k passages that match the query best, best first."""
    return [passages[i] for i in _bm25(passages, query, k, language)]


def rank_hybrid(
    passages: Sequence[course_pb2.Passage],
    query: str,
    vectors: Sequence[npt.NDArray[np.float32]],
    query_vector: npt.NDArray[np.float32],
    k: int = PASSAGES_PER_MODULE,
    language: str = "en",
) -> list[course_pb2.Passage]:
    """The k passages BM25 and embedding similarity (one vector per passage) agree on best, best first."""
    if not passages or k <= 0:
        return []
    import numpy as np

    matrix = np.vstack(vectors)
    # Cosine similarity; a zero vector (norm 0) is similar to nothing rather than a division by zero.
    norms = np.linalg.norm(matrix, axis=1) * float(np.linalg.norm(query_vector))
    similarity = np.divide(matrix @ query_vector, norms, out=np.zeros(len(passages)), where=norms > 0)
    by_similarity = [int(i) for i in np.argsort(-similarity, kind="stable")]
    fused = [0.0] * len(passages)
    for ranking in (_bm25(passages, query, len(passages), language), by_similarity):
        for place, index in enumerate(ranking, start=1):
            fused[index] += 1.0 / (RRF_K + place)
    best = sorted(range(len(passages)), key=lambda i: -fused[i])
    return [passages[i] for i in best[:k]]


def _bm25(passages: Sequence[course_pb2.Passage], query: str, k: int, language: str) -> list[int]:
    """The indexes of the k passages with the best positive BM25 scores, best first."""
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
    return [int(i) for i, score in zip(found[0], scores[0], strict=True) if score > 0]
