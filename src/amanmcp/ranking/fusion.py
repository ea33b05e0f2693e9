"""Fusion of the retrievers' ranked lists, de-duplication and the final per-file-diverse selection."""

from __future__ import annotations

import heapq
from collections.abc import Mapping

from amanmcp.ranking.candidates import Candidate

SOURCES = ("bm25", "vector", "symbol")


def fuse(candidates: list[Candidate], weights: Mapping[str, float], k: int) -> None:
    """Weighted reciprocal rank fusion, normalised so agreement of every active list at rank 1 is 1.0.

    A list that found nothing does not count toward the ceiling, so a BM25-only answer scores
    on the same 0-1 scale as a hybrid one. The file list (files ranked by how close their mean
    vector is to the query) adds to every chunk of a file, as a bonus outside the ceiling: a
    file's evidence adds up without a big file's many windows counting more.
    """
    active = {s for s in SOURCES for c in candidates if getattr(c, f"{s}_rank") is not None}
    ceiling = sum(weights.get(s, 0.0) for s in active) / (k + 1) or 1.0
    for c in candidates:
        total = 0.0
        for source in SOURCES:
            rank = getattr(c, f"{source}_rank")
            if rank is not None:
                total += weights.get(source, 0.0) / (k + rank)
        if c.file_rank is not None:
            total += weights.get("file", 0.0) / (k + c.file_rank)
        c.fused = c.score = total / ceiling


def dedupe(candidates: list[Candidate]) -> list[Candidate]:
    """Keep the best-scored of identical chunks (a copied or symlinked tree shows once)."""
    best: dict[str, Candidate] = {}
    for c in sorted(candidates, key=lambda c: (-c.score, c.path, c.start_line)):
        best.setdefault(c.features()[0], c)
    kept = {id(c) for c in best.values()}
    return [c for c in candidates if id(c) in kept]


def select(candidates: list[Candidate], limit: int, decay: float) -> list[Candidate]:
    """The top `limit`, each further chunk of a file already chosen scaled by `decay` per chunk.

    One huge file's windows cannot crowd out every other file; a second chunk of a file still
    shows when it beats the next file's best. Ties break by path and line, so answers are stable.
    """
    taken: dict[str, int] = {}
    heap = [(-c.score, c.path, c.start_line, 0, i) for i, c in enumerate(candidates)]
    heapq.heapify(heap)
    out: list[Candidate] = []
    while heap and len(out) < limit:
        neg, path, line, seen, i = heapq.heappop(heap)
        count = taken.get(path, 0)
        if count != seen:  # the file gained a result since this score was computed
            c = candidates[i]
            heapq.heappush(heap, (-c.score * decay**count, path, line, count, i))
            continue
        c = candidates[i]
        if count and decay < 1:
            c.signals["same_file"] = round(decay**count, 4)
        c.score = -neg
        out.append(c)
        taken[path] = count + 1
    return out
