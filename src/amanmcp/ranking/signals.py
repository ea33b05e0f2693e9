"""Ranking signals: each a pure function that adjusts candidate scores in place and records why.

Scores are in units of the fused score normalised so that the best possible agreement of all
retrievers is 1.0; boosts add in those units and priors multiply. Every constant here is a
general convention of code and repositories, never a project's name.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache
from posixpath import basename, splitext

from amanmcp.ranking.candidates import Candidate
from amanmcp.ranking.features import COMMENT_STARTS, FRAGMENT, IMPORTS, TABLE
from amanmcp.ranking.paths import path_role, path_terms
from amanmcp.ranking.query import QueryProfile
from amanmcp.tokens import STOPWORDS

TYPE_KINDS = frozenset({"class", "struct", "interface", "trait", "enum", "type", "module", "namespace", "protocol",
                        "object", "record", "union"})
CALLABLE_KINDS = frozenset({"function", "method", "macro", "constant", "test"})
DEFINITION_BOOST = 1.5  # a chunk defining the name the query is: above anything that merely mentions it
EMBEDDED_SCALE = 0.5  # a name inside a sentence may be incidental: half the boost
STEM_BONUS = 0.3  # the definition lives in a file named after it (`Router` in router.go)
PATH_BOOST = 0.35  # per unit of the share of query words naming the file or its folder
ROLE_PRIORS: dict[str, float] = {
    "test": 0.35, "example": 0.4, "benchmark": 0.4, "vendored": 0.3, "generated": 0.35, "declaration": 0.7,
    "changelog": 0.4, "meta": 0.6,
}
DOCS_PRIOR = 0.45  # prose sections for a question that is not about docs
REEXPORT_PRIOR = 0.5  # a chunk of only imports / re-exports
DATA_PRIOR = 0.5  # a table of data: many lines of the same shape (lookup tables, fixtures, generated lists)
LEXICAL_DEPTH = 10  # a code chunk among this many best BM25 hits: the query speaks the code's words
FRAGMENT_PRIOR = 0.7  # one or two lines: too little to be the answer, unless it defines the name asked for

_DEF_KEYWORDS = (r"class|struct|interface|trait|enum|type|fn|func|def|function|module|namespace|protocol|object|"
                 r"record|typedef|macro_rules!|union|defmodule")


def _norm_name(name: str) -> str:
    """`a::b`, `a->b`, `a#b`, `A.prototype.b` all become `a.b`-shaped."""
    return name.replace("::", ".").replace("->", ".").replace("#", ".").replace(".prototype.", ".")


@lru_cache(maxsize=1024)
def _definition_re(name: str) -> re.Pattern[str]:
    return re.compile(rf"(?:^|\s)(?:{_DEF_KEYWORDS})\s+(?:[\w.:]+(?:\.|::))?{re.escape(name)}(?![\w$])", re.MULTILINE)


def _definition_tier(c: Candidate, name: str) -> float:
    """How strongly `c` is the definition of `name`: 1 a type, .85 a callable, .6 by text, 0 not."""
    qualified = _norm_name(name)
    own = name.rsplit(".", 1)[-1].rsplit("::", 1)[-1]
    symbol = _norm_name(c.symbol) if c.symbol else ""
    if (symbol and (symbol == qualified or symbol.endswith("." + qualified))) or c.name == own:
        exact = 1.0
    elif c.name is not None and c.name.lower() == own.lower():
        exact = 0.7
    else:
        exact = 0.0
    if exact and "." in qualified and symbol.lower() != qualified.lower() and not symbol.lower().endswith(
        "." + qualified.lower()
    ):
        exact *= 0.6  # `Foo.bar` asked, `Baz.bar` found
    if exact:
        if c.symbol_type in TYPE_KINDS:
            return exact
        if c.symbol_type in CALLABLE_KINDS:
            return 0.85 * exact
        if c.content_type == "code":
            return 0.3 * exact  # an impl block or a section named like it
        return 0.0
    if own not in c.content:  # the pattern needs the name itself: most candidates end here, cheaply
        return 0.0
    head = "\n".join(line for line in c.content.split("\n", 12)[:12] if not line.lstrip().startswith(COMMENT_STARTS))
    return 0.6 if _definition_re(own).search(head) else 0.0


def _stem_matches(path: str, name: str) -> bool:
    stem = splitext(basename(path))[0].lower().replace("_", "").replace("-", "")
    own = name.rsplit(".", 1)[-1].rsplit("::", 1)[-1].lower().replace("_", "")
    return bool(stem) and (stem == own or stem.rstrip("s") == own or own.rstrip("s") == stem)


def boost_definitions(candidates: list[Candidate], query: QueryProfile) -> None:
    """The chunk that defines a name the query gives goes first: its first chunk, not later windows."""
    if not query.names:
        return
    scale = 1.0 if query.shape == "identifier" else EMBEDDED_SCALE
    first: dict[tuple[str, str | None], int] = {}
    for c in candidates:  # a big symbol's later windows share its name but not its signature
        key = (c.path, c.symbol)
        if c.symbol and (key not in first or c.start_line < first[key]):
            first[key] = c.start_line
    for c in candidates:
        if c.symbol and first.get((c.path, c.symbol)) != c.start_line:
            continue
        best = 0.0
        for name in query.names:
            tier = _definition_tier(c, name)
            if tier and _stem_matches(c.path, name):
                tier += STEM_BONUS * tier
            best = max(best, tier)
        if best:
            amount = DEFINITION_BOOST * scale * best
            c.score += amount
            c.signals["definition"] = round(amount, 4)


_SUFFIXES = ("ations", "ation", "ings", "ing", "ers", "er", "ies", "es", "ed", "s")


@lru_cache(maxsize=4096)
def stem(word: str) -> str:
    """A crude English stem, enough to meet a file name halfway: tests/testing, handler/handle."""
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)] + ("y" if suffix == "ies" else "")
    return word


@lru_cache(maxsize=8192)
def _stems(terms: frozenset[str]) -> frozenset[str]:
    return frozenset(stem(t) for t in terms)


def _keyword_matches(words: Iterable[str], terms: frozenset[str]) -> int:
    """Query words that name a path term: equal, the same stem, or one a long prefix of the other."""
    stems = _stems(terms)
    count = 0
    for word in words:
        root = stem(word)
        if word in terms or root in stems:
            count += 1
            continue
        for term in stems:
            short, long = (root, term) if len(root) <= len(term) else (term, root)
            if len(short) >= 5 and long.startswith(short):
                count += 1
                break
    return count


def boost_path_matches(candidates: list[Candidate], query: QueryProfile) -> None:
    """Files (or their folder) named by the question's words: `cookie session storage` -> sessions.py."""
    if query.shape == "path":
        wanted = query.text.strip("./").lower()
        for c in candidates:
            if c.path.lower().endswith(wanted) or wanted.endswith(c.path.lower()):
                c.score += DEFINITION_BOOST
                c.signals["path"] = DEFINITION_BOOST
        return
    if query.shape != "sentence":
        return
    words = [w for w in query.words if len(w) > 2 and w not in STOPWORDS]
    if not words:
        return
    by_path: dict[str, int] = {}  # a file's chunks share its terms
    for c in candidates:
        if c.path not in by_path:
            by_path[c.path] = _keyword_matches(words, path_terms(c.path))
        matched = by_path[c.path]
        if matched:
            amount = PATH_BOOST * matched / len(words)
            c.score += amount
            c.signals["path"] = round(amount, 4)


def candidate_role(c: Candidate) -> str:
    """Path role, refined by the symbol: a Rust `mod tests` or a `TestFoo` function is test code."""
    role = path_role(c.path)
    if role == "source" and c.symbol and (
        c.symbol_type == "test"
        or (c.symbol_type == "module" and c.name in ("tests", "test"))
        or c.symbol.startswith(("tests.", "test."))
    ):
        return "test"
    return role


def speaks_code(candidates: list[Candidate]) -> bool:
    """Whether the query's words occur in code: a best BM25 hit is code. A question whose words
    only prose uses ("quarterly roadmap") is about the prose, whatever its shape."""
    return any(c.content_type == "code" and c.bm25_rank is not None and c.bm25_rank <= LEXICAL_DEPTH
               for c in candidates)


def apply_priors(candidates: list[Candidate], query: QueryProfile, *, docs: bool = True, roles: bool = True,
                 fragments: bool = True) -> None:
    """Demote what is seldom the answer to a code question: prose, tests, examples, generated code,
    import lists, tables of data and one-line fragments, each unless the query asks for it."""
    lifted = {"test": query.tests, "example": query.examples or query.docs, "benchmark": query.benchmarks,
              "changelog": query.history}
    docs = docs and not (query.docs or query.examples or query.history) and speaks_code(candidates)
    for c in candidates:
        factor = 1.0
        if roles:
            role = candidate_role(c)
            if role in ROLE_PRIORS and not lifted.get(role, False):
                factor *= ROLE_PRIORS[role]
                c.signals[role] = ROLE_PRIORS[role]
        if docs and c.content_type == "docs":
            factor *= DOCS_PRIOR
            c.signals["docs"] = DOCS_PRIOR
        if fragments and c.content_type == "code":
            traits = c.features()[1]
            if traits & IMPORTS:
                factor *= REEXPORT_PRIOR
                c.signals["imports"] = REEXPORT_PRIOR
            elif traits & TABLE:
                factor *= DATA_PRIOR
                c.signals["data"] = DATA_PRIOR
            elif traits & FRAGMENT and "definition" not in c.signals:
                factor *= FRAGMENT_PRIOR
                c.signals["fragment"] = FRAGMENT_PRIOR
        c.score *= factor
