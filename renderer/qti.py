"""A course's quizzes as an IMS QTI 2.1 content package: one assessmentItem per question (a single-choice
choiceInteraction, the right choice declared as the correct response and scored by the standard match_correct
template), an assessmentTest with a section per module summing the items' scores, and the imsmanifest.xml that
lists them all."""

from __future__ import annotations

from xml.etree import ElementTree as ET

from renderer.course_text import course_phrases, module_heading
from renderer.packaging import XSI, deterministic_zip, xml_bytes, xml_text
from syllabus.v1 import course_pb2

QTI = "http://www.imsglobal.org/xsd/imsqti_v2p1"
IMSCP = "http://www.imsglobal.org/xsd/imscp_v1p1"
_QTI_XSD = "http://www.imsglobal.org/xsd/qti/qtiv2p1/imsqti_v2p1.xsd"
_IMSCP_XSD = "http://www.imsglobal.org/xsd/imscp_v1p1.xsd"
MATCH_CORRECT = "http://www.imsglobal.org/question/qti_v2p1/rptemplates/match_correct"
TEST_FILE = "assessment-test.xml"


def render_qti(course: course_pb2.Course) -> bytes:
    items: dict[str, bytes] = {}
    for module in course.modules:
        for number, question in enumerate(module.quiz.questions, 1):
            items[item_file(module, number)] = xml_bytes(_item(item_id(module, number), question), QTI)
    entries = dict(items)
    entries[TEST_FILE] = xml_bytes(_test(course), QTI)
    entries["imsmanifest.xml"] = xml_bytes(_manifest(course, sorted(items)), IMSCP)
    return deterministic_zip(entries)


def item_id(module: course_pb2.Module, number: int) -> str:
    return f"module-{module.index + 1}-question-{number}"


def item_file(module: course_pb2.Module, number: int) -> str:
    return f"items/{item_id(module, number)}.xml"


def _qti(tag: str, parent: ET.Element | None = None, **attributes: str) -> ET.Element:
    return ET.Element(tag, attributes) if parent is None else ET.SubElement(parent, tag, attributes)


def _item(identifier: str, question: course_pb2.Question) -> ET.Element:
    item = _qti("assessmentItem", identifier=identifier, title=_title(question.text), adaptive="false")
    item.set("timeDependent", "false")
    item.set(f"{{{XSI}}}schemaLocation", f"{QTI} {_QTI_XSD}")
    response = _qti("responseDeclaration", item, identifier="RESPONSE", cardinality="single", baseType="identifier")
    _qti("value", _qti("correctResponse", response)).text = choice_id(question.answer_index)
    outcome = _qti("outcomeDeclaration", item, identifier="SCORE", cardinality="single", baseType="float")
    _qti("value", _qti("defaultValue", outcome)).text = "0"
    interaction = _qti(
        "choiceInteraction", _qti("itemBody", item), responseIdentifier="RESPONSE", shuffle="false", maxChoices="1"
    )
    _qti("prompt", interaction).text = xml_text(question.text)
    for index, choice in enumerate(question.choices):
        _qti("simpleChoice", interaction, identifier=choice_id(index)).text = xml_text(choice)
    _qti("responseProcessing", item, template=MATCH_CORRECT)
    return item


def choice_id(index: int) -> str:
    return f"choice-{index + 1}"


def _test(course: course_pb2.Course) -> ET.Element:
    test = _qti("assessmentTest", identifier=f"course-{course.id}", title=_title(course.title or course.prompt))
    test.set(f"{{{XSI}}}schemaLocation", f"{QTI} {_QTI_XSD}")
    _qti("outcomeDeclaration", test, identifier="SCORE", cardinality="single", baseType="float")
    part = _qti("testPart", test, identifier="quizzes", navigationMode="nonlinear", submissionMode="simultaneous")
    words = course_phrases(course)
    for module in course.modules:
        section = _qti(
            "assessmentSection",
            part,
            identifier=f"module-{module.index + 1}",
            title=_title(module_heading(module, words)),
        )
        section.set("visible", "true")
        for number in range(1, len(module.quiz.questions) + 1):
            _qti("assessmentItemRef", section, identifier=item_id(module, number), href=item_file(module, number))
    total = _qti("setOutcomeValue", _qti("outcomeProcessing", test), identifier="SCORE")
    _qti("testVariables", _qti("sum", total), variableIdentifier="SCORE")
    return test


def _manifest(course: course_pb2.Course, item_files: list[str]) -> ET.Element:
    def cp(tag: str, parent: ET.Element, **attributes: str) -> ET.Element:
        return ET.SubElement(parent, tag, attributes)

    manifest = ET.Element("manifest", identifier=f"course-{course.id}-qti")
    manifest.set(f"{{{XSI}}}schemaLocation", f"{IMSCP} {_IMSCP_XSD}")
    metadata = cp("metadata", manifest)
    cp("schema", metadata).text = "QTIv2.1 Package"
    cp("schemaversion", metadata).text = "1.0.0"
    cp("organizations", manifest)
    resources = cp("resources", manifest)
    test = cp("resource", resources, identifier="assessment-test", type="imsqti_test_xmlv2p1", href=TEST_FILE)
    cp("file", test, href=TEST_FILE)
    for path in item_files:
        cp("dependency", test, identifierref=_resource_id(path))
    for path in item_files:
        item = cp("resource", resources, identifier=_resource_id(path), type="imsqti_item_xmlv2p1", href=path)
        cp("file", item, href=path)
    return manifest


def _resource_id(path: str) -> str:
    return "resource-" + path.removeprefix("items/").removesuffix(".xml")


def _title(text: str) -> str:
    return " ".join(xml_text(text).split())[:200]
