"""A course as an EPUB 3 book: a title page, one chapter per module (lesson and quiz), the answer key, a
navigation document, the HTML document's style.

Written with zipfile, not ebooklib: ebooklib stamps the clock into dcterms:modified and the zip entries, so a
redelivered render would write different bytes. Here dcterms:modified is the course's creation time and the zip is
renderer.packaging's, with the mimetype entry first and stored, as the OCF container requires.
"""

from __future__ import annotations

from datetime import UTC, datetime
from html import escape
from xml.etree import ElementTree as ET

from renderer.course_text import course_phrases, meta_line, module_heading, written_by
from renderer.html import CSS, answer_key_section, course_sources_html, inline_html, module_section
from renderer.packaging import deterministic_zip, xml_bytes, xml_text
from renderer.phrases import Phrases
from syllabus.v1 import course_pb2

OPF = "http://www.idpf.org/2007/opf"
DC = "http://purl.org/dc/elements/1.1/"
CONTAINER = "urn:oasis:names:tc:opendocument:xmlns:container"
MIMETYPE = b"application/epub+zip"
PACKAGE = "EPUB/package.opf"
# A course without a creation time (never the case for a stored one) still gets a fixed date.
_NO_TIME = datetime(2000, 1, 1, tzinfo=UTC)


def render_epub(course: course_pb2.Course) -> bytes:
    title = course.title or course.prompt
    words = course_phrases(course)
    chapters = {"title.xhtml": (words.title_page, _title_page(course, words))}
    for module in course.modules:
        chapters[module_file(module)] = (module_heading(module, words), module_section(module, words))
    chapters["answers.xhtml"] = (words.answer_key, answer_key_section(course, words))
    entries = {
        "META-INF/container.xml": _container(),
        PACKAGE: _package(course, title, words, list(chapters)),
        "EPUB/nav.xhtml": _document(words.contents, words, _nav(chapters, words)),
        "EPUB/style.css": CSS.encode(),
    }
    for name, (heading, body) in chapters.items():
        entries[f"EPUB/{name}"] = _document(heading, words, body)
    return deterministic_zip(entries, first=("mimetype", MIMETYPE))


def module_file(module: course_pb2.Module) -> str:
    return f"module-{module.index + 1}.xhtml"


def _title_page(course: course_pb2.Course, words: Phrases) -> str:
    title = escape(course.title or course.prompt)
    parts = [f"<h1>{title}</h1>", f'<p class="meta">{escape(meta_line(course, words))}</p>']
    if course.offline_draft:
        parts.append(f'<p class="notice"><strong>{escape(words.offline_notice)}</strong></p>')
    parts += [f"<p>{inline_html(course.description)}</p>", *course_sources_html(course, words)]
    parts.append(f'<p class="written-by">{escape(written_by(course, words))}</p>')
    return "\n".join(parts)


def _nav(chapters: dict[str, tuple[str, str]], words: Phrases) -> str:
    items = "".join(f'<li><a href="{name}">{escape(heading)}</a></li>' for name, (heading, _) in chapters.items())
    return f'<nav epub:type="toc" id="toc"><h1>{escape(words.contents)}</h1><ol>{items}</ol></nav>'


def _document(title: str, words: Phrases, body: str) -> bytes:
    # The body is the HTML renderer's output, which markdown-it writes as XHTML (void elements closed).
    lang = escape(words.language)
    page = (
        '<?xml version="1.0" encoding="utf-8"?>\n<!DOCTYPE html>\n'
        f'<html xmlns="http://www.w3.org/1999/xhtml" xmlns:epub="http://www.idpf.org/2007/ops" lang="{lang}"'
        f' xml:lang="{lang}" dir="{words.direction}">\n'
        f'<head>\n<meta charset="utf-8" />\n<title>{escape(title)}</title>\n'
        '<link rel="stylesheet" type="text/css" href="style.css" />\n</head>\n'
        f"<body>\n{body}\n</body>\n</html>\n"
    )
    return xml_text(page).encode()


def _container() -> bytes:
    container = ET.Element("container", version="1.0")
    rootfile = ET.SubElement(ET.SubElement(container, "rootfiles"), "rootfile", {"full-path": PACKAGE})
    rootfile.set("media-type", "application/oebps-package+xml")
    return xml_bytes(container, CONTAINER)


def _package(course: course_pb2.Course, title: str, words: Phrases, chapters: list[str]) -> bytes:
    language = words.language
    package = ET.Element("package", {"version": "3.0", "unique-identifier": "course-id", "xml:lang": language})
    package.set("xmlns:dc", DC)
    metadata = ET.SubElement(package, "metadata")
    ET.SubElement(metadata, "dc:identifier", id="course-id").text = xml_text(f"urn:syllabus:course:{course.id}")
    ET.SubElement(metadata, "dc:title").text = " ".join(xml_text(title).split())
    ET.SubElement(metadata, "dc:language").text = xml_text(language)
    created = course.create_time.ToDatetime(tzinfo=UTC) if course.HasField("create_time") else _NO_TIME
    ET.SubElement(metadata, "meta", property="dcterms:modified").text = created.strftime("%Y-%m-%dT%H:%M:%SZ")
    manifest = ET.SubElement(package, "manifest")
    nav = ET.SubElement(manifest, "item", {"id": "nav", "href": "nav.xhtml", "media-type": "application/xhtml+xml"})
    nav.set("properties", "nav")
    ET.SubElement(manifest, "item", {"id": "style", "href": "style.css", "media-type": "text/css"})
    spine = ET.Element("spine")
    for number, name in enumerate(chapters, 1):
        ET.SubElement(manifest, "item", {"id": f"c{number}", "href": name, "media-type": "application/xhtml+xml"})
        ET.SubElement(spine, "itemref", idref=f"c{number}")
    spine.set("page-progression-direction", words.direction)
    package.append(spine)
    return xml_bytes(package, OPF)
