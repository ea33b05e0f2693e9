"""Ranking: pure functions from retrieved candidates to the ordered answer.

    analyze(query) -> QueryProfile          shape (identifier / path / sentence) and intents
    fuse                                     weighted RRF of BM25, vector and symbol-name lists
    boost_definitions, boost_path_matches    additive evidence
    apply_priors                             demotions: docs, tests, examples, generated, fragments
    dedupe, select                           identical chunks once; files do not crowd each other out

`rank()` runs them in that order. Nothing here does I/O, so every step is unit-tested on made-up
candidates in milliseconds, and `RankingOptions` switches each off for ablations.
"""

from __future__ import annotations

from dataclasses import dataclass

from amanmcp.ranking.candidates import Candidate
from amanmcp.ranking.fusion import dedupe, fuse, select
from amanmcp.ranking.query import QueryProfile, analyze
from amanmcp.ranking.signals import apply_priors, boost_definitions, boost_path_matches

__all__ = ["Candidate", "QueryProfile", "RankingOptions", "analyze", "rank", "source_weights"]

SAME_FILE_DECAY = 0.5


@dataclass(frozen=True, slots=True)
class RankingOptions:
    """Which ranking steps run; all on by default (benchmarks switch them off one at a time)."""

    shape_weights: bool = True
    definitions: bool = True
    path_match: bool = True
    docs_prior: bool = True
    role_prior: bool = True
    fragment_prior: bool = True
    dedupe: bool = True
    diversity: bool = True


def source_weights(query: QueryProfile, bm25: float, vector: float, symbol: float,
                   options: RankingOptions = RankingOptions()) -> dict[str, float]:
    """Per-list fusion weights: a bare identifier leans on exact names, a sentence on meaning."""
    if options.shape_weights and query.shape == "identifier":
        return {"bm25": bm25, "vector": vector * 0.5, "symbol": symbol * 1.5}
    if options.shape_weights and query.shape == "path":
        return {"bm25": bm25, "vector": vector * 0.5, "symbol": symbol}
    return {"bm25": bm25, "vector": vector, "symbol": symbol}


def rank(
    candidates: list[Candidate],
    query: QueryProfile,
    limit: int,
    weights: dict[str, float],
    *,
    rrf_k: int = 60,
    options: RankingOptions = RankingOptions(),
) -> list[Candidate]:
    """The best `limit` candidates, best first, each with its final `score` and `signals`."""
    if not candidates:
        return []
    fuse(candidates, weights, rrf_k)
    if options.definitions:
        boost_definitions(candidates, query)
    if options.path_match:
        boost_path_matches(candidates, query)
    apply_priors(candidates, query, docs=options.docs_prior, roles=options.role_prior,
                 fragments=options.fragment_prior)
    if options.dedupe:
        candidates = dedupe(candidates)
    return select(candidates, limit, SAME_FILE_DECAY if options.diversity else 1.0)
