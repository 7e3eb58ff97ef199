"""Text on a PDF page: lines, inline runs, list items, and lesson Markdown laid out from CommonMark tokens.

fpdf2 lays out text but knows no Markdown, so this module walks the token stream of renderer.commonmark. It walks
it flat, keeping open lists and quotes on stacks, so no nesting depth can exhaust Python's recursion. Every
width it hands fpdf2 stays wider than any character (indentation is capped, narrow tables become text), so no
input runs out of horizontal space, and a table row taller than a page is laid out as text instead of failing.

In a right-to-left document (Arabic, Hebrew) paragraphs are right-aligned, list markers and indentation are on the
right, and a paragraph's styled runs go to fpdf2 as one text (its own markup for bold and italic), so that the
bidirectional algorithm orders the whole paragraph, not each run on its own. Code stays left to right.
"""

from __future__ import annotations

import contextlib
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace

from fpdf import FPDF
from fpdf.drawing_primitives import DeviceCMYK, DeviceGray, DeviceRGB
from fpdf.enums import XPos, YPos
from fpdf.fonts import FontFace
from markdown_it.token import Token

from renderer.commonmark import parse, parse_inline
from renderer.pdf_fonts import Fonts

HEADING_SIZES = {1: 14.0, 2: 13.0, 3: 12.0}
BULLETS = ("\u2022", "\u2013", "\u00b7")
LINK_COLOR = (11, 92, 173)
QUOTE_COLOR = (90, 99, 110)
# Nested lists and quotes move right by at most this much, so deep nesting keeps a readable width.
MAX_INDENT = 42.0
# A table whose columns would be narrower than this is laid out as lines of text.
MIN_COLUMN = 18.0
_TABLE_SIZE = 9.5
_TABLE_LINE = 4.6
_TABLE_PADDING = 1.2
_TABLE_ALIGN = {"text-align:left": "LEFT", "text-align:center": "CENTER", "text-align:right": "RIGHT"}
_STYLE_OF = {"strong": "B", "em": "I", "s": "S"}
# fpdf2's inline markup, for right-to-left paragraphs: a marker, and the characters that must be escaped.
_FPDF_MARKERS = {"B": "**", "I": "__", "S": "~~"}
_FPDF_MARKUP = ("**", "__", "~~", "--")


@dataclass(frozen=True)
class Run:
    """A piece of inline text in one style: "B", "I", "S" (struck through) combined; `url` for links."""

    text: str
    style: str = ""
    code: bool = False
    url: str = ""


def inline_runs(tokens: Sequence[Token]) -> list[Run]:
    """Inline tokens as styled runs, neighbours of the same style merged."""
    runs: list[Run] = []
    open_styles = {"B": 0, "I": 0, "S": 0}
    links: list[str] = []
    for token in tokens:
        kind, _, edge = token.type.rpartition("_")
        if kind in _STYLE_OF and edge in ("open", "close"):
            open_styles[_STYLE_OF[kind]] += 1 if edge == "open" else -1
            continue
        if token.type == "link_open":
            links.append(str(token.attrGet("href") or ""))
            continue
        if token.type == "link_close":
            if links:
                links.pop()
            continue
        style = "".join(mark for mark, count in open_styles.items() if count > 0)
        run = Run(_inline_text(token), style, code=token.type == "code_inline", url=links[-1] if links else "")
        if runs and replace(runs[-1], text="") == replace(run, text=""):
            runs[-1] = replace(run, text=runs[-1].text + run.text)
        elif run.text:
            runs.append(run)
    return runs


def _inline_text(token: Token) -> str:
    if token.type == "softbreak":
        return " "
    if token.type == "hardbreak":
        return "\n"
    if token.type == "image":
        # Pictures are never fetched: the reader gets their description.
        alt = token.content.strip()
        return f"[image: {alt}]" if alt else "[image]"
    return token.content


def fit(pdf: FPDF, text: str, width: float) -> str:
    """The text, cut short with "..." if it is wider than `width` in the current font."""
    if pdf.get_string_width(text) <= width:
        return text
    low, high = 0, len(text)
    while low < high:
        middle = (low + high + 1) // 2
        if pdf.get_string_width(text[:middle].rstrip() + "...") <= width:
            low = middle
        else:
            high = middle - 1
    return text[:low].rstrip() + "..."


@dataclass
class _List:
    ordered: bool
    number: int
    depth: int


@dataclass
class _Item:
    left: float
    # The PDF's cursor when the item began: an item that wrote nothing still needs its line.
    start: tuple[int, float] = (0, 0.0)


@dataclass
class _Quote:
    left: float
    color: DeviceRGB | DeviceCMYK | DeviceGray | None
    style: str


@dataclass
class _Table:
    rows: list[tuple[bool, list[tuple[str, str]]]] = field(default_factory=list)
    head: bool = False
    align: str = "LEFT"


def starts_right_to_left(text: str) -> bool:
    """Whether the text's first letter with a direction is a right-to-left one (Unicode's rule for a paragraph's
    direction); text with none (digits, punctuation) keeps the document's."""
    for char in text:
        kind = unicodedata.bidirectional(char)
        if kind == "L":
            return False
        if kind in ("R", "AL"):
            return True
    return True


class TextWriter:
    """Writes text at the PDF's cursor, in the PDF's fonts."""

    def __init__(self, pdf: FPDF, fonts: Fonts, rtl: bool = False) -> None:
        self.pdf = pdf
        self.fonts = fonts
        self.rtl = rtl
        self.align = "R" if rtl else "L"
        # Indentation is from the margin where lines start: the left one, or the right one in right-to-left text.
        self.base_margin = self._start_margin()
        # Styles every run inside a quote takes on.
        self._quote_style = ""

    def t(self, text: str) -> str:
        return self.fonts.text(text)

    def font(self, style: str = "", size: float = 11, mono: bool = False) -> None:
        # Strikethrough is drawn over any face; bold and italic need faces of their own, which mono lacks.
        self.pdf.set_font(self.fonts.mono if mono else self.fonts.body, "" if mono else style, size)

    def _start_margin(self) -> float:
        return self.pdf.r_margin if self.rtl else self.pdf.l_margin

    def _set_start_margin(self, margin: float) -> None:
        if self.rtl:
            self.pdf.set_right_margin(margin)
        else:
            self.pdf.set_left_margin(margin)
        self.pdf.set_x(self.pdf.l_margin)

    def line(self, text: str, *, size: float = 11, style: str = "", gap: float = 1.5) -> None:
        self.font(style, size)
        self.pdf.multi_cell(0, size * 0.5, self.t(text), align=self.align, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.pdf.ln(gap)

    def inline(self, text: str, *, size: float = 11, style: str = "") -> None:
        """One field of inline Markdown (a summary, a question) as flowing text, then a line break."""
        self.runs(inline_runs(parse_inline(text)), size=size, style=style)

    def runs(self, runs: Sequence[Run], *, size: float = 11, style: str = "") -> None:
        # A paragraph takes its direction from its first letters, as HTML's dir="auto" does: English inside an
        # Arabic course reads left to right.
        if self.rtl and starts_right_to_left("".join(run.text for run in runs)):
            self._rtl_runs(runs, size=size, style=style)
            return
        if self.rtl:
            # After a list marker drawn at the right the cursor is there; left-to-right text starts at the left.
            self.pdf.set_x(self.pdf.l_margin)
        with self._left_to_right():
            self._ltr_runs(runs, size=size, style=style)

    def _ltr_runs(self, runs: Sequence[Run], *, size: float, style: str) -> None:
        pdf = self.pdf
        height = size * 0.5
        color = pdf.text_color
        for run in runs:
            if run.code:
                self.font(size=size - 1, mono=True)
            else:
                self.font("".join(sorted(set(style + self._quote_style + run.style))), size)
            link = run.url if run.url.lower().startswith(("http://", "https://", "mailto:")) else ""
            if link:
                pdf.set_text_color(*LINK_COLOR)
            pdf.write(height, self.t(run.text), link=link)
            pdf.text_color = color
        pdf.ln(height)

    def _rtl_runs(self, runs: Sequence[Run], *, size: float, style: str) -> None:
        """A paragraph as one right-aligned text in fpdf2's markup (bold, italic, struck through; no links or code
        font inside it: fpdf2 lays out its markup, not ours)."""
        base = set(style + self._quote_style)
        parts = []
        for run in runs:
            # fpdf2 halves runs of backslashes, and one before a marker makes it text.
            text = self.t(run.text).replace("\\", "\\\\")
            for marker in _FPDF_MARKUP:
                text = text.replace(marker, "\\" + marker)
            added = [_FPDF_MARKERS[mark] for mark in sorted(set(run.style) - base) if mark in _FPDF_MARKERS]
            parts.append("".join(added) + text + "".join(reversed(added)) if text.strip() else text)
        self.font("".join(sorted(base)), size)
        self.pdf.multi_cell(
            0, size * 0.5, "".join(parts), markdown=True, align="R", new_x=XPos.LMARGIN, new_y=YPos.NEXT
        )

    def item(self, marker: str, text: str, *, size: float = 11) -> None:
        """A list item of one inline field: the marker, then the text indented beside it."""
        with self.indented(marker, size):
            self.inline(text, size=size)
        self.pdf.ln(1)

    @contextlib.contextmanager
    def indented(self, marker: str, size: float = 11, indent: float = 7) -> Iterator[None]:
        """Within it, text starts right of the marker."""
        left = self._open_item(marker, size, indent)
        try:
            yield
        finally:
            self._close_item(left)

    def _open_item(self, marker: str, size: float, indent: float) -> float:
        """Writes the marker and moves the start margin in; returns the start margin as it was."""
        pdf = self.pdf
        start = self._start_margin()
        content = min(start + indent, self.base_margin + MAX_INDENT)
        self.font(size=size)
        shown = self.t(marker)
        width = pdf.get_string_width(shown)
        if self.rtl:
            # A cell, not flowing text: the marker stays on its line, just right of where the text ends.
            pdf.set_x(min(pdf.w - self.base_margin - width, pdf.w - content + 1.5))
            pdf.cell(width, size * 0.5, shown, align="R")
        else:
            pdf.set_x(max(self.base_margin, content - width - 1.5))
            pdf.write(size * 0.5, shown)
        self._set_start_margin(content)
        return start

    def _close_item(self, start: float) -> None:
        self._set_start_margin(start)

    def markdown(self, markdown: str) -> None:
        """Lesson Markdown, block by block."""
        pdf = self.pdf
        lists: list[_List] = []
        items: list[_Item] = []
        quotes: list[_Quote] = []
        table: _Table | None = None
        tokens = parse(markdown)
        for index, token in enumerate(tokens):
            kind = token.type
            if table is not None:
                if kind == "table_close":
                    self.table(table.rows)
                    table = None
                else:
                    _table_token(table, token, self.t)
            elif kind == "table_open":
                table = _Table()
            elif kind == "inline":
                opener = tokens[index - 1] if index else None
                self._block_text(opener, inline_runs(token.children or []))
            elif kind in ("bullet_list_open", "ordered_list_open"):
                start = int(str(token.attrGet("start") or 1)) if kind == "ordered_list_open" else 1
                lists.append(_List(kind == "ordered_list_open", start, len(lists)))
            elif kind in ("bullet_list_close", "ordered_list_close"):
                if lists:
                    lists.pop()
                pdf.ln(1.5)
            elif kind == "list_item_open" and lists:
                current = lists[-1]
                marker = f"{current.number}." if current.ordered else BULLETS[current.depth % len(BULLETS)]
                current.number += 1
                self.font(size=11)
                indent = max(7.0, pdf.get_string_width(marker) + 3)
                items.append(_Item(self._open_item(marker, 11, indent), (pdf.page, pdf.y)))
            elif kind == "list_item_close" and items:
                item = items.pop()
                if item.start == (pdf.page, pdf.y):
                    pdf.ln(5.5)
                self._close_item(item.left)
            elif kind == "blockquote_open":
                quotes.append(_Quote(self._start_margin(), pdf.text_color, self._quote_style))
                pdf.set_text_color(*QUOTE_COLOR)
                self._quote_style = "I"
                self._set_start_margin(min(self._start_margin() + 5, self.base_margin + MAX_INDENT))
            elif kind == "blockquote_close" and quotes:
                quote = quotes.pop()
                self._set_start_margin(quote.left)
                pdf.text_color = quote.color
                self._quote_style = quote.style
            elif kind in ("fence", "code_block"):
                self.code(token.content)
            elif kind == "hr":
                self.rule()
            elif kind == "html_block":
                self._block_text(None, [Run(token.content)])

    def _block_text(self, opener: Token | None, runs: list[Run]) -> None:
        pdf = self.pdf
        if opener is not None and opener.type == "heading_open":
            pdf.ln(2)
            self.runs(runs, size=HEADING_SIZES.get(int(opener.tag[1:]), 11.0), style="B")
            pdf.ln(1)
        else:
            self.runs(runs)
            # Paragraphs of a tight list are hidden in HTML: their items sit close together.
            pdf.ln(0.8 if opener is not None and opener.hidden else 2.5)

    def code(self, content: str) -> None:
        pdf = self.pdf
        self.font(size=9, mono=True)
        pdf.set_fill_color(246, 248, 250)
        text = self.t(content.rstrip("\n").expandtabs(4)) or " "
        with self._left_to_right():
            pdf.multi_cell(0, 4.4, text, align="L", fill=True, padding=2, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.ln(3)

    @contextlib.contextmanager
    def _left_to_right(self) -> Iterator[None]:
        """Within it, shaped text runs left to right, also in a right-to-left document."""
        shaping = self.pdf.text_shaping and self.rtl
        if shaping:
            self.pdf.set_text_shaping(True, direction="ltr")
        try:
            yield
        finally:
            if shaping:
                self.pdf.set_text_shaping(True, direction="rtl")

    def rule(self) -> None:
        pdf = self.pdf
        y = pdf.y + 2
        pdf.set_draw_color(200, 200, 200)
        pdf.line(pdf.l_margin, y, pdf.w - pdf.r_margin, y)
        pdf.set_draw_color(0, 0, 0)
        pdf.ln(5)

    def table(self, rows: list[tuple[bool, list[tuple[str, str]]]]) -> None:
        """Rows of (is a heading row, cells of (alignment, text))."""
        if not rows:
            return
        pdf = self.pdf
        width = pdf.epw
        columns = max(len(cells) for _, cells in rows)
        if width / columns < MIN_COLUMN or not self._rows_fit(rows, width / columns):
            self._table_as_text(rows)
            return
        self.font(size=_TABLE_SIZE)
        pdf.set_x(pdf.l_margin)
        # fpdf2 fills body cells with the current fill colour (the offline notice's yellow, a code block's grey).
        pdf.set_fill_color(255, 255, 255)
        with pdf.table(
            width=width,
            align="LEFT",
            first_row_as_headings=rows[0][0],
            headings_style=FontFace(emphasis="BOLD", fill_color=(246, 248, 250)),
            line_height=_TABLE_LINE,
            padding=_TABLE_PADDING,
            text_align="LEFT",
        ) as layout:
            for _, cells in rows:
                row = layout.row()
                # Right to left: the first column at the right, text starting at the right of its cell.
                for align, text in reversed(cells) if self.rtl else cells:
                    row.cell(text, align="RIGHT" if self.rtl and align == "LEFT" else align)
        pdf.ln(3)

    def _rows_fit(self, rows: list[tuple[bool, list[tuple[str, str]]]], column: float) -> bool:
        """Whether every row fits on one page (fpdf2 cannot split a row across pages)."""
        pdf = self.pdf
        room = (pdf.h - pdf.t_margin - pdf.b_margin) * 0.9
        for head, cells in rows:
            self.font("B" if head else "", _TABLE_SIZE)
            tallest = 0
            for _, text in cells:
                lines = pdf.multi_cell(column - 2 * _TABLE_PADDING, _TABLE_LINE, text, dry_run=True, output="LINES")
                assert isinstance(lines, list)
                tallest = max(tallest, len(lines))
            if tallest * _TABLE_LINE + 2 * _TABLE_PADDING > room:
                return False
        return True

    def _table_as_text(self, rows: list[tuple[bool, list[tuple[str, str]]]]) -> None:
        for head, cells in rows:
            self.runs([Run("  |  ".join(text for _, text in cells), "B" if head else "")], size=_TABLE_SIZE)
            self.pdf.ln(0.8)
        self.pdf.ln(2.5)


def _table_token(table: _Table, token: Token, shown: Callable[[str], str]) -> None:
    kind = token.type
    if kind in ("thead_open", "tbody_open"):
        table.head = kind == "thead_open"
    elif kind == "tr_open":
        table.rows.append((table.head, []))
    elif kind in ("th_open", "td_open"):
        table.align = _TABLE_ALIGN.get(str(token.attrGet("style") or ""), "LEFT")
    elif kind == "inline" and table.rows:
        text = "".join(run.text for run in inline_runs(token.children or []))
        table.rows[-1][1].append((table.align, shown(text)))
