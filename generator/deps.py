"""What the generator's handlers share: the store, job submission, parents, the models, the sources and
their embedder."""

from __future__ import annotations

from dataclasses import dataclass

from generator.embeddings import Embedder
from generator.models import Models
from syllabus.parents import Parents
from syllabus.sources import SourceShelf
from syllabus.store.base import Store
from syllabus.submit import Submitter


@dataclass(frozen=True)
class Deps:
    store: Store
    submitter: Submitter
    parents: Parents
    models: Models
    # Attempts of a child job whose parent set no max_attempts.
    default_max_attempts: int
    # The uploaded sources grounded courses are written from.
    sources: SourceShelf
    # Fused with BM25 to rank the sources' passages, when an embeddings endpoint is configured.
    embedder: Embedder | None = None
