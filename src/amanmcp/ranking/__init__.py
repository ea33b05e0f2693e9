"""Ranking: pure functions from retrieved candidates to the ordered answer.

    analyze(query) -> QueryProfile          shape (identifier / path / sentence) and intents
    fuse                                     weighted RRF of BM25, vector and symbol-name lists, plus
                                             the file list (files whose mean vector is nearest)
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
FILE_WEIGHT = 1.0  # of the file-centroid list, relative to the vector list


@dataclass(frozen=True, slots=True)
class RankingOptions:
    """Which ranking steps run; all on by default (benchmarks switch them off one at a time)."""

    file_evidence: bool = True
    definitions: bool = True
    path_match: bool = True
    docs_prior: bool = True
    role_prior: bool = True
    fragment_prior: bool = True
    dedupe: bool = True
    diversity: bool = True


def source_weights(bm25: float, vector: float, symbol: float,
                   options: RankingOptions = RankingOptions()) -> dict[str, float]:
    """Per-list fusion weights (the settings'), the file list weighted like the vector list it comes from.

    Weights by query shape (a bare identifier leaning on names) were measured and changed nothing:
    the definition boost already puts a named definition first.
    """
    return {"bm25": bm25, "vector": vector, "symbol": symbol,
            "file": vector * FILE_WEIGHT if options.file_evidence else 0.0}


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
