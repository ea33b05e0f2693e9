"""`amanmcp init`: the files it writes, what it keeps, and that running it twice is harmless."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from amanmcp.cli import app
from amanmcp.config import ConfigError, load_config
from amanmcp.project_init import amanmcp_command, init_project
from amanmcp.store import IndexLayout


def test_fresh_project(tmp_path: Path) -> None:
    report = init_project(tmp_path, load_config(tmp_path, env={}).settings)
    assert (report.config, report.gitignore, report.mcp_json) == ("created", "created", "created")
    config = yaml.safe_load((tmp_path / ".amanmcp.yaml").read_text())
    assert config["embeddings"]["provider"] == report.backend == "local"
    assert load_config(tmp_path, env={}).settings.embeddings.provider == "local"  # a valid settings file
    assert (tmp_path / ".gitignore").read_text() == ".amanmcp/\n"
    servers = json.loads((tmp_path / ".mcp.json").read_text())["mcpServers"]
    assert servers == {"amanmcp": {"command": amanmcp_command(), "args": ["serve"]}}
    assert Path(amanmcp_command()).is_file()
    assert report.user_scope == f"claude mcp add --scope user amanmcp -- {amanmcp_command()} serve"


def test_keeps_what_is_there_and_is_idempotent(tmp_path: Path) -> None:
    (tmp_path / ".amanmcp.yaml").write_text("search:\n  limit: 5\n")
    (tmp_path / ".gitignore").write_text("*.log")  # no trailing newline
    other = {"command": "npx", "args": ["-y", "@modelcontextprotocol/server-filesystem", "."]}
    (tmp_path / ".mcp.json").write_text(json.dumps({"mcpServers": {"fs": other}, "extra": 1}))
    settings = load_config(tmp_path, env={}).settings

    first = init_project(tmp_path, settings)
    assert (first.config, first.gitignore, first.mcp_json) == ("kept", "added", "added")
    assert (tmp_path / ".amanmcp.yaml").read_text() == "search:\n  limit: 5\n"
    assert (tmp_path / ".gitignore").read_text() == "*.log\n.amanmcp/\n"
    data = json.loads((tmp_path / ".mcp.json").read_text())
    assert data["extra"] == 1 and data["mcpServers"]["fs"] == other
    assert data["mcpServers"]["amanmcp"]["args"] == ["serve"]

    snapshot = {p.name: p.read_text() for p in tmp_path.iterdir()}
    again = init_project(tmp_path, settings)
    assert (again.config, again.gitignore, again.mcp_json) == ("kept", "kept", "kept")
    assert {p.name: p.read_text() for p in tmp_path.iterdir()} == snapshot


def test_broken_entry_is_repaired_but_extras_kept(tmp_path: Path) -> None:
    entry = {"command": "/nowhere/amanmcp", "args": ["serve"], "env": {"AMANMCP_LOG_LEVEL": "debug"}}
    (tmp_path / ".mcp.json").write_text(json.dumps({"mcpServers": {"amanmcp": entry}}))
    report = init_project(tmp_path, load_config(tmp_path, env={}).settings)
    assert report.mcp_json == "updated"
    fixed = json.loads((tmp_path / ".mcp.json").read_text())["mcpServers"]["amanmcp"]
    assert fixed == {"command": amanmcp_command(), "args": ["serve"], "env": {"AMANMCP_LOG_LEVEL": "debug"}}


def test_invalid_mcp_json_is_not_overwritten(tmp_path: Path) -> None:
    (tmp_path / ".mcp.json").write_text("{ not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        init_project(tmp_path, load_config(tmp_path, env={}).settings)
    assert (tmp_path / ".mcp.json").read_text() == "{ not json"


def test_cli_init_indexes_with_progress(project: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["init", str(project)])
    assert result.exit_code == 0, result.output
    assert "claude mcp add --scope user amanmcp" in result.output
    assert "full rebuild (no index yet)" in result.output and "index holds 9 files" in result.output  # + CLAUDE.md
    assert "CLAUDE.md      created" in result.output
    assert IndexLayout(project).current() is not None
    assert ".amanmcp/" in (project / ".gitignore").read_text().splitlines()

    again = runner.invoke(app, ["init", str(project)])  # safe to re-run: nothing to redo
    assert again.exit_code == 0, again.output
    assert "kept" in again.output and "0 files (re)indexed" in again.output


def test_assistant_guidance_is_written_extended_never_clobbered(tmp_path: Path) -> None:
    settings = load_config(tmp_path, env={}).settings
    (tmp_path / "AGENTS.md").write_text("# House rules\nRun the tests before committing.")
    report = init_project(tmp_path, settings)
    assert dict(report.guidance) == {"CLAUDE.md": "created", "AGENTS.md": "added"}
    agents = (tmp_path / "AGENTS.md").read_text()
    assert agents.startswith("# House rules\nRun the tests before committing.\n\n<!-- amanmcp:start -->")
    claude = (tmp_path / "CLAUDE.md").read_text()
    assert "graph_query" in claude and "expand_context" in claude and "grep" in claude
    (tmp_path / "CLAUDE.md").write_text(claude.replace("one call returns", "one call gives") + "Mine.\n")
    edited = (tmp_path / "CLAUDE.md").read_text()
    again = init_project(tmp_path, settings)
    assert dict(again.guidance) == {"CLAUDE.md": "kept", "AGENTS.md": "kept"}
    assert (tmp_path / "CLAUDE.md").read_text() == edited and (tmp_path / "AGENTS.md").read_text() == agents
