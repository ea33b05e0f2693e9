"""Score a search against graded queries: NDCG@10, MRR@10 and recall@10, overall and per category.

The query file format is the one of `shared/bench/quality/*.json`: a list of
`{"query", "relevant": [path | {"path", "start_line", "end_line"}], "secondary": [...], "category"}`.
A target counts once, at the rank of the first result whose `ROOT/path` ends with the target's
path (and whose lines overlap the target's span, if it has one); relevant and secondary targets
both count; the ideal is min(10, number of targets). Targets are written `ROOT/relative/path`,
where ROOT is the project folder's name, so one file scores a project wherever it lies.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from amanmcp.errors import UsageError

K = 10


class EvalError(UsageError, ValueError):
    """The query file cannot be used; the message says what is wrong and where."""


class Located(Protocol):
    """What scoring needs of a result: where it is."""

    path: str
    start_line: int
    end_line: int


@dataclass(frozen=True, slots=True)
class Target:
    path: str
    start_line: int | None = None
    end_line: int | None = None

    def matches(self, full_path: str, result: Located) -> bool:
        if not full_path.endswith(self.path):
            return False
        if self.start_line is None or self.end_line is None:
            return True
        return result.start_line <= self.end_line and result.end_line >= self.start_line

    def label(self) -> str:
        return self.path if self.start_line is None else f"{self.path}:{self.start_line}-{self.end_line}"


@dataclass(frozen=True, slots=True)
class QueryCase:
    query: str
    targets: tuple[Target, ...]  # relevant first, then secondary
    category: str


@dataclass(frozen=True, slots=True)
class Metrics:
    ndcg: float
    mrr: float
    recall: float
    queries: int

    @classmethod
    def mean(cls, outcomes: Sequence[QueryOutcome]) -> Metrics:
        n = len(outcomes)
        if not n:
            return cls(0.0, 0.0, 0.0, 0)
        return cls(
            sum(o.ndcg for o in outcomes) / n, sum(o.mrr for o in outcomes) / n,
            sum(o.recall for o in outcomes) / n, n,
        )


@dataclass(frozen=True, slots=True)
class QueryOutcome:
    query: str
    category: str
    ranks: tuple[int | None, ...]  # per target, 1-based rank within the top K, None if missed
    targets: tuple[Target, ...]
    top: tuple[str, ...]  # the top K results as `path:start-end`, for --verbose

    @property
    def ndcg(self) -> float:
        return ndcg(self.ranks)

    @property
    def mrr(self) -> float:
        found = [r for r in self.ranks if r is not None]
        return 1.0 / min(found) if found else 0.0

    @property
    def recall(self) -> float:
        return sum(r is not None for r in self.ranks) / len(self.ranks) if self.ranks else 0.0


@dataclass(slots=True)
class EvalReport:
    overall: Metrics
    by_category: dict[str, Metrics]
    outcomes: list[QueryOutcome] = field(default_factory=list)

    def to_dict(self, verbose: bool = False) -> dict[str, Any]:
        def metrics(m: Metrics) -> dict[str, float | int]:
            return {"ndcg@10": round(m.ndcg, 4), "mrr@10": round(m.mrr, 4), "recall@10": round(m.recall, 4),
                    "queries": m.queries}

        out: dict[str, Any] = {"overall": metrics(self.overall),
                               "by_category": {k: metrics(v) for k, v in self.by_category.items()}}
        if verbose:
            out["queries"] = [
                {"query": o.query, "category": o.category, "ndcg@10": round(o.ndcg, 4),
                 "targets": [{"target": t.label(), "rank": r} for t, r in zip(o.targets, o.ranks, strict=True)],
                 "top": list(o.top)}
                for o in self.outcomes
            ]
        return out


def ndcg(ranks: Sequence[int | None]) -> float:
    """NDCG@K from each target's rank (None: not in the top K); ideal = min(K, targets)."""
    dcg = sum(1.0 / math.log2(r + 1) for r in ranks if r is not None)
    ideal = sum(1.0 / math.log2(r + 1) for r in range(1, min(K, len(ranks)) + 1))
    return dcg / ideal if ideal else 0.0


def target_ranks(results: Sequence[Located], root_name: str, targets: Sequence[Target]) -> tuple[int | None, ...]:
    """Each target's rank: the first result in the top K that matches it and no earlier target.

    A result is credited to at most one target, so one chunk cannot satisfy two files.
    """
    ranks: list[int | None] = [None] * len(targets)
    for rank, result in enumerate(results[:K], 1):
        full = f"{root_name}/{result.path}"
        for i, target in enumerate(targets):
            if ranks[i] is None and target.matches(full, result):
                ranks[i] = rank
                break
    return tuple(ranks)


def _target(raw: object, where: str) -> Target:
    if isinstance(raw, str) and raw:
        return Target(raw)
    if isinstance(raw, dict) and isinstance(raw.get("path"), str):
        start, end = raw.get("start_line"), raw.get("end_line")
        if start is None and end is None:
            return Target(raw["path"])
        if isinstance(start, int) and isinstance(end, int) and 1 <= start <= end:
            return Target(raw["path"], start, end)
    raise EvalError(f"{where}: a target must be a path or {{path, start_line, end_line}}, not {raw!r}")


def load_cases(path: Path) -> list[QueryCase]:
    """Parse a query file; any malformed entry is an EvalError naming it."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise EvalError(f"cannot read {path}: {exc.strerror or exc}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise EvalError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(data, list) or not data:
        raise EvalError(f"{path}: expected a non-empty list of queries")
    cases = []
    for i, entry in enumerate(data):
        where = f"{path} entry {i}"
        if not isinstance(entry, dict) or not isinstance(entry.get("query"), str) or not entry["query"].strip():
            raise EvalError(f"{where}: needs a non-empty \"query\" string")
        relevant = entry.get("relevant")
        if not isinstance(relevant, list) or not relevant:
            raise EvalError(f"{where}: needs a non-empty \"relevant\" list")
        secondary = entry.get("secondary") or []
        if not isinstance(secondary, list):
            raise EvalError(f"{where}: \"secondary\" must be a list")
        targets = tuple(_target(t, where) for t in [*relevant, *secondary])
        cases.append(QueryCase(entry["query"], targets, str(entry.get("category") or "other")))
    return cases


def evaluate(
    search: Callable[[str], Sequence[Located]], cases: Sequence[QueryCase], root_name: str
) -> EvalReport:
    """Run every query through `search` (top K results, best first) and score it."""
    outcomes = []
    for case in cases:
        results = list(search(case.query))[:K]
        ranks = target_ranks(results, root_name, case.targets)
        top = tuple(f"{r.path}:{r.start_line}-{r.end_line}" for r in results)
        outcomes.append(QueryOutcome(case.query, case.category, ranks, case.targets, top))
    groups: dict[str, list[QueryOutcome]] = defaultdict(list)
    for outcome in outcomes:
        groups[outcome.category].append(outcome)
    return EvalReport(Metrics.mean(outcomes), {k: Metrics.mean(v) for k, v in sorted(groups.items())}, outcomes)
