"""A shared team index: the indexer and the searcher over a PostgreSQL store of named repositories.

The pipeline (scan, chunk, embed) and the ranking are the project index's own; only where rows go
and how candidates are fetched differ. `make_indexer` / `make_searcher` pick the store the
settings name (`store.url`), so front ends need not know which one they got.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from amanmcp.config import Settings
from amanmcp.embed.base import Embedder, EmbedderIdentity
from amanmcp.errors import AmanError
from amanmcp.indexer import Indexer, IndexEvent, IndexReport, embed_text
from amanmcp.ranking import Candidate, RankingOptions
from amanmcp.search import (
    FILE_DEPTH,
    NoIndexError,
    Searcher,
    SearchError,
    SearchQuality,
    SearchResponse,
    SearchResult,
    changed_files,
    preview,
)
from amanmcp.store.db import SCHEMA_VERSION, Filters
from amanmcp.store.meta import IndexMeta
from amanmcp.store.pg import PgDatabase, PgStore, PgVectors, describe, repo_name, valid_repo

__all__ = ["PgIndexer", "PgSearcher", "make_indexer", "make_searcher", "repo_name"]

log = logging.getLogger(__name__)


def make_indexer(
    root: Path, settings: Settings, embedder: Embedder, on_event: Callable[[IndexEvent], None] | None = None,
    *, repo: str | None = None,
) -> Indexer:
    if settings.store.url:  # a URL that is not postgresql:// is refused there, never ignored
        return PgIndexer(root, settings, embedder, on_event, repo=repo_name(root, repo))
    return Indexer(root, settings, embedder, on_event)


def make_searcher(
    root: Path, settings: Settings, embedder: Embedder | None, *, repos: list[str] | None = None,
    all_repos: bool = False, ranking: RankingOptions | None = None,
) -> Searcher:
    if settings.store.url:
        wanted = None if all_repos else [valid_repo(r) for r in repos] if repos else [repo_name(root, None)]
        return PgSearcher(root, settings, embedder, repos=wanted, ranking=ranking)
    if repos or all_repos:
        raise SearchError("--repo and --all-repos need a shared store: set store.url, AMANMCP_STORE_URL or --store "
                          "to a postgresql:// URL")
    return Searcher(root, settings, embedder, ranking=ranking)


class PgIndexer(Indexer):
    """Indexes one project as one repository of a PostgreSQL store; a run is one transaction."""

    def __init__(
        self, root: Path, settings: Settings, embedder: Embedder,
        on_event: Callable[[IndexEvent], None] | None = None, *, repo: str,
    ) -> None:
        super().__init__(root, settings, embedder, on_event)
        assert settings.store.url is not None
        self.db = PgDatabase(settings.store.url)
        self.repo = repo

    def indexed(self) -> IndexMeta | None:
        """What the repository's live generation records; None when the store does not hold it yet."""
        store = PgStore(self.db, {})
        try:
            _, current = store.live_generations().get(self.repo, ("", None))
            if current is None:
                return None
            store.view({current: self.repo})
            return IndexMeta.from_items(store.meta_items())
        finally:
            store.close()

    def run(self, force: bool = False, *, allow_empty: bool = False) -> IndexReport:
        """Like the project index's run, but always atomic: the store has no half-built state to show."""
        store = PgStore(self.db, {}, write=True)
        try:
            store.lock_repo(self.repo)
            store.commit()
            self.db.ensure_dims_index(self.embedder.identity.dimensions)
            return self._run_pg(store, force, allow_empty)
        except BaseException:
            store.rollback()
            raise
        finally:
            store.close()

    def _run_pg(self, store: PgStore, force: bool, allow_empty: bool) -> IndexReport:
        timings: dict[str, float] = {"embed": 0.0, "store": 0.0, "index": 0.0}
        identity = self.embedder.identity
        _, current = store.live_generations().get(self.repo, ("", None))
        meta, items = None, {}
        if current is not None:
            store.view({current: self.repo})
            items = store.meta_items()
            meta = IndexMeta.from_items(items)
        full, reason = _needs_full(meta, identity, force)
        if not full and self.settings.index.graph and items.get("graph") is not True:
            full, reason = True, "the repository has no code graph yet (an older amanmcp, or index.graph was off)"
        report = IndexReport(self.root, full, reason, identity=identity, timings=timings)
        held = store.counts()["chunks"] if full and current is not None else 0

        scan, skipped = self._scan(timings)

        if full:
            store.start_generation(self.repo)
        previous = store.file_states()
        changed, dropped = self._changed_files(scan.files, previous, skipped, store)  # type: ignore[arg-type]
        removed = (set(previous) - {f.path for f in scan.files}) | (dropped & set(previous))

        timings["chunk"] = timings["graph"] = 0.0
        chunked = list(self._chunked(changed, skipped, timings))
        if held and not allow_empty and not any(chunks for _, chunks, _ in chunked):
            raise AmanError(f"the rebuild of {self.root} found nothing to index ({len(scan.files)} files scanned), so "
                            f"repository {self.repo!r} ({held} chunks) was kept; pass --allow-empty to empty it")

        known = [r.path for r, _, _ in chunked if r.path in previous]
        reuse = {} if full else {embed_text(c): v for c, v in store.stored_vectors(known)}
        all_chunks = [c for _, chunks, _ in chunked for c in chunks]
        if full:
            store.set_reference_length(all_chunks)
        to_embed = sum(1 for c in all_chunks if embed_text(c) not in reuse)
        if to_embed:
            self._load_model(timings, to_embed)
        t = time.perf_counter()
        vectors, embedded = self._embed(all_chunks, reuse, 0, to_embed)
        timings["embed"] = time.perf_counter() - t

        t = time.perf_counter()
        store.delete_files(removed)
        per_file = self._store(store, chunked, vectors, timings, len(chunked), None)  # type: ignore[arg-type]
        redacted = store.redactions()
        if redacted:
            skipped["redacted_secrets"] = redacted
        for key, value in (("schema_version", SCHEMA_VERSION), ("embedder", identity.to_dict()),
                           ("last_indexed", time.time()), ("skipped", dict(skipped)), ("complete", True),
                           ("repo", self.repo), ("graph", self.settings.index.graph)):
            store.set_meta(key, value)
        timings["store"] = time.perf_counter() - t
        t = time.perf_counter()
        store.finish(identity.dimensions)
        store.publish(self.repo, str(self.root.resolve()))
        counts = store.counts()
        store.commit()
        self._remember()
        timings["index"] = time.perf_counter() - t
        self.on_event(IndexEvent("index", 1, 1))

        return report.tally(counts, len(per_file), len(removed), len(all_chunks), embedded, skipped)


    def _remember(self) -> None:
        """This folder is this repository from now on (a later `search` here needs no `--repo`)."""
        from amanmcp.store.layout import IndexLayout

        try:
            IndexLayout(self.root).remember_repo(self.repo)
        except OSError as exc:  # a read-only checkout: the index is written, only the default name is not
            log.warning("could not record repository name %r in %s: %s", self.repo, self.root, exc)


def _needs_full(meta: IndexMeta | None, identity: EmbedderIdentity, force: bool) -> tuple[bool, str]:
    if meta is None:
        return True, "no index yet"
    if force:
        return True, "--force"
    if not meta.current_schema:
        return True, f"index schema {meta.schema_version} is not {SCHEMA_VERSION}"
    if meta.identity != identity:
        old = meta.identity.label() if meta.identity else "unknown"
        return True, f"embedder changed ({old} → {identity.label()}): re-embedding every chunk"
    return False, "content hashes decide what is re-embedded"


class PgSearcher(Searcher):
    """Searches one or more repositories of a PostgreSQL store; results carry their `repo`."""

    def __init__(
        self, root: Path, settings: Settings, embedder: Embedder | None, *, repos: list[str] | None,
        ranking: RankingOptions | None = None,
    ) -> None:
        super().__init__(root, settings, embedder, ranking=ranking)
        assert settings.store.url is not None
        self.db = PgDatabase(settings.store.url)
        self.repos = repos  # None: every repository in the store
        self._pg: PgStore | None = None
        self._roots: dict[str, str] = {}

    def search(self, query: str, *, repos: list[str] | None = None, **kwargs: Any) -> SearchResponse:  # type: ignore[override]
        """`repos`: these repositories for this search only (`["*"]`: every one)."""
        if repos is None:
            return super().search(query, **kwargs)
        if not isinstance(repos, list) or not all(isinstance(r, str) for r in repos):
            raise SearchError(f"repos must be a list of repository names, not {preview(repos)}")
        saved = self.repos
        self.repos = None if "*" in repos else [valid_repo(r) for r in repos]
        try:
            return super().search(query, **kwargs)
        finally:
            self.repos = saved

    def _close_store(self) -> None:
        if self._pg is not None:
            self._pg.close()
            self._pg = None

    def store(self) -> PgStore:  # type: ignore[override]
        if self._pg is None:
            self._pg = PgStore(self.db, {})
        try:
            live = self._pg.live_generations()
        except AmanError:  # the connection was lost (a server restart, an idle timeout): one fresh try
            self._close_store()
            self._pg = PgStore(self.db, {})
            live = self._pg.live_generations()
        self._roots = {name: root for name, (root, _) in live.items()}
        wanted = list(live) if self.repos is None else self.repos
        unknown = [r for r in wanted if r not in live]
        if unknown or not wanted:  # a name the store does not hold is a wrong request; an empty store is not
            error = SearchError if unknown and live else NoIndexError
            held = ", ".join(live) or "no repositories yet"
            raise error(f"repository {', '.join(unknown) or '(any)'} is not in the store at "
                        f"{describe(self.db.url)} (it holds: {held}): run `amanmcp index --repo NAME` "
                        "with this store on the project first")
        self._pg.view({gen: name for name in wanted if (gen := live[name][1]) is not None})
        return self._pg

    def _vector_candidates(  # type: ignore[override]
        self, store: PgStore, query: str, depth: int, filters: Filters
    ) -> tuple[list[tuple[int, float]], dict[str, int], SearchQuality]:
        """Vectors only from the repositories built with the query's embedder; the others are named BM25-only."""
        raw = store.meta_by_generation()
        metas = {gen: IndexMeta.from_items(items) for gen, items in raw.items()}
        first = next((m.identity for m in metas.values() if m.identity is not None), None)

        def quality(
            mode: str, reason: str, identity: EmbedderIdentity | None, others: list[str] | None
        ) -> SearchQuality:
            return SearchQuality(mode=mode, degraded=bool(reason), reason=reason,  # type: ignore[arg-type]
                                 backend=identity.backend if identity else "", model=identity.model if identity else "",
                                 bm25_only_repos=others)

        if self.settings.search.vector_weight <= 0:
            return [], {}, quality("bm25_only", "vector search disabled (search.vector_weight = 0)", first, None)
        if self.embedder is None or first is None:
            return [], {}, quality("bm25_only", "embedder_unavailable: no embedder configured", first, None)
        try:
            identity = self.embedder.identity
        except Exception as exc:
            return [], {}, quality("bm25_only", f"embedder_unavailable: {exc}", first, None)
        matching = [gen for gen, m in metas.items() if m.identity == identity]
        others = sorted(store.generations[gen] for gen in metas if gen not in matching) or None
        if not matching:
            reason = (f"embedder_mismatch: the index was built with {first.label()}, the current embedder is "
                      f"{identity.label()}; re-run `amanmcp index` to re-embed, or select the index's embedder")
            return [], {}, quality("bm25_only", reason, first, others)
        try:
            vector = self._query_vector(identity.query_prefix + query)  # started beside BM25
        except Exception as exc:
            return [], {}, quality("bm25_only", f"embedder_unavailable: {exc}", first, None)
        counted = [raw[gen].get("vectors") for gen in matching]
        total = (sum(c["count"] for c in counted)
                 if all(isinstance(c, dict) and c.get("dims") == identity.dimensions for c in counted) else None)
        index = PgVectors(store, matching, identity.dimensions, self.settings.store.exact_search_max, total)
        allowed = store.filtered_ids(filters) if filters.active else None
        hits = index.search(np.asarray(vector), depth, allowed)
        files = index.file_ranks(np.asarray(vector), FILE_DEPTH)
        mode = "hybrid" if self.settings.search.bm25_weight > 0 else "vector_only"
        notes = []
        if others:
            notes.append(f"embedder_mismatch in repositories {', '.join(others)}: searched by BM25 only there "
                         f"(indexed with another embedder than {identity.label()})")
        provenance = getattr(self.embedder, "provenance", None)
        if provenance is not None and provenance.fallback:
            notes.append(f"embedder_fallback: {provenance.reason}")
        return hits, files, quality(mode, "; ".join(notes), identity, others)

    def _annotate(self, store: PgStore, ranked: list[Candidate], results: list[SearchResult]) -> None:  # type: ignore[override]
        """Each result's repository, and whether its file changed, where that repository's folder is on this machine."""
        repos = store.repo_of([c.id for c in ranked])
        for c, r in zip(ranked, results, strict=True):
            r.repo = repos.get(c.id)
        indexed = store.file_stats_by_repo({(r.repo, r.path) for r in results if r.repo})
        for name in {r.repo for r in results if r.repo}:
            root = Path(self._roots.get(name, ""))
            if not self._roots.get(name) or not root.is_dir():
                continue  # another machine's checkout: staleness unknown here
            mine = {path: stats for (repo, path), stats in indexed.items() if repo == name}
            gone = changed_files(root, mine)
            for r in results:
                if r.repo == name:
                    r.stale = r.path in gone or r.path not in mine
