"""The quality checks on generated parts (generator.quality), one by one, and the offline drafts passing them."""

from __future__ import annotations

import pytest

from cli.course_command import review_lines
from generator.quality import BANDS, check_lesson, check_quiz, uncovered
from syllabus.v1 import course_pb2
from tests.course.offline_course import offline_course

OBJECTIVES = ["Explain ownership and borrowing in Rust", "Write a function that returns a Result"]


def question(text: str, choices: list[str], answer: int = 0, explanation: str = "") -> course_pb2.Question:
    return course_pb2.Question(
        text=text,
        choices=choices,
        answer_index=answer,
        explanation=explanation or f"{choices[answer]} is the one that holds, as the lesson shows.",
    )


def good_quiz() -> course_pb2.Quiz:
    return course_pb2.Quiz(
        questions=[
            question("Who has ownership of a value after it is moved?", ["The new binding", "The old one", "Both"]),
            question("What does a function that can fail return?", ["A Result", "An int", "A panic", "Nothing"]),
        ]
    )


def checks(findings: list[course_pb2.QualityFinding]) -> list[tuple[str, str]]:
    return [(finding.check, finding.part) for finding in findings]


def prose(words: int) -> str:
    sentence = "Ownership and borrowing decide who may change a value, and a Result says that a function can fail. "
    count = len(sentence.split())
    return sentence * (words // count)


def lesson(body: str) -> course_pb2.Lesson:
    return course_pb2.Lesson(title="Ownership", body_markdown=body, key_points=["Functions return a Result."])


def test_a_good_quiz_has_no_findings() -> None:
    assert check_quiz(good_quiz(), OBJECTIVES) == []


def test_the_same_choice_twice_is_found_ignoring_case_and_punctuation() -> None:
    quiz = good_quiz()
    quiz.questions[1].choices[2] = "a result."
    [finding] = check_quiz(quiz, OBJECTIVES)
    assert (finding.check, finding.part) == ("distinct_choices", "quiz.questions[1]")
    assert "choices 1 and 3 are the same" in finding.message and not finding.repaired


def test_a_choice_that_makes_several_choices_correct_is_found() -> None:
    quiz = good_quiz()
    quiz.questions[0].choices[2] = "All of the above"
    assert checks(check_quiz(quiz, OBJECTIVES)) == [("single_answer", "quiz.questions[0]")]


def test_an_explanation_must_say_something() -> None:
    quiz = good_quiz()
    quiz.questions[0].explanation = "Correct."
    assert checks(check_quiz(quiz, OBJECTIVES)) == [("explanation", "quiz.questions[0]")]


def test_twins_in_the_quiz_and_in_the_course_are_found() -> None:
    quiz = good_quiz()
    # The same content words in another order and case, with other small words: the same question.
    quiz.questions.append(question("After it is MOVED, who has the OWNERSHIP of the value?", ["Me", "You", "Them"]))
    stored = course_pb2.Quiz(questions=[question("What does a function that can fail return", ["A", "B"])])
    findings = check_quiz(quiz, OBJECTIVES, [(3, stored)])
    assert checks(findings) == [("twin", "quiz.questions[1]"), ("twin", "quiz.questions[2]")]
    assert "repeats question 1 of module 4" in findings[0].message
    assert "repeats question 1 of this quiz" in findings[1].message


def test_a_question_that_differs_by_one_content_word_is_not_a_twin() -> None:
    quiz = good_quiz()
    quiz.questions.append(question("Who has ownership of a value after it is copied?", ["A", "B", "C", "D"]))
    assert check_quiz(quiz, OBJECTIVES) == []


def test_objectives_not_covered_by_the_quiz_are_found() -> None:
    quiz = good_quiz()
    quiz.questions.append(question("Which keyword declares a binding?", ["let", "var", "def", "int"]))
    findings = check_quiz(quiz, [*OBJECTIVES, "Profile memory allocations with heaptrack"])
    assert checks(findings) == [("objectives", "quiz")]
    assert "heaptrack" in findings[0].message
    # A quiz of fewer questions than objectives needs to check only as many of them as it has questions.
    one = course_pb2.Quiz(questions=[good_quiz().questions[1]])
    assert check_quiz(one, OBJECTIVES) == []


def test_coverage_matches_key_terms_on_their_stems() -> None:
    assert uncovered(["Explain variables"], "A variable holds a value.") == []
    assert uncovered(["Explain variables"], "A constant holds a value.") == ["Explain variables"]
    # The leading verb is not a key term; an objective of no key terms is covered by anything.
    assert uncovered(["Explain it"], "") == []


def test_a_lesson_within_its_band_has_no_findings() -> None:
    assert check_lesson(lesson(prose(700)), OBJECTIVES, "general", "en") == []


@pytest.mark.parametrize(("words", "fails"), [(100, True), (400, False), (2000, True)])
def test_lesson_length_is_checked_against_the_level(words: int, fails: bool) -> None:
    findings = check_lesson(lesson(prose(words)), OBJECTIVES, "beginner", "en")
    assert checks(findings) == ([("length", "lesson")] if fails else [])
    if fails:
        low, high = BANDS["beginner"].words
        assert f"should have {low} to {high}" in findings[0].message


def test_code_blocks_do_not_count_as_words() -> None:
    code = "```python\n" + "x = 1\n" * 400 + "```\n"
    findings = check_lesson(lesson(prose(100) + "\n\n" + code), OBJECTIVES, "general", "en")
    assert checks(findings) == [("length", "lesson")]


def test_hard_prose_fails_readability_for_beginners_only_in_english() -> None:
    hard = (
        "Comprehensive characterisation of interprocedural ownership-transferring abstractions necessitates "
        "sophisticated understanding of lexically-scoped lifetime parametrisation and borrowing. "
    ) * 40
    findings = check_lesson(lesson(hard + prose(100)), OBJECTIVES, "beginner", "en")
    assert checks(findings) == [("readability", "lesson")]
    assert "Coleman-Liau" in findings[0].message
    assert check_lesson(lesson(hard + prose(100)), OBJECTIVES, "beginner", "de") == []


def test_a_lesson_that_misses_an_objective_is_found() -> None:
    findings = check_lesson(lesson(prose(700)), [*OBJECTIVES, "Profile memory allocations with heaptrack"], "", "en")
    assert checks(findings) == [("objectives", "lesson")]
    assert "heaptrack" in findings[0].message


@pytest.mark.parametrize("modules", [1, 2, 13])
def test_offline_drafts_pass_every_check(modules: int) -> None:
    course = offline_course("Intro to Rust for Python developers", modules, questions=7)
    for index, module in enumerate(course.modules):
        for level in BANDS:
            assert check_lesson(module.lesson, module.objectives, level, "en") == [], (index, level)
        others = [(i, other.quiz) for i, other in enumerate(course.modules) if i != index]
        assert check_quiz(module.quiz, module.objectives, others) == [], index


def test_the_course_command_lists_only_the_findings_left_for_review() -> None:
    module = course_pb2.Module(index=1)
    module.findings.add(check="twin", part="quiz.questions[0]", message="fixed", repaired=True)
    module.findings.add(check="length", part="lesson", message="the lesson body has 90 words")
    course = course_pb2.Course(modules=[course_pb2.Module(index=0), module])
    assert review_lines(course) == [
        "needs review: 1 quality finding",
        "  module 2 lesson (length): the lesson body has 90 words",
    ]
    assert review_lines(course_pb2.Course(modules=[course_pb2.Module()])) == []
