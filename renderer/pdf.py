"""A course as a PDF: a title page, a table of contents with page numbers (and PDF bookmarks), one chapter per
module (lesson, key points, quiz), the answer key, and numbered pages. The text is real text: selectable and
searchable.

Rendering is CPU work: call render_pdf in an executor, never on the event loop. With DejaVu fonts available the
PDF carries any script DejaVu covers; without them it falls back to the PDF's built-in fonts, which only know
Windows-1252 (Western European) text, so other characters are transliterated or replaced, never an error.
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from fpdf import FPDF
from fpdf.enums import XPos, YPos
from fpdf.outline import OutlineSection

from renderer.blocks import Block, Bullets, Code, Heading, Numbered, Paragraph, Quote, parse_blocks, parse_inline
from renderer.course_text import (
    OFFLINE_NOTICE,
    choice_label,
    lesson_heading,
    meta_line,
    module_heading,
    written_by,
)
from syllabus.config import DEJAVU_FONT_DIRS
from syllabus.v1 import course_pb2

# Table of contents lines per page, counted low so that wrapped titles still fit in the pages reserved.
_TOC_LINES_PER_PAGE = 20
_CORE_ENCODING = "windows-1252"
_REPLACEMENTS = {
    "\u00a0": " ",
    "\u2212": "-",
    "\u2192": "->",
    "\u2190": "<-",
    "\u21d2": "=>",
    "\u2264": "<=",
    "\u2265": ">=",
    "\u2260": "!=",
    "\u2248": "~",
    "\u2713": "v",
    "\u2714": "v",
    "\u2717": "x",
}
_CYRILLIC_LETTERS = "абвгдеёжзийклмнопрстуфхцчшщъыьэюя"
_CYRILLIC_LATIN = "a b v g d e yo zh z i y k l m n o p r s t u f kh ts ch sh shch ' y ' e yu ya"
_CYRILLIC = dict(zip(_CYRILLIC_LETTERS, _CYRILLIC_LATIN.split(" "), strict=True))


@dataclass(frozen=True)
class Fonts:
    body: str
    mono: str
    # False: the built-in fonts, so text must be made Windows-1252 first.
    unicode: bool


def find_font_dir(configured: str) -> Path | None:
    for candidate in [configured] if configured else DEJAVU_FONT_DIRS:
        if (Path(candidate) / "DejaVuSans.ttf").is_file():
            return Path(candidate)
    return None


def to_core_text(text: str) -> str:
    """Text the built-in PDF fonts can show: Windows-1252, with other characters approximated."""
    out = []
    for char in text:
        if _encodable(char):
            out.append(char)
        elif char in _REPLACEMENTS:
            out.append(_REPLACEMENTS[char])
        elif char.lower() in _CYRILLIC:
            latin = _CYRILLIC[char.lower()]
            out.append(latin.capitalize() if char.isupper() else latin)
        else:
            # Accented letters lose their accents; anything without a close match becomes "?".
            base = "".join(
                c for c in unicodedata.normalize("NFKD", char) if not unicodedata.combining(c) and _encodable(c)
            )
            out.append(base or "?")
    return "".join(out)


def _encodable(char: str) -> bool:
    try:
        char.encode(_CORE_ENCODING)
    except UnicodeEncodeError:
        return False
    return True


class _CoursePDF(FPDF):
    def __init__(self, fonts: Fonts, page_size: str, footer_text: str) -> None:
        super().__init__(format=page_size)
        self.faces = fonts
        self.footer_text = footer_text
        self.core_fonts_encoding = _CORE_ENCODING
        self.set_margins(20, 18, 20)
        self.set_auto_page_break(True, margin=18)

    def t(self, text: str) -> str:
        return text if self.faces.unicode else to_core_text(text)

    def footer(self) -> None:
        if self.page_no() == 1:
            return
        self.set_y(-13)
        self.set_font(self.faces.body, "", 8)
        self.set_text_color(120, 120, 120)
        self.cell(0, 6, self.t(f"{self.footer_text}  |  page {self.page_no()}"), align="C")
        self.set_text_color(0, 0, 0)


def _load_fonts(pdf: FPDF, font_dir: Path | None) -> Fonts:
    if font_dir is None:
        return Fonts(body="helvetica", mono="courier", unicode=False)
    regular = font_dir / "DejaVuSans.ttf"
    for style, name in (("", "DejaVuSans"), ("B", "DejaVuSans-Bold"), ("I", "DejaVuSans-Oblique")):
        path = font_dir / f"{name}.ttf"
        pdf.add_font("dejavu", style, str(path if path.is_file() else regular))
    bold_italic = font_dir / "DejaVuSans-BoldOblique.ttf"
    pdf.add_font("dejavu", "BI", str(bold_italic if bold_italic.is_file() else regular))
    mono = font_dir / "DejaVuSansMono.ttf"
    pdf.add_font("dejavumono", "", str(mono if mono.is_file() else regular))
    return Fonts(body="dejavu", mono="dejavumono", unicode=True)


def render_pdf(course: course_pb2.Course, font_dir: Path | None, page_size: str = "A4") -> bytes:
    title = course.title or course.prompt
    pdf = _CoursePDF(Fonts("helvetica", "courier", False), page_size, title)
    pdf.faces = _load_fonts(pdf, font_dir)
    pdf.set_title(pdf.t(title))
    pdf.set_author("Syllabus")
    pdf.set_creator("Syllabus")
    pdf.set_lang(course.language or "en")
    # The course's own time, not the clock: rendering a course twice gives the same bytes.
    created = course.create_time.ToDatetime(tzinfo=UTC) if course.HasField("create_time") else datetime(2000, 1, 1)
    pdf.set_creation_date(created)
    writer = _Writer(pdf)
    writer.title_page(course)
    pdf.add_page()
    entries = 3 * len(course.modules) + 2
    pdf.insert_toc_placeholder(writer.table_of_contents, pages=max(1, math.ceil(entries / _TOC_LINES_PER_PAGE)))
    writer.fresh_page = True
    for module in course.modules:
        writer.module(module)
    writer.answer_key(course.modules)
    return bytes(pdf.output())


class _Writer:
    def __init__(self, pdf: _CoursePDF) -> None:
        self.pdf = pdf
        # The table of contents placeholder ends with a page break: the first chapter starts on that page.
        self.fresh_page = False

    def _new_page(self) -> None:
        if not self.fresh_page:
            self.pdf.add_page()
        self.fresh_page = False

    def _font(self, style: str = "", size: float = 11, mono: bool = False) -> None:
        pdf = self.pdf
        pdf.set_font(pdf.faces.mono if mono else pdf.faces.body, "" if mono else style, size)

    def _line(self, text: str, *, size: float = 11, style: str = "", gap: float = 1.5) -> None:
        self._font(style, size)
        self.pdf.multi_cell(0, size * 0.5, self.pdf.t(text), align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.pdf.ln(gap)

    def _runs(self, text: str, *, size: float = 11, style: str = "") -> None:
        """Inline Markdown as flowing text (bold, italic and code runs), then a line break."""
        pdf = self.pdf
        height = size * 0.5
        for run in parse_inline(text):
            if run.style == "code":
                self._font(size=size - 1, mono=True)
            else:
                self._font("".join(sorted(set(style + (run.style if run.style in ("B", "I") else "")))), size)
            pdf.write(height, pdf.t(run.text), link=run.url)
        pdf.ln(height)

    def _item(self, marker: str, text: str, *, size: float = 11, indent: float = 7) -> None:
        pdf = self.pdf
        left = pdf.l_margin
        self._font(size=size)
        pdf.set_x(left + 1.5)
        pdf.write(size * 0.5, pdf.t(marker))
        pdf.set_left_margin(left + indent)
        pdf.set_x(left + indent)
        try:
            self._runs(text, size=size)
        finally:
            pdf.set_left_margin(left)
        pdf.ln(1)

    def title_page(self, course: course_pb2.Course) -> None:
        pdf = self.pdf
        pdf.add_page()
        pdf.ln(45)
        self._line(course.title or course.prompt, size=26, style="B", gap=6)
        pdf.set_text_color(90, 99, 110)
        self._line(meta_line(course), size=11, gap=8)
        pdf.set_text_color(0, 0, 0)
        if course.offline_draft:
            self._font("B", 10)
            pdf.set_fill_color(255, 248, 197)
            pdf.multi_cell(0, 5.5, pdf.t(OFFLINE_NOTICE), border=1, fill=True, padding=3, new_x=XPos.LMARGIN)
            pdf.ln(6)
        self._runs(course.description, size=12)
        pdf.ln(10)
        pdf.set_text_color(90, 99, 110)
        self._line(written_by(course), size=9)
        pdf.set_text_color(0, 0, 0)

    def table_of_contents(self, pdf: FPDF, outline: list[OutlineSection]) -> None:
        # Runs at output time, when the cursor is wherever the last page left it.
        pdf.set_x(pdf.l_margin)
        self._line("Contents", size=18, style="B", gap=4)
        for section in outline:
            top = section.level == 0
            size = 11 if top else 10.5
            height = size * 0.6
            if top:
                pdf.ln(1.5)
            self._font("B" if top else "", size)
            link = pdf.add_link(page=section.page_number)
            label = pdf.pages[section.page_number].get_label()
            indent = 0 if top else 7
            number_width = pdf.get_string_width(label) + 1
            name = section.name
            room = pdf.epw - indent - number_width - 8
            while pdf.get_string_width(name) > room and len(name) > 4:
                name = name[:-4].rstrip() + "..."
            pdf.set_x(pdf.l_margin + indent)
            name_width = pdf.get_string_width(name) + 2
            pdf.cell(name_width, height, name, link=link)
            leader = pdf.epw - indent - name_width - number_width
            pdf.set_text_color(150, 150, 150)
            pdf.cell(leader, height, "." * max(0, int(leader / pdf.get_string_width(".")) - 2), align="R", link=link)
            pdf.set_text_color(0, 0, 0)
            pdf.cell(number_width, height, label, align="R", link=link, new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    def module(self, module: course_pb2.Module) -> None:
        pdf = self.pdf
        self._new_page()
        heading = module_heading(module)
        pdf.start_section(pdf.t(heading), level=0)
        self._line(heading, size=18, style="B", gap=3)
        pdf.set_text_color(70, 70, 70)
        self._runs(module.summary, size=11, style="I")
        pdf.set_text_color(0, 0, 0)
        pdf.ln(3)
        if module.objectives:
            self._line("Objectives", size=11, style="B", gap=1)
            for objective in module.objectives:
                self._item("\u2022", objective)
            pdf.ln(3)
        lesson = lesson_heading(module)
        pdf.start_section(pdf.t(lesson), level=1)
        self._line(lesson, size=15, style="B", gap=2)
        self.blocks(parse_blocks(module.lesson.body_markdown))
        if module.lesson.key_points:
            pdf.ln(2)
            self._line("Key points", size=12, style="B", gap=1)
            for point in module.lesson.key_points:
                self._item("\u2022", point)
        pdf.ln(4)
        pdf.start_section(pdf.t(f"Quiz: {module.title}"), level=1)
        self._line("Quiz", size=15, style="B", gap=2)
        for number, question in enumerate(module.quiz.questions, 1):
            self._item(f"{number}.", question.text)
            pdf.set_left_margin(pdf.l_margin + 7)
            try:
                for index, choice in enumerate(question.choices):
                    self._item(f"{choice_label(index)})", choice, size=10.5)
            finally:
                pdf.set_left_margin(pdf.l_margin - 7)
            pdf.ln(1.5)

    def answer_key(self, modules: Sequence[course_pb2.Module]) -> None:
        pdf = self.pdf
        self._new_page()
        pdf.start_section("Answer key", level=0)
        self._line("Answer key", size=18, style="B", gap=3)
        for module in modules:
            self._line(module_heading(module), size=12.5, style="B", gap=1)
            for number, question in enumerate(module.quiz.questions, 1):
                index = question.answer_index
                choice = question.choices[index] if index < len(question.choices) else ""
                self._item(f"{number}.", f"**{choice_label(index)})** {choice}", size=10.5)
                pdf.set_text_color(90, 99, 110)
                pdf.set_left_margin(pdf.l_margin + 7)
                try:
                    self._runs(question.explanation, size=9.5, style="I")
                finally:
                    pdf.set_left_margin(pdf.l_margin - 7)
                pdf.set_text_color(0, 0, 0)
                pdf.ln(1.5)
            pdf.ln(2)

    def blocks(self, blocks: list[Block]) -> None:
        pdf = self.pdf
        for block in blocks:
            if isinstance(block, Heading):
                pdf.ln(2)
                self._runs(block.text, size={1: 14, 2: 13, 3: 12}.get(block.level, 11), style="B")
                pdf.ln(1)
            elif isinstance(block, Paragraph):
                self._runs(block.text)
                pdf.ln(2.5)
            elif isinstance(block, Bullets):
                for item in block.items:
                    self._item("\u2022", item)
                pdf.ln(1.5)
            elif isinstance(block, Numbered):
                for number, item in enumerate(block.items, 1):
                    self._item(f"{number}.", item)
                pdf.ln(1.5)
            elif isinstance(block, Code):
                self._font(size=9, mono=True)
                pdf.set_fill_color(246, 248, 250)
                pdf.multi_cell(0, 4.4, pdf.t(block.text), fill=True, padding=2, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
                pdf.ln(3)
            elif isinstance(block, Quote):
                pdf.set_text_color(90, 99, 110)
                left = pdf.l_margin
                pdf.set_left_margin(left + 5)
                pdf.set_x(left + 5)
                try:
                    self._runs(block.text, size=10.5, style="I")
                finally:
                    pdf.set_left_margin(left)
                pdf.set_text_color(0, 0, 0)
                pdf.ln(2.5)
