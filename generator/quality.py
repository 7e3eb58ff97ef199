"""Quality checks on a generated lesson or quiz: pure functions from the part (and what it is checked against) to
findings, the problems a teacher would object to. A part with findings is repaired once by generator.modules (the
findings quoted to the model), and what the repair does not fix is kept on the module, flagged for review.

The checks, each by its name in a finding:
- distinct_choices: a question's choices differ (ignoring case, spacing and punctuation), so the correct one is
  not also a distractor;
- single_answer: no choice like "all of the above" or "both A and B", which makes more than one choice correct;
- explanation: a question's explanation says something (a few words at least);
- twin: no two questions in the course are the same question. A heuristic: same content words, ignoring case,
  punctuation, word order and common small words; a quiz is compared with itself and the quizzes already stored;
- length: a lesson's word count (outside code blocks) is within its level's range;
- readability: a lesson's Coleman-Liau grade (textstat) is within its level's band, for English lessons only.
  Coleman-Liau counts letters and sentences, so it needs no pronunciation dictionary;
- objectives: a heuristic. An objective is covered by a part when at least a third of its key terms (words of
  four letters or more after its leading verb, less common words, matched on their first five letters) appear in
  it; the lesson must cover every objective, the quiz as many as it has questions;
- citations: a grounded course's lesson or question cites only passages that exist: of one of the course's
  sources, numbered within that source's passages.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from generator.wordcount import count_words
from syllabus.v1 import course_pb2


@dataclass(frozen=True)
class LevelBand:
    """What a lesson of one level is asked for (`words`) and what passes the checks (`accepted_words`, wider: a
    model rarely hits the asked length exactly), and the highest Coleman-Liau grade it may read at."""

    words: tuple[int, int]
    max_grade: float

    @property
    def accepted_words(self) -> tuple[int, int]:
        low, high = self.words
        return low // 2, high * 3 // 2


# By the level names of generator.tasks.LEVELS.
BANDS = {
    "beginner": LevelBand(words=(500, 1000), max_grade=13.0),
    "general": LevelBand(words=(600, 1200), max_grade=14.0),
    "intermediate": LevelBand(words=(600, 1200), max_grade=15.0),
    "advanced": LevelBand(words=(700, 1400), max_grade=17.0),
}
MIN_EXPLANATION_WORDS = 4


def _words(spaced: str) -> frozenset[str]:
    return frozenset(spaced.split())


_MULTIPLE = re.compile(r"\b(all|both|none) of (the )?(above|these|them)\b|\bboth [a-d] and [a-d]\b", re.IGNORECASE)
_FENCE = re.compile(r"^(```|~~~).*?^\1", re.MULTILINE | re.DOTALL)
_WORD = re.compile(r"[^\W_]+")
_SMALL_WORDS = _words(
    "a an the of to in on for and or is are be it its this that these those with as by at from which what who "
    "how why when does do can you your"
)
_COMMON_WORDS = _words(
    "about after also before between each every from have into more most other over same some such than that "
    "their them then there these they this those through under using very what when where which while with "
    "without would your able basic concrete example examples small simple"
)


def band(level: str) -> LevelBand:
    return BANDS.get(level, BANDS["general"])


def check_lesson(
    lesson: course_pb2.Lesson, objectives: Sequence[str], level: str, language: str
) -> list[course_pb2.QualityFinding]:
    findings: list[course_pb2.QualityFinding] = []
    prose = _FENCE.sub(" ", lesson.body_markdown)
    words = count_words(prose)
    wanted = band(level)
    low, high = wanted.accepted_words
    if not low <= words <= high:
        findings.append(
            _finding(
                "length",
                "lesson",
                f"the lesson body has {words} words; a {level} lesson should have {wanted.words[0]} to "
                f"{wanted.words[1]}",
            )
        )
    if language.lower().startswith("en") and words:
        grade = _grade(prose)
        if grade > wanted.max_grade:
            findings.append(
                _finding(
                    "readability",
                    "lesson",
                    f"the lesson reads at grade {grade:.1f} (Coleman-Liau); a {level} lesson should read at grade "
                    f"{wanted.max_grade:.0f} or below: use shorter sentences and plainer words",
                )
            )
    text = " ".join([lesson.title, prose, *lesson.key_points])
    missed = uncovered(objectives, text)
    if missed:
        findings.append(
            _finding("objectives", "lesson", f"the lesson does not cover these objectives: {_quoted(missed)}")
        )
    return findings


def check_quiz(
    quiz: course_pb2.Quiz, objectives: Sequence[str], others: Sequence[tuple[int, course_pb2.Quiz]] = ()
) -> list[course_pb2.QualityFinding]:
    """`others`: the quizzes of the course's other modules, by module index, to find twins in."""
    findings: list[course_pb2.QualityFinding] = []
    seen: dict[tuple[str, ...], str] = {}
    for index, quiz_of in others:
        for number, question in enumerate(quiz_of.questions):
            seen.setdefault(_content_words(question.text), f"question {number + 1} of module {index + 1}")
    for i, question in enumerate(quiz.questions):
        part = f"quiz.questions[{i}]"
        findings.extend(_question_findings(question, part))
        key = _content_words(question.text)
        if key in seen:
            findings.append(_finding("twin", part, f"question {i + 1} repeats {seen[key]}: {question.text!r}"))
        else:
            seen[key] = f"question {i + 1} of this quiz"
    text = " ".join(" ".join([question.text, *question.choices, question.explanation]) for question in quiz.questions)
    missed = uncovered(objectives, text)
    if len(missed) > max(0, len(objectives) - len(quiz.questions)):
        findings.append(_finding("objectives", "quiz", f"no question checks these objectives: {_quoted(missed)}"))
    return findings


def check_citations(
    cited: Iterable[tuple[str, course_pb2.Citation]], sources: Sequence[course_pb2.Source]
) -> list[course_pb2.QualityFinding]:
    """`cited`: (part, citation) pairs, e.g. ("lesson", ...) or ("quiz.questions[2]", ...)."""
    passages = {source.id: source.passages for source in sources}
    findings = []
    for part, citation in cited:
        source_id, _, number = citation.passage_id.rpartition("-")
        if not (number.isdigit() and 1 <= int(number) <= passages.get(source_id, 0)):
            findings.append(
                _finding(
                    "citations",
                    part,
                    f"it cites passage {citation.passage_id!r}, which is not a passage of the course's sources; cite "
                    "only the ids of the passages listed",
                )
            )
    return findings


def _question_findings(question: course_pb2.Question, part: str) -> list[course_pb2.QualityFinding]:
    findings = []
    first: dict[str, int] = {}
    for number, choice in enumerate(question.choices):
        normal = " ".join(_WORD.findall(choice.casefold()))
        if normal in first:
            findings.append(
                _finding(
                    "distinct_choices",
                    part,
                    f"choices {first[normal] + 1} and {number + 1} are the same ({choice!r}); give four different "
                    "choices with exactly one correct",
                )
            )
        else:
            first[normal] = number
    for choice in question.choices:
        if _MULTIPLE.search(choice):
            findings.append(
                _finding(
                    "single_answer",
                    part,
                    f"the choice {choice!r} makes more than one choice correct; exactly one choice must be correct",
                )
            )
    if count_words(question.explanation) < MIN_EXPLANATION_WORDS:
        findings.append(
            _finding("explanation", part, "the explanation must say in a sentence why the correct choice is correct")
        )
    return findings


def uncovered(objectives: Iterable[str], text: str) -> list[str]:
    """The objectives whose key terms mostly do not appear in `text` (see the module's docstring)."""
    present = {_stem(word) for word in _WORD.findall(text.casefold())}
    missed = []
    for objective in objectives:
        terms = {_stem(word) for word in _key_terms(objective)}
        if terms and len(terms & present) < math.ceil(len(terms) / 3):
            missed.append(objective)
    return missed


def _key_terms(objective: str) -> list[str]:
    words = _WORD.findall(objective.casefold())[1:]
    return [word for word in words if len(word) >= 4 and word not in _COMMON_WORDS]


def _stem(word: str) -> str:
    return word[:5]


def _content_words(text: str) -> tuple[str, ...]:
    """The words that make the question, in any order."""
    return tuple(sorted(word for word in _WORD.findall(text.casefold()) if word not in _SMALL_WORDS))


def _grade(prose: str) -> float:
    # Imported here: it loads nltk, which only a generator checking a lesson needs.
    import textstat

    return float(textstat.coleman_liau_index(prose))


def _quoted(items: Sequence[str]) -> str:
    return "; ".join(repr(item) for item in items)


def _finding(check: str, part: str, message: str) -> course_pb2.QualityFinding:
    return course_pb2.QualityFinding(check=check, part=part, message=message)
