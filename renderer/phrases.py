"""The fixed texts of a course's documents in the course's language, from the catalog renderer/phrases.toml, and
which way its script runs.

A language tag (BCP 47: "ar", "pt-BR", "zh-Hans-CN") finds its table by its primary language subtag; a language
the catalog lacks gets English, and a text a table lacks is taken from English.
"""

from __future__ import annotations

import functools
import tomllib
from dataclasses import dataclass, fields
from importlib import resources

DEFAULT = "en"
# Languages written right to left (primary subtags), and the scripts that are, for tags such as "pa-Arab".
RTL_LANGUAGES = frozenset({"ar", "arc", "ckb", "dv", "fa", "he", "iw", "ps", "sd", "syr", "ug", "ur", "yi"})
RTL_SCRIPTS = frozenset({"arab", "hebr", "syrc", "thaa", "nkoo", "adlm", "rohg"})
# Deprecated subtags some systems still send.
_ALIASES = {"iw": "he", "in": "id", "ji": "yi"}


@dataclass(frozen=True)
class Phrases:
    language: str  # the course's tag, as the documents declare it
    rtl: bool
    contents: str
    module: str
    lesson: str
    quiz: str
    quiz_title: str
    objectives: str
    key_points: str
    answer_key: str
    title_page: str
    for_audience: str
    level: str
    beginner: str
    intermediate: str
    advanced: str
    modules: str
    language_line: str
    page: str
    offline_notice: str
    written_offline: str
    written_by: str
    cost: str
    submit: str
    score: str
    passed: str
    failed: str
    sources: str
    source: str
    source_pages: str
    source_sections: str

    @property
    def direction(self) -> str:
        return "rtl" if self.rtl else "ltr"


def primary_subtag(tag: str) -> str:
    primary = tag.replace("_", "-").split("-", 1)[0].strip().lower()
    return _ALIASES.get(primary, primary)


def is_rtl(tag: str) -> bool:
    subtags = [part.lower() for part in tag.replace("_", "-").split("-")]
    scripts = [part for part in subtags[1:] if len(part) == 4 and part.isalpha()]
    if scripts:
        return scripts[0] in RTL_SCRIPTS
    return primary_subtag(tag) in RTL_LANGUAGES


@functools.lru_cache(maxsize=64)
def phrases(tag: str) -> Phrases:
    """The texts for a language tag (empty: English)."""
    catalog = _catalog()
    language = tag.strip() or DEFAULT
    table = catalog.get(primary_subtag(language), {})
    texts = {**catalog[DEFAULT], **table}
    return Phrases(language=language, rtl=is_rtl(language), **texts)


def languages() -> list[str]:
    """The languages the catalog has texts for."""
    return sorted(_catalog())


@functools.cache
def _catalog() -> dict[str, dict[str, str]]:
    text = resources.files("renderer").joinpath("phrases.toml").read_text(encoding="utf-8")
    catalog: dict[str, dict[str, str]] = tomllib.loads(text)
    known = {field.name for field in fields(Phrases)} - {"language", "rtl"}
    for name, table in catalog.items():
        unknown = set(table) - known
        if unknown:
            raise ValueError(f"renderer/phrases.toml [{name}]: unknown texts {sorted(unknown)}")
    return catalog
