"""Warm query latency of a PostgreSQL team store holding a large synthetic repository.

    python benchmarks/store_latency.py --store postgresql://... [--chunks 100000] [--queries 200]
                                       [--exact-max N] [--search-only]

Writes a synthetic Python project (one function per chunk, words drawn from a Zipf-like
vocabulary), indexes it with the static backend into the store as repository `synthetic`, then
times `search` (hybrid, 10 results) for each query after one warm-up pass: p50, p95, p99, max.
`--search-only` times the repository already in the store; `--exact-max` sets
store.exact_search_max (above it pgvector's HNSW index answers; default 20,000).
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

from amanmcp.config import Settings
from amanmcp.embed.factory import select_embedder
from amanmcp.team import make_indexer, make_searcher

WORDS = ("request response session cookie token retry backoff parse config file cache lock queue worker "
         "thread pool socket stream buffer encode decode json yaml schema model field query index search rank "
         "score vector embed chunk symbol path scan watch event handler router middleware template render user "
         "account invoice payment order cart price total tax discount email address validate error timeout").split()


def write_corpus(root: Path, chunks: int, per_file: int = 25, seed: int = 7) -> None:
    rng = random.Random(seed)
    weights = [1 / (i + 1) for i in range(len(WORDS))]
    for f in range(0, chunks, per_file):
        lines = []
        for i in range(f, min(f + per_file, chunks)):
            a, b = rng.choices(WORDS, weights, k=2)
            body = " ".join(rng.choices(WORDS, weights, k=12))
            lines += [f"def {a}_{b}_{i}(value):", f'    """{body}."""', f"    return {a}_value(value) + {i}", "", ""]
        target = root / f"pkg{f // 5000}" / f"mod{f}.py"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", required=True)
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--exact-max", type=int, default=None)
    parser.add_argument("--search-only", action="store_true")
    args = parser.parse_args()

    settings = Settings()
    settings = settings.model_copy(update={"store": settings.store.model_copy(update={"url": args.store})})
    if args.exact_max is not None:
        settings.store.exact_search_max = args.exact_max
    embedder = select_embedder(settings, "static").embedder
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder) / "synthetic"
        if not args.search_only:
            write_corpus(root, args.chunks)
            started = time.perf_counter()
            report = make_indexer(root, settings, embedder, repo="synthetic").run(force=True)
            print(f"indexed {report.chunks_total} chunks in {time.perf_counter() - started:.1f}s "
                  f"({report.timings})", file=sys.stderr)
        searcher = make_searcher(root, settings, embedder, repos=["synthetic"])
        rng = random.Random(11)
        queries = [" ".join(rng.sample(WORDS, rng.choice((1, 2, 3)))) for _ in range(args.queries)]
        for q in queries[:20]:  # warm: connection, caches, the model
            searcher.search(q)
        times = []
        for q in queries:
            t = time.perf_counter()
            searcher.search(q)
            times.append((time.perf_counter() - t) * 1000)
        times.sort()
        pick = lambda p: times[min(len(times) - 1, int(p * len(times)))]  # noqa: E731
        print(f"store.exact_search_max {settings.store.exact_search_max}, queries {len(times)}: "
              f"p50 {statistics.median(times):.1f} ms, "
              f"p95 {pick(0.95):.1f} ms, p99 {pick(0.99):.1f} ms, max {times[-1]:.1f} ms")


if __name__ == "__main__":
    main()
