"""The writer side of `serve`, in process: progressive first builds, live updates, the write lock."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from amanmcp.config import Settings, load_config
from amanmcp.embed.base import EmbedderIdentity
from amanmcp.embed.factory import Selection
from amanmcp.embed.local import LocalEmbedder
from amanmcp.embed.static import StaticEmbedder
from amanmcp.indexer import EMBED_GROUP, Indexer, IndexEvent
from amanmcp.search import Searcher
from amanmcp.status import index_status
from amanmcp.store import IndexLayout, load_meta
from amanmcp.store.layout import IndexLockedError
from amanmcp.store.meta import STALLED_SECONDS, Upgrade
from amanmcp.store.vectors import TIER
from amanmcp.watch import LiveIndex
from conftest import default_local_model, wait_for

BULK = 300  # one-line files, one chunk each: with the fixture, two embedding groups


def add_bulk(root: Path, n: int = BULK) -> None:
    for i in range(n):
        path = root / "bulk" / f"mod_{i:04d}.py"
        path.parent.mkdir(exist_ok=True)
        path.write_text(f"def bulk_function_{i:04d}(x):\n    return x * {i}\n")




def paths(searcher: Searcher, query: str, n: int = 5) -> list[str]:
    return [r.path for r in searcher.search(query, limit=n).results]


class Stop(Exception):
    pass


def test_first_build_answers_by_bm25_before_its_vectors(project: Path, settings: Settings, embedder) -> None:
    add_bulk(project)
    seen: list[tuple[list[str], str, str, bool]] = []

    def on_event(event: IndexEvent) -> None:
        # After the first group of vectors: every file is searchable, by words only, and says why.
        if event.stage == "embed" and event.done >= EMBED_GROUP and not seen:
            searcher = Searcher(project, settings, embedder)
            response = searcher.search("bulk_function_0299", limit=1)
            quality = response.search_quality
            seen.append(([r.path for r in response.results], quality.mode, quality.reason,
                         load_meta(IndexLayout(project).current()).complete))
            searcher.close()

    report = Indexer(project, settings, embedder, on_event).run()
    assert len(seen) == 1
    found, mode, reason, complete = seen[0]
    assert found == ["bulk/mod_0299.py"] and mode == "bm25_only" and not complete
    assert reason.startswith(f"upgrading: vectors for {EMBED_GROUP:,} of {report.chunks_total:,} chunks are built")
    assert report.full_rebuild and report.chunks_embedded == report.chunks_total
    meta = load_meta(IndexLayout(project).current())
    assert meta.complete and meta.upgrade is None
    response = Searcher(project, settings, embedder).search("bulk_function_0299", limit=1)
    assert [r.path for r in response.results] == ["bulk/mod_0299.py"]
    assert response.search_quality.mode == "hybrid" and not response.search_quality.degraded


def test_first_build_answers_with_static_vectors_before_its_own(
    project: Path, settings: Settings, embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the distilled static model at hand, a big first build's static tier answers (with BM25) while
    the model's vectors are built, in its own space; the last commit swaps to the model's and drops it."""
    import amanmcp.embed.static as static

    StaticEmbedder().embed_documents(["distil it once (cached for the session)"])
    monkeypatch.setattr(static, "TIER_MIN", 0)  # the fixture is small; the rule for size is tested below
    add_bulk(project)
    seen = []

    def on_event(event: IndexEvent) -> None:
        if event.stage == "embed" and event.done >= EMBED_GROUP and not seen:
            searcher = Searcher(project, settings, embedder)
            seen.append(searcher.search("multiply a value by a constant", limit=10, explain=True))
            seen.append((IndexLayout(project).current() / TIER).is_dir())
            searcher.close()

    Indexer(project, settings, embedder, on_event).run()
    during, tier_folder = seen
    quality = during.search_quality
    assert quality.mode == "hybrid" and quality.degraded and (quality.backend, quality.model) == (
        "static", "all-MiniLM-L6-v2-m2v256")
    assert quality.reason.startswith("upgrading: vectors for ") and "static vectors (all-MiniLM-L6-v2-m2v256)" \
        in quality.reason
    assert tier_folder and any(r.explain.vector_rank is not None for r in during.results)

    after = Searcher(project, settings, embedder).search("multiply a value by a constant", limit=10)
    assert after.search_quality.mode == "hybrid" and not after.search_quality.degraded
    assert after.search_quality.backend == "local"
    assert not (IndexLayout(project).current() / TIER).exists()


def test_static_tier_only_where_it_pays(monkeypatch: pytest.MonkeyPatch) -> None:
    """Small builds get their own vectors soon: no tier. A model not distilled yet is distilled only
    for a build big enough to pay for the wait; a search never distils."""
    import amanmcp.embed.static as static

    assert static.tier_embedder("all-MiniLM-L6-v2", static.TIER_MIN - 1) is None
    assert static.tier_embedder("nomic-embed-text", static.TIER_DISTIL_MIN) is None  # not a local BERT model
    monkeypatch.setattr(static, "distilled_path", lambda directory, name: Path("/nonexistent/static-model"))
    assert static.tier_embedder("all-MiniLM-L6-v2", static.TIER_DISTIL_MIN - 1) is None
    assert static.tier_embedder("all-MiniLM-L6-v2") is None
    assert static.tier_embedder("all-MiniLM-L6-v2", static.TIER_DISTIL_MIN) is not None


def test_first_build_text_is_published_as_it_grows(
    project: Path, settings: Settings, embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A big project's text stage commits as it goes: what is stored answers before the rest is read."""
    import amanmcp.indexer as indexer_module

    monkeypatch.setattr(indexer_module, "COMMIT_SECONDS", 0.0)
    add_bulk(project)
    seen: list[tuple[int, int, bool, bool, str]] = []

    def on_event(event: IndexEvent) -> None:
        if event.stage == "store" and event.done == event.total // 2 and not seen:
            current = IndexLayout(project).current()
            assert current is not None  # published before the text stage ends
            status = index_status(project, settings)
            searcher = Searcher(project, settings, embedder)
            response = searcher.search("bulk function", limit=5)
            seen.append((status.files, event.total, load_meta(current).building, bool(response.results),
                         response.search_quality.reason))
            searcher.close()

    Indexer(project, settings, embedder, on_event).run()
    (files, total, building, found, reason), = seen
    assert 0 < files < total and building and found
    assert reason.startswith("indexing: a first build is storing")


def test_interrupted_first_build_resumes_its_vectors(project: Path, settings: Settings, embedder) -> None:
    add_bulk(project)

    def stop_after_first_group(event: IndexEvent) -> None:
        if event.stage == "embed" and event.done >= EMBED_GROUP:
            raise Stop

    with pytest.raises(Stop):
        Indexer(project, settings, embedder, stop_after_first_group).run()
    status = index_status(project, settings)
    assert status.indexed and not status.complete and status.chunks > BULK and status.vectors == EMBED_GROUP
    assert status.upgrading is not None and status.upgrading.startswith(
        f"upgrading: vectors for {EMBED_GROUP:,} of {status.chunks:,} chunks are built")
    assert status.eta_seconds is not None and status.eta_seconds > 0
    shown = subprocess.run([sys.executable, "-m", "amanmcp", "status", "--path", str(project)], capture_output=True,
                           text=True, timeout=120, env={**os.environ, "COLUMNS": "200"})
    assert shown.returncode == 0, shown.stderr
    assert f"upgrading: vectors for {EMBED_GROUP:,} of {status.chunks:,} chunks are built" in shown.stdout

    report = Indexer(project, settings, embedder).run()
    assert not report.full_rebuild  # picks up where it stopped instead of starting over
    assert report.files_changed == 0 and report.chunks_embedded == status.chunks - EMBED_GROUP
    final = index_status(project, settings)
    assert final.complete and final.vectors == final.chunks and final.upgrading is None


def test_edit_reembeds_only_changed_chunks(project: Path, settings: Settings, embedder) -> None:
    Indexer(project, settings, embedder).run()
    invoice = project / "src/payments/invoice.py"
    invoice.write_text(invoice.read_text().replace("return b\"%PDF\"", "return b\"%PDF-1.7\""))
    report = Indexer(project, settings, embedder).run()
    assert report.files_changed == 1
    assert report.chunks_embedded == 1 and report.chunks_reused >= 1
    hit = Searcher(project, settings, embedder).search("render_invoice_pdf", limit=1).results[0]
    assert "%PDF-1.7" in hit.content


def test_write_lock_reentrant_in_process_exclusive_across(project: Path) -> None:
    layout = IndexLayout(project)
    probe = (
        "import sys; from pathlib import Path; from amanmcp.store import IndexLayout\n"
        "lock = IndexLayout(Path(sys.argv[1])).write_lock()\n"
        "try:\n    lock.__enter__()\n"
        "except Exception as exc:\n    print(type(exc).__name__, exc); sys.exit(3)\n"
    )
    with layout.write_lock(), layout.write_lock():  # serve holds it; its own index runs take it again
        other = subprocess.run([sys.executable, "-c", probe, str(project)], capture_output=True, text=True)
    assert other.returncode == 3 and "IndexLockedError" in other.stdout
    assert f"pid {os.getpid()}" in other.stdout
    with layout.write_lock():  # released for good once the outer holder leaves
        pass
    free = subprocess.run([sys.executable, "-c", probe, str(project)], capture_output=True, text=True)
    assert free.returncode == 0, free.stdout
    holder = subprocess.Popen(  # now another process holds it, and this one is refused
        [sys.executable, "-c", probe.replace("except", "    input()\nexcept"), str(project)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        wait_for(lambda: (project / ".amanmcp" / "lock").read_text().strip() == str(holder.pid), 20, "lock")
        with pytest.raises(IndexLockedError, match=f"pid {holder.pid}"), layout.write_lock():
            pass
    finally:
        holder.communicate("\n", timeout=20)


@pytest.fixture
def live(project: Path, settings: Settings, embedder: LocalEmbedder) -> Iterator[LiveIndex]:
    selection = Selection(embedder, "local", "local", False, "test")
    with IndexLayout(project).write_lock():
        index = LiveIndex(project, settings, selection, debounce_ms=300, step_ms=50)
        index.start()
        try:
            wait_for(lambda: index.progress().state == "watching", what="start-up run")
            yield index
        finally:
            index.stop()


def test_live_updates(live: LiveIndex, project: Path, embedder: LocalEmbedder) -> None:
    def found(query: str, n: int = 5) -> list[str]:
        searcher = Searcher(project, live.settings, embedder)
        try:
            return paths(searcher, query, n)
        finally:
            searcher.close()

    retry = project / "src/payments/retry.py"
    retry.write_text(retry.read_text() + "\n\ndef circuit_breaker_trip(threshold):\n    return threshold > 5\n")
    (project / "notes.md").write_text("# Notes\n\nThe quarterly roadmap lives here.\n")
    (project / "web/cart.js").unlink()
    wait_for(lambda: found("circuit_breaker_trip", 1) == ["src/payments/retry.py"], what="edit")
    wait_for(lambda: found("quarterly roadmap", 1) == ["notes.md"], what="new file")
    wait_for(lambda: "web/cart.js" not in found("addItemToCart", 10), what="deletion")

    with (project / ".gitignore").open("a") as fh:  # a newly ignored folder leaves the index
        fh.write("server/\n")
    wait_for(lambda: "server/main.go" not in found("parseConfigFile", 10), what=".gitignore")

    version = live.config_version
    (project / ".amanmcp.yaml").write_text("index:\n  exclude: [engine/]\n")
    wait_for(lambda: live.config_version > version, what="settings reload")
    wait_for(lambda: "engine/src/lib.rs" not in found("tokenize_source", 10), what=".amanmcp.yaml")
    assert load_config(project, env={}).settings.index.exclude == ["engine/"]

    (project / ".amanmcp.yaml").write_text("index: [not, a, mapping\n")  # broken: reported, old settings kept
    wait_for(lambda: (live.progress().last_error or "").startswith(".amanmcp.yaml"), what="config error")
    assert live.settings.index.exclude == ["engine/"]
    assert live.progress().state == "watching"


class OtherModel:
    """A real embedder posing as another model (another vector space)."""

    def __init__(self, inner: LocalEmbedder) -> None:
        self.inner, self.dimensions = inner, inner.dimensions
        self.identity = EmbedderIdentity("static", "hash-bag", inner.dimensions)

    def embed_documents(self, texts: list[str]):
        return self.inner.embed_documents(texts)

    def embed_query(self, text: str):
        return self.inner.embed_query(text)


def test_fallback_embedder_never_replaces_the_index(project: Path, settings: Settings, embedder) -> None:
    Indexer(project, settings, embedder).run()
    before = IndexLayout(project).current()
    selection = Selection(OtherModel(embedder), "auto", "static", True, "auto: mlx and local unavailable")
    with IndexLayout(project).write_lock():
        index = LiveIndex(project, settings, selection, watch=False)
        index.start()
        try:
            wait_for(lambda: index.runs, what="the start-up run")
        finally:
            index.stop()
    progress = index.progress()
    assert progress.state == "error" and "fallback" in (progress.last_error or "")
    assert IndexLayout(project).current() == before
    assert index_status(project, settings).embedder == f"local:{default_local_model()} (384d)"


def test_a_branch_switch_converges_with_no_result_pointing_at_a_missing_file(
    live: LiveIndex, project: Path, embedder: LocalEmbedder
) -> None:
    """`git checkout` rewrites, deletes and adds many files at once: the index follows, and no result
    names a file that is gone or says stale once it has caught up."""
    def git(*args: str) -> None:
        subprocess.run(["git", "-c", "user.email=t@t", "-c", "user.name=t", *args], cwd=project, check=True,
                       capture_output=True)

    git("init", "-q", "-b", "main")
    git("add", "-A")
    git("commit", "-qm", "main")
    git("checkout", "-qb", "feature")
    (project / "web/cart.js").unlink()
    (project / "src/payments/invoice.py").rename(project / "src/payments/billing.py")
    for i in range(30):
        (project / f"src/feature/handler_{i}.py").parent.mkdir(parents=True, exist_ok=True)
        (project / f"src/feature/handler_{i}.py").write_text(f"def feature_handler_{i}(request):\n    return {i}\n")
    git("add", "-A")
    git("commit", "-qm", "feature")
    git("checkout", "-q", "main")  # back: the feature files vanish, the old ones return
    git("checkout", "-q", "feature")  # and forth again, in quick succession

    def settled() -> bool:
        searcher = Searcher(project, live.settings, embedder)
        try:
            results = [r for q in ("feature_handler_7", "render_invoice_pdf", "addItemToCart", "retry")
                       for r in searcher.search(q, limit=10).results]
        finally:
            searcher.close()
        return (all((project / r.path).is_file() and not r.stale for r in results)
                and any(r.path == "src/feature/handler_7.py" for r in results)
                and any(r.path == "src/payments/billing.py" for r in results))

    wait_for(settled, 60, "the index to follow the branch switch")
    assert live.progress().state == "watching"


def test_upgrade_progress_line() -> None:
    upgrade = Upgrade(total=1000, started=100.0).advanced(250, now=110.0)
    assert upgrade.eta_seconds == 30.0
    assert upgrade.describe(now=111.0) == ("upgrading: vectors for 250 of 1,000 chunks are built, about 30s left; "
                                           "BM25 answers until all are in")
    assert Upgrade.from_value(upgrade.to_dict()) == upgrade
    stopped = upgrade.describe(now=110.0 + STALLED_SECONDS + 1)  # nobody committed for long: not running
    assert "the build stopped (the next `amanmcp index` or `serve` finishes it); BM25 answers meanwhile" in stopped


def test_a_static_first_build_stores_vectors_with_the_text(project: Path, settings: Settings) -> None:
    """A static model is quicker than a second pass over the chunks: its first build writes each file's
    vectors with its text, and is published the same way (searchable before the last commit)."""
    from amanmcp.embed.static import HashedEmbedder

    add_bulk(project)
    seen = []

    def on_event(event: IndexEvent) -> None:
        if event.stage == "searchable":
            status = index_status(project, settings)
            seen.append((status.chunks, status.vectors, status.complete))
        assert event.stage != "embed" or event.done == 0 or not seen  # nothing embedded after publishing

    report = Indexer(project, settings, HashedEmbedder(), on_event).run()
    (chunks, vectors, complete), = seen
    assert chunks == vectors == report.chunks_total == report.chunks_embedded and not complete
    assert load_meta(IndexLayout(project).current()).complete
