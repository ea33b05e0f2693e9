"""NDCG@10 through an embedding server against the in-process model, on the bench corpora.

    python benchmarks/server_quality.py URL [corpus ...]        # e.g. http://127.0.0.1:7997 requests

URL is an OpenAI-compatible API base (Infinity, TEI, vLLM, llama.cpp, `amanmcp embed-server`, ...),
spoken to as `--backend openai` does. Each corpus is copied to a temporary folder and indexed twice,
through the server and with the in-process default model; both are scored vector-only and hybrid
(issue 13's goal: the same NDCG@10 within 0.01 when the server runs the same model).
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from corpora import corpora

from amanmcp.config import Settings
from amanmcp.embed.base import Embedder
from amanmcp.embed.factory import make_backend
from amanmcp.embed.openai import OpenAIEmbedder
from amanmcp.evaluation import evaluate, load_cases
from amanmcp.indexer import Indexer
from amanmcp.search import Searcher


def main() -> None:
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    url, wanted = sys.argv[1], set(sys.argv[2:])
    chosen = [c for c in corpora() if not wanted or c.name in wanted]
    embedders: list[tuple[str, Embedder]] = [
        (f"server {url}", OpenAIEmbedder(url, batch_size=32, max_in_flight=2)),
        ("in-process", make_backend("local", Settings())),
    ]
    print(f"{'embedder':<36} {'corpus':<10} {'vector':>7} {'hybrid':>7} {'index s':>8} {'chunks':>7}")
    with tempfile.TemporaryDirectory(prefix="amanmcp-server-quality-") as tmp:
        for corpus in chosen:
            cases = load_cases(corpus.queries)
            for label, embedder in embedders:
                root = Path(tmp) / label.replace("/", "_").replace(":", "_") / corpus.root_name
                shutil.copytree(corpus.prepare(), root, ignore=shutil.ignore_patterns(".amanmcp"))
                settings = Settings()
                started = time.perf_counter()
                report = Indexer(root, settings, embedder).run()
                seconds = time.perf_counter() - started
                scores = []
                for bm25 in (0.0, settings.search.bm25_weight):
                    mode = settings.model_copy(deep=True)
                    mode.search.bm25_weight = bm25
                    searcher = Searcher(root, mode, embedder)
                    result = evaluate(lambda q, s=searcher: s.search(q, limit=10).results, cases, corpus.root_name)
                    scores.append(result.overall.ndcg)
                print(f"{label:<36} {corpus.name:<10} {scores[0]:>7.3f} {scores[1]:>7.3f} {seconds:>8.1f} "
                      f"{report.chunks_total:>7}", flush=True)
            served = embedders[0][1]
            if isinstance(served, OpenAIEmbedder):
                print(f"  server: {served.describe()}; truncation: {served.truncation_mode()}; "
                      f"cut here: {served.truncated}")


if __name__ == "__main__":
    main()
