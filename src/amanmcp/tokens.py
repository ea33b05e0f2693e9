"""Code-aware words for BM25: `parseHTTPArgs` and `parse_http_args` are found by their parts too.

Words are Unicode: `подключение`, `Ελληνικά` and `café` are words like `retry` (the FTS5 table's
unicode61 tokenizer folds their case and Latin diacritics on both sides). Chinese and Japanese
are written without spaces, so a run of ideographs or kana would be one long token that no query
matches; such runs become overlapping bigrams (`数据库连接` -> 数据 据库 库连 连接), the way
CJK search engines do it. The index also keeps each character of a run, so a one-character query
finds it; a query keeps only the bigrams (or the single character of a one-character run).
Index and query go through the same function, so what a query asks for is what was indexed.
"""

from __future__ import annotations

import re

# Ideographs (CJK unified, extension A, compatibility, extensions B-G) and kana (Hiragana,
# Katakana, phonetic extensions, half-width Katakana). Hangul is written with spaces: words.
_CJK = "\u3040-\u30ff\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff66-\uff9f\U00020000-\U0003134f"
_WORD = re.compile(rf"[{_CJK}]+|[^\W\d{_CJK}][^\W{_CJK}]*|\d+")
_CJK_START = re.compile(rf"[{_CJK}]")
_CAMEL = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")
STOPWORDS = frozenset(
    "a an and are as at be by do does for from how i in is it of on or the this to what when where which "
    "who why with".split()
)


def split_identifier(word: str) -> list[str]:
    """`getHTTPResponse_code` -> ["get", "http", "response", "code"]. Case changes split ASCII
    words only: `Straße` and `ПолучитьДанные` split at underscores alone."""
    if not word.isascii():
        return [p.lower() for p in word.split("_") if p]
    parts: list[str] = []
    for piece in word.split("_"):
        parts.extend(p.lower() for p in _CAMEL.findall(piece))
    return parts


def _cjk_words(run: str, *, unigrams: bool) -> list[str]:
    if len(run) == 1:
        return [run]
    bigrams = [run[i : i + 2] for i in range(len(run) - 1)]
    return [*bigrams, *run] if unigrams else bigrams


def _words(text: str, *, unigrams: bool) -> list[str]:
    out: list[str] = []
    for word in _WORD.findall(text):
        if word.isalpha() and word.islower():  # the common case: one plain word, nothing to split
            out.append(word)
        elif _CJK_START.match(word):
            out.extend(_cjk_words(word, unigrams=unigrams))
        else:
            out.append(word.lower())
            parts = split_identifier(word)
            if len(parts) > 1:
                out.extend(parts)
    return out


def index_words(text: str) -> list[str]:
    """Each identifier whole (lowercased) followed by its parts when it has more than one;
    CJK runs as bigrams and single characters."""
    return _words(text, unigrams=True)


def query_words(text: str) -> list[str]:
    """Distinct searchable words of a query, stopwords dropped unless nothing else is left."""
    words = list(dict.fromkeys(_words(text, unigrams=False)))
    kept = [w for w in words if w not in STOPWORDS]
    return kept or words
