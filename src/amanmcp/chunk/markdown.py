"""Markdown chunking: one chunk per heading section, named by its heading path (shared with rst)."""

from __future__ import annotations

import re

from amanmcp.chunk.lines import Emitter

_ATX = re.compile(r" {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*")
_FENCE = re.compile(r" {0,3}(`{3,}|~{3,})")


def _headings(lines: list[str]) -> list[tuple[int, int, str]]:
    """(row, level, title) of each ATX heading outside fenced code blocks."""
    found: list[tuple[int, int, str]] = []
    fence = ""  # the opening fence while inside a code block
    for row, line in enumerate(lines):
        if fence:
            stripped = line.strip()
            if stripped.startswith(fence) and not stripped.strip(fence[0]):
                fence = ""
            continue
        opened = _FENCE.match(line)
        if opened:
            fence = opened.group(1)
            continue
        heading = _ATX.fullmatch(line)
        if heading:
            found.append((row, len(heading.group(1)), (heading.group(2) or "").strip()))
    return found


def chunk_markdown(em: Emitter) -> None:
    emit_sections(em, _headings(em.lines))


def emit_sections(em: Emitter, headings: list[tuple[int, int, str]]) -> None:
    """Sections run from a heading to the next heading of any level; text before the first is symbol None.

    `headings` are (first row, level, title), in order; each section is named by its heading path.
    """
    lines = em.lines
    starts = [0] + [row for row, _, _ in headings]
    path: list[tuple[int, str]] = []
    symbols: list[str | None] = [None]
    for _, level, title in headings:
        while path and path[-1][0] >= level:
            path.pop()
        path.append((level, title))
        symbols.append(" > ".join(t for _, t in path))
    ends = [s - 1 for s in starts[1:]] + [len(lines) - 1]
    for start, end, symbol in zip(starts, ends, symbols, strict=True):
        while end >= start and not lines[end].strip():
            end -= 1
        while start <= end and not lines[start].strip():
            start += 1  # only the preamble can start blank; headings never are
        if start <= end:
            em.span(start, end, symbol, "section")
