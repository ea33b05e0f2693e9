"""Split files into searchable chunks: code by definition, markdown and rst by section, the rest by windows.

Every non-blank line of a file lands in at least one chunk, and each chunk's content is
exactly its lines of the file (line endings normalised to "\\n"), so results can be shown
and re-located by line number. The one exception keeps every chunk within `max_chunk_chars`:
a single line longer than that is cut into pieces, each a chunk with `start_line == end_line`,
`symbol_type == "part"` and content a substring of that line (see `chunk.lines`).
"""

from __future__ import annotations

from collections import Counter

from amanmcp.chunk.code import chunk_code
from amanmcp.chunk.grammars import SPECS
from amanmcp.chunk.languages import content_type, detect_language
from amanmcp.chunk.lines import MAX_LINE_PARTS, PART, Emitter, Limits, split_lines
from amanmcp.chunk.markdown import chunk_markdown
from amanmcp.chunk.rst import chunk_rst
from amanmcp.models import Chunk

__all__ = ["MAX_LINE_PARTS", "PART", "chunk_file", "detect_language"]


def chunk_file(
    path: str,
    text: str,
    *,
    max_chunk_lines: int = 120,
    max_chunk_chars: int = 6000,
    window_lines: int = 60,
    window_overlap: int = 10,
    notes: Counter[str] | None = None,
) -> list[Chunk]:
    """Chunks of one file, sorted by position; [] for an empty or whitespace-only file.

    `path` is only recorded (and used to pick the language); `text` is the decoded content.
    Symbols larger than max_chunk_lines/max_chunk_chars are split at their members, then
    into windows of `window_lines` overlapping by `window_overlap`; a line over max_chunk_chars
    into pieces. `notes`, when given, counts `clipped_long_lines`: lines cut short after
    MAX_LINE_PARTS pieces.
    """
    limits = Limits(max_chunk_lines, max_chunk_chars, window_lines, window_overlap)
    if not text.strip():
        return []
    lines = split_lines(text)
    language = detect_language(path) or "text"
    em = Emitter(path, language, content_type(language), lines, limits)
    if language == "markdown":
        chunk_markdown(em)
    elif language == "rst":
        chunk_rst(em)
    elif language in SPECS:
        chunk_code(em, SPECS[language])
    else:
        em.gaps(0, len(lines) - 1, [], None, None, skip_trivial=False)
    em.out.sort(key=lambda c: (c.start_line, c.end_line))  # stable: a line's pieces stay in order
    if notes is not None and em.clipped:
        notes["clipped_long_lines"] += em.clipped
    return em.out
