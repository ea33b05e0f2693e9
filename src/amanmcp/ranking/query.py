"""What a query asks for, read from its shape and words alone (no project knowledge).

Three shapes route the ranking: an `identifier` (`HttpClient`, `Router.add`, `get_user()`)
wants the definition of that name; a `path` (`src/app/views.py`) wants that file; a `sentence`
wants code that does what it says. Intents say which kinds of files the question is about:
code questions get the implementation, and only a question about docs, tests, examples or
benchmarks lifts the demotion of those.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from amanmcp.tokens import STOPWORDS, split_identifier

Shape = Literal["identifier", "path", "sentence"]

_NAME = r"[A-Za-z_$][\w$]*"
_QUALIFIED = re.compile(rf"{_NAME}(?:(?:\.|::|->|#){_NAME})*(?:\(\))?")
_PATHLIKE = re.compile(r"(?:[\w.-]+/)+[\w.-]*|[\w-]+\.[A-Za-z]{1,5}")
_TOKEN = re.compile(rf"{_NAME}(?:(?:\.|::|->|#){_NAME})*")
_WORD = re.compile(r"[A-Za-z][A-Za-z0-9]*")

# Words that make a question about prose, tests, examples or benchmarks rather than the implementation.
DOCS_WORDS = frozenset(
    "readme documentation documented docs guide guides tutorial tutorials install installation installing "
    "changelog license licence contributing faq quickstart".split()
)
TEST_WORDS = frozenset(
    "test tests testing tested unittest unittests spec specs fixture fixtures mock mocks mocked pytest "
    "testcase testcases".split()
)
EXAMPLE_WORDS = frozenset("example examples sample samples demo demos tutorial tutorials".split())
BENCH_WORDS = frozenset("benchmark benchmarks bench benches".split())
HISTORY_WORDS = frozenset(
    "changelog changes release releases released history version versions license licence contributing "
    "authors security".split()
)


@dataclass(frozen=True, slots=True)
class QueryProfile:
    text: str
    shape: Shape
    names: tuple[str, ...]  # identifiers the query names, as typed (`Router.add`, `HttpClient`)
    words: tuple[str, ...]  # content words, lowercased, stopwords dropped (`parseArgs` -> parse, args)
    docs: bool = False  # asks about documentation / prose
    tests: bool = False  # asks about tests
    examples: bool = False  # asks about examples / demos
    benchmarks: bool = False
    history: bool = False  # asks about releases, versions, the license: what changelogs and legal files say

    @property
    def wants_definition(self) -> bool:
        return self.shape == "identifier"


def looks_like_code(word: str) -> bool:
    """`parse_args`, `HttpClient`, `getItem`, `a.b`, `f()` look like identifiers; `app` and `Load` do not."""
    core = word.removesuffix("()")
    return (
        core != word
        or "_" in core.strip("_")
        or any(sep in core for sep in (".", "::", "->", "#"))
        or any(c.isupper() for c in core[1:])
        or core.startswith("$")
    )


def analyze(query: str) -> QueryProfile:
    text = " ".join(query.split())
    raw_words = [w.lower() for w in _WORD.findall(text)]
    lowered = set(raw_words)
    words: list[str] = []
    for token in _TOKEN.findall(text):
        for part in token.replace("::", ".").replace("->", ".").replace("#", ".").split("."):
            pieces = split_identifier(part) or [part.lower()]
            for piece in [part.lower(), *pieces] if len(pieces) > 1 else pieces:
                if piece and piece not in STOPWORDS and piece not in words:
                    words.append(piece)
    intents = {
        "docs": bool(lowered & DOCS_WORDS),
        "tests": bool(lowered & TEST_WORDS),
        "examples": bool(lowered & EXAMPLE_WORDS),
        "benchmarks": bool(lowered & BENCH_WORDS),
        "history": bool(lowered & HISTORY_WORDS),
    }
    if " " not in text and _QUALIFIED.fullmatch(text):
        return QueryProfile(text, "identifier", (text.removesuffix("()"),), tuple(words), **intents)
    if " " not in text and _PATHLIKE.fullmatch(text):
        return QueryProfile(text, "path", (), tuple(words), **intents)
    names = tuple(dict.fromkeys(t for t in _QUALIFIED.findall(text) if looks_like_code(t)))
    return QueryProfile(text, "sentence", tuple(n.removesuffix("()") for n in names), tuple(words), **intents)
