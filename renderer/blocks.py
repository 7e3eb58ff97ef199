"""The part of Markdown that lessons use, parsed once for the HTML and PDF renderers.

Blocks: headings, paragraphs, bullet and numbered lists, fenced code, quotes. Inline: **bold**, *italic*,
`code` and [links](url). Anything else stays as its text, which is always readable.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_BULLET = re.compile(r"^\s{0,3}[-*+]\s+(.*)$")
_NUMBERED = re.compile(r"^\s{0,3}\d{1,3}[.)]\s+(.*)$")
_QUOTE = re.compile(r"^\s{0,3}>\s?(.*)$")
_FENCE = re.compile(r"^\s{0,3}(```|~~~)\s*([\w+-]*)")
_INLINE = re.compile(
    r"\*\*(?P<b>.+?)\*\*|__(?P<b2>.+?)__|(?<![\w*])\*(?P<i>[^*\s][^*]*?)\*(?!\w)"
    r"|(?<![\w_])_(?P<i2>[^_\s][^_]*?)_(?!\w)|`(?P<code>[^`]+)`|\[(?P<link>[^\]]+)\]\((?P<url>[^)\s]+)\)"
)


@dataclass(frozen=True)
class Heading:
    level: int
    text: str


@dataclass(frozen=True)
class Paragraph:
    text: str


@dataclass(frozen=True)
class Bullets:
    items: tuple[str, ...]


@dataclass(frozen=True)
class Numbered:
    items: tuple[str, ...]


@dataclass(frozen=True)
class Code:
    text: str
    language: str


@dataclass(frozen=True)
class Quote:
    text: str


Block = Heading | Paragraph | Bullets | Numbered | Code | Quote


@dataclass(frozen=True)
class Run:
    """A piece of inline text in one style: "" plain, "B" bold, "I" italic, "code"; `url` for links."""

    text: str
    style: str = ""
    url: str = ""


def parse_blocks(markdown: str) -> list[Block]:
    blocks: list[Block] = []
    lines = markdown.replace("\r\n", "\n").split("\n")
    paragraph: list[str] = []
    items: list[str] = []
    list_kind: type[Bullets] | type[Numbered] | None = None
    quote: list[str] = []

    def flush() -> None:
        nonlocal list_kind
        if paragraph:
            blocks.append(Paragraph(" ".join(paragraph)))
            paragraph.clear()
        if items and list_kind is not None:
            blocks.append(list_kind(tuple(items)))
            items.clear()
        list_kind = None
        if quote:
            blocks.append(Quote(" ".join(quote)))
            quote.clear()

    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if fence := _FENCE.match(line):
            flush()
            code: list[str] = []
            while i < len(lines) and not lines[i].strip().startswith(fence.group(1)):
                code.append(lines[i])
                i += 1
            i += 1  # the closing fence (or the end)
            blocks.append(Code("\n".join(code).rstrip("\n"), fence.group(2)))
            continue
        if not line.strip():
            flush()
            continue
        if heading := _HEADING.match(line):
            flush()
            blocks.append(Heading(len(heading.group(1)), heading.group(2)))
            continue
        for pattern, kind in ((_BULLET, Bullets), (_NUMBERED, Numbered)):
            if item := pattern.match(line):
                if list_kind is not kind:
                    flush()
                    list_kind = kind
                items.append(item.group(1).strip())
                break
        else:
            if quoted := _QUOTE.match(line):
                if not quote:
                    flush()
                quote.append(quoted.group(1).strip())
            elif items and line.startswith((" ", "\t")):
                # A wrapped list item goes on.
                items[-1] += " " + line.strip()
            else:
                if items or quote:
                    flush()
                paragraph.append(line.strip())
    flush()
    return blocks


def parse_inline(text: str) -> list[Run]:
    runs: list[Run] = []
    position = 0
    for match in _INLINE.finditer(text):
        if match.start() > position:
            runs.append(Run(text[position : match.start()]))
        groups = match.groupdict()
        if groups["b"] or groups["b2"]:
            runs.append(Run(groups["b"] or groups["b2"], "B"))
        elif groups["i"] or groups["i2"]:
            runs.append(Run(groups["i"] or groups["i2"], "I"))
        elif groups["code"]:
            runs.append(Run(groups["code"], "code"))
        else:
            runs.append(Run(groups["link"], "", groups["url"]))
        position = match.end()
    if position < len(text):
        runs.append(Run(text[position:]))
    return runs


def shift_headings(markdown: str, by: int) -> str:
    """Move every heading `by` levels down (at most to level 6), leaving code blocks alone."""
    out = []
    fenced = False
    for line in markdown.split("\n"):
        if _FENCE.match(line):
            fenced = not fenced
        elif not fenced and (heading := _HEADING.match(line)):
            line = "#" * min(6, len(heading.group(1)) + by) + " " + heading.group(2)
        out.append(line)
    return "\n".join(out)
