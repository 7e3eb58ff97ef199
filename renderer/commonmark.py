"""The one Markdown parser every renderer shares: CommonMark plus tables and strikethrough (markdown-it-py).

Raw HTML is not HTML here: a tag in a lesson stays visible text in every rendered document, because lessons come
from a model and from users' prompts. Links go only to http, https, mailto or relative addresses; anything else
(javascript:, data:, ...) stays plain text.

The Markdown document embeds lessons as their author wrote them, so `embed` edits source lines, at the places the
parser's tokens point to, instead of re-rendering them.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from markdown_it import MarkdownIt
from markdown_it.common.normalize_url import validateLink
from markdown_it.token import Token

SAFE_SCHEMES = frozenset({"http", "https", "mailto"})


def is_safe_link(url: str) -> bool:
    if not validateLink(url):
        return False
    try:
        scheme = urlsplit(url.strip()).scheme.lower()
    except ValueError:
        return False
    return scheme == "" or scheme in SAFE_SCHEMES


class _Parser(MarkdownIt):
    def validateLink(self, url: str) -> bool:
        return is_safe_link(url)


# Lists and quotes nest up to 100 levels (markdown-it's default is 20; it drops what lies deeper); parsing
# recurses once per level, so the limit also keeps the parser well inside Python's recursion limit.
PARSER = _Parser("commonmark", {"html": False, "maxNesting": 100}).enable(["table", "strikethrough"])


def normalized(markdown: str) -> str:
    """The source as the parser sees it, so that token line numbers index its lines."""
    return markdown.replace("\r\n", "\n").replace("\r", "\n").replace("\0", "\ufffd")


def parse(markdown: str) -> list[Token]:
    return PARSER.parse(normalized(markdown))


def parse_inline(text: str) -> list[Token]:
    """Inline Markdown only (emphasis, code, links), for fields such as a quiz question: its inline tokens."""
    return [child for token in PARSER.parseInline(normalized(text)) for child in token.children or []]


def embed(markdown: str, heading_shift: int) -> str:
    """Lesson Markdown ready to sit inside a larger document: every heading `heading_shift` levels deeper (at
    most level 6), and a code fence left open at the end closed, so it cannot swallow what follows."""
    source = normalized(markdown)
    tokens = PARSER.parse(source)
    lines: list[str | None] = list(source.split("\n"))
    for index, token in enumerate(tokens):
        if token.type == "heading_open" and token.map is not None:
            _shift_heading(lines, token, tokens[index + 1], heading_shift)
    out = "\n".join(line for line in lines if line is not None)
    last = tokens[-1] if tokens else None
    if last is not None and last.type == "fence" and last.level == 0 and not _is_closed(last, source.split("\n")):
        out = out.rstrip("\n") + "\n" + last.markup
    return out


def _shift_heading(lines: list[str | None], heading: Token, inline: Token, by: int) -> None:
    assert heading.map is not None
    start, end = heading.map
    level = int(heading.tag[1:])
    marks = "#" * min(6, level + by)
    first = lines[start]
    assert first is not None
    if heading.markup.startswith("#"):
        # Container markers (">", "-", "1.", indentation) never hold "#": the first one opens the heading.
        at = first.index("#")
        lines[start] = first[:at] + marks + first[at + level :]
        return
    # A setext heading (text, then a line of "=" or "-") has no deeper forms: it becomes one ATX line.
    text = " ".join(part.strip() for part in inline.content.split("\n"))
    if text.endswith("#"):
        text += " #"  # or the trailing "#" would read as the ATX closing sequence
    at = first.find(inline.content.split("\n")[0])
    lines[start] = first[: max(at, 0)] + marks + " " + text
    for line in range(start + 1, end):
        lines[line] = None


def _is_closed(fence: Token, lines: list[str]) -> bool:
    """Whether a top-level fence's last line closes it: up to 3 spaces, then at least as many of its marks."""
    assert fence.map is not None
    start, end = fence.map
    if end - 1 <= start:
        return False
    line = lines[end - 1].rstrip()
    marks = line.lstrip(" ")
    return len(line) - len(marks) <= 3 and len(marks) >= len(fence.markup) and set(marks) == {fence.markup[0]}
