"""Settings validated as a whole, and a rebuild that finds nothing never replaces a good index by accident."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from amanmcp.config import ConfigError, load_config
from amanmcp.errors import AmanError
from amanmcp.indexer import Indexer
from amanmcp.search import Searcher
from amanmcp.store import IndexLayout

AMANMCP = [sys.executable, "-m", "amanmcp"]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*AMANMCP, *args], capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize(
    ("yaml", "env", "keys"),
    [
        ("index:\n  window_overlap: 60\n", {}, ["index.window_overlap", "index.window_lines"]),
        ("index:\n  window_lines: 20\n", {}, None),  # fine: the default overlap (10) is less
        ("index:\n  window_lines: 10\n  window_overlap: 10\n", {}, ["index.window_overlap", "index.window_lines"]),
        ("index:\n  max_chunk_lines: 40\n  window_lines: 50\n", {}, ["index.window_lines", "index.max_chunk_lines"]),
        ("search:\n  bm25_weight: 0\n  vector_weight: 0\n  symbol_weight: 0\n", {},
         ["search.bm25_weight", "search.vector_weight", "search.symbol_weight"]),
    ],
)
def test_combinations_are_validated(tmp_path: Path, yaml: str, env: dict[str, str], keys: list[str] | None) -> None:
    (tmp_path / ".amanmcp.yaml").write_text(yaml)
    if keys is None:
        load_config(tmp_path, env=env)
        return
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path, env=env)
    message = str(info.value)
    assert message.startswith("invalid combination of settings") and "\n" not in message
    for key in keys:
        assert f"'{key}'" in message
    assert str(tmp_path / ".amanmcp.yaml") in message


def test_defaults_follow_a_smaller_chunk_size(tmp_path: Path) -> None:
    (tmp_path / ".amanmcp.yaml").write_text("index:\n  max_chunk_lines: 8\n")
    index = load_config(tmp_path, env={}).settings.index
    assert (index.max_chunk_lines, index.window_lines, index.window_overlap) == (8, 8, 4)


def test_bad_exclude_pattern_names_key(tmp_path: Path) -> None:
    (tmp_path / ".amanmcp.yaml").write_text("index:\n  exclude: ['!']\n")
    with pytest.raises(ConfigError, match=r"index\.exclude.*not a valid \.gitignore pattern"):
        load_config(tmp_path, env={})


def test_cli_bad_combination_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / ".amanmcp.yaml").write_text("index:\n  window_overlap: 80\n  window_lines: 60\n")
    result = run("index", str(tmp_path))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "index.window_overlap" in result.stderr and "index.window_lines" in result.stderr
    assert str(tmp_path / ".amanmcp.yaml") in result.stderr


def test_empty_rebuild_keeps_the_old_index(project: Path, settings, embedder) -> None:
    Indexer(project, settings, embedder).run()
    before = IndexLayout(project).current()
    everything = settings.model_copy(update={"index": settings.index.model_copy(update={"exclude": ["*"]})})
    with pytest.raises(AmanError, match=r"found nothing to index.*--allow-empty") as info:
        Indexer(project, everything, embedder).run(force=True)
    assert "chunks) was kept" in str(info.value)
    assert IndexLayout(project).current() == before
    assert len(list((project / ".amanmcp").glob("gen-*"))) == 1  # the abandoned generation is gone
    searcher = Searcher(project, settings, embedder)
    assert searcher.search("retry_with_backoff", limit=1).results[0].path == "src/payments/retry.py"
    searcher.close()

    report = Indexer(project, everything, embedder).run(force=True, allow_empty=True)
    assert report.chunks_total == 0 and IndexLayout(project).current() != before


def test_cli_empty_rebuild_needs_allow_empty(project: Path) -> None:
    assert run("index", str(project)).returncode == 0
    (project / ".amanmcp.yaml").write_text("index:\n  exclude: ['*']\n")
    refused = run("index", "--force", str(project))
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert "--allow-empty" in refused.stderr and "found nothing to index" in refused.stderr
    found = run("search", "retry_with_backoff", "--path", str(project), "--format", "json", "-n", "1")
    assert json.loads(found.stdout)["results"][0]["path"] == "src/payments/retry.py"  # still searchable
    allowed = run("index", "--force", "--allow-empty", str(project))
    assert allowed.returncode == 0, allowed.stderr
    assert "index holds 0 files, 0 chunks" in allowed.stdout
