"""The peer row: semble (PyPI) with a static model distilled from amanmcp's default model.

Runs in its own virtual environment (never amanmcp's dependencies), made on first use in the
bench cache by `ensure_venv()`:

    python semble_row.py distill SOURCE_MODEL_DIR OUT_DIR     # model2vec's own distiller
    python semble_row.py search MODEL_DIR ROOT QUERIES.json   # prints JSON: results per query

`search` uses semble's defaults, as its MCP `search` tool does: code files, top 10, reranking on.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

SEMBLE = "semble==0.7.0"
# torch pinned: an unpinned one is a multi-GB CUDA build on these machines.
REQUIREMENTS = [SEMBLE, "model2vec[distill,quantization]>=0.10", "torch==2.13.0"]


def ensure_venv(cache: Path) -> Path:
    """Python of a venv holding semble and model2vec's distiller, created once."""
    venv = cache / "semble-venv"
    python = venv / "bin" / "python"
    marker = venv / ".amanmcp-ready"
    if marker.is_file() and marker.read_text() == " ".join(REQUIREMENTS):
        return python
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", *REQUIREMENTS], check=True)
    marker.write_text(" ".join(REQUIREMENTS))
    return python


def ensure_model(python: Path, cache: Path, source: Path) -> Path:
    """The default model distilled by model2vec (PCA 256), cached."""
    out = cache / "semble-models" / f"{source.name}-m2v256"
    if not (out / "model.safetensors").is_file():
        subprocess.run([str(python), __file__, "distill", str(source), str(out)], check=True)
    return out


def run(python: Path, cache: Path, model: Path, root: Path, queries: Path) -> dict:
    """Index `root` with semble and answer every query; semble's own cache kept apart per run."""
    env = {**os.environ, "XDG_CACHE_HOME": str(cache / "semble-xdg"), "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([str(python), __file__, "search", str(model), str(root), str(queries)],
                          check=True, capture_output=True, text=True, env=env)
    return json.loads(done.stdout)


def _distill(source: str, out: str) -> None:
    from model2vec.distill import distill

    distill(model_name=source, pca_dims=256).save_pretrained(out)


def _search(model: str, root: str, queries: str) -> None:
    import shutil

    from semble import SembleIndex

    shutil.rmtree(Path(os.environ["XDG_CACHE_HOME"]), ignore_errors=True)  # time a real index, not a cache hit
    started = time.perf_counter()
    index = SembleIndex.from_path(root, model_path=model)
    index_s = time.perf_counter() - started
    results, times = [], []
    for case in json.loads(Path(queries).read_text()):
        t = time.perf_counter()
        found = index.search(case["query"], top_k=10)
        times.append((time.perf_counter() - t) * 1000)
        results.append([{"path": r.chunk.file_path.replace("\\", "/"), "start_line": r.chunk.start_line,
                         "end_line": r.chunk.end_line} for r in found])
    times.sort()
    print(json.dumps({"index_s": index_s, "query_p50_ms": times[len(times) // 2], "results": results}))


if __name__ == "__main__":
    command, *args = sys.argv[1:]
    {"distill": _distill, "search": _search}[command](*args)
