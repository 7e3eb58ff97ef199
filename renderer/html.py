"""A course as one standalone HTML page: inline CSS, a table of contents, lessons, quizzes, an answer key.

Lesson Markdown is rendered by markdown-it-py from the tokens of renderer.commonmark, so raw HTML in it shows as
text and unsafe links stay text. The page loads nothing from elsewhere: an image in a lesson becomes a link to it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from html import escape

from markdown_it.renderer import RendererHTML
from markdown_it.token import Token
from markdown_it.utils import EnvType, OptionsDict

from renderer.commonmark import PARSER, normalized, parse
from renderer.course_text import (
    anchor,
    choice_label,
    course_phrases,
    lesson_heading,
    lesson_sources,
    meta_line,
    module_heading,
    source_entry,
    with_source,
    written_by,
)
from renderer.phrases import Phrases, is_rtl
from syllabus.v1 import course_pb2

CSS = """
:root { color-scheme: light; --ink: #1f2328; --muted: #59636e; --line: #d1d9e0; --accent: #0b5cad; --soft: #f6f8fa; }
* { box-sizing: border-box; }
body { margin: 0; color: var(--ink); background: #fff; font: 17px/1.65 -apple-system, "Segoe UI", Roboto,
  "Helvetica Neue", Arial, "Noto Sans", "DejaVu Sans", "Noto Sans Arabic", "Noto Sans Hebrew",
  "Noto Sans Devanagari", "Lohit Devanagari", "Noto Sans CJK JP", "Droid Sans Fallback", sans-serif; }
body:lang(ar) { font-family: "Noto Naskh Arabic", "Noto Sans Arabic", "Segoe UI", Tahoma,
  "DejaVu Sans", sans-serif; }
body:lang(he) { font-family: "Noto Sans Hebrew", "Segoe UI", Arial, "DejaVu Sans", sans-serif; }
body:lang(hi) { font-family: "Noto Sans Devanagari", "Nirmala UI", Mangal, "Lohit Devanagari", sans-serif; }
body:lang(ja) { font-family: "Hiragino Sans", "Yu Gothic", Meiryo, "Noto Sans CJK JP", "Droid Sans Fallback",
  sans-serif; }
body:lang(zh) { font-family: "PingFang SC", "Microsoft YaHei", "Noto Sans CJK SC", "Droid Sans Fallback",
  sans-serif; }
body:lang(ko) { font-family: "Apple SD Gothic Neo", "Malgun Gothic", "Noto Sans CJK KR", "Droid Sans Fallback",
  sans-serif; }
main { max-width: 46rem; margin: 0 auto; padding: 3rem 1.5rem 5rem; overflow-wrap: anywhere; }
h1 { font-size: 2.2rem; line-height: 1.2; margin: 0 0 .5rem; }
h2 { font-size: 1.6rem; margin: 3.5rem 0 .75rem; padding-top: 1rem; border-top: 1px solid var(--line); }
h3 { font-size: 1.25rem; margin: 2rem 0 .5rem; }
h4, h5, h6 { font-size: 1.05rem; margin: 1.5rem 0 .25rem; }
a { color: var(--accent); }
.meta, .written-by { color: var(--muted); font-size: .95rem; }
.notice { background: #fff8c5; border: 1px solid #d4a72c; border-radius: 6px; padding: .75rem 1rem; }
nav.toc { background: var(--soft); border: 1px solid var(--line); border-radius: 8px; padding: 1rem 1.5rem;
  margin: 2rem 0; }
nav.toc h2 { border: 0; margin: 0 0 .5rem; padding: 0; font-size: 1.1rem; }
nav.toc ol { margin: 0; padding-inline-start: 1.25rem; }
nav.toc ol ol { list-style: none; padding-inline-start: .75rem; font-size: .95rem; }
.objectives, .key-points { background: var(--soft); border-inline-start: 4px solid var(--accent);
  padding: .5rem 1rem; }
.objectives h4, .key-points h4 { margin-top: .25rem; }
pre { background: var(--soft); border: 1px solid var(--line); border-radius: 6px; padding: .75rem 1rem;
  overflow-x: auto; font-size: .9rem; line-height: 1.45; text-align: left; }
table { display: block; overflow-x: auto; border-collapse: collapse; margin: 1rem 0; }
th, td { border: 1px solid var(--line); padding: .3rem .6rem; vertical-align: top; }
th { background: var(--soft); }
code { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, "Liberation Mono", monospace; font-size: .92em; }
blockquote { margin: 1rem 0; padding: .25rem 1rem; border-inline-start: 4px solid var(--line);
  color: var(--muted); }
ol.quiz > li { margin-bottom: 1rem; }
ol.choices { list-style: upper-alpha; margin: .25rem 0; }
ol.answers > li { margin-bottom: .75rem; }
.explanation { color: var(--muted); }
@media print { h2 { break-before: page; border: 0; } nav.toc { break-after: page; } }
"""


def render_html(course: course_pb2.Course) -> bytes:
    words = course_phrases(course)
    title = escape(course.title or course.prompt)
    parts = [f"<header><h1>{title}</h1>", f'<p class="meta">{escape(meta_line(course, words))}</p>']
    if course.offline_draft:
        parts.append(f'<p class="notice" role="note"><strong>{escape(words.offline_notice)}</strong></p>')
    parts += [f"<p>{inline_html(course.description)}</p>", *course_sources_html(course, words), "</header>"]
    parts.append(_toc(course, words))
    parts += [module_section(module, words) for module in course.modules]
    parts += [answer_key_section(course, words), f'<p class="written-by">{escape(written_by(course, words))}</p>']
    return page(course.title or course.prompt, course.language, parts)


def page(title: str, language: str, body: Sequence[str]) -> bytes:
    """A standalone page (the shared style inline) around body, already HTML, in the language's direction."""
    direction = ' dir="rtl"' if is_rtl(language) else ""
    parts = [
        "<!DOCTYPE html>",
        f'<html lang="{escape(language or "en")}"{direction}>',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(title)}</title>",
        f"<style>{CSS}</style>",
        "</head>",
        "<body>",
        "<main>",
        *body,
        "</main>",
        "</body>",
        "</html>",
        "",
    ]
    return "\n".join(parts).encode()


def _toc(course: course_pb2.Course, words: Phrases) -> str:
    items = []
    for module in course.modules:
        items.append(
            f'<li><a href="#{anchor("module", module)}">{escape(module_heading(module, words))}</a>'
            f'<ol><li><a href="#{anchor("lesson", module)}">{escape(lesson_heading(module, words))}</a></li>'
            f'<li><a href="#{anchor("quiz", module)}">{escape(words.quiz)}</a></li></ol></li>'
        )
    items.append(f'<li><a href="#answer-key">{escape(words.answer_key)}</a></li>')
    contents = escape(words.contents)
    return f'<nav class="toc" aria-label="{contents}"><h2>{contents}</h2><ol>{"".join(items)}</ol></nav>'


def module_section(module: course_pb2.Module, words: Phrases) -> str:
    parts = [
        f'<section id="{anchor("module", module)}">',
        f"<h2>{escape(module_heading(module, words))}</h2>",
        f"<p>{inline_html(module.summary)}</p>",
    ]
    if module.objectives:
        objectives = html_list("ul", module.objectives)
        parts.append(f'<div class="objectives"><h4>{escape(words.objectives)}</h4>{objectives}</div>')
    parts += [
        f'<h3 id="{anchor("lesson", module)}">{escape(lesson_heading(module, words))}</h3>',
        markdown_html(module.lesson.body_markdown, heading_offset=2, rtl=words.rtl),
    ]
    if module.lesson.key_points:
        points = html_list("ul", module.lesson.key_points)
        parts.append(f'<div class="key-points"><h4>{escape(words.key_points)}</h4>{points}</div>')
    parts += lesson_sources_html(module, words)
    parts.append(f'<h3 id="{anchor("quiz", module)}">{escape(words.quiz)}</h3>')
    questions = [
        f"<li><p>{inline_html(question.text)}</p>{html_list('ol', question.choices, 'choices')}</li>"
        for question in module.quiz.questions
    ]
    parts += [f'<ol class="quiz">{"".join(questions)}</ol>', "</section>"]
    return "\n".join(parts)


def course_sources_html(course: course_pb2.Course, words: Phrases) -> list[str]:
    """The sources a grounded course is written from, as a block under its description."""
    if not course.sources:
        return []
    entries = html_list("ul", [source_entry(source, words) for source in course.sources])
    return [f'<div class="sources"><h4>{escape(words.sources)}</h4>{entries}</div>']


def lesson_sources_html(module: course_pb2.Module, words: Phrases) -> list[str]:
    """The places its lesson cites, as a block after the lesson; nothing for a lesson without citations."""
    if not module.lesson.citations:
        return []
    return [f'<div class="sources"><h4>{escape(words.sources)}</h4>{html_list("ul", lesson_sources(module))}</div>']


def answer_key_section(course: course_pb2.Course, words: Phrases) -> str:
    parts = ['<section id="answer-key">', f"<h2>{escape(words.answer_key)}</h2>"]
    for module in course.modules:
        parts.append(f"<h3>{escape(module_heading(module, words))}</h3>")
        answers = []
        for question in module.quiz.questions:
            index = question.answer_index
            choice = question.choices[index] if index < len(question.choices) else ""
            explanation = inline_html(with_source(question.explanation, question, words))
            answers.append(
                f"<li><strong>{choice_label(index)}</strong> {inline_html(choice)}"
                f'<br /><span class="explanation">{explanation}</span></li>'
            )
        parts.append(f'<ol class="answers">{"".join(answers)}</ol>')
    parts.append("</section>")
    return "\n".join(parts)


def html_list(tag: str, items: Iterable[str], css_class: str = "") -> str:
    attribute = f' class="{css_class}"' if css_class else ""
    return f"<{tag}{attribute}>" + "".join(f"<li>{inline_html(item)}</li>" for item in items) + f"</{tag}>"


class _LessonHTML(RendererHTML):
    def image(self, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType) -> str:
        token = tokens[idx]
        alt = self.renderInlineAsText(token.children or [], options, env)
        label = escape(f"[image: {alt}]" if alt else "[image]")
        opened = sum(1 if t.type == "link_open" else -1 for t in tokens[:idx] if t.type in ("link_open", "link_close"))
        if opened > 0:
            return label  # already inside a link, and links do not nest
        return f'<a class="image" href="{escape(str(token.attrGet("src") or ""))}">{label}</a>'


_RENDERER = _LessonHTML()


def inline_html(text: str) -> str:
    return _RENDERER.render(PARSER.parseInline(normalized(text)), PARSER.options, {})


_OWN_DIRECTION = frozenset({"paragraph_open", "heading_open", "list_item_open", "blockquote_open"})


def markdown_html(markdown: str, heading_offset: int = 0, rtl: bool = False) -> str:
    """Markdown as HTML, as lessons are rendered: raw HTML stays text, images become links. In a right-to-left
    document (`rtl`) code is marked left to right (an attribute: EPUB style sheets may not set the direction), and
    each paragraph, heading and list item takes its direction from its own first letters (`dir="auto"`): English
    inside an Arabic course reads left to right."""
    tokens = parse(markdown)
    for token in tokens:
        if token.type in ("heading_open", "heading_close"):
            token.tag = f"h{min(6, int(token.tag[1:]) + heading_offset)}"
        if rtl and token.type in _OWN_DIRECTION:
            token.attrSet("dir", "auto")
        elif rtl and token.type in ("fence", "code_block"):
            token.attrSet("dir", "ltr")
        elif rtl and token.type == "inline":
            for child in token.children or []:
                if child.type == "code_inline":
                    child.attrSet("dir", "ltr")
    return _RENDERER.render(tokens, PARSER.options, {})
