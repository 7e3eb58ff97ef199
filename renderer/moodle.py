"""A course's quizzes for Moodle's question bank: Moodle XML and GIFT, one category per module.

Each question is multiple choice with one right answer (fraction 100, the others 0); its explanation is the
question's general feedback, shown once it is answered.
"""

from __future__ import annotations

from xml.etree import ElementTree as ET

from renderer.course_text import course_phrases, module_heading, with_source
from renderer.packaging import xml_bytes, xml_text
from renderer.phrases import Phrases
from syllabus.v1 import course_pb2

# GIFT's markup characters, escaped with a backslash wherever course text holds them (the backslash first).
_GIFT_SPECIAL = "\\~=#{}:"


def render_moodle_xml(course: course_pb2.Course) -> bytes:
    words = course_phrases(course)
    quiz = ET.Element("quiz")
    for module in course.modules:
        category = ET.SubElement(ET.SubElement(quiz, "question", type="category"), "category")
        _text(category, category_path(course, module))
        for number, question in enumerate(module.quiz.questions, 1):
            quiz.append(_multichoice(module, number, question, words))
    return xml_bytes(quiz)


def _multichoice(module: course_pb2.Module, number: int, question: course_pb2.Question, words: Phrases) -> ET.Element:
    element = ET.Element("question", type="multichoice")
    _text(ET.SubElement(element, "name"), question_name(module, number))
    _text(ET.SubElement(element, "questiontext", format="plain_text"), question.text)
    feedback = with_source(question.explanation, question, words)
    _text(ET.SubElement(element, "generalfeedback", format="plain_text"), feedback)
    for tag, value in (("defaultgrade", "1"), ("penalty", "0"), ("hidden", "0"), ("single", "true")):
        ET.SubElement(element, tag).text = value
    ET.SubElement(element, "shuffleanswers").text = "false"
    ET.SubElement(element, "answernumbering").text = "ABCD"
    for index, choice in enumerate(question.choices):
        fraction = "100" if index == question.answer_index else "0"
        answer = ET.SubElement(element, "answer", fraction=fraction, format="plain_text")
        _text(answer, choice)
    return element


def render_gift(course: course_pb2.Course) -> bytes:
    words = course_phrases(course)
    out: list[str] = []
    for module in course.modules:
        out += [f"$CATEGORY: {_one_line(category_path(course, module))}", ""]
        for number, question in enumerate(module.quiz.questions, 1):
            answers = [
                f"{'=' if index == question.answer_index else '~'}{_gift(choice)}"
                for index, choice in enumerate(question.choices)
            ]
            out += [
                f"::{_gift(question_name(module, number))}::{_gift(question.text)} {{",
                *answers,
                f"####{_gift(with_source(question.explanation, question, words))}",
                "}",
                "",
            ]
    return "\n".join(out).encode()


def category_path(course: course_pb2.Course, module: course_pb2.Module) -> str:
    # In a Moodle category path "/" separates categories; "//" is a slash within a name.
    names = [course.title or course.prompt, module_heading(module, course_phrases(course))]
    return "/".join(["$course$", "top", *(_one_line(name).replace("/", "//") for name in names)])


def question_name(module: course_pb2.Module, number: int) -> str:
    return f"Module {module.index + 1}, question {number}"


def _text(parent: ET.Element, text: str) -> None:
    ET.SubElement(parent, "text").text = xml_text(text)


def _gift(text: str) -> str:
    # One line: a blank line ends a GIFT question, so line breaks are written as GIFT's \n escape.
    escaped = "".join(f"\\{c}" if c in _GIFT_SPECIAL else c for c in text.strip())
    return "\\n".join(line.strip() for line in escaped.splitlines())


def _one_line(text: str) -> str:
    return " ".join(text.split())
