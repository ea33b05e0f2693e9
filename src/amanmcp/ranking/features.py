"""What a chunk's text is, computed once at index time and stored beside it: a digest to find
identical copies, and traits that mark text seldom worth a result slot (import lists, tables of
data, one- or two-line fragments). Pure functions: ranking falls back to them for chunks that
come without stored features.
"""

from __future__ import annotations

import hashlib
import re

IMPORTS = 1  # only imports / re-exports
TABLE = 2  # many lines of one shape: data, not logic
FRAGMENT = 4  # at most two lines with something on them

TABLE_MIN_LINES = 8
TABLE_VARIETY = 0.3  # distinct line shapes per line below this: a table

_IMPORT_LINE = re.compile(
    r"\s*(?:import\b|from\s+\S+\s+import\b|export\s+(?:\*|\{[^}]*\}|default\s+\w+;?$)|export\s.*\bfrom\s|"
    r"(?:const|let|var)\s+[\w{}\s,]+=\s*require\(|(?:pub\s+)?use\s|package\s|#include|require\b|using\s|"
    r"mod\s+\w+;)"
)
_CONTINUATION = re.compile(r"\s*(?:[)}\]];?$|[\w.]+(?:\s+as\s+\w+)?,?$|[\"'`][^\"'`]*[\"'`],?$|//|#|/\*|\*)")
COMMENT_STARTS = ("#", "//", "/*", "*", "--", ";", "<!--")
_LITERAL = re.compile(r""""(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`|\b\d[\w.]*""")


def tabular(content: str) -> bool:
    """Many lines that differ only in their literals: `404: 'not found',` x 60 is data, not logic."""
    lines = [line.strip() for line in content.split("\n")]
    code = [line for line in lines if line and not line.startswith(COMMENT_STARTS)]  # prose is not a table
    if len(code) < TABLE_MIN_LINES:
        return False
    shapes = {_LITERAL.sub("_", line) for line in code}
    return len(shapes) / len(code) < TABLE_VARIETY


def reexport_only(content: str) -> bool:
    """Only import, use, require or re-export lines (and their continuations and comments)."""
    lines = [line for line in content.split("\n") if line.strip()]
    imports = sum(1 for line in lines if _IMPORT_LINE.match(line))
    return len(lines) >= 2 and imports > 0 and all(_IMPORT_LINE.match(x) or _CONTINUATION.match(x) for x in lines)


def content_key(content: str) -> str:
    """Identical chunks (whitespace aside) share a key: copied or symlinked trees show once."""
    normal = "\n".join(line.strip() for line in content.strip().split("\n"))
    return hashlib.blake2b(normal.encode("utf-8", "replace"), digest_size=12).hexdigest()


def features(content: str) -> tuple[str, int]:
    """(digest, traits) of a chunk's text."""
    traits = 0
    if reexport_only(content):
        traits |= IMPORTS
    elif tabular(content):
        traits |= TABLE
    if sum(1 for line in content.split("\n") if line.strip()) <= 2:
        traits |= FRAGMENT
    return content_key(content), traits
