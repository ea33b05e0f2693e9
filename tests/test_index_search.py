"""End to end on a real fixture project: real scanner, tree-sitter, model, SQLite and vectors."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from amanmcp.config import Settings, load_config
from amanmcp.embed.local import LocalEmbedder
from amanmcp.indexer import Indexer, IndexEvent
from amanmcp.search import NoIndexError, Searcher, SearchError
from amanmcp.store import IndexLayout, IndexStore
from conftest import default_local_model


def build(project: Path, settings: Settings, embedder, force: bool = False, events=None):
    return Indexer(project, settings, embedder, events.append if events is not None else None).run(force=force)


def top_paths(searcher: Searcher, query: str, n: int = 3, **kw) -> list[str]:
    return [r.path for r in searcher.search(query, limit=n, **kw).results]


@pytest.fixture
def indexed(project: Path, settings: Settings, embedder: LocalEmbedder) -> Searcher:
    build(project, settings, embedder)
    return Searcher(project, settings, embedder)


def test_index_report_and_events(project: Path, settings: Settings, embedder: LocalEmbedder) -> None:
    events: list[IndexEvent] = []
    report = build(project, settings, embedder, events=events)
    assert report.full_rebuild and report.reason == "no index yet"
    assert report.files_total == 8  # legacy.txt is undecodable, .gitignore is excluded
    assert report.skipped == {"secret": 3, "binary": 1, "undecodable": 1}
    assert set(report.timings) == {"scan", "chunk", "graph", "load", "embed", "store", "index"}
    assert {e.stage for e in events} == {"scan", "chunk", "embed", "store", "index", "searchable"}  # a first build
    embed_events = [e for e in events if e.stage == "embed"]
    assert embed_events[-1].done == embed_events[-1].total == report.chunks_embedded == report.chunks_total
    store = IndexStore(IndexLayout(project).current(), readonly=True)
    assert store.get_meta("embedder")["model"] == embedder.identity.model
    assert store.counts()["vectors"] == report.chunks_total
    store.close()


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("retry_with_backoff", "src/payments/retry.py"),
        ("HTTPAdapter", "src/payments/retry.py"),
        ("parseConfigFile", "server/main.go"),
        ("tokenize_source", "engine/src/lib.rs"),
        ("validateEmailAddress", "web/user.ts"),
        ("where are retries handled", "src/payments/retry.py"),
        ("generate a printable document for a bill", "src/payments/invoice.py"),
        ("check whether an email address is well formed", "web/user.ts"),
        ("sum the prices of items in the shopping cart", "web/cart.js"),
        ("what to do when the database is locked", "docs/guide.md"),
    ],
)
def test_finds_right_file_in_top3(indexed: Searcher, query: str, expected: str) -> None:
    assert expected in top_paths(indexed, query)


def test_result_shape_and_line_numbers(indexed: Searcher, project: Path) -> None:
    response = indexed.search("retry_with_backoff", limit=5)
    assert response.search_quality.mode == "hybrid" and not response.search_quality.degraded
    assert response.search_quality.model == default_local_model()
    hit = response.results[0]
    assert (hit.path, hit.symbol, hit.symbol_type, hit.language, hit.content_type) == (
        "src/payments/retry.py", "retry_with_backoff", "function", "python", "code",
    )
    lines = (project / hit.path).read_text().splitlines()
    assert "\n".join(lines[hit.start_line - 1 : hit.end_line]) == hit.content
    assert lines[hit.start_line - 1].startswith("def retry_with_backoff")
    assert 0 < hit.score <= 1
    assert response.took_ms > 0


def test_nothing_excluded_is_searchable(indexed: Searcher) -> None:
    for secretish in ("hunter2", "generated_function_should_not_be_indexed", "leftpadFromNodeModules",
                      "outside_the_root_function", "SECRET_TOKEN"):
        hits = indexed.search(secretish, limit=20).results
        assert all(secretish.lower() not in r.content.lower() for r in hits), secretish


def test_filters(indexed: Searcher) -> None:
    docs = indexed.search("install", filter="docs").results
    assert docs and {r.content_type for r in docs} == {"docs"}
    code = indexed.search("install", filter="code").results
    assert all(r.content_type == "code" for r in code)
    go = indexed.search("server", language="go").results
    assert go and {r.language for r in go} == {"go"}
    scoped = indexed.search("invoice retry adapter", scope=["src/payments"]).results
    assert scoped and all(r.path.startswith("src/payments/") for r in scoped)
    with pytest.raises(SearchError, match=r"'src/pay' matches no indexed file or folder.*src/payments"):
        indexed.search("invoice", scope=["src/pay"])  # a prefix is a folder, not a string: never a silent 0
    assert indexed.search("invoice", scope=["src/payments/invoice.py", "docs"]).results  # files and folders
    with pytest.raises(SearchError, match="leaves the project root"):
        indexed.search("x", scope=["../"])
    with pytest.raises(SearchError, match="outside the project root"):
        indexed.search("x", scope=["/etc"])


def test_explain(indexed: Searcher) -> None:
    hit = indexed.search("retry_with_backoff", explain=True).results[0]
    assert hit.explain is not None
    assert hit.explain.bm25_rank == 1 and hit.explain.vector_rank is not None
    assert hit.explain.rrf_score > 0


@pytest.mark.parametrize("query", ['"', "AND", "*", "NEAR(", "OR (", "foo:bar", "a - b", "'; DROP TABLE chunks;--"])
def test_fts_syntax_is_just_text(indexed: Searcher, query: str) -> None:
    try:
        indexed.search(query)
    except SearchError as exc:
        assert "no words" in str(exc)


def test_bad_queries(indexed: Searcher) -> None:
    with pytest.raises(SearchError, match="no words"):
        indexed.search("*** ((( ---")
    with pytest.raises(SearchError, match="limit is"):
        indexed.search("x" * 100_000)
    with pytest.raises(SearchError, match="empty"):
        indexed.search("   ")
    with pytest.raises(SearchError, match="limit must be"):
        indexed.search("retry", limit=0)


def test_never_indexed(tmp_path: Path, embedder: LocalEmbedder) -> None:
    with pytest.raises(NoIndexError, match="amanmcp index"):
        Searcher(tmp_path, Settings(), embedder).search("anything")


def test_empty_project(tmp_path: Path, embedder: LocalEmbedder) -> None:
    report = Indexer(tmp_path, Settings(), embedder).run()
    assert report.files_total == 0 and report.chunks_total == 0
    assert Searcher(tmp_path, Settings(), embedder).search("anything").results == []


def test_incremental_reindexes_only_changed_files(project: Path, settings: Settings, embedder: LocalEmbedder) -> None:
    first = build(project, settings, embedder)
    again = build(project, settings, embedder)
    assert not again.full_rebuild and again.files_changed == 0 and again.chunks_embedded == 0

    retry = project / "src/payments/retry.py"
    retry.write_text(retry.read_text() + "\n\ndef circuit_breaker_trip(threshold):\n    return threshold > 5\n")
    (project / "web/cart.js").unlink()
    (project / "notes.md").write_text("# Notes\n\nThe quarterly roadmap lives here.\n")
    invoice = project / "src/payments/invoice.py"
    os.utime(invoice, (time.time() + 5, time.time() + 5))  # touched, same content: not re-embedded

    report = build(project, settings, embedder)
    assert not report.full_rebuild
    assert report.files_changed == 2 and report.files_removed == 1
    assert report.chunks_embedded < first.chunks_embedded
    searcher = Searcher(project, settings, embedder)
    assert top_paths(searcher, "circuit_breaker_trip", 1) == ["src/payments/retry.py"]
    assert top_paths(searcher, "quarterly roadmap", 1) == ["notes.md"]
    assert "web/cart.js" not in top_paths(searcher, "addItemToCart", 10)
    assert build(project, settings, embedder).files_changed == 0


def test_force_rebuilds_everything_and_swaps_generation(project: Path, settings: Settings, embedder) -> None:
    build(project, settings, embedder)
    layout = IndexLayout(project)
    before = layout.current()
    report = build(project, settings, embedder, force=True)
    assert report.full_rebuild and report.files_changed == report.files_total
    assert layout.current() != before and not before.exists()
    assert [p.name for p in (project / ".amanmcp").glob("gen-*")] == [layout.current().name]


class ExplodingEmbedder:
    """A real embedder that dies part-way, as a crashed process would."""

    def __init__(self, inner: LocalEmbedder, fail_after: int) -> None:
        self.inner, self.calls, self.fail_after = inner, 0, fail_after
        self.identity, self.dimensions = inner.identity, inner.dimensions

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        self.calls += 1
        if self.calls > self.fail_after:
            raise RuntimeError("simulated crash during embedding")
        return self.inner.embed_documents(texts)

    def embed_query(self, text: str) -> np.ndarray:
        return self.inner.embed_query(text)


def test_crash_during_full_rebuild_keeps_old_index(project: Path, settings: Settings, embedder) -> None:
    build(project, settings, embedder)
    layout = IndexLayout(project)
    before = layout.current()
    many = {f"bulk/mod_{i}.py": f"def bulk_function_{i}(x):\n    return x * {i}\n" for i in range(300)}
    for rel, text in many.items():
        (project / rel).parent.mkdir(exist_ok=True)
        (project / rel).write_text(text)
    with pytest.raises(RuntimeError, match="simulated crash"):
        build(project, settings, ExplodingEmbedder(embedder, fail_after=1), force=True)
    assert layout.current() == before
    assert [p.name for p in (project / ".amanmcp").glob("gen-*")] == [before.name]
    searcher = Searcher(project, settings, embedder)
    assert top_paths(searcher, "retry_with_backoff", 1) == ["src/payments/retry.py"]
    assert searcher.search("bulk_function_7").results[0].path != "bulk/mod_7.py"


def test_other_embedder_means_bm25_only(project: Path, settings: Settings, embedder) -> None:
    build(project, settings, embedder)

    class OtherModel(ExplodingEmbedder):
        pass

    other = OtherModel(embedder, fail_after=0)
    from amanmcp.embed.base import EmbedderIdentity

    other.identity = EmbedderIdentity("static", "hash-bag", 256)
    response = Searcher(project, settings, other).search("retry_with_backoff")
    quality = response.search_quality
    assert (quality.mode, quality.degraded) == ("bm25_only", True)
    assert quality.reason.startswith("embedder_mismatch")
    assert response.results[0].path == "src/payments/retry.py"


def test_hnsw_path(project: Path, embedder) -> None:
    (project / ".amanmcp.yaml").write_text("index:\n  exact_search_max: 3\n")
    settings = load_config(project, env={}).settings
    build(project, settings, embedder)
    searcher = Searcher(project, settings, embedder)
    response = searcher.search("where are retries handled", explain=True)
    assert searcher._vectors is not None and searcher._vectors.kind == "hnsw"
    assert response.results[0].path == "src/payments/retry.py"
    assert response.results[0].explain.vector_rank is not None


def test_identifier_query_puts_the_definition_first(indexed: Searcher) -> None:
    """`Invoice` is mentioned more often in render_invoice_pdf, but the class defines it."""
    hit = indexed.search("Invoice", limit=3).results[0]
    assert (hit.symbol, hit.symbol_type) == ("Invoice", "class")
    hit = indexed.search("how does ListenAndServe start", limit=3).results[0]
    assert hit.symbol == "Server.ListenAndServe"


def test_unfiltered_bm25_skips_the_join_and_ranks_the_same(indexed: Searcher) -> None:
    """Without filters BM25 reads the FTS table alone (the join read every match's row first)."""
    from amanmcp.store.db import Filters
    from amanmcp.tokens import query_words

    store = indexed.store()
    for query in ("retry payment invoice", "def return self", "email address validate"):
        words = query_words(query)
        match = " OR ".join(f'"{w}"' for w in words)
        joined = [r[0] for r in store.conn.execute(
            "SELECT c.id FROM chunks_fts JOIN chunks c ON c.id = chunks_fts.rowid WHERE chunks_fts MATCH ? "
            "ORDER BY bm25(chunks_fts, 4.0, 1.0), c.id LIMIT 50", (match,))]
        got = store.bm25(words, 50, Filters())
        assert got and sorted(got) == sorted(joined)
        scores = dict(store.conn.execute(
            "SELECT rowid, bm25(chunks_fts, 4.0, 1.0) FROM chunks_fts WHERE chunks_fts MATCH ?", (match,)))
        assert [scores[i] for i in got] == sorted(scores[i] for i in got)  # best (lowest) first


def test_the_query_is_embedded_once_beside_bm25(project: Path, settings: Settings, embedder) -> None:
    """The query's vector is made on a worker thread while BM25 runs, and used: never twice."""
    Indexer(project, settings, embedder).run()
    threads: list[str] = []

    class Counting:
        def __getattr__(self, name: str) -> object:
            return getattr(embedder, name)

        def embed_query(self, text: str) -> np.ndarray:
            threads.append(threading.current_thread().name)
            return embedder.embed_query(text)

    searcher = Searcher(project, settings, Counting())  # type: ignore[arg-type]
    hybrid = searcher.search("retry a failed call with backoff", limit=3)
    assert hybrid.search_quality.mode == "hybrid" and len(threads) == 1 and threads[0].startswith("amanmcp-query")
    expected = Searcher(project, settings, embedder).search("retry a failed call with backoff", limit=3)
    assert [r.path for r in hybrid.results] == [r.path for r in expected.results]
    searcher.close()
