"""Property-based fuzzing of queries (hypothesis, derandomized so CI repeats the same examples).

Through the library (`Searcher.search`, many examples) and through the CLI (`amanmcp search` in a
subprocess, fewer): any text, NUL, lone surrogates, FTS5 syntax (`NEAR(`, quotes, `*`, `AND`, column
filters), up to 100 KB, with arbitrary filters. The answer is results, or a `SearchError`/`UsageError`
whose message is one plain line; from the CLI, exit 0 or 2 and never a traceback.
"""

from __future__ import annotations

import json
import os

import pytest
from attack import amanmcp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from amanmcp.config import load_config
from amanmcp.embed.factory import select_embedder
from amanmcp.errors import AmanError, UsageError
from amanmcp.indexer import Indexer
from amanmcp.search import FILTERS, SYMBOL_TYPES, Searcher, SearchError, SearchResponse

FTS_SYNTAX = [
    "NEAR(", "NEAR(retry backoff, 2)", "NEAR/3", '"', '""', '"retry', "*", "retry*", "*retry", "AND", "OR", "NOT",
    "(", ")", "()", ":", "content:", "path:retry", "^", "^retry", "-", "+", "{", "}", "{path content}:x", "'", "`",
    "\\", "%", "_", "\x00", "\x00retry", "\u200b", "\ufeff", "\ud800", "\udcff", "retry", "retry_with_backoff",
    "Invoice", "HTTPAdapter.send", "database is locked", "函数", "поиск", "🙂", "a" * 300, "!!!", "...", "/*", "*/",
    "'; DROP TABLE chunks; --", "MATCH", "rank", "bm25(", "SELECT", "\n", "\t", "\r\n",
]
ANY_CHAR = st.characters(codec=None, exclude_categories=())  # every code point, lone surrogates and NUL included
QUERIES = st.one_of(
    st.text(ANY_CHAR, max_size=60),
    st.lists(st.sampled_from(FTS_SYNTAX), min_size=1, max_size=8).map(" ".join),
    st.lists(st.one_of(st.sampled_from(FTS_SYNTAX), st.text(ANY_CHAR, max_size=6)), max_size=10).map("".join),
    st.tuples(st.sampled_from(["retry ", "NEAR(", '"', "x", "é", "\x00", "函"]), st.integers(100, 100_000))
    .map(lambda t: (t[0] * t[1])[: 100_000]),
)
NAMES = st.one_of(st.none(), st.sampled_from(["python", "Go", " markdown ", "", "cobol", "\x00", "\udcff"]),
                  st.text(ANY_CHAR, max_size=12))
SCOPES = st.one_of(
    st.none(),
    st.sampled_from(["src", "src/payments/", "../", "/etc", "./src", "src/../..", "", "\x00", "*", "\udcff"]),
    st.lists(st.one_of(st.text(ANY_CHAR, max_size=20), st.sampled_from(["src", "..", "/", "web"])), max_size=4),
)
HYPOTHESIS = {"deadline": None, "derandomize": True, "database": None,
              "suppress_health_check": [HealthCheck.function_scoped_fixture, HealthCheck.too_slow]}
STATS = {"queries": 0, "queries_refused": 0, "arguments": 0, "arguments_refused": 0, "cli": 0, "cli_refused": 0}


@pytest.fixture(scope="module")
def searcher(tmp_path_factory: pytest.TempPathFactory):
    from conftest import write_project

    root = tmp_path_factory.mktemp("fuzz") / "shop"
    root.mkdir()
    write_project(root)
    loaded = load_config(root, env={"AMANMCP_EMBEDDER": "static", "AMANMCP_STATIC_MODEL": "hashed"})
    embedder = select_embedder(loaded.settings).embedder
    Indexer(root, loaded.settings, embedder).run()
    searcher = Searcher(root, loaded.settings, embedder)
    yield searcher
    searcher.close()
    print("\nquery fuzzing (examples run, of which refused with a plain message): "
          f"library queries {STATS['queries']} ({STATS['queries_refused']}), library arguments "
          f"{STATS['arguments']} ({STATS['arguments_refused']}), CLI {STATS['cli']} ({STATS['cli_refused']})")


def plain(message: str) -> None:
    """One line, short enough to read, and nothing from the machinery underneath."""
    assert message and "\n" not in message and len(message) < 400, message
    lowered = message.lower()
    for leak in ("traceback", "sqlite", "fts5", "pydantic", "exception", "error:"):
        assert leak not in lowered, message


def search(searcher: Searcher, query: str, **arguments: object) -> str:
    """One search: 'answered' or 'refused' (plainly); anything else fails the test."""
    try:
        response = searcher.search(query, **arguments)  # type: ignore[arg-type]
    except (SearchError, UsageError) as exc:
        plain(str(exc))
        return "refused"
    assert isinstance(response, SearchResponse)
    limit = arguments.get("limit")
    assert len(response.results) <= (10 if limit is None else limit)  # type: ignore[operator]
    json.loads(response.model_dump_json())  # what the CLI and MCP answer must serialize
    return "answered"


@settings(max_examples=600, **HYPOTHESIS)
@given(query=QUERIES, limit=st.integers(1, 100), filter=st.sampled_from(FILTERS),
       language=st.sampled_from([None, None, "python", "markdown"]), scope=st.sampled_from([None, None, ["src"]]),
       explain=st.booleans())
def test_library_queries(searcher: Searcher, query: str, **arguments: object) -> None:
    """Hostile query text with ordinary arguments."""
    STATS["queries"] += 1
    if search(searcher, query, **arguments) == "refused":
        STATS["queries_refused"] += 1


@settings(max_examples=300, **HYPOTHESIS)
@given(query=QUERIES, limit=st.one_of(st.integers(-3, 130), st.sampled_from([None, True, 2.5, "3"])),
       filter=st.one_of(st.sampled_from(FILTERS), st.text(ANY_CHAR, max_size=8)), language=NAMES, scope=SCOPES,
       symbol_type=st.one_of(st.none(), st.sampled_from(SYMBOL_TYPES), st.text(ANY_CHAR, max_size=8)),
       explain=st.booleans())
def test_library_arguments(searcher: Searcher, query: str, **arguments: object) -> None:
    """Every argument hostile at once."""
    STATS["arguments"] += 1
    if search(searcher, query, **arguments) == "refused":
        STATS["arguments_refused"] += 1


CLI_TEXT = st.characters(codec="utf-8", exclude_characters="\x00")  # argv cannot carry NUL or lone surrogates
CLI_QUERIES = st.one_of(
    st.text(CLI_TEXT, min_size=1, max_size=40),
    st.lists(st.sampled_from([s for s in FTS_SYNTAX if "\x00" not in s and "\ud800" not in s and "\udcff" not in s]),
             min_size=1, max_size=6).map(" ".join),
    st.sampled_from(["retry " * 5000, "x" * 30_000, "-n", "--help", "[red]x[/red]", "[/bold]", ":smile:",
                     os.fsdecode(b"caf\xe9")]),  # the last: Latin-1 bytes, as a Latin-1 terminal would pass them
)


@pytest.mark.slow
@settings(max_examples=24, **HYPOTHESIS)
@given(query=CLI_QUERIES, form=st.sampled_from(["json", "text"]),
       extra=st.sampled_from([[], ["-n", "1"], ["-t", "docs"], ["-l", "python"], ["-s", "src"], ["--explain"],
                              ["-l", "cobol"], ["-n", "0"], ["-s", "../.."], ["-t", "[red]"]]))
def test_cli_queries(searcher: Searcher, query: str, form: str, extra: list[str]) -> None:
    STATS["cli"] += 1
    result = amanmcp("search", "--path", str(searcher.root), "--format", form, *extra, "--", query)
    output = result.stdout + result.stderr
    assert "Traceback" not in output, output[-3000:]
    assert result.returncode in (0, 2), (result.returncode, output[-2000:])
    if result.returncode == 2:
        STATS["cli_refused"] += 1
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 or "Usage:" in result.stderr, result.stderr  # ours, or typer's usage block
    elif form == "json":
        assert isinstance(json.loads(result.stdout)["results"], list)


def test_refusals_name_the_problem(searcher: Searcher) -> None:
    """Examples the fuzzer met, kept as plain cases."""
    for query, expected in [("\x00", "no words"), ("   ", "empty"), ("x" * 100_000, "100,000 characters")]:
        with pytest.raises(AmanError, match=expected):
            searcher.search(query)
    assert searcher.search('NEAR("retry_with_backoff" *').results  # FTS syntax is text


def test_cli_bytes_that_are_not_utf8(searcher: Searcher) -> None:
    """A query typed in a Latin-1 terminal reaches Python as lone surrogates: a plain refusal (exit 2), never
    a traceback from the JSON encoder or SQLite."""
    latin1 = os.fsdecode(b"caf\xe9")
    for args in (["--format", "json", "--", latin1], ["-s", latin1, "--", "retry"], ["-l", latin1, "--", "retry"]):
        result = amanmcp("search", "--path", str(searcher.root), *args)
        assert "Traceback" not in result.stdout + result.stderr, result.stderr[-2000:]
        assert result.returncode == 2 and "not valid text" in result.stderr, (args, result.stderr)
