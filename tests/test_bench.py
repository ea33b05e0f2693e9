"""`amanmcp bench` on a tiny corpus: rows for available and unavailable backends, table, JSON, chart."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from amanmcp.bench import BenchReport, BenchResult, bench_texts, run_bench
from amanmcp.config import load_config
from embed_helpers import amanmcp_command, closed_port_url


def cli_env(project: Path) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "XDG_CACHE_HOME": os.environ["XDG_CACHE_HOME"],
        "XDG_CONFIG_HOME": str(project.parent / "xdg-config"), "AMANMCP_OPENAI_BASE_URL": closed_port_url(),
    }


def test_bench_texts_are_the_indexers_chunks(project: Path) -> None:
    texts = bench_texts(project, load_config(project, env={}).settings, 5)
    assert len(texts) == 5
    assert all("\n" in t for t in texts) and not any("hunter2" in t for t in texts)  # secrets stay out


def test_run_bench_measures_each_backend_in_its_own_process(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AMANMCP_OPENAI_BASE_URL", closed_port_url())
    settings = load_config(project).settings
    seen: list[BenchResult] = []
    report = run_bench(project, settings, ["static-hashed", "local-onnx", "openai"], limit=20, repeats=2,
                       on_result=seen.append)
    assert isinstance(report, BenchReport) and [r.name for r in seen] == ["static-hashed", "local-onnx", "openai"]
    assert report.texts == 20 and report.machine["usable_cpus"] >= 1
    hashed, onnx, openai = report.results
    for row in (hashed, onnx):
        assert row.available and row.chunks_per_s and row.chunks_per_s > 0
        assert row.batch32_ms and row.query_ms and row.peak_mb and row.peak_mb > 10 and row.load_s is not None
    assert (hashed.dimensions, onnx.dimensions) == (512, 384)
    assert "via onnx on cpu" in onnx.detail
    assert not openai.available and "not reachable" in openai.detail and openai.chunks_per_s is None
    assert report.to_dict()["results"][0]["name"] == "static-hashed"


def test_unknown_bench_target(project: Path) -> None:
    with pytest.raises(ValueError, match="unknown backend"):
        run_bench(project, load_config(project, env={}).settings, ["gpu"], limit=2)


def test_bench_cli_table_json_and_plot(project: Path, tmp_path: Path) -> None:
    command = [*amanmcp_command(), "bench", str(project), "--backends", "static-hashed,openai", "-n", "12",
               "--repeats", "2"]
    chart = tmp_path / "bench.png"
    table = subprocess.run([*command, "--plot", str(chart)], capture_output=True, text=True, env=cli_env(project),
                           timeout=120)
    assert table.returncode == 0, table.stderr
    assert "chunks/s" in table.stdout and "static-hashed" in table.stdout and "openai" in table.stdout
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    as_json = subprocess.run([*command, "--json"], capture_output=True, text=True, env=cli_env(project), timeout=120)
    data = json.loads(as_json.stdout)
    assert data["texts"] == 12 and [r["available"] for r in data["results"]] == [True, False]
    assert data["results"][0]["dimensions"] == 512 and data["results"][0]["chunks_per_s"] > 0
