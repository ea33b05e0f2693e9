"""Hybrid search: BM25 (FTS5) and vector candidates fused by reciprocal rank fusion.

Vectors are used only when the embedder that answers the query is the one that built the index;
otherwise the search says so and answers from BM25 alone.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path, PurePosixPath
from typing import Literal

from pydantic import BaseModel

from amanmcp.config import Settings
from amanmcp.embed.base import Embedder, EmbedderIdentity
from amanmcp.store import IndexLayout, IndexStore, VectorIndex
from amanmcp.store.db import Filters
from amanmcp.tokens import looks_like_code, query_identifiers, query_words

log = logging.getLogger(__name__)
FILTERS = ("all", "code", "docs")
DEFINITIONS = frozenset({"class", "function", "struct", "interface", "trait", "type", "enum", "module"})


class SearchError(ValueError):
    """The request cannot be answered as asked; the message says why."""


class NoIndexError(SearchError):
    pass


class Explain(BaseModel):
    bm25_rank: int | None
    vector_rank: int | None
    vector_score: float | None
    rrf_score: float


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
    explain: Explain | None = None


class SearchQuality(BaseModel):
    mode: Literal["hybrid", "bm25_only", "vector_only"]
    degraded: bool
    reason: str
    backend: str
    model: str


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

    def __init__(self, root: Path, settings: Settings, embedder: Embedder | None) -> None:
        self.root = root
        self.settings = settings
        self.embedder = embedder
        self.layout = IndexLayout(root)
        self._generation: Path | None = None
        self._store: IndexStore | None = None
        self._vectors: VectorIndex | None = None
        self._vectors_version: int | None = None

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None

    def store(self) -> IndexStore:
        current = self.layout.current()
        if current is None:
            raise NoIndexError(f"{self.root} has no index yet: run `amanmcp index {self.root}` first")
        if current != self._generation or self._store is None:
            self.close()
            self._store = IndexStore(current, readonly=True)
            self._generation = current
            self._vectors = None
        return self._store

    def _vector_index(self, store: IndexStore, identity: EmbedderIdentity) -> VectorIndex:
        version = int(store.get_meta("vectors_version") or 0)
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
        query = query.strip()
        if not query:
            raise SearchError("the query is empty")
        if len(query) > cfg.max_query_chars:
            raise SearchError(f"the query is {len(query):,} characters; the limit is {cfg.max_query_chars:,}")
        words = query_words(query)
        if not words:
            raise SearchError(f"the query {query!r} has no words to search for (only punctuation or symbols)")
        if not 1 <= limit <= 100:
            raise SearchError(f"limit must be between 1 and 100, not {limit}")
        if filter not in FILTERS:
            raise SearchError(f"filter must be one of {', '.join(FILTERS)}, not {filter!r}")
        filters = Filters(
            content_type=None if filter == "all" else filter,
            language=language,
            scope=normalize_scope(self.root, scope),
            symbol_type=symbol_type,
        )

        store = self.store()
        depth = max(cfg.candidates, limit)
        bm25_ids = store.bm25(words, depth, filters) if cfg.bm25_weight > 0 else []
        vector_hits, quality = self._vector_candidates(store, query, depth, filters)

        symbol_ids, symbol_weight = self._symbol_candidates(store, query, filters)

        k = cfg.rrf_k
        fused: dict[int, float] = {}
        for weight, ranked in ((cfg.bm25_weight, bm25_ids), (cfg.vector_weight, [c for c, _ in vector_hits]),
                               (symbol_weight, symbol_ids)):
            for rank, cid in enumerate(ranked, 1):
                fused[cid] = fused.get(cid, 0.0) + weight / (k + rank)
        best = cfg.bm25_weight + (cfg.vector_weight if vector_hits else 0.0) + (symbol_weight if symbol_ids else 0.0)
        ceiling = best / (k + 1) if best else 1.0
        top = sorted(fused, key=lambda cid: -fused[cid])[:limit]

        chunks = store.chunks(top)
        bm25_rank = {cid: r for r, cid in enumerate(bm25_ids, 1)}
        vec_rank = {cid: (r, s) for r, (cid, s) in enumerate(vector_hits, 1)}
        results = []
        for cid in top:
            c = chunks.get(cid)
            if c is None:  # vector cache newer than this reader's snapshot
                continue
            info = None
            if explain:
                vr = vec_rank.get(cid)
                info = Explain(
                    bm25_rank=bm25_rank.get(cid),
                    vector_rank=vr[0] if vr else None,
                    vector_score=round(vr[1], 4) if vr else None,
                    rrf_score=round(fused[cid], 6),
                )
            results.append(
                SearchResult(
                    path=c.path, start_line=c.start_line, end_line=c.end_line, symbol=c.symbol,
                    symbol_type=c.symbol_type, language=c.language, content_type=c.content_type,
                    score=round(fused[cid] / ceiling, 4), content=c.content, explain=info,
                )
            )
        took = (time.perf_counter() - started) * 1000
        return SearchResponse(query=query, results=results, search_quality=quality, took_ms=round(took, 2))

    def _symbol_candidates(self, store: IndexStore, query: str, filters: Filters) -> tuple[list[int], float]:
        """Chunks whose symbol a query word names: definitions before methods, exact case first.

        BM25 spreads an identifier over every chunk that mentions it; this list puts the chunk
        that defines it on top. A one-word query is most likely a name; in a sentence, plain
        English words (`app`, `load`) would drag in unrelated symbols, so only code-shaped ones count.
        """
        words = query_identifiers(query)
        if len(words) > 1:  # in a sentence, only words that look like code name a symbol
            words = {k: v for k, v in words.items() if looks_like_code(v)}
        weight = self.settings.search.symbol_weight
        if not words or weight <= 0:
            return [], 0.0
        rows = store.by_name(list(words), 200, filters)  # in file order: first window first
        first: dict[tuple[str, str], tuple[int, str | None]] = {}
        for cid, path, symbol, kind in rows:  # a big symbol's later windows are not its definition
            first.setdefault((path, symbol), (cid, kind))

        def order(item: tuple[tuple[str, str], tuple[int, str | None]]) -> tuple[int, int]:
            (_, symbol), (_, kind) = item
            exact = 0 if symbol.rsplit(".", 1)[-1] in words.values() else 1
            return exact, 1 if kind == "method" else 0 if kind in DEFINITIONS else 2

        return [cid for _, (cid, _) in sorted(first.items(), key=order)], weight

    def _vector_candidates(
        self, store: IndexStore, query: str, depth: int, filters: Filters
    ) -> tuple[list[tuple[int, float]], SearchQuality]:
        recorded = store.get_meta("embedder")
        index_identity = EmbedderIdentity.from_dict(recorded) if recorded else None
        backend = index_identity.backend if index_identity else ""
        model = index_identity.model if index_identity else ""

        def bm25_only(reason: str) -> tuple[list[tuple[int, float]], SearchQuality]:
            return [], SearchQuality(mode="bm25_only", degraded=True, reason=reason, backend=backend, model=model)

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
        try:
            vector = self.embedder.embed_query(identity.query_prefix + query)
        except Exception as exc:
            log.warning("query embedding failed: %s", exc)
            return bm25_only(f"embedder_unavailable: {exc}")
        index = self._vector_index(store, identity)
        allowed = store.filtered_ids(filters) if filters.active else None
        hits = index.search(vector, depth, allowed)
        mode = "hybrid" if self.settings.search.bm25_weight > 0 else "vector_only"
        provenance = getattr(self.embedder, "provenance", None)  # set by embed.factory
        if provenance is not None and provenance.fallback:  # vectors work, but not from the preferred model
            reason = f"embedder_fallback: {provenance.reason}"
            return hits, SearchQuality(mode=mode, degraded=True, reason=reason, backend=backend, model=model)
        return hits, SearchQuality(mode=mode, degraded=False, reason="", backend=backend, model=model)
