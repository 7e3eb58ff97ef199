"""The PDF's fonts and what they can draw.

With DejaVu fonts the PDF carries any script DejaVu covers (Latin, Cyrillic, Greek, Arabic, Hebrew, many symbols);
fonts that cover more (Droid Sans Fallback for Chinese, Japanese and Korean, Lohit Devanagari for Hindi and other
languages written in Devanagari, Symbola for emoji) are loaded as fallbacks when they are installed and the
course needs them. Text in scripts whose letters join or reorder (Arabic, Hebrew, Devanagari and the other Indic
scripts) is shaped by HarfBuzz (uharfbuzz), and right-to-left text is laid out in reading order. A character no
loaded font can draw becomes U+FFFD (a visible replacement mark) instead of an error or an invisible gap. Without
DejaVu the PDF uses the built-in fonts, which only know Windows-1252 (Western European) text, so other characters
are approximated.
"""

from __future__ import annotations

import functools
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from fontTools.ttLib import TTFont  # type: ignore[import-untyped]
from fpdf import FPDF

from syllabus.config import DEJAVU_FONT_DIRS

PLACEHOLDER = "\ufffd"
# Where Debian's fonts-droid-fallback, fonts-lohit-deva and fonts-symbola put them; a font directory of one's own
# may hold them too.
FALLBACK_FONTS = (
    Path("/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf"),
    Path("/usr/share/fonts/truetype/lohit-devanagari/Lohit-Devanagari.ttf"),
    Path("/usr/share/fonts/truetype/ancient-scripts/Symbola_hint.ttf"),
)
CORE_ENCODING = "windows-1252"
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
# Scripts drawn right only when shaped: letters that join or change with their neighbours (Arabic, Syriac,
# Thaana, N'Ko), and the Indic, Southeast Asian and Tibetan scripts with conjuncts and reordered vowel signs.
_SHAPED_RANGES = ((0x0590, 0x08FF), (0x0900, 0x0DFF), (0x0E00, 0x109F), (0x1780, 0x17FF), (0xFB1D, 0xFEFF))
# Marks and format characters take no room of their own: when no font has them, leaving them out loses nothing
# a reader could see (a variation selector, a zero-width joiner).
_ZERO_WIDTH = frozenset({"Mn", "Me", "Cf"})


@dataclass(frozen=True)
class Fonts:
    body: str
    mono: str
    # False: the built-in fonts, so text must be made Windows-1252 first.
    unicode: bool
    # Code points that some loaded font draws (with unicode fonts only).
    coverage: frozenset[int] = frozenset()

    def text(self, text: str) -> str:
        """The text as this PDF can show it."""
        return visible(text, self.coverage) if self.unicode else to_core_text(text)


CORE_FONTS = Fonts(body="helvetica", mono="courier", unicode=False)


def find_font_dir(configured: str) -> Path | None:
    for candidate in [configured] if configured else DEJAVU_FONT_DIRS:
        if (Path(candidate) / "DejaVuSans.ttf").is_file():
            return Path(candidate)
    return None


def fallback_fonts(font_dir: Path | None) -> tuple[Path, ...]:
    """The fallback fonts there are: in the font directory, else where Debian installs them."""
    if font_dir is None:
        return ()
    found = []
    for system_path in FALLBACK_FONTS:
        own = font_dir / system_path.name
        path = own if own.is_file() else system_path
        if path.is_file():
            found.append(path)
    return tuple(found)


def font_files(font_dir: Path, fallbacks: tuple[Path, ...], needed: Iterable[str]) -> list[tuple[str, str, Path]]:
    """(family, style, file) of the fonts a PDF needs: DejaVu's faces, and the fallbacks that draw a character of
    `needed` DejaVu lacks."""
    regular = font_dir / "DejaVuSans.ttf"
    files = []
    for style, name in (("", "DejaVuSans"), ("B", "DejaVuSans-Bold"), ("I", "DejaVuSans-Oblique")):
        path = font_dir / f"{name}.ttf"
        files.append(("dejavu", style, path if path.is_file() else regular))
    bold_italic = font_dir / "DejaVuSans-BoldOblique.ttf"
    files.append(("dejavu", "BI", bold_italic if bold_italic.is_file() else regular))
    mono = font_dir / "DejaVuSansMono.ttf"
    files.append(("dejavumono", "", mono if mono.is_file() else regular))
    missing = {ord(char) for char in set(needed)} - coverage_of(files)
    for number, path in enumerate(fallbacks):
        if missing & code_points(path):
            files.append((f"fallback{number}", "", path))
            missing -= code_points(path)
    return files


def coverage_of(files: Iterable[tuple[str, str, Path]]) -> frozenset[int]:
    return frozenset().union(*(code_points(path) for _, _, path in files))


def load_fonts(pdf: FPDF, font_dir: Path | None, fallbacks: tuple[Path, ...], needed: Iterable[str]) -> Fonts:
    """Adds the fonts (font_files) to the PDF."""
    if font_dir is None:
        return CORE_FONTS
    wanted = set(needed)
    files = font_files(font_dir, fallbacks, wanted)
    for family, style, path in files:
        pdf.add_font(family, style, str(path))
    if not {ord(char) for char in wanted} <= frozenset.intersection(*(code_points(path) for _, _, path in files)):
        # fpdf2 draws a glyph the current font lacks with the first of these that has it, in any style. Set only
        # when some face lacks a character: looking for fallbacks costs time on every character written.
        pdf.set_fallback_fonts(list(dict.fromkeys(family for family, _, _ in files)), exact_match=False)
    return Fonts(body="dejavu", mono="dejavumono", unicode=True, coverage=coverage_of(files))


def needs_shaping(characters: Iterable[str]) -> bool:
    return any(low <= ord(char) <= high for char in characters for low, high in _SHAPED_RANGES)


def set_shaping(pdf: FPDF, fonts: Fonts, needed: Iterable[str], rtl: bool) -> None:
    """Turns on HarfBuzz shaping when the text needs it (it costs time on every line, so only then); right-to-left
    documents lay out every paragraph right to left."""
    if fonts.unicode and (rtl or needs_shaping(needed)):
        pdf.set_text_shaping(True, direction="rtl" if rtl else None)


@functools.lru_cache(maxsize=32)
def code_points(path: Path) -> frozenset[int]:
    """The characters a font file draws (read once per process: a large font takes a while)."""
    with TTFont(str(path), lazy=True) as font:
        return frozenset(font.getBestCmap() or {})


def visible(text: str, coverage: frozenset[int]) -> str:
    """Characters no font draws become the replacement mark; control characters other than new lines go."""
    out = []
    for char in text:
        category = unicodedata.category(char)
        if char == "\n" or (ord(char) in coverage and category != "Cc"):
            out.append(char)
        elif char == "\t":
            out.append(" ")
        elif category != "Cc" and category not in _ZERO_WIDTH:
            out.append(PLACEHOLDER)
    return "".join(out)


def to_core_text(text: str) -> str:
    """Text the built-in PDF fonts can show: Windows-1252, with other characters approximated."""
    out = []
    for char in text:
        if char == "\t":
            out.append(" ")
        elif unicodedata.category(char) == "Cc" and char != "\n":
            continue
        elif _encodable(char):
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
        char.encode(CORE_ENCODING)
    except UnicodeEncodeError:
        return False
    return True
