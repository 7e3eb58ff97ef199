"""A course as a PDF: a title page, a table of contents with page numbers (and PDF bookmarks), one chapter per
module (lesson, key points, quiz), the answer key, and numbered pages. The text is real text: selectable and
searchable.

Rendering is CPU work: call render_pdf in an executor, never on the event loop. Fonts and the characters they
draw are renderer.pdf_fonts; text and lesson Markdown on the page, renderer.pdf_text.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

from fpdf import FPDF
from fpdf.enums import XPos, YPos
from fpdf.outline import OutlineSection
from google.protobuf.message import Message

from renderer.course_text import (
    choice_label,
    course_phrases,
    lesson_heading,
    lesson_sources,
    meta_line,
    module_heading,
    quiz_heading,
    source_entry,
    with_source,
    written_by,
)
from renderer.pdf_fonts import (
    CORE_ENCODING,
    CORE_FONTS,
    Fonts,
    fallback_fonts,
    find_font_dir,
    load_fonts,
    set_shaping,
)
from renderer.pdf_text import TextWriter, fit
from renderer.phrases import Phrases, phrases
from syllabus.v1 import course_pb2

__all__ = ["find_font_dir", "render_markdown_pdf", "render_pdf"]

# The table of contents is one line per entry, each of this height: how many pages it fills is a matter of
# arithmetic, known before the chapters are laid out (fpdf2 reserves the pages up front and requires the exact
# count).
_TOC_ROW = 6.6
_TOC_TITLE = 14.0


class _CoursePDF(FPDF):
    def __init__(self, page_size: str, footer_text: str, words: Phrases) -> None:
        super().__init__(format=page_size)
        self.faces: Fonts = CORE_FONTS
        self.footer_text = footer_text
        self.words = words
        self.core_fonts_encoding = CORE_ENCODING
        self.set_margins(20, 18, 20)
        self.set_auto_page_break(True, margin=18)

    def footer(self) -> None:
        if self.page_no() == 1:
            return
        self.set_y(-13)
        self.set_font(self.faces.body, "", 8)
        self.set_text_color(120, 120, 120)
        number = "  |  " + self.words.page.format(number=self.page_no())
        title = fit(self, self.faces.text(self.footer_text), self.epw - self.get_string_width(number) - 2)
        self.cell(0, 6, title + number, align="C")
        self.set_text_color(0, 0, 0)


def render_pdf(
    course: course_pb2.Course,
    font_dir: Path | None,
    page_size: str = "A4",
    fallbacks: Sequence[Path] | None = None,
) -> bytes:
    """`fallbacks`: fonts for characters DejaVu lacks; None looks for the usual ones (renderer.pdf_fonts)."""
    title = course.title or course.prompt
    words = course_phrases(course)
    pdf = _CoursePDF(page_size, title, words)
    found = fallback_fonts(font_dir) if fallbacks is None else tuple(fallbacks)
    needed = _characters(course) | _characters_of(words)
    pdf.faces = load_fonts(pdf, font_dir, found, needed)
    set_shaping(pdf, pdf.faces, needed, words.rtl)
    writer = _Writer(pdf, words)
    pdf.set_title(writer.t(title))
    pdf.set_author("Syllabus")
    pdf.set_creator("Syllabus")
    pdf.set_lang(course.language or "en")
    # The course's own time, not the clock: rendering a course twice gives the same bytes.
    created = course.create_time.ToDatetime(tzinfo=UTC) if course.HasField("create_time") else datetime(2000, 1, 1)
    pdf.set_creation_date(created)
    writer.title_page(course)
    pdf.add_page()
    # Per module: the module, its lesson, its quiz; then the answer key.
    entries = 3 * len(course.modules) + 1
    pdf.insert_toc_placeholder(writer.table_of_contents, pages=writer.toc_pages(entries))
    writer.fresh_page = True
    for module in course.modules:
        writer.module(module)
    writer.answer_key(course.modules)
    return bytes(pdf.output())


def render_markdown_pdf(
    title: str,
    subtitle: str,
    markdown: str,
    *,
    font_dir: Path | None,
    page_size: str = "A4",
    created: datetime,
    language: str = "en",
) -> bytes:
    """A document of one Markdown text under a title, laid out as lessons are; `created` is the PDF's creation
    date, so that the same input gives the same bytes."""
    words = phrases(language)
    pdf = _CoursePDF(page_size, title, words)
    needed = set(title + subtitle + markdown) | _characters_of(words)
    pdf.faces = load_fonts(pdf, font_dir, fallback_fonts(font_dir), needed)
    set_shaping(pdf, pdf.faces, needed, words.rtl)
    writer = TextWriter(pdf, pdf.faces, words.rtl)
    pdf.set_title(writer.t(title))
    pdf.set_author("Syllabus")
    pdf.set_creator("Syllabus")
    pdf.set_lang(language)
    pdf.set_creation_date(created)
    pdf.add_page()
    writer.line(title, size=22, style="B", gap=3)
    if subtitle:
        pdf.set_text_color(90, 99, 110)
        writer.line(subtitle, size=11, gap=4)
        pdf.set_text_color(0, 0, 0)
    writer.markdown(markdown)
    return bytes(pdf.output())


def _characters(message: Message) -> set[str]:
    """Every character of the course's text, to know which fonts it needs."""
    return {char for text in _texts(message) for char in text}


def _characters_of(words: Phrases) -> set[str]:
    """The characters of the fixed texts the document shows."""
    return {char for value in vars(words).values() if isinstance(value, str) for char in value}


def _texts(message: Message) -> Iterator[str]:
    for field, value in message.ListFields():
        if field.type == field.TYPE_STRING:
            yield from value if field.is_repeated else [value]
        elif field.type == field.TYPE_MESSAGE:
            for item in value if field.is_repeated else [value]:
                yield from _texts(item)


class _Writer(TextWriter):
    def __init__(self, pdf: _CoursePDF, words: Phrases) -> None:
        super().__init__(pdf, pdf.faces, words.rtl)
        self.words = words
        # The table of contents placeholder ends with a page break: the first chapter starts on that page.
        self.fresh_page = False

    def _new_page(self) -> None:
        if not self.fresh_page:
            self.pdf.add_page()
        self.fresh_page = False

    def _toc_rows(self) -> tuple[int, int]:
        """Table of contents lines on its first page (below the title) and on each further page."""
        pdf = self.pdf
        room = pdf.h - pdf.b_margin - pdf.t_margin
        return int((room - _TOC_TITLE) // _TOC_ROW), int(room // _TOC_ROW)

    def toc_pages(self, entries: int) -> int:
        first, rest = self._toc_rows()
        return 1 if entries <= first else 1 + math.ceil((entries - first) / rest)

    def title_page(self, course: course_pb2.Course) -> None:
        pdf = self.pdf
        pdf.add_page()
        pdf.ln(45)
        self.line(course.title or course.prompt, size=26, style="B", gap=6)
        pdf.set_text_color(90, 99, 110)
        self.line(meta_line(course, self.words), size=11, gap=8)
        pdf.set_text_color(0, 0, 0)
        if course.offline_draft:
            self.font("B", 10)
            pdf.set_fill_color(255, 248, 197)
            notice = self.t(self.words.offline_notice)
            pdf.multi_cell(0, 5.5, notice, border=1, fill=True, padding=3, align=self.align, new_x=XPos.LMARGIN)
            pdf.ln(6)
        self.inline(course.description, size=12)
        if course.sources:
            pdf.ln(4)
            self.line(self.words.sources, size=11, style="B", gap=1)
            for source in course.sources:
                self.item("\u2022", source_entry(source, self.words))
        pdf.ln(10)
        pdf.set_text_color(90, 99, 110)
        self.line(written_by(course, self.words), size=9)
        pdf.set_text_color(0, 0, 0)

    def table_of_contents(self, pdf: FPDF, outline: list[OutlineSection]) -> None:
        # Runs at output time, on the first reserved page. Every line is one row of fixed height and page breaks
        # come where toc_pages counted them, never from fpdf2's automatic breaking: the pages filled are always
        # the pages reserved.
        first, rest = self._toc_rows()
        auto_break, margin = pdf.auto_page_break, pdf.b_margin
        pdf.set_auto_page_break(False, margin)
        pdf.set_xy(pdf.l_margin, pdf.t_margin)
        self.font("B", 18)
        contents = self.t(self.words.contents)
        pdf.cell(0, _TOC_TITLE, contents, align=self.align, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        for number, section in enumerate(outline):
            if number >= first and (number - first) % rest == 0:
                pdf.add_page()
                pdf.set_xy(pdf.l_margin, pdf.t_margin)
            self._toc_line(pdf, section)
        pdf.set_auto_page_break(auto_break, margin)

    def _toc_line(self, pdf: FPDF, section: OutlineSection) -> None:
        top = section.level == 0
        self.font("B" if top else "", 11 if top else 10.5)
        link = pdf.add_link(page=section.page_number)
        label = pdf.pages[section.page_number].get_label()
        indent = 0 if top else 7
        number_width = pdf.get_string_width(label) + 1
        name = fit(pdf, section.name, pdf.epw - indent - number_width - 8)
        name_width = pdf.get_string_width(name) + 2
        leader = pdf.epw - indent - name_width - number_width
        dots = "." * max(0, int(leader / pdf.get_string_width(".")) - 2)
        if self.rtl:
            # Mirrored: the name at the right (indented from it), the page number at the left.
            pdf.set_x(pdf.l_margin)
            pdf.cell(number_width, _TOC_ROW, label, align="L", link=link)
            pdf.set_text_color(150, 150, 150)
            pdf.cell(leader, _TOC_ROW, dots, align="L", link=link)
            pdf.set_text_color(0, 0, 0)
            pdf.cell(name_width, _TOC_ROW, name, align="R", link=link, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
            return
        pdf.set_x(pdf.l_margin + indent)
        pdf.cell(name_width, _TOC_ROW, name, link=link)
        pdf.set_text_color(150, 150, 150)
        pdf.cell(leader, _TOC_ROW, dots, align="R", link=link)
        pdf.set_text_color(0, 0, 0)
        pdf.cell(number_width, _TOC_ROW, label, align="R", link=link, new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    def module(self, module: course_pb2.Module) -> None:
        pdf = self.pdf
        self._new_page()
        words = self.words
        heading = module_heading(module, words)
        pdf.start_section(self.t(heading), level=0)
        self.line(heading, size=18, style="B", gap=3)
        pdf.set_text_color(70, 70, 70)
        self.inline(module.summary, size=11, style="I")
        pdf.set_text_color(0, 0, 0)
        pdf.ln(3)
        if module.objectives:
            self.line(words.objectives, size=11, style="B", gap=1)
            for objective in module.objectives:
                self.item("\u2022", objective)
            pdf.ln(3)
        lesson = lesson_heading(module, words)
        pdf.start_section(self.t(lesson), level=1)
        self.line(lesson, size=15, style="B", gap=2)
        self.markdown(module.lesson.body_markdown)
        if module.lesson.key_points:
            pdf.ln(2)
            self.line(words.key_points, size=12, style="B", gap=1)
            for point in module.lesson.key_points:
                self.item("\u2022", point)
        if module.lesson.citations:
            pdf.ln(2)
            self.line(words.sources, size=12, style="B", gap=1)
            for cited in lesson_sources(module):
                self.item("\u2022", cited)
        pdf.ln(4)
        pdf.start_section(self.t(quiz_heading(module, words)), level=1)
        self.line(words.quiz, size=15, style="B", gap=2)
        for number, question in enumerate(module.quiz.questions, 1):
            with self.indented(f"{number}."):
                self.inline(question.text)
                pdf.ln(1)
                for index, choice in enumerate(question.choices):
                    self.item(f"{choice_label(index)})", choice, size=10.5)
            pdf.ln(1.5)

    def answer_key(self, modules: Sequence[course_pb2.Module]) -> None:
        pdf = self.pdf
        self._new_page()
        pdf.start_section(self.t(self.words.answer_key), level=0)
        self.line(self.words.answer_key, size=18, style="B", gap=3)
        for module in modules:
            self.line(module_heading(module, self.words), size=12.5, style="B", gap=1)
            for number, question in enumerate(module.quiz.questions, 1):
                index = question.answer_index
                choice = question.choices[index] if index < len(question.choices) else ""
                with self.indented(f"{number}.", size=10.5):
                    self.inline(f"**{choice_label(index)})** {choice}", size=10.5)
                    pdf.ln(1)
                    pdf.set_text_color(90, 99, 110)
                    self.inline(with_source(question.explanation, question, self.words), size=9.5, style="I")
                    pdf.set_text_color(0, 0, 0)
                pdf.ln(1.5)
            pdf.ln(2)
