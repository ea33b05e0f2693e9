"""`amanmcp bench`: the decision benchmark of the reference system, as a command.

For each embedding backend (or those named), on the same texts — chunks of a project, embedded
exactly as the indexer embeds them — measure: availability, batch-32 latency (median of several
runs), chunks/s over all N texts, single-query latency (median), dimensions, model start-up and
peak memory. Each backend runs in its own process, so peak memory is its own and one runtime's
threads never slow another's. HTTP backends measure the client side of a real server.
`local-torch` runs only where torch is installed (the `gpu` extra); elsewhere its row says it was
skipped and why, and nothing imports torch.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from amanmcp.config import Settings, load_config

# name → (backend, settings overrides). Names a user can pass to --backends.
TARGETS: dict[str, tuple[str, dict[str, dict[str, Any]]]] = {
    "local": ("local", {}),
    "local-torch": ("local", {"embeddings": {"runtime": "torch"}}),
    "local-onnx": ("local", {"embeddings": {"runtime": "onnx", "quantize": False}}),
    "local-onnx-int8": ("local", {"embeddings": {"runtime": "onnx", "quantize": True}}),
    "static": ("static", {}),
    "static-hashed": ("static", {"static": {"model": "hashed"}}),
    "mlx": ("mlx", {}),
    "ollama": ("ollama", {}),
    "openai": ("openai", {}),
}
DEFAULT_TARGETS = ("local-torch", "local-onnx", "local-onnx-int8", "static", "static-hashed", "mlx", "ollama", "openai")
QUERIES = (
    "where are retries handled", "parse the configuration file", "HttpClient", "how is the index stored on disk",
    "validate user input", "connection pool timeout", "render a template", "def main", "read environment variables",
    "sort results by score",
)
BATCH = 32


@dataclass(slots=True)
class BenchResult:
    name: str
    backend: str
    available: bool
    detail: str  # the model and runtime, or why it is unavailable
    dimensions: int | None = None
    load_s: float | None = None
    batch32_ms: float | None = None
    chunks_per_s: float | None = None
    query_ms: float | None = None
    peak_mb: float | None = None
    skipped: bool = False  # not measured on purpose (e.g. local-torch without torch): `detail` says why


@dataclass(slots=True)
class BenchReport:
    root: str
    texts: int
    avg_chars: float
    machine: dict[str, Any]
    results: list[BenchResult]

    def ratio(self, name: str, baseline: str) -> float | None:
        """Throughput of `name` over `baseline`, when both ran."""
        by_name = {r.name: r for r in self.results}
        a, b = by_name.get(name), by_name.get(baseline)
        if a and b and a.chunks_per_s and b.chunks_per_s:
            return a.chunks_per_s / b.chunks_per_s
        return None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["ratios"] = {
            f"{n}/local-torch": round(r, 2)
            for n in ("local-onnx", "local-onnx-int8", "static", "openai", "mlx")
            if (r := self.ratio(n, "local-torch")) is not None
        }
        return data


def bench_texts(root: Path, settings: Settings, limit: int) -> list[str]:
    """The first `limit` chunks of the project, as the indexer would send them to the embedder."""
    from amanmcp.chunk import chunk_file
    from amanmcp.indexer import embed_text
    from amanmcp.scan import Scanner, read_text

    cfg = settings.index
    texts: list[str] = []
    for file in Scanner(root, max_file_size=cfg.max_file_size, exclude=cfg.exclude).scan().files:
        try:
            text = read_text(file.abspath)
        except OSError:
            continue
        if not text:
            continue
        try:
            chunks = chunk_file(file.path, text, max_chunk_lines=cfg.max_chunk_lines,
                                max_chunk_chars=cfg.max_chunk_chars, window_lines=cfg.window_lines,
                                window_overlap=cfg.window_overlap)
        except Exception:  # a file the chunker cannot handle is not worth a failed benchmark
            continue
        texts.extend(embed_text(c) for c in chunks)
        if len(texts) >= limit:
            break
    return texts[:limit]


def settings_for(settings: Settings, overrides: dict[str, dict[str, Any]]) -> Settings:
    update = {section: getattr(settings, section).model_copy(update=values) for section, values in overrides.items()}
    return settings.model_copy(update=update)


def skip_reason(name: str) -> str | None:
    """Why a target is not worth a worker process here (None: measure it). Never imports torch."""
    if TARGETS[name][1].get("embeddings", {}).get("runtime") == "torch":
        from amanmcp.embed.local import GPU_EXTRA, torch_available

        if not torch_available():
            return f"skipped: torch and sentence-transformers are not installed (the GPU path: `{GPU_EXTRA}`)"
    return None


def measure(name: str, settings: Settings, texts: list[str], repeats: int) -> BenchResult:
    """One backend, in this process. Fails soft: an unavailable backend is a row, not an error."""
    from amanmcp.embed.base import EmbedderError
    from amanmcp.embed.factory import make_backend

    backend, overrides = TARGETS[name]
    try:
        embedder: Any = make_backend(backend, settings_for(settings, overrides))
        health = getattr(embedder, "health", None)
        if health is not None:
            status = health()
            if not status.ok:
                return BenchResult(name, backend, False, embedder.unreachable_message(status.detail))
        started = time.perf_counter()
        embedder.embed_documents(["warm up"])
        load_s = time.perf_counter() - started
        detail = embedder.describe() if hasattr(embedder, "describe") else embedder.identity.label()
        batch = texts[:BATCH]
        embedder.embed_documents(batch)  # first full batch: allocator and thread pools warm
        latencies = []
        for _ in range(repeats):
            t = time.perf_counter()
            embedder.embed_documents(batch)
            latencies.append(time.perf_counter() - t)
        t = time.perf_counter()
        embedder.embed_documents(texts)
        throughput = len(texts) / (time.perf_counter() - t)
        query_times = []
        for query in QUERIES:
            t = time.perf_counter()
            embedder.embed_query(query)
            query_times.append(time.perf_counter() - t)
        return BenchResult(
            name, backend, True, detail, dimensions=embedder.dimensions, load_s=round(load_s, 3),
            batch32_ms=round(statistics.median(latencies) * 1000, 1), chunks_per_s=round(throughput, 1),
            query_ms=round(statistics.median(query_times) * 1000, 2), peak_mb=round(_peak_rss_mb(), 1),
        )
    except (EmbedderError, OSError, ImportError) as exc:
        return BenchResult(name, backend, False, str(exc).splitlines()[0][:300])


def _peak_rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024  # bytes on macOS, KiB elsewhere


def run_bench(
    root: Path,
    settings: Settings,
    targets: list[str] | None = None,
    limit: int = 256,
    repeats: int = 5,
    on_result: Any = None,
) -> BenchReport:
    """Measure each target in a fresh worker process; `on_result(result)` reports progress."""
    names = list(targets or DEFAULT_TARGETS)
    unknown = [n for n in names if n not in TARGETS]
    if unknown:
        raise ValueError(f"unknown backend(s) {', '.join(unknown)}; choose from: {', '.join(TARGETS)}")
    texts = bench_texts(root, settings, limit)
    if not texts:
        raise ValueError(f"{root} has no indexable text to benchmark on")
    results = []
    with tempfile.TemporaryDirectory(prefix="amanmcp-bench-") as tmp:
        corpus = Path(tmp) / "texts.json"
        corpus.write_text(json.dumps(texts))
        for name in names:
            reason = skip_reason(name)
            if reason is not None:
                result = BenchResult(name, TARGETS[name][0], False, reason, skipped=True)
            else:
                result = _run_worker(name, root, corpus, repeats)
            results.append(result)
            if on_result:
                on_result(result)
    machine = {"platform": platform.platform(), "python": platform.python_version(), "cpus": os.cpu_count(),
               "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()}
    avg = sum(len(t) for t in texts) / len(texts)
    return BenchReport(str(root), len(texts), round(avg, 1), machine, results)


def _run_worker(name: str, root: Path, corpus: Path, repeats: int) -> BenchResult:
    cmd = [sys.executable, "-m", "amanmcp.bench", name, str(root), str(corpus), str(repeats)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return BenchResult(name, TARGETS[name][0], False, f"benchmark worker failed: {tail[:300]}")
    return BenchResult(**json.loads(lines[-1]))


def plot(report: BenchReport, path: Path) -> None:
    """A PNG bar chart: chunks/s and single-query latency per backend."""
    try:
        import matplotlib
    except ImportError:
        raise ValueError("--plot needs matplotlib: `pip install 'amanmcp[plot]'`") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in report.results if r.available]
    if not rows:
        raise ValueError("no backend was available: nothing to plot")
    names = [r.name for r in rows]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 0.6 * len(rows) + 2))
    left.barh(names, [r.chunks_per_s or 0 for r in rows], color="#3b7dd8")
    left.set_xlabel("chunks/s (higher is better)")
    left.set_xscale("log")
    right.barh(names, [r.query_ms or 0 for r in rows], color="#d8833b")
    right.set_xlabel("single query, ms (lower is better)")
    right.set_yticks([])
    for axis in (left, right):
        axis.invert_yaxis()
    fig.suptitle(f"amanmcp bench: {report.texts} chunks (avg {report.avg_chars:.0f} chars), "
                 f"{report.machine['usable_cpus']} CPUs")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _worker(argv: list[str]) -> None:
    """`python -m amanmcp.bench NAME ROOT TEXTS.json REPEATS`: one measurement, one JSON line out."""
    name, root, corpus, repeats = argv
    settings = load_config(Path(root)).settings
    texts = json.loads(Path(corpus).read_text())
    print(json.dumps(asdict(measure(name, settings, texts, int(repeats)))), flush=True)


if __name__ == "__main__":
    _worker(sys.argv[1:])
