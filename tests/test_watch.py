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
from amanmcp.indexer import EMBED_GROUP, Indexer, IndexEvent
from amanmcp.search import Searcher
from amanmcp.status import index_status
from amanmcp.store import IndexLayout, load_meta
from amanmcp.store.layout import IndexLockedError
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


def test_progressive_first_build_is_searchable_as_it_grows(project: Path, settings: Settings, embedder) -> None:
    add_bulk(project)
    seen: list[tuple[list[str], bool]] = []

    def on_event(event: IndexEvent) -> None:
        # The second embedding group starts only after the first group was committed and published.
        if event.stage == "embed" and event.done > EMBED_GROUP and not seen:
            searcher = Searcher(project, settings, embedder)
            seen.append((paths(searcher, "bulk_function_0000", 1), load_meta(IndexLayout(project).current()).complete))
            searcher.close()

    report = Indexer(project, settings, embedder, on_event).run(progressive=True)
    assert seen == [(["bulk/mod_0000.py"], False)]
    assert report.full_rebuild and report.chunks_embedded == report.chunks_total
    assert load_meta(IndexLayout(project).current()).complete
    assert paths(Searcher(project, settings, embedder), "bulk_function_0299", 1) == ["bulk/mod_0299.py"]


def test_interrupted_progressive_build_resumes(project: Path, settings: Settings, embedder) -> None:
    add_bulk(project)

    def stop_after_first_group(event: IndexEvent) -> None:
        if event.stage == "embed" and event.done > EMBED_GROUP:
            raise Stop

    with pytest.raises(Stop):
        Indexer(project, settings, embedder, stop_after_first_group).run(progressive=True)
    status = index_status(project, settings)
    assert status.indexed and not status.complete and 0 < status.chunks < BULK
    partial = status.chunks

    report = Indexer(project, settings, embedder).run(progressive=True)
    assert not report.full_rebuild  # picks up where it stopped instead of starting over
    assert report.chunks_embedded == report.chunks_total - partial
    assert index_status(project, settings).complete


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
