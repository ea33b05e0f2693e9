"""NDCG@10 of `amanmcp search` on the graded queries in shared/bench (flask, click, requests).

    python benchmarks/quality.py [--corpus flask] [--mode hybrid|bm25|vector] [--json]

Scoring (shared/bench): a target counts once, at the rank of the first result whose path ends
with the target path (and whose lines overlap the target's span, if it has one); relevant and
secondary targets both count; ideal = min(10, number of targets).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from corpora import SHARED_BENCH, corpora, unpack

from amanmcp.config import Settings
from amanmcp.embed.local import LocalEmbedder
from amanmcp.indexer import Indexer
from amanmcp.search import Searcher, SearchResult


def _matches(full_path: str, result: SearchResult, target: str | dict) -> bool:
    if isinstance(target, str):
        return full_path.endswith(target)
    if not full_path.endswith(target["path"]):
        return False
    return result.start_line <= target["end_line"] and result.end_line >= target["start_line"]


def ndcg_at_10(results: list[SearchResult], root_name: str, targets: list[str | dict]) -> float:
    found: set[int] = set()
    dcg = 0.0
    for rank, result in enumerate(results[:10], 1):
        full = f"{root_name}/{result.path}"
        for i, target in enumerate(targets):
            if i not in found and _matches(full, result, target):
                found.add(i)
                dcg += 1.0 / math.log2(rank + 1)
                break
    ideal = sum(1.0 / math.log2(r + 1) for r in range(1, min(10, len(targets)) + 1))
    return dcg / ideal if ideal else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", action="append", help="only these corpora (repeatable)")
    parser.add_argument("--mode", choices=["hybrid", "bm25", "vector"], default="hybrid")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args()

    settings = Settings()
    if args.mode == "bm25":
        settings.search.vector_weight = 0.0
    elif args.mode == "vector":
        settings.search.bm25_weight = 0.0
    embedder = LocalEmbedder()
    rows = []
    for corpus in corpora():
        if args.corpus and corpus["name"] not in args.corpus:
            continue
        root = unpack(corpus["pip"], corpus["root"])
        started = time.perf_counter()
        report = Indexer(root, settings, embedder).run()
        index_s = time.perf_counter() - started
        queries = json.loads((SHARED_BENCH / corpus["queries"]).read_text())
        searcher = Searcher(root, settings, embedder)
        by_category: dict[str, list[float]] = defaultdict(list)
        scores = []
        for q in queries:
            results = searcher.search(q["query"], limit=10).results
            score = ndcg_at_10(results, corpus["root"], [*q["relevant"], *q.get("secondary", [])])
            scores.append(score)
            by_category[q.get("category", "other")].append(score)
        rows.append({
            "corpus": corpus["name"], "queries": len(queries), "ndcg@10": sum(scores) / len(scores),
            "by_category": {k: sum(v) / len(v) for k, v in sorted(by_category.items())},
            "chunks": report.chunks_total, "index_s": index_s,
        })
    if args.json:
        print(json.dumps({"mode": args.mode, "corpora": rows}, indent=2))
        return
    print(f"mode: {args.mode}")
    print(f"{'corpus':<10} {'queries':>7} {'NDCG@10':>8}  by category")
    for r in rows:
        cats = ", ".join(f"{k} {v:.3f}" for k, v in r["by_category"].items())
        print(f"{r['corpus']:<10} {r['queries']:>7} {r['ndcg@10']:>8.3f}  {cats}")
    mean = sum(r["ndcg@10"] for r in rows) / max(len(rows), 1)
    print(f"{'mean':<10} {'':>7} {mean:>8.3f}")


if __name__ == "__main__":
    main()
