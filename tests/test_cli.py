"""The `amanmcp` command as a user runs it: real subprocesses, real exit codes, no tracebacks."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

AMANMCP = [sys.executable, "-m", "amanmcp"]


def run(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*AMANMCP, *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=300)


@pytest.fixture(scope="module")
def indexed_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from conftest import write_project

    root = tmp_path_factory.mktemp("cli") / "shop"
    root.mkdir()
    write_project(root)
    result = run("index", str(root))
    assert result.returncode == 0, result.stderr
    return root


def test_index_prints_stage_table(indexed_project: Path) -> None:
    result = run("index", str(indexed_project))  # second run: incremental, nothing changed
    assert result.returncode == 0, result.stderr
    for stage in ("scan", "chunk", "embed", "store", "index", "total"):
        assert stage in result.stdout
    assert "incremental" in result.stdout and "0 files (re)indexed" in result.stdout


def test_search_json_is_one_document(indexed_project: Path) -> None:
    result = run("search", "HTTPAdapter", "--path", str(indexed_project), "--format", "json", "-n", "5",
                 "-t", "code", "-l", "python")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert set(doc) == {"query", "results", "search_quality", "took_ms"}
    assert set(doc["search_quality"]) == {"mode", "degraded", "reason", "backend", "model", "reranker",
                                           "bm25_only_repos"}
    assert doc["search_quality"]["reranker"] is None  # off by default, and said so
    contract = {"path", "start_line", "end_line", "symbol", "symbol_type", "language", "content_type", "score",
                "content", "stale", "repo"}
    assert all(set(r) == contract for r in doc["results"])  # every key always there, null when unknown
    assert all(r["repo"] is None for r in doc["results"])  # a project's own index: no repositories
    first = doc["results"][0]
    assert (first["path"], first["symbol"], first["start_line"]) == ("src/payments/retry.py", "HTTPAdapter", 16)
    assert all(r["language"] == "python" and r["content_type"] == "code" for r in doc["results"])
    assert len(doc["results"]) <= 5


def test_search_text_and_explain(indexed_project: Path) -> None:
    result = run("search", "where are retries handled", "--path", str(indexed_project), "--debug", "-n", "3")
    assert result.returncode == 0, result.stderr
    assert "src/payments/retry.py:" in result.stdout
    assert "bm25 rank" in result.stdout and "vector rank" in result.stdout


def test_status_and_config_show(indexed_project: Path) -> None:
    status = run("status", "--path", str(indexed_project), "--format", "json")
    assert status.returncode == 0, status.stderr
    info = json.loads(status.stdout)
    assert info["indexed"] and info["files"] == 8 and info["chunks"] > 10 and info["embedder_matches"]
    assert info["skipped"] == {"secret": 3, "binary": 1, "undecodable": 1}
    text = run("status", "--path", str(indexed_project))
    assert "all-MiniLM-L6-v2" in text.stdout and "last indexed" in text.stdout
    (indexed_project / ".amanmcp.yaml").write_text("search:\n  limit: 4\n")
    try:
        env = {**os.environ, "AMANMCP_EMBEDDINGS_BATCH_SIZE": "8"}
        shown = json.loads(run("config", "show", "--json", "--path", str(indexed_project), env=env).stdout)
    finally:
        (indexed_project / ".amanmcp.yaml").unlink()
    assert shown["search.limit"] == {"value": 4, "source": str(indexed_project / ".amanmcp.yaml")}
    assert shown["embeddings.batch_size"] == {"value": 8, "source": "AMANMCP_EMBEDDINGS_BATCH_SIZE"}
    assert shown["search.rrf_k"]["source"] == "default"


@pytest.mark.parametrize(  # exit 2: the request is wrong; 1: it could not be done
    ("args", "message", "code"),
    [
        (["index", "/nonexistent/amanmcp-test"], "does not exist", 2),
        (["search", "x", "--path", "/nonexistent/amanmcp-test"], "does not exist", 2),
        (["search", "***", "--path", "{root}"], "no words", 2),
        (["search", "NEAR(", "--path", "{root}"], None, 0),
        (["search", '"', "--path", "{root}"], "no words", 2),
        (["search", "AND", "--path", "{root}"], None, 0),
        (["search", "x" * 100_000, "--path", "{root}"], "limit is", 2),
        (["search", "retry", "--path", "{root}", "-n", "0"], "limit must be", 2),
        (["search", "retry", "--path", "{root}", "-t", "pictures"], "filter must be", 2),
        (["search", "retry", "--path", "{root}", "-l", "cobol"], "languages: go, javascript, markdown, python", 2),
        (["search", "retry", "--path", "{root}", "-s", "../.."], "leaves the project root", 2),
        (["search", "retry", "--path", "{root}", "--format", "xml"], "--format", 2),
    ],
)
def test_bad_input_gets_a_clear_message(indexed_project: Path, args: list[str], message: str | None, code: int) -> None:
    result = run(*[a.replace("{root}", str(indexed_project)) for a in args])
    assert "Traceback" not in result.stderr + result.stdout
    assert result.returncode == code, result.stderr
    if message:
        assert message in result.stderr


def test_file_instead_of_folder_and_never_indexed(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("x = 1\n")
    result = run("index", str(tmp_path / "a.py"))
    assert result.returncode == 2 and "is a file" in result.stderr and "Traceback" not in result.stderr
    result = run("search", "anything", "--path", str(tmp_path))
    assert result.returncode == 1 and "amanmcp index" in result.stderr and "Traceback" not in result.stderr
    result = run("status", "--path", str(tmp_path))
    assert result.returncode == 1 and "not indexed yet" in result.stdout


def test_invalid_config_names_key_and_file(tmp_path: Path) -> None:
    (tmp_path / ".amanmcp.yaml").write_text("search:\n  rrf_k: -3\n")
    result = run("config", "show", "--path", str(tmp_path))
    assert result.returncode == 2
    assert "search.rrf_k" in result.stderr and ".amanmcp.yaml" in result.stderr and "Traceback" not in result.stderr


def test_empty_project(tmp_path: Path) -> None:
    result = run("index", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "index holds 0 files, 0 chunks" in result.stdout
    result = run("search", "anything", "--path", str(tmp_path))
    assert result.returncode == 0 and "no results" in result.stdout


def test_killed_rebuild_leaves_previous_index_searchable(indexed_project: Path) -> None:
    """SIGKILL in the middle of `index --force`: the old generation stays live and searchable."""
    for i in range(400):
        (indexed_project / "bulk").mkdir(exist_ok=True)
        (indexed_project / "bulk" / f"m{i}.py").write_text(f"def bulk_{i}(x):\n    return x + {i}\n" * 5)
    base = indexed_project / ".amanmcp"
    live = (base / "CURRENT").read_text().strip()
    proc = subprocess.Popen([*AMANMCP, "index", str(indexed_project), "--force"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while time.time() < deadline and len(list(base.glob("gen-*"))) < 2:
            time.sleep(0.05)
        assert len(list(base.glob("gen-*"))) == 2, "the rebuild never started a new generation"
        time.sleep(0.5)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert (base / "CURRENT").read_text().strip() == live
    result = run("search", "retry_with_backoff", "--path", str(indexed_project), "--format", "json", "-n", "1")
    assert result.returncode == 0 and json.loads(result.stdout)["results"][0]["path"] == "src/payments/retry.py"
    for p in (indexed_project / "bulk").iterdir():
        p.unlink()
    (indexed_project / "bulk").rmdir()
    assert run("index", str(indexed_project)).returncode == 0
    assert len(list(base.glob("gen-*"))) == 1  # the abandoned generation is cleaned up


def test_eval_scores_graded_queries(indexed_project: Path, tmp_path: Path) -> None:
    queries = tmp_path / "queries.json"
    queries.write_text(json.dumps([
        {"query": "retry_with_backoff", "relevant": ["shop/src/payments/retry.py"], "category": "symbol"},
        {"query": "check whether an email address is well formed",
         "relevant": [{"path": "shop/web/user.ts", "start_line": 6, "end_line": 8}], "category": "semantic"},
        {"query": "parseConfigFile", "relevant": ["shop/no/such/file.go"], "category": "symbol"},
    ]))
    result = run("eval", str(queries), "--path", str(indexed_project), "--json", "--verbose")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["overall"]["queries"] == 3
    assert set(report["by_category"]) == {"semantic", "symbol"}
    ranks = {q["query"]: q["targets"][0]["rank"] for q in report["queries"]}
    assert ranks["retry_with_backoff"] == 1 and ranks["parseConfigFile"] is None  # a miss is a miss
    assert report["by_category"]["symbol"]["ndcg@10"] == 0.5 and report["overall"]["recall@10"] < 1
    text = run("eval", str(queries), "--path", str(indexed_project), "--tool", "search_code")
    assert text.returncode == 0 and "NDCG@10" in text.stdout and "all" in text.stdout


def test_eval_bad_input_is_one_clear_line(indexed_project: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('[{"query": "x"}]')
    result = run("eval", str(bad), "--path", str(indexed_project))
    assert result.returncode == 2 and "relevant" in result.stderr and "Traceback" not in result.stderr
    result = run("eval", str(tmp_path / "missing.json"), "--path", str(indexed_project))
    assert result.returncode == 2 and "cannot read" in result.stderr
    result = run("eval", str(bad), "--path", str(indexed_project), "--tool", "grep")
    assert result.returncode == 2 and "--tool" in result.stderr
