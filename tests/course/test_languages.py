"""Courses in other languages: the phrase catalog and its fallbacks, the generator's prompt and word counts, and
the documents of a Japanese, Arabic, Hebrew and Hindi course (PDF text read back in reading order, right-aligned
right-to-left paragraphs, the script's font embedded; HTML, SCORM and EPUB pages with lang and dir). A page of
each PDF goes to test-artifacts/screenshots/ for a person to look at."""

from __future__ import annotations

import io
import re
import string
import subprocess
import zipfile
from pathlib import Path

import pytest

from generator.tasks import OutlineTask
from generator.wordcount import count_words
from renderer.epub import render_epub
from renderer.html import render_html
from renderer.markdown import render_markdown
from renderer.pdf import find_font_dir, render_pdf
from renderer.pdf_fonts import PLACEHOLDER, fallback_fonts
from renderer.phrases import DEFAULT, is_rtl, languages, phrases
from renderer.scorm import render_scorm_12
from tests.course.language_samples import SAMPLES, sample_course

SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
REQUIRED = {"en", "es", "fr", "de", "pt", "ru", "el", "ar", "he", "hi", "ja", "zh", "ko"}
# The font each sample's script is drawn with (as pdffonts names it, after the subset prefix).
SCRIPT_FONTS = {"ar": "DejaVuSans", "he": "DejaVuSans", "hi": "LohitDevanagari", "ja": "DroidSansFallback"}
# Bidirectional formatting marks pdftotext writes around right-to-left text.
_BIDI_MARKS = re.compile("[\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _fields(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def test_every_language_has_every_text_with_the_same_placeholders() -> None:
    assert set(languages()) >= REQUIRED
    english = vars(phrases(DEFAULT))
    for language in languages():
        words = vars(phrases(language))
        for name, text in english.items():
            if isinstance(text, str) and name != "language":
                assert _fields(words[name]) == _fields(text), (language, name)
        if language != DEFAULT:
            # Translated, not fallen back to English (a few words are the same in both).
            same = [name for name in ("contents", "objectives", "answer_key", "submit") if words[name] == english[name]]
            assert same == [], (language, same)


def test_a_tag_finds_its_language_by_its_primary_subtag_then_english() -> None:
    assert phrases("pt-BR").contents == phrases("pt").contents == "Sumário"
    assert phrases("zh-Hans-CN").quiz == phrases("zh").quiz
    assert phrases("iw").contents == phrases("he").contents
    assert phrases("tlh").contents == phrases("").contents == "Contents"
    assert phrases("pt-BR").language == "pt-BR"
    assert [is_rtl(tag) for tag in ("ar", "he-IL", "fa", "ur-PK", "pa-Arab", "en", "ja", "az-Latn", "")] == [
        *[True] * 5,
        *[False] * 4,
    ]


def test_the_prompt_asks_for_the_language_and_words_count_without_spaces() -> None:
    prompt = OutlineTask("Python", 3, "", "beginner", "ja").prompt()
    assert "BCP 47 tag 'ja'" in prompt and "questions, choices, explanations" in prompt
    # Japanese has no spaces between words: its length is measured from its characters.
    assert count_words("変数とはメモリに保存された値の名前です") == 10
    assert count_words("a plain English sentence") == 4
    assert count_words("Python の 変数") == 3


def test_html_scorm_epub_and_markdown_say_the_language_and_direction() -> None:
    arabic = sample_course(SAMPLES["ar"])
    words = phrases("ar")
    page = render_html(arabic).decode()
    assert '<html lang="ar" dir="rtl">' in page
    assert f"<h2>{words.contents}</h2>" in page and words.answer_key in page and words.offline_notice in page
    assert "border-inline-start" in page and "border-left" not in page
    # Code reads left to right inside right-to-left text.
    assert '<code dir="ltr" class="language-python">' in page
    with zipfile.ZipFile(io.BytesIO(render_scorm_12(arabic))) as package:
        quiz = package.read("quiz-1.html").decode()
    assert 'dir="rtl"' in quiz and words.submit in quiz and f'data-score="{words.score}"' in quiz
    with zipfile.ZipFile(io.BytesIO(render_epub(arabic))) as book:
        assert 'xml:lang="ar" dir="rtl"' in book.read("EPUB/module-1.xhtml").decode()
        assert 'page-progression-direction="rtl"' in book.read("EPUB/package.opf").decode()
    assert f"## {words.contents}" in render_markdown(arabic).decode()
    japanese = render_html(sample_course(SAMPLES["ja"])).decode()
    assert '<html lang="ja">' in japanese and phrases("ja").key_points in japanese


def _pdftotext(path: Path, *options: str) -> str:
    return subprocess.run(["pdftotext", *options, str(path), "-"], check=True, capture_output=True, text=True).stdout


def _line_of(path: Path, word: str) -> list[tuple[float, float, str]]:
    """(left, right in points, word) of the words on page 3's line that holds `word`, from the left, from
    pdftotext's word boxes (which spell right-to-left words in the order their glyphs are drawn, from the left)."""
    page = _pdftotext(path, "-bbox", "-f", "3", "-l", "3")
    pattern = r'<word xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="[\d.]+">([^<]*)</word>'
    boxes = [(float(left), top, float(right), text) for left, top, right, text in re.findall(pattern, page)]
    tops = {top for _, top, _, text in boxes if text[::-1] == word}
    assert len(tops) == 1, f"{word} is on {len(tops)} lines of page 3"
    return sorted((left, right, text[::-1]) for left, top, right, text in boxes if top in tops)


def _script_font_installed(language: str, font_dir: Path) -> bool:
    if language in ("ar", "he"):
        return True  # DejaVu
    return any(SCRIPT_FONTS[language] in path.stem.replace("-", "") for path in fallback_fonts(font_dir))


@pytest.mark.parametrize("language", sorted(SCRIPT_FONTS))
def test_the_pdf_draws_the_script_in_reading_order(language: str, tmp_path: Path) -> None:
    font_dir = find_font_dir("")
    if font_dir is None or not _script_font_installed(language, font_dir):
        pytest.skip(f"the fonts for {language} are not installed (./scripts/test installs them)")
    sample = SAMPLES[language]
    path = tmp_path / f"{language}.pdf"
    path.write_bytes(render_pdf(sample_course(sample), font_dir))
    # pdftotext gives the text in reading order: the words as the lesson wrote them.
    text = " ".join(_BIDI_MARKS.sub("", _pdftotext(path)).split())
    assert PLACEHOLDER not in text
    joined = "".join(sample.words) if language == "ja" else " ".join(sample.words)
    assert joined in text
    words = phrases(language)
    assert words.quiz in text and words.key_points in text
    fonts = subprocess.run(["pdffonts", str(path)], check=True, capture_output=True, text=True).stdout
    assert f"+{SCRIPT_FONTS[language]}" in fonts
    if is_rtl(language):
        # Right-aligned: the lesson's short paragraph ends at the right margin (20 mm of an A4 page's 595 pt, less
        # the cell's padding) and starts far from the left one.
        line = _line_of(path, sample.words[-1])
        # The first word at the right, the last at the left.
        assert [word for _, _, word in reversed(line)] == list(sample.words)
        assert line[-1][1] == pytest.approx(595.28 - 56.69, abs=5)
        assert line[0][0] > 200
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page = str(SCREENSHOTS / f"course-{language}-pdf")
    subprocess.run(["pdftoppm", "-r", "70", "-png", "-f", "3", "-l", "3", "-singlefile", str(path), page], check=True)


def test_an_english_paragraph_in_a_right_to_left_course_reads_left_to_right(tmp_path: Path) -> None:
    font_dir = find_font_dir("")
    if font_dir is None:
        pytest.skip("DejaVu is not installed (./scripts/test installs it)")
    english = "Every topic becomes easier once you can name its parts."
    course = sample_course(SAMPLES["ar"])
    course.modules[0].lesson.body_markdown += f"\n\n{english}\n"
    assert f'<p dir="auto">{english}</p>' in render_html(course).decode()
    path = tmp_path / "ar.pdf"
    path.write_bytes(render_pdf(course, font_dir))
    page = _pdftotext(path, "-bbox", "-f", "3", "-l", "3")
    pattern = r'<word xMin="([\d.]+)" yMin="([\d.]+)" xMax="[\d.]+" yMax="[\d.]+">([^<]*)</word>'
    boxes = [(float(left), top, text) for left, top, text in re.findall(pattern, page)]
    [top] = {top for _, top, text in boxes if text == "Every"}
    line = sorted((left, text) for left, word_top, text in boxes if word_top == top)
    # In reading order from the left margin (20 mm), as HTML's dir="auto" lays it out; the Arabic paragraphs around
    # it stay right to left (test_the_pdf_draws_the_script_in_reading_order).
    assert " ".join(text for _, text in line) == english
    assert line[0][0] == pytest.approx(56.69, abs=5)
