"""reStructuredText chunking: one chunk per section, named by its title path, like markdown."""

from __future__ import annotations

import re

from amanmcp.chunk.lines import Emitter
from amanmcp.chunk.markdown import emit_sections

_ADORNMENT = re.compile(r"([=\-~^\"'`#*+:.<>_!$%&,;?@\\/|])\1{2,}\s*")


def _headings(lines: list[str]) -> list[tuple[int, int, str]]:
    """(first row, level, title) of each section title: a line underlined (and maybe overlined)
    by a run of one punctuation character at least as long as the title. Levels follow the order
    in which adornment styles first appear, as docutils does."""
    styles: list[tuple[str, bool]] = []
    found: list[tuple[int, int, str]] = []
    row = 0
    while row + 1 < len(lines):
        title, under = lines[row], lines[row + 1]
        text = title.strip()
        mark = _ADORNMENT.fullmatch(under)
        if text and mark and not _ADORNMENT.fullmatch(title) and len(under.rstrip()) >= len(title.rstrip()) \
                and not title.startswith((" ", "\t")):
            over = row > 0 and lines[row - 1].strip() == under.strip()
            style = (mark.group(1), over)
            if style not in styles:
                styles.append(style)
            found.append((row - 1 if over else row, styles.index(style) + 1, text))
            row += 2
            continue
        row += 1
    return found


def chunk_rst(em: Emitter) -> None:
    emit_sections(em, _headings(em.lines))
