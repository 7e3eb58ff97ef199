"""A source file's text, split into passages a model can be given and a reader can find again.

PDF pages come from pypdf (the locator is the page number), Markdown sections from markdown-it-py's tokens (the
locator is the heading), HTML sections from the standard library's HTML parser (h1 to h3 start a section; script
and style are skipped), plain text by paragraphs. Each page or section is cut at paragraph, then sentence, bounds
into passages of about PASSAGE_WORDS words. This is CPU work: callers run it in an executor.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser

from syllabus.v1 import course_pb2

PASSAGE_WORDS = 120
MARKDOWN, TEXT, PDF, HTML = "text/markdown", "text/plain", "application/pdf", "text/html"
CONTENT_TYPES = (MARKDOWN, TEXT, PDF, HTML)
_EXTENSIONS = {".md": MARKDOWN, ".markdown": MARKDOWN, ".txt": TEXT, ".text": TEXT, ".pdf": PDF}
_EXTENSIONS |= {".html": HTML, ".htm": HTML}
_PARAGRAPH = re.compile(r"\n\s*\n")
_SENTENCE = re.compile(r"(?<=[.!?])\s+")


class ExtractionError(ValueError):
    """The file is not of its type, or holds no text (the message says which, for the uploader)."""


@dataclass(frozen=True)
class Section:
    """A page or section: where it is and its text."""

    locator: str
    text: str


def content_type_of(filename: str, content_type: str) -> str | None:
    """The type a source is read as: the given content type (parameters such as charset dropped), else the
    file name's extension; None when neither is one of CONTENT_TYPES."""
    given = content_type.split(";", 1)[0].strip().lower()
    if given:
        return given if given in CONTENT_TYPES else None
    dot = filename.rfind(".")
    return _EXTENSIONS.get(filename[dot:].lower()) if dot >= 0 else None


def extract(data: bytes, content_type: str, source_id: str) -> tuple[int, list[course_pb2.Passage]]:
    """(pages or sections, passages) of a file of one of CONTENT_TYPES."""
    sections = _sections(data, content_type)
    passages: list[course_pb2.Passage] = []
    for section in sections:
        for text in _chunks(section.text):
            passages.append(
                course_pb2.Passage(
                    id=f"{source_id}-{len(passages) + 1}",
                    source_id=source_id,
                    locator=section.locator or f"part {len(passages) + 1}",
                    text=text,
                )
            )
    if not passages:
        raise ExtractionError("the file holds no text to ground a course on (a scanned PDF needs OCR first)")
    pages = 0 if content_type == TEXT else len(sections)
    return pages, passages


def _sections(data: bytes, content_type: str) -> list[Section]:
    if content_type == PDF:
        return _pdf(data)
    text = data.decode("utf-8-sig", errors="replace")
    if "\x00" in text or text.count("\ufffd") > len(text) // 10:
        # Binary bytes under a text type: their "passages" would be noise a model is asked to cite.
        raise ExtractionError(f"the file is not UTF-8 text, as {content_type} must be")
    if content_type == MARKDOWN:
        return _markdown(text)
    if content_type == HTML:
        return _html(text)
    return [Section("", text)]


def _pdf(data: bytes) -> list[Section]:
    # Imported here: only an upload of a PDF needs it.
    from pypdf import PdfReader

    try:
        reader = PdfReader(io.BytesIO(data))
        return [Section(f"page {number}", page.extract_text() or "") for number, page in enumerate(reader.pages, 1)]
    except Exception as exc:
        # An uploaded file is untrusted: whatever pypdf raises on it means "not a PDF we can read".
        raise ExtractionError(f"the file is not a readable PDF ({exc})") from None


def _markdown(text: str) -> list[Section]:
    from markdown_it import MarkdownIt

    sections: list[Section] = []
    parts: list[str] = []
    heading, in_heading = "", False
    for token in MarkdownIt("commonmark").parse(text):
        if token.type == "heading_open":
            if parts:
                sections.append(Section(_section_locator(heading), "\n\n".join(parts)))
            heading, parts, in_heading = "", [], True
        elif token.type == "heading_close":
            in_heading = False
        elif token.type == "inline":
            if in_heading:
                heading = token.content
            else:
                parts.append(token.content)
        elif token.type in ("fence", "code_block"):
            parts.append(token.content)
    if parts:
        sections.append(Section(_section_locator(heading), "\n\n".join(parts)))
    return sections


def _section_locator(heading: str) -> str:
    heading = " ".join(heading.split())
    return f"section {heading!r}" if heading else "introduction"


_BLOCKS = {"p", "div", "li", "br", "tr", "td", "th", "pre", "blockquote", "section", "article", "dd", "dt"}
_HEADINGS = {"h1", "h2", "h3"}
_SKIPPED = {"script", "style", "head", "template", "noscript", "svg"}


class _HtmlSections(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.sections: list[Section] = []
        self._heading: list[str] = []
        self._text: list[str] = []
        self._in_heading = False
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIPPED:
            self._skipping += 1
        elif tag in _HEADINGS:
            self.close_section()
            self._heading, self._in_heading = [], True
        elif tag in _BLOCKS:
            self._text.append("\n\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIPPED:
            self._skipping = max(0, self._skipping - 1)
        elif tag in _HEADINGS:
            self._in_heading = False
        elif tag in _BLOCKS:
            self._text.append("\n\n")

    def handle_data(self, data: str) -> None:
        if self._skipping:
            return
        (self._heading if self._in_heading else self._text).append(data)

    def close_section(self) -> None:
        text = "".join(self._text)
        if text.strip():
            self.sections.append(Section(_section_locator("".join(self._heading)), text))
        self._text = []


def _html(text: str) -> list[Section]:
    parser = _HtmlSections()
    parser.feed(text)
    parser.close()
    parser.close_section()
    return parser.sections


def _chunks(text: str) -> Iterator[str]:
    """Whole paragraphs (a long one cut at sentences) joined while they fit in PASSAGE_WORDS."""
    pieces: list[str] = []
    for paragraph in _PARAGRAPH.split(text):
        words = paragraph.split()
        if len(words) <= PASSAGE_WORDS:
            pieces.append(" ".join(words))
        else:
            pieces.extend(" ".join(sentence.split()) for sentence in _SENTENCE.split(paragraph))
    chunk: list[str] = []
    size = 0
    for piece in pieces:
        count = len(piece.split())
        if not count:
            continue
        if chunk and size + count > PASSAGE_WORDS:
            yield " ".join(chunk)
            chunk, size = [], 0
        chunk.append(piece)
        size += count
    if chunk:
        yield " ".join(chunk)
