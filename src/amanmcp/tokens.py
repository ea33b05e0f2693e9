"""Code-aware words for BM25: `parseHTTPArgs` and `parse_http_args` are found by their parts too."""

from __future__ import annotations

import re

_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|[0-9]+")
_CAMEL = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")
STOPWORDS = frozenset(
    "a an and are as at be by do does for from how i in is it of on or the this to what when where which "
    "who why with".split()
)


def split_identifier(word: str) -> list[str]:
    """`getHTTPResponse_code` -> ["get", "http", "response", "code"]."""
    parts: list[str] = []
    for piece in word.split("_"):
        parts.extend(p.lower() for p in _CAMEL.findall(piece))
    return parts


def index_words(text: str) -> list[str]:
    """Each identifier whole (lowercased) followed by its parts when it has more than one."""
    out: list[str] = []
    for word in _WORD.findall(text):
        whole = word.lower()
        out.append(whole)
        parts = split_identifier(word)
        if len(parts) > 1:
            out.extend(parts)
    return out


def query_words(text: str) -> list[str]:
    """Distinct searchable words of a query, stopwords dropped unless nothing else is left."""
    words = list(dict.fromkeys(index_words(text)))
    kept = [w for w in words if w not in STOPWORDS]
    return kept or words
