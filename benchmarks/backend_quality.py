"""NDCG@10 per embedding backend on all bench corpora (pip and vendored), vector-only and hybrid.

    python benchmarks/backend_quality.py [local-onnx local-onnx-int8 static static-hashed ...]

The speed side of the decision is `amanmcp bench`; this is the quality side. Names are the bench
targets (amanmcp.bench.TARGETS). Each corpus is copied to a temporary folder, so the indexes that
benchmarks/quality.py keeps beside the cached corpora are left alone.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from corpora import corpora

from amanmcp.bench import TARGETS, settings_for
from amanmcp.config import Settings
from amanmcp.embed.factory import make_backend
from amanmcp.evaluation import evaluate, load_cases
from amanmcp.indexer import Indexer
from amanmcp.search import Searcher

DEFAULT = ["local-onnx", "local-onnx-int8", "static", "static-hashed"]


def main() -> None:
    names = sys.argv[1:] or DEFAULT
    with tempfile.TemporaryDirectory(prefix="amanmcp-quality-") as tmp:
        roots = {}
        for corpus in corpora():
            roots[corpus.name] = Path(tmp) / corpus.name / corpus.root_name
            shutil.copytree(corpus.prepare(), roots[corpus.name], ignore=shutil.ignore_patterns(".amanmcp"))
        names_row = " ".join(f"{c.name[:9]:>9}" for c in corpora())
        print(f"{'backend':<18} {'mode':<7} {names_row}      mean  index s")
        for name in names:
            backend, overrides = TARGETS[name]
            base = settings_for(Settings(), overrides)
            embedder = make_backend(backend, base)
            for mode in ("vector", "hybrid"):
                settings = base.model_copy(deep=True)
                if mode == "vector":
                    settings.search.bm25_weight = 0.0
                scores, started = [], time.perf_counter()
                for corpus in corpora():
                    root = roots[corpus.name]
                    Indexer(root, settings, embedder).run()  # a new embedder re-embeds everything
                    searcher = Searcher(root, settings, embedder)
                    report = evaluate(lambda q, s=searcher: s.search(q, limit=10).results,
                                      load_cases(corpus.queries), corpus.root_name)
                    scores.append(report.overall.ndcg)
                mean = sum(scores) / len(scores)
                print(f"{name:<18} {mode:<7} " + " ".join(f"{s:>9.3f}" for s in scores)
                      + f" {mean:>9.3f} {time.perf_counter() - started:>8.1f}", flush=True)

if __name__ == "__main__":
    main()
