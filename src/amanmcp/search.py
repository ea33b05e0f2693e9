"""Hybrid search: BM25 (FTS5) and vector candidates fused by reciprocal rank fusion.

Vectors are used only when the embedder that answers the query is the one that built the index;
otherwise the search says so and answers from BM25 alone.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path, PurePosixPath
from typing import Literal

import numpy as np
from pydantic import BaseModel

from amanmcp.config import Settings
from amanmcp.embed.base import Embedder, EmbedderIdentity
from amanmcp.embed.rerank import RerankError, make_reranker
from amanmcp.embed.static import tier_embedder
from amanmcp.errors import UsageError
from amanmcp.ranking import Candidate, QueryProfile, RankingOptions, analyze, source_weights
from amanmcp.ranking import rank as rank_candidates
from amanmcp.store import IndexLayout, IndexStore, VectorIndex, read_meta
from amanmcp.store.db import Filters
from amanmcp.store.meta import Upgrade
from amanmcp.store.vectors import TIER
from amanmcp.tokens import query_words

log = logging.getLogger(__name__)
FILTERS = ("all", "code", "docs")
FILE_DEPTH = 100  # files ranked by centroid; beyond this a file's rank adds next to nothing
RERANK_CHARS = 2000  # of each chunk sent to a reranker: the head says what it is, and requests stay small
DEFINITIONS = frozenset({"class", "function", "struct", "interface", "trait", "type", "enum", "module"})


class SearchError(UsageError, ValueError):
    """The request cannot be answered as asked; the message says why."""


class NoIndexError(SearchError):
    exit_code = 1  # nothing wrong with the request: the project needs indexing first
    pass


class Explain(BaseModel):
    """Why a result ranks where it does: each retriever's rank, the fused score and every signal."""

    bm25_rank: int | None
    vector_rank: int | None
    symbol_rank: int | None = None
    file_rank: int | None = None  # the chunk's file among files ranked by their mean vector
    vector_score: float | None
    rrf_score: float  # weighted reciprocal rank fusion, 1.0 = every list's first
    final_score: float = 0.0  # after the ranking signals
    rerank_score: float | None = None  # the reranker's own score, when one reordered the results
    signals: dict[str, float] = {}  # signal -> added amount (boosts) or multiplier (priors)


class SearchResult(BaseModel):
    path: str
    start_line: int
    end_line: int
    symbol: str | None
    symbol_type: str | None
    language: str
    content_type: str
    score: float
    content: str
    stale: bool = False  # the file changed on disk (size or mtime) or is gone since it was indexed
    repo: str | None = None  # the repository in a shared (PostgreSQL) store; null in a project's own index
    explain: Explain | None = None


class SearchQuality(BaseModel):
    mode: Literal["hybrid", "bm25_only", "vector_only"]
    degraded: bool
    reason: str
    backend: str
    model: str
    reranker: str | None = None  # the reranker that reordered the top results; null when none is configured
    bm25_only_repos: list[str] | None = None  # searched repositories whose embedder differs from the query's


class SearchResponse(BaseModel):
    query: str
    results: list[SearchResult]
    search_quality: SearchQuality
    took_ms: float


def normalize_scope(root: Path, scopes: list[str] | None) -> tuple[str, ...]:
    """Project-relative path prefixes; anything that leaves the root is refused."""
    out = []
    for raw in scopes or []:
        text = raw.strip().replace("\\", "/")
        if not text:
            continue
        candidate = Path(text)
        if candidate.is_absolute():
            try:
                text = candidate.resolve().relative_to(root.resolve()).as_posix()
            except ValueError:
                raise SearchError(f"scope {raw!r} is outside the project root {root}") from None
        parts = [p for p in PurePosixPath(text).parts if p not in ("", ".")]
        if ".." in parts:
            raise SearchError(f"scope {raw!r} leaves the project root; use a path inside it")
        if parts:
            out.append("/".join(parts))
    return tuple(out)


class Searcher:
    """Answers queries on one project's index; picks up re-indexes between queries."""

    def __init__(
        self, root: Path, settings: Settings, embedder: Embedder | None, *, ranking: RankingOptions | None = None
    ) -> None:
        self.root = root
        self.ranking = ranking or RankingOptions()
        self.settings = settings
        self.embedder = embedder
        self.reranker = make_reranker(settings)
        self.layout = IndexLayout(root)
        self._generation: Path | None = None
        self._store: IndexStore | None = None
        self._vectors: VectorIndex | None = None
        self._vectors_version: int | None = None
        self._tier: tuple[Path, VectorIndex] | None = None  # a first build's static vectors, by generation
        self._tier_model: Embedder | None = None
        self._ahead = threading.local()  # this thread's query embedding, started before BM25 runs
        self._workers: ThreadPoolExecutor | None = None
        self._workers_lock = threading.Lock()

    def close(self) -> None:
        if self.reranker is not None:
            self.reranker.close()
        if self._workers is not None:
            self._workers.shutdown(wait=False)
        self._close_store()

    def _close_store(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None

    def store(self) -> IndexStore:
        current = self.layout.current()
        if current is None:
            raise NoIndexError(f"{self.root} has no index yet: run `amanmcp index {self.root}` first")
        if current != self._generation or self._store is None:
            self._close_store()
            self._store = IndexStore(current, readonly=True)
            self._generation = current
            self._vectors = None
        return self._store

    def _vector_index(self, store: IndexStore, identity: EmbedderIdentity, version: int) -> VectorIndex:
        if self._vectors is None or self._vectors_version != version:
            assert self._generation is not None
            loaded = VectorIndex.load(self._generation, version)
            if loaded is None:  # stale cache: the SQLite rows are the truth
                ids, matrix = store.vectors(identity.dimensions)
                loaded = VectorIndex(ids, matrix)
            self._vectors, self._vectors_version = loaded, version
        return self._vectors

    def search(
        self,
        query: str,
        *,
        limit: int | None = None,
        filter: str = "all",
        language: str | None = None,
        scope: list[str] | None = None,
        symbol_type: str | None = None,
        explain: bool = False,
    ) -> SearchResponse:
        started = time.perf_counter()
        cfg = self.settings.search
        limit = cfg.limit if limit is None else limit
        if not isinstance(query, str):
            raise SearchError("the query must be text: words, a question, or an identifier")
        if isinstance(limit, bool) or not isinstance(limit, int):
            raise SearchError(f"limit must be a whole number between 1 and 100, not {preview(limit)}")
        scope = [scope] if isinstance(scope, str) else scope  # one prefix given as a plain string
        for name, value in (("query", query), ("filter", filter), ("language", language),
                            ("symbol_type", symbol_type), *(("scope", s) for s in scope or ())):
            if isinstance(value, str) and not _is_text(value):  # undecodable argv bytes, a JSON "\ud800"
                raise SearchError(f"the {name} is not valid text: it holds bytes that are not UTF-8 "
                                  "(or a lone surrogate)")
        query = query.strip()
        if not query:
            raise SearchError("the query is empty")
        if len(query) > cfg.max_query_chars:
            raise SearchError(f"the query is {len(query):,} characters; the limit is {cfg.max_query_chars:,}")
        words = query_words(query)
        if not words:
            raise SearchError(f"the query {preview(query)} has no words to search for (only punctuation or symbols)")
        if not 1 <= limit <= 100:
            raise SearchError(f"limit must be between 1 and 100, not {limit}")
        if filter not in FILTERS:
            raise SearchError(f"filter must be one of {', '.join(FILTERS)}, not {preview(filter)}")
        symbol_type = _choice("symbol_type", symbol_type, SYMBOL_TYPES)
        if language is not None:  # an unknown language is an error, never a silent empty answer
            language = _choice("language", language, tuple(sorted(self.store().languages())), "this index's languages")
        filters = Filters(
            content_type=None if filter == "all" else filter,
            language=language,
            scope=normalize_scope(self.root, scope),
            symbol_type=symbol_type,
        )

        store = self.store()
        if filters.scope:  # a scope that names nothing indexed is an error, never a silent empty answer
            _check_scope(store, filters.scope)
        depth = max(cfg.candidates, limit)
        profile = analyze(query)
        self._embed_ahead(query)
        bm25_ids = store.bm25(words, depth, filters) if cfg.bm25_weight > 0 else []
        vector_hits, file_ranks, quality = self._vector_candidates(store, query, depth, filters)
        symbol_ids = self._symbol_candidates(store, profile, filters) if cfg.symbol_weight > 0 else []

        candidates = self._gather(store, bm25_ids, vector_hits, symbol_ids, file_ranks)
        weights = source_weights(cfg.bm25_weight, cfg.vector_weight, cfg.symbol_weight, self.ranking)
        depth = max(limit, self.settings.reranker.candidates) if self.reranker is not None else limit
        ranked = rank_candidates(candidates, profile, depth, weights, rrf_k=cfg.rrf_k,
                                 options=self.ranking)
        rerank_scores: dict[int, float] = {}
        if self.reranker is not None and ranked:
            ranked, rerank_scores = self._rerank(query, ranked, quality)
        ranked = ranked[:limit]
        top = ranked[0].score if ranked and ranked[0].score > 0 else 1.0
        results = [_result(c, top, rerank_scores.get(c.id), explain) for c in ranked]
        self._annotate(store, ranked, results)
        took = (time.perf_counter() - started) * 1000
        return SearchResponse(query=query, results=results, search_quality=quality, took_ms=round(took, 2))

    def _annotate(self, store: IndexStore, ranked: list[Candidate], results: list[SearchResult]) -> None:
        """What a result learns after ranking: here, whether its file changed since it was indexed."""
        _mark_stale(self.root, store, results)

    @staticmethod
    def _gather(
        store: IndexStore, bm25_ids: list[int], vector_hits: list[tuple[int, float]], symbol_ids: list[int],
        file_ranks: dict[str, int],
    ) -> list[Candidate]:
        """One candidate per chunk any list found, with its rank in each list and its stored features."""
        rows = store.chunks_with_features(list(dict.fromkeys([*bm25_ids, *(c for c, _ in vector_hits), *symbol_ids])))
        candidates: dict[int, Candidate] = {}

        def candidate(cid: int) -> Candidate | None:
            if cid not in candidates:
                row = rows.get(cid)
                if row is None:  # vector cache newer than this reader's snapshot
                    return None
                c, digest, traits = row
                candidates[cid] = Candidate(
                    id=cid, path=c.path, start_line=c.start_line, end_line=c.end_line, content=c.content,
                    content_type=c.content_type, language=c.language, symbol=c.symbol, symbol_type=c.symbol_type,
                    file_rank=file_ranks.get(c.path), digest=digest, traits=traits,
                )
            return candidates[cid]

        for rank, cid in enumerate(bm25_ids, 1):
            if (found := candidate(cid)) is not None:
                found.bm25_rank = rank
        for rank, (cid, similarity) in enumerate(vector_hits, 1):
            if (found := candidate(cid)) is not None:
                found.vector_rank, found.vector_score = rank, similarity
        for rank, cid in enumerate(symbol_ids, 1):
            if (found := candidate(cid)) is not None:
                found.symbol_rank = rank
        return list(candidates.values())

    def _rerank(
        self, query: str, ranked: list[Candidate], quality: SearchQuality
    ) -> tuple[list[Candidate], dict[int, float]]:
        """Reorder the top candidates by the configured reranker's scores.

        A reranker that fails leaves the ranking as it was and says so in `search_quality`
        (degraded, with the reason): never a silent fallback, never a failed search.
        """
        assert self.reranker is not None
        quality.reranker = self.reranker.label
        documents = [f"{c.path} {c.symbol or ''}\n{c.content[:RERANK_CHARS]}" for c in ranked]
        try:
            scores = self.reranker.score(query, documents)
        except RerankError as exc:
            log.warning("reranking failed: %s", exc)
            note = f"reranker_unavailable: {exc}"
            quality.degraded = True
            quality.reason = f"{quality.reason}; {note}" if quality.reason else note
            return ranked, {}
        quality.reranker = self.reranker.label  # now names the wire format that answered
        by_id = {c.id: s for c, s in zip(ranked, scores, strict=True)}
        order = sorted(range(len(ranked)), key=lambda i: (-scores[i], i))  # ties keep the ranking's order
        low, high = min(scores), max(scores)
        out = []
        for i in order:  # the displayed score follows the reranker: 1.0 for its best
            c = ranked[i]
            c.score = 1.0 if high == low else 0.01 + 0.99 * (scores[i] - low) / (high - low)
            out.append(c)
        return out, by_id

    def _symbol_candidates(self, store: IndexStore, profile: QueryProfile, filters: Filters) -> list[int]:
        """Chunks whose symbol the query names: definitions before methods, exact case first.

        BM25 spreads an identifier over every chunk that mentions it; this list puts the chunk
        that defines it on top. A bare word is most likely a name; in a sentence only code-shaped
        words count, since plain English words (`app`, `load`) would drag in unrelated symbols.
        """
        wanted = {re.split(r"\.|::|->|#", name)[-1]: name for name in profile.names}
        words = {own.lower(): own for own in wanted if own}
        if not words:
            return []
        rows = store.by_name(list(words), 200, filters)  # in file order: first window first
        first: dict[tuple[str, str], tuple[int, str | None]] = {}
        for cid, path, symbol, kind in rows:  # a big symbol's later windows are not its definition
            first.setdefault((path, symbol), (cid, kind))

        def order(item: tuple[tuple[str, str], tuple[int, str | None]]) -> tuple[int, int]:
            (_, symbol), (_, kind) = item
            exact = 0 if symbol.rsplit(".", 1)[-1] in words.values() else 1
            return exact, 1 if kind == "method" else 0 if kind in DEFINITIONS else 2

        return [cid for _, (cid, _) in sorted(first.items(), key=order)]

    def _embed_ahead(self, query: str) -> None:
        """Start embedding the query on a worker thread while BM25 and the name lookup run (the model
        leaves the GIL): its ~2 ms overlaps theirs. A vector nobody asks for is dropped."""
        self._ahead.job = None
        if self.embedder is None or self.settings.search.vector_weight <= 0:
            return
        try:
            text = self.embedder.identity.query_prefix + query
        except Exception:  # reported where the vector is needed
            return
        with self._workers_lock:
            if self._workers is None:
                self._workers = ThreadPoolExecutor(max_workers=2, thread_name_prefix="amanmcp-query")
        self._ahead.job = (text, self._workers.submit(self.embedder.embed_query, text))

    def _query_vector(self, text: str) -> np.ndarray:
        """The query's vector: the one started ahead for this text, else embedded now."""
        job, self._ahead.job = getattr(self._ahead, "job", None), None
        if job is not None and job[0] == text:
            return job[1].result()
        assert self.embedder is not None
        return self.embedder.embed_query(text)

    def _tier_candidates(
        self, query: str, depth: int, filters: Filters, store: IndexStore, upgrade: Upgrade
    ) -> tuple[list[tuple[int, float]], dict[str, int], SearchQuality] | None:
        """While a first build's own vectors are built: its static tier's nearest chunks and file
        ranks (in its own space, never mixed with another), or None when it has none or it fails."""
        tier = upgrade.tier
        if tier is None or self._generation is None:
            return None
        try:
            if self._tier is None or self._tier[0] != self._generation:
                loaded = VectorIndex.load(self._generation / TIER, 0)
                if loaded is None:
                    return None
                self._tier = (self._generation, loaded)
            if self._tier_model is None or self._tier_model.identity != tier:
                self._tier_model = tier_embedder(self.settings.embeddings.model)
            if self._tier_model is None or self._tier_model.identity != tier:
                return None
            vector = self._tier_model.embed_query(query)
        except Exception as exc:  # the tier is a courtesy: BM25 answers without it
            log.warning("static tier unavailable: %s", exc)
            return None
        index = self._tier[1]
        allowed = store.filtered_ids(filters) if filters.active else None
        quality = SearchQuality(mode="hybrid", degraded=True, reason=upgrade.describe(tier=True),
                                backend=tier.backend, model=tier.model)
        return index.search(vector, depth, allowed), index.file_ranks(vector, FILE_DEPTH), quality

    def _vector_candidates(
        self, store: IndexStore, query: str, depth: int, filters: Filters
    ) -> tuple[list[tuple[int, float]], dict[str, int], SearchQuality]:
        """Nearest chunks (id, cosine), files ranked by their centroid, and what answered."""
        meta = read_meta(store)
        index_identity = meta.identity
        backend = index_identity.backend if index_identity else ""
        model = index_identity.model if index_identity else ""

        def bm25_only(reason: str) -> tuple[list[tuple[int, float]], dict[str, int], SearchQuality]:
            return [], {}, SearchQuality(mode="bm25_only", degraded=True, reason=reason, backend=backend, model=model)

        if self.settings.search.vector_weight <= 0:
            return bm25_only("vector search disabled (search.vector_weight = 0)")
        if self.embedder is None or index_identity is None:
            return bm25_only("embedder_unavailable: no embedder configured")
        try:
            identity = self.embedder.identity
        except Exception as exc:
            return bm25_only(f"embedder_unavailable: {exc}")
        if identity != index_identity:
            return bm25_only(
                f"embedder_mismatch: the index was built with {index_identity.label()}, the current embedder "
                f"is {identity.label()}; re-run `amanmcp index` to re-embed, or select the index's embedder"
            )
        if not meta.complete:  # a first build: its vectors count only once all are in (never part of a space)
            if meta.upgrade is None:
                return bm25_only("indexing: a first build is storing the project's text; vectors follow it")
            tiered = self._tier_candidates(query, depth, filters, store, meta.upgrade)
            return tiered if tiered is not None else bm25_only(meta.upgrade.describe())
        try:
            vector = self._query_vector(identity.query_prefix + query)
        except Exception as exc:
            log.warning("query embedding failed: %s", exc)
            return bm25_only(f"embedder_unavailable: {exc}")
        index = self._vector_index(store, identity, meta.vectors_version)
        allowed = store.filtered_ids(filters) if filters.active else None
        hits = index.search(vector, depth, allowed)
        files = index.file_ranks(vector, FILE_DEPTH)
        mode = "hybrid" if self.settings.search.bm25_weight > 0 else "vector_only"
        provenance = getattr(self.embedder, "provenance", None)  # set by embed.factory
        if provenance is not None and provenance.fallback:  # vectors work, but not from the preferred model
            reason = f"embedder_fallback: {provenance.reason}"
            return hits, files, SearchQuality(mode=mode, degraded=True, reason=reason, backend=backend, model=model)
        return hits, files, SearchQuality(mode=mode, degraded=False, reason="", backend=backend, model=model)


def _result(c: Candidate, top: float, rerank_score: float | None, explain: bool) -> SearchResult:
    info = None
    if explain:
        info = Explain(
            bm25_rank=c.bm25_rank, vector_rank=c.vector_rank, symbol_rank=c.symbol_rank, file_rank=c.file_rank,
            vector_score=round(c.vector_score, 4) if c.vector_score is not None else None,
            rrf_score=round(c.fused, 6), final_score=round(c.score, 6), signals=c.signals,
            rerank_score=round(rerank_score, 6) if rerank_score is not None else None,
        )
    return SearchResult(
        path=c.path, start_line=c.start_line, end_line=c.end_line, symbol=c.symbol, symbol_type=c.symbol_type,
        language=c.language, content_type=c.content_type, score=round(max(c.score, 0.0) / top, 4),
        content=c.content, explain=info,
    )


# The kinds of symbol the chunker emits (`symbol_type` of a chunk); anything else matches nothing.
SYMBOL_TYPES = ("function", "method", "class", "struct", "interface", "trait", "type", "enum", "module", "impl",
                "namespace", "macro", "test", "section")


def _check_scope(store: IndexStore, prefixes: tuple[str, ...]) -> None:
    """Each scope prefix must be an indexed file or a folder holding one; otherwise a SearchError
    that names what the nearest existing folder does hold."""
    paths = list(store.file_stats())
    for prefix in prefixes:
        if any(p == prefix or p.startswith(prefix + "/") for p in paths):
            continue
        parent = prefix
        while parent and not any(p.startswith(parent + "/") for p in paths):
            parent = parent.rpartition("/")[0]
        under = parent + "/" if parent else ""
        entries = sorted({under + p[len(under):].split("/", 1)[0] for p in paths if p.startswith(under)})
        where = f"under {parent}/ the index holds" if parent else "the index's top-level files and folders are"
        listed = ", ".join(entries[:20]) + (f" and {len(entries) - 20} more" if len(entries) > 20 else "")
        raise SearchError(f"scope {prefix!r} matches no indexed file or folder (scopes are paths relative to "
                          f"the project root; a folder may be excluded or not yet indexed); {where}: "
                          f"{listed or 'nothing yet'}")


def _is_text(value: str) -> bool:
    """Whether `value` can be stored, searched and answered as UTF-8 (no lone surrogates)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def preview(value: object, width: int = 60) -> str:
    """A bad argument as the message quotes it: its repr, cut short (a 100 KB value is not echoed back)."""
    text = repr(value)
    return text if len(text) <= width else text[: width - 1] + "…"


def _choice(name: str, value: object, allowed: tuple[str, ...], what: str = "") -> str | None:
    """`value` lower-cased if it is one of `allowed` (None or blank: no filter); otherwise a SearchError
    that lists the valid values."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, str) and value.strip().lower() in allowed:
        return value.strip().lower()
    if not allowed:
        raise SearchError(f"{name} {preview(value)} matches nothing: the index holds no files yet")
    listed = ", ".join(allowed)
    raise SearchError(f"{name} must be one of {what + ': ' if what else ''}{listed}, not {preview(value)}")


def changed_files(root: Path, indexed: dict[str, tuple[int, float]]) -> set[str]:
    """Which of these indexed files (path -> size, mtime when indexed) differ on disk now, or are gone.

    One stat per file, no reading: the same size+mtime test the incremental indexer trusts.
    """
    changed = set()
    for path, recorded in indexed.items():
        try:
            st = (root / path).stat()
        except (OSError, ValueError):
            changed.add(path)
            continue
        if (st.st_size, st.st_mtime) != (recorded[0], recorded[1]):
            changed.add(path)
    return changed


def _mark_stale(root: Path, store: IndexStore, results: list[SearchResult]) -> None:
    """Flag results whose file changed on disk since it was indexed, so no one quotes outdated lines as current."""
    paths = {r.path for r in results}
    if not paths:
        return
    indexed = store.file_stats(paths)
    changed = changed_files(root, indexed) | (paths - indexed.keys())  # not in the files table: unknown, so stale
    for r in results:
        r.stale = r.path in changed
