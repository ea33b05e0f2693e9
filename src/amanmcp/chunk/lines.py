"""Line bookkeeping and window splitting shared by every chunking strategy.

All rows here are 0-based and inclusive; they become 1-based only when a
`Chunk` is built, so the off-by-one lives in exactly one place.

A single line longer than `max_chunk_chars` (minified code, a data blob, a huge string) is cut
into pieces of at most `max_chunk_chars` characters, each one chunk on that line
(`start_line == end_line`) with `symbol_type` `"part"` (`PART`); the symbol stays the enclosing
one, so names still match. A piece's content is a substring of its line, cut after a space or
punctuation where one is near the limit. At most `MAX_LINE_PARTS` pieces come from one line; the
rest of such a line is left out and counted (`Emitter.clipped`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import accumulate

from amanmcp.models import Chunk, ContentType

# Lines that carry no meaning on their own: closers left between symbols.
_TRIVIAL_LINE = re.compile(r"\s*(?:[{}()\[\];,]*|end;?)\s*")
PART = "part"  # symbol_type of a piece of one over-long line
MAX_LINE_PARTS = 16  # pieces kept of one line (96,000 characters at the default 6,000 a chunk)
_BREAK = re.compile(r"[\s,;:(){}\[\]<>|&+=-]")  # where a piece may end without splitting a word


def split_lines(text: str) -> list[str]:
    """Split on \\n, \\r\\n and \\r only: the separators tree-sitter rows and editors agree on.

    `str.splitlines` would also break on form feeds and U+2028, which would shift
    every line number after them relative to the parser's rows.
    """
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    return lines


@dataclass(frozen=True, slots=True)
class Limits:
    """Size knobs from `chunk_file`, validated once."""

    max_lines: int
    max_chars: int
    window_lines: int
    window_overlap: int

    def __post_init__(self) -> None:
        if self.window_lines < 1 or not 0 <= self.window_overlap < self.window_lines:
            raise ValueError("need window_lines >= 1 and 0 <= window_overlap < window_lines")
        if self.max_lines < 1 or self.max_chars < 1:
            raise ValueError("max_chunk_lines and max_chunk_chars must be positive")


@dataclass(slots=True)
class Emitter:
    """Turns row spans into `Chunk`s, windowing anything over the limits."""

    path: str
    language: str
    content_type: ContentType
    lines: list[str]
    limits: Limits
    out: list[Chunk] = field(default_factory=list)
    clipped: int = 0  # over-long lines whose tail beyond MAX_LINE_PARTS pieces was left out
    # _sizes[i] = chars in lines[:i], so any span's size is O(1).
    _sizes: list[int] = field(init=False)

    def __post_init__(self) -> None:
        self._sizes = list(accumulate(map(len, self.lines), initial=0))

    def chars(self, start: int, end: int) -> int:
        """Length of the joined content of rows start..end (newlines included)."""
        return self._sizes[end + 1] - self._sizes[start] + end - start

    def fits(self, start: int, end: int) -> bool:
        """Whether a span may be one chunk."""
        return end - start + 1 <= self.limits.max_lines and self.chars(start, end) <= self.limits.max_chars

    def span(self, start: int, end: int, symbol: str | None, kind: str | None) -> None:
        """Emit rows start..end as one chunk, or as overlapping windows when too big."""
        if self.fits(start, end):
            self._chunk(start, end, symbol, kind)
            return
        lim = self.limits
        size = min(lim.window_lines, lim.max_lines)  # a window is never bigger than a chunk may be
        while True:
            stop = min(start + size - 1, end)
            while stop > start and self.chars(start, stop) > lim.max_chars:
                stop -= 1
            if stop == start and self.chars(start, start) > lim.max_chars:
                self._parts(start, symbol)  # a single over-long line: cut into pieces
            else:
                self._chunk(start, stop, symbol, kind)
            if stop == end:
                return
            # Overlap at most half a window so char-shrunk windows still advance.
            start = stop + 1 - min(lim.window_overlap, (stop - start + 1) // 2)

    def gaps(
        self,
        start: int,
        end: int,
        covered: Iterable[tuple[int, int]],
        symbol: str | None,
        kind: str | None,
        *,
        skip_trivial: bool,
    ) -> None:
        """Emit the rows of start..end outside `covered` (sorted spans), so no code vanishes.

        With `skip_trivial`, runs that hold only closers like `}` or `end` (leftovers around
        symbols) are dropped.
        """
        for run_start, run_end in self.uncovered(start, end, covered):
            if skip_trivial and self.meaningful(run_start, run_end) == 0:
                continue
            self.span(run_start, run_end, symbol, kind)

    def uncovered(self, start: int, end: int, covered: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
        """Runs of start..end outside `covered` (sorted spans), trimmed of blank edge lines."""
        runs: list[tuple[int, int]] = []
        row = start
        for c_start, c_end in [*covered, (end + 1, end + 1)]:
            lo, hi = row, min(c_start - 1, end)
            while lo <= hi and not self.lines[lo].strip():
                lo += 1
            while hi >= lo and not self.lines[hi].strip():
                hi -= 1
            if lo <= hi:
                runs.append((lo, hi))
            row = max(row, c_end + 1)
        return runs

    def meaningful(self, start: int, end: int) -> int:
        """Lines of start..end that say something: not blank, not only closers like `}` or `end`."""
        return sum(1 for line in self.lines[start : end + 1] if line.strip() and not _TRIVIAL_LINE.fullmatch(line))

    def _parts(self, row: int, symbol: str | None) -> None:
        """One over-long line as pieces of at most max_chars, each cut after a break character
        when one is in the last quarter of the piece; blank pieces are dropped."""
        line, limit = self.lines[row], self.limits.max_chars
        pos = parts = 0
        while pos < len(line):
            if parts == MAX_LINE_PARTS:
                self.clipped += 1
                return
            stop = min(pos + limit, len(line))
            if stop < len(line):
                floor = pos + limit * 3 // 4
                for m in _BREAK.finditer(line, floor, stop):
                    stop = m.end()  # the last break in the window wins
            piece = line[pos:stop]
            if piece.strip():
                self.out.append(Chunk(self.path, row + 1, row + 1, piece, self.language, self.content_type,
                                      symbol, PART))
                parts += 1
            pos = stop

    def _chunk(self, start: int, end: int, symbol: str | None, kind: str | None) -> None:
        self.out.append(
            Chunk(
                path=self.path,
                start_line=start + 1,
                end_line=end + 1,
                content="\n".join(self.lines[start : end + 1]),
                language=self.language,
                content_type=self.content_type,
                symbol=symbol,
                symbol_type=kind,
            )
        )
