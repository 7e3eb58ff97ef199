"""A course as a SCORM package, 1.2 or 2004 4th edition: a zip with imsmanifest.xml, one page per lesson and per
quiz (each a SCO), and scorm_runtime.js, which the pages load to report to the LMS through its run-time API: a
lesson reports itself completed when opened, a quiz its score (right answers of all) and passed or failed when
submitted. Quizzes are scored in the page, so its answers ship with it: SCORM content has no server of its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape
from importlib import resources
from xml.etree import ElementTree as ET

from renderer.course_text import choice_label, course_phrases, lesson_heading, module_heading, quiz_heading, with_source
from renderer.html import html_list, inline_html, lesson_sources_html, markdown_html, page
from renderer.packaging import XSI, deterministic_zip, xml_bytes, xml_text
from renderer.phrases import Phrases
from syllabus.v1 import course_pb2

# The share of right answers that passes a quiz: the 1.2 mastery score, the 2004 minimum normalized measure.
PASSING_SCORE = 0.7
RUNTIME = "scorm_runtime.js"


@dataclass(frozen=True)
class Edition:
    version: str  # as the runtime script knows it: "1.2" or "2004"
    schema_version: str
    namespace: str
    adlcp: str
    schema_location: str
    scorm_type: str  # the adlcp attribute naming a resource SCO or asset (its spelling changed in 2004)


SCORM_12 = Edition(
    version="1.2",
    schema_version="1.2",
    namespace="http://www.imsproject.org/xsd/imscp_rootv1p1p2",
    adlcp="http://www.adlnet.org/xsd/adlcp_rootv1p2",
    schema_location=(
        "http://www.imsproject.org/xsd/imscp_rootv1p1p2 imscp_rootv1p1p2.xsd "
        "http://www.adlnet.org/xsd/adlcp_rootv1p2 adlcp_rootv1p2.xsd"
    ),
    scorm_type="scormtype",
)
SCORM_2004 = Edition(
    version="2004",
    schema_version="2004 4th Edition",
    namespace="http://www.imsglobal.org/xsd/imscp_v1p1",
    adlcp="http://www.adlnet.org/xsd/adlcp_v1p3",
    schema_location=(
        "http://www.imsglobal.org/xsd/imscp_v1p1 imscp_v1p1.xsd "
        "http://www.adlnet.org/xsd/adlcp_v1p3 adlcp_v1p3.xsd "
        "http://www.imsglobal.org/xsd/imsss imsss_v1p0.xsd"
    ),
    scorm_type="scormType",
)
IMSSS = "http://www.imsglobal.org/xsd/imsss"

_QUIZ_CSS = (
    "fieldset { border: 1px solid var(--line); border-radius: 8px; margin: 0 0 1rem; padding: .5rem 1rem; }"
    " fieldset.right { border-color: #1a7f37; } fieldset.wrong { border-color: #cf222e; }"
    " label { display: block; margin: .25rem 0; } #result { font-weight: bold; }"
)


def render_scorm_12(course: course_pb2.Course) -> bytes:
    return render_scorm(course, SCORM_12)


def render_scorm_2004(course: course_pb2.Course) -> bytes:
    return render_scorm(course, SCORM_2004)


def render_scorm(course: course_pb2.Course, edition: Edition) -> bytes:
    runtime = resources.files("renderer").joinpath(RUNTIME).read_text(encoding="utf-8")
    entries = {RUNTIME: runtime.replace("__SCORM_VERSION__", edition.version).encode()}
    words = course_phrases(course)
    for module in course.modules:
        entries[lesson_file(module)] = _lesson_page(course, module, words)
        entries[quiz_file(module)] = _quiz_page(course, module, words)
    entries["imsmanifest.xml"] = _manifest(course, edition, words)
    return deterministic_zip(entries)


def lesson_file(module: course_pb2.Module) -> str:
    return f"lesson-{module.index + 1}.html"


def quiz_file(module: course_pb2.Module) -> str:
    return f"quiz-{module.index + 1}.html"


def _lesson_page(course: course_pb2.Course, module: course_pb2.Module, words: Phrases) -> bytes:
    body = [
        f'<p class="meta">{escape(module_heading(module, words))}</p>',
        f"<h1>{escape(lesson_heading(module, words))}</h1>",
        f"<p>{inline_html(module.summary)}</p>",
    ]
    if module.objectives:
        objectives = html_list("ul", module.objectives)
        body.append(f'<div class="objectives"><h4>{escape(words.objectives)}</h4>{objectives}</div>')
    body.append(markdown_html(module.lesson.body_markdown, heading_offset=1, rtl=words.rtl))
    if module.lesson.key_points:
        points = html_list("ul", module.lesson.key_points)
        body.append(f'<div class="key-points"><h4>{escape(words.key_points)}</h4>{points}</div>')
    body += lesson_sources_html(module, words)
    return _page(course, lesson_heading(module, words), body)


def _quiz_page(course: course_pb2.Course, module: course_pb2.Module, words: Phrases) -> bytes:
    body = [
        f'<p class="meta">{escape(module_heading(module, words))}</p>',
        f"<h1>{escape(words.quiz)}</h1>",
        f'<form id="quiz" data-passing="{PASSING_SCORE}">',
    ]
    for number, question in enumerate(module.quiz.questions, 1):
        choices = "".join(
            f'<label><input type="radio" name="question-{number}" value="{index}" required> '
            f"<strong>{choice_label(index)}</strong> {inline_html(choice)}</label>"
            for index, choice in enumerate(question.choices)
        )
        explanation = inline_html(with_source(question.explanation, question, words))
        body.append(
            f'<fieldset id="question-{number}" data-answer="{question.answer_index}">'
            f"<legend>{number}. {inline_html(question.text)}</legend>{choices}"
            f'<p class="explanation" hidden>{explanation}</p></fieldset>'
        )
    body += [
        f'<button type="submit">{escape(words.submit)}</button>',
        "</form>",
        # The runtime script writes the score with these texts, in the course's language.
        f'<p id="result" role="status" data-score="{escape(words.score)}" data-passed="{escape(words.passed)}"'
        f' data-failed="{escape(words.failed)}" hidden></p>',
        f"<style>{_QUIZ_CSS}</style>",
    ]
    return _page(course, quiz_heading(module, words), body)


def _page(course: course_pb2.Course, title: str, body: list[str]) -> bytes:
    return page(title, course.language, [*body, f'<script src="{RUNTIME}"></script>'])


def _manifest(course: course_pb2.Course, edition: Edition, words: Phrases) -> bytes:
    # The prefixes are written as they are, declared on the root: ElementTree's prefix registry is global, and
    # the two editions bind adlcp to different namespaces while renders run on concurrent threads.
    scorm_type = f"adlcp:{edition.scorm_type}"
    manifest = ET.Element("manifest", identifier=f"course-{course.id}", version="1.0")
    manifest.set("xmlns:adlcp", edition.adlcp)
    if edition is SCORM_2004:
        manifest.set("xmlns:imsss", IMSSS)
    manifest.set(f"{{{XSI}}}schemaLocation", edition.schema_location)
    metadata = ET.SubElement(manifest, "metadata")
    ET.SubElement(metadata, "schema").text = "ADL SCORM"
    ET.SubElement(metadata, "schemaversion").text = edition.schema_version
    organization = ET.SubElement(ET.SubElement(manifest, "organizations", default="course"), "organization")
    organization.set("identifier", "course")
    _title(organization, course.title or course.prompt)
    resources_element = ET.Element("resources")
    for module in course.modules:
        number = module.index + 1
        group = ET.SubElement(organization, "item", identifier=f"module-{number}")
        _title(group, module_heading(module, words))
        for kind, href, title in (
            ("lesson", lesson_file(module), lesson_heading(module, words)),
            ("quiz", quiz_file(module), words.quiz),
        ):
            item = ET.SubElement(group, "item", identifier=f"{kind}-{number}", identifierref=f"{kind}-{number}-page")
            _title(item, title)
            if kind == "quiz":
                _passing(item, edition, number)
            resource = ET.SubElement(
                resources_element, "resource", {"identifier": f"{kind}-{number}-page", "type": "webcontent"}
            )
            resource.set(scorm_type, "sco")
            resource.set("href", href)
            ET.SubElement(resource, "file", href=href)
            ET.SubElement(resource, "dependency", identifierref="runtime")
    runtime = ET.SubElement(resources_element, "resource", identifier="runtime", type="webcontent")
    runtime.set(scorm_type, "asset")
    ET.SubElement(runtime, "file", href=RUNTIME)
    manifest.append(resources_element)
    return xml_bytes(manifest, edition.namespace)


def _passing(item: ET.Element, edition: Edition, number: int) -> None:
    if edition is SCORM_12:
        ET.SubElement(item, "adlcp:masteryscore").text = str(round(PASSING_SCORE * 100))
        return
    objectives = ET.SubElement(ET.SubElement(item, "imsss:sequencing"), "imsss:objectives")
    primary = ET.SubElement(objectives, "imsss:primaryObjective", objectiveID=f"quiz-{number}-passed")
    primary.set("satisfiedByMeasure", "true")
    ET.SubElement(primary, "imsss:minNormalizedMeasure").text = str(PASSING_SCORE)


def _title(parent: ET.Element, text: str) -> None:
    ET.SubElement(parent, "title").text = " ".join(xml_text(text).split())
