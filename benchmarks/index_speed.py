"""Full-index time and chunks/s on wheel package folders (default: flask and django).

    python benchmarks/index_speed.py [flask==3.1.2:flask django==5.2.8:django ...]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from corpora import unpack

from amanmcp.config import Settings
from amanmcp.embed.local import LocalEmbedder
from amanmcp.indexer import Indexer

DEFAULT = ["flask==3.1.2:flask", "django==5.2.8:django"]


def main() -> None:
    embedder = LocalEmbedder()
    embedder.embed_documents(["warm up"])  # model load is not index time
    print(f"{'corpus':<16} {'files':>6} {'chunks':>7} {'total s':>8} {'chunks/s':>9}  stages (s)")
    for spec in sys.argv[1:] or DEFAULT:
        requirement, package_root = spec.split(":")
        root = unpack(requirement, package_root)
        started = time.perf_counter()
        report = Indexer(root, Settings(), embedder).run(force=True)
        total = time.perf_counter() - started
        stages = " ".join(f"{k} {v:.1f}" for k, v in report.timings.items())
        print(f"{requirement:<16} {report.files_total:>6} {report.chunks_total:>7} {total:>8.1f} "
              f"{report.chunks_total / total:>9.1f}  {stages}  device={embedder.device}", flush=True)


if __name__ == "__main__":
    main()
