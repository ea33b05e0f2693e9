"""What role a file plays, read from its path: implementation, test, example, benchmark, vendored,
generated or a type declaration. Conventions shared across languages, no project names.
"""

from __future__ import annotations

import re
from functools import lru_cache
from posixpath import basename, dirname, splitext
from typing import Literal

from amanmcp.tokens import split_identifier

Role = Literal["source", "test", "example", "benchmark", "vendored", "generated", "declaration", "changelog", "meta"]

_TEST_FILE = re.compile(
    r"(?:test_[^/]*\.py|[^/]*_test\.py|conftest\.py"
    r"|[^/]*_test\.go"
    r"|[^/]*\.(?:test|spec)\.[cm]?[jt]sx?"
    r"|[^/]*(?:Test|Tests|IT)\.(?:java|kt|scala|cs|php|swift)"
    r"|[^/]*(?:Spec|Suite)\.(?:kt|scala|swift|groovy)"
    r"|[^/]*_(?:spec|test)\.(?:rb|lua|exs|dart|cpp|cc|c)"
    r"|test_[^/]*\.(?:c|cpp|cc|dart|lua)"
    r"|test_helpers?[^/]*\.\w+)"
)
_TEST_DIRS = frozenset({"test", "tests", "__tests__", "__test__", "spec", "specs", "testing", "testdata", "test_data",
                        "e2e", "integration_tests", "unit_tests", "fixtures", "__mocks__", "testutil", "testutils"})
_EXAMPLE_DIRS = frozenset({"example", "examples", "_example", "_examples", "sample", "samples", "demo", "demos",
                           "docs_src", "tutorial", "tutorials", "cookbook"})
_BENCH_DIRS = frozenset({"bench", "benches", "benchmark", "benchmarks"})
_VENDORED_DIRS = frozenset({"vendor", "vendored", "third_party", "thirdparty", "third-party", "external", "extern",
                            "node_modules", "bower_components", "_vendor"})
_GENERATED_FILE = re.compile(
    r"[^/]*(?:\.bundle\.[cm]?js|\.chunk\.[cm]?js|_pb2(?:_grpc)?\.pyi?|\.pb(?:\.gw)?\.go|\.pb\.(?:cc|h|swift|dart)|_grpc\.pb\.go|_generated\.\w+"
    r"|\.generated\.\w+|\.g\.dart|\.freezed\.dart|\.designer\.cs)|zz_generated[^/]*"
)
_DECLARATION = re.compile(r"[^/]*\.d\.[cm]?ts")
# Release notes and legal boilerplate restate every feature in prose: for a question about code
# (or a bug title) they match better than the code itself.
_CHANGELOG = re.compile(
    r"(?:change[-_ ]?log|changes|history|news|releases?|release[-_ ]notes|whats[-_]?new|authors|contributors"
    r"|licen[cs]e|copying|notice|code[-_]of[-_]conduct|security|contributing)(?:\.(?:md|rst|txt|adoc|markdown|org))?",
    re.IGNORECASE,
)


@lru_cache(maxsize=8192)
def path_role(path: str) -> Role:
    """The strongest role of a project-relative path (forward slashes)."""
    name = basename(path)
    folders = {part.lower() for part in dirname(path).split("/") if part}
    if folders & _VENDORED_DIRS:
        return "vendored"
    if _GENERATED_FILE.fullmatch(name):
        return "generated"
    if folders & _TEST_DIRS or _TEST_FILE.fullmatch(name):
        return "test"
    if folders & _BENCH_DIRS or name.startswith(("bench_", "benchmark_")) or name.endswith(("_bench.go", "_bench.py")):
        return "benchmark"
    if folders & _EXAMPLE_DIRS:
        return "example"
    if _DECLARATION.fullmatch(name):
        return "declaration"
    if _CHANGELOG.fullmatch(name):
        return "changelog"
    if any(part.startswith(".") and part not in (".", "..") for part in dirname(path).split("/")):
        return "meta"  # .github/, .claude/skills/, .vscode/: tooling around the project, not the project
    return "source"


@lru_cache(maxsize=8192)
def path_terms(path: str) -> frozenset[str]:
    """Lowercased words of a file's name and its folder's name: `src/auth/tokenStore.ts` -> auth, token, store."""
    stem = splitext(basename(path))[0]
    parent = basename(dirname(path))
    terms: set[str] = set()
    for part in (stem, parent):
        for piece in re.split(r"[^A-Za-z0-9_]+", part):
            if piece:
                terms.add(piece.lower())
                terms.update(split_identifier(piece))
    return frozenset(t for t in terms if len(t) > 1)
