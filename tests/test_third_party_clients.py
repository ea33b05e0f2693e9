"""`amanmcp serve` in MCP clients written by others (issue 14): the MCP Inspector CLI and Claude Code.

Both come from npm, installed once into a cache folder (`~/.cache/amanmcp-test/npm`, or
`AMANMCP_TEST_NPM_DIR`) and reused; without npm, or without a registry to install from, these tests
are skipped and say why. Claude Code needs no login for `claude mcp add / list / get`: it runs with
HOME pointed at a scratch folder, and `claude mcp list` health-checks a server by connecting to it
(initialize, tools/list) as a session would.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters

from amanmcp.config import load_config
from amanmcp.embed.local import LocalEmbedder
from amanmcp.indexer import Indexer
from conftest import write_project
from test_mcp_server import AMANMCP, call, server_env, watching

pytestmark = pytest.mark.slow
INSPECTOR = "@modelcontextprotocol/inspector@0.15.0"
CLAUDE_CODE = "@anthropic-ai/claude-code@2.1.197"  # a 2.1 release; `mcp list` shows "✔ Connected"
NPM_DIR = Path(os.environ.get("AMANMCP_TEST_NPM_DIR", Path.home() / ".cache" / "amanmcp-test" / "npm"))


@pytest.fixture(scope="module")
def npm_bin() -> Path:
    """node_modules/.bin with both clients, installed on first use (skip, saying why, when it cannot be)."""
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        pytest.skip("npm/node are not installed: the third-party MCP client tests need them (Node 18+)")
    bin_dir = NPM_DIR / "node_modules" / ".bin"
    wanted = {"mcp-inspector": INSPECTOR, "claude": CLAUDE_CODE}
    if not all((bin_dir / name).exists() and _installed(spec) for name, spec in wanted.items()):
        NPM_DIR.mkdir(parents=True, exist_ok=True)
        try:
            done = subprocess.run(
                [npm, "install", "--prefix", str(NPM_DIR), "--no-audit", "--no-fund", "--save-exact", *wanted.values()],
                capture_output=True, text=True, timeout=300,
            )
        except subprocess.TimeoutExpired:
            pytest.skip("npm install of the MCP Inspector and Claude Code took over 5 minutes (registry unreachable?)")
        if done.returncode != 0:
            said = [x for x in done.stderr.splitlines() if x.startswith("npm error") and "complete log" not in x]
            why = "; ".join(said[:2]) or done.stderr.strip()[-300:] or f"exit code {done.returncode}"
            pytest.skip(f"npm could not install {INSPECTOR} and {CLAUDE_CODE} (registry unavailable?): {why}")
    return bin_dir


def _installed(spec: str) -> bool:
    name, _, version = spec.rpartition("@")
    manifest = NPM_DIR / "node_modules" / name / "package.json"
    try:
        return json.loads(manifest.read_text())["version"] == version
    except (OSError, ValueError, KeyError):
        return False


@pytest.fixture(scope="module")
def indexed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fixture project, indexed once (each Inspector call starts a fresh `serve` on it)."""
    root = tmp_path_factory.mktemp("clients") / "shop"
    root.mkdir()
    write_project(root)
    (root / ".git").mkdir()
    Indexer(root, load_config(root, env={}).settings, LocalEmbedder()).run()
    return root


def client_env(**extra: str) -> dict[str, str]:
    return {**os.environ, **server_env(), **extra}


def inspector(npm_bin: Path, root: Path, *args: str) -> dict[str, Any]:
    """One Inspector CLI call against a fresh `amanmcp serve root`: its JSON output (or error text)."""
    done = subprocess.run(
        [str(npm_bin / "mcp-inspector"), "--cli", AMANMCP, "serve", str(root), *args],
        capture_output=True, text=True, timeout=120, env=client_env(), cwd=root,
    )
    if done.returncode != 0:
        return {"failed": done.returncode, "output": done.stdout + done.stderr}
    return json.loads(done.stdout)


def test_mcp_inspector_cli(npm_bin: Path, indexed: Path) -> None:
    listed = inspector(npm_bin, indexed, "--method", "tools/list")
    tools = {t["name"]: t for t in listed["tools"]}
    assert set(tools) == {"search", "search_code", "search_docs", "index_status", "graph_query", "expand_context"}
    for tool in tools.values():
        assert tool["description"] and tool["inputSchema"]["type"] == "object" and tool["outputSchema"]
    assert "grep" in tools["search"]["description"]
    assert tools["search_code"]["inputSchema"]["properties"]["language"]["enum"][:2] == ["go", "javascript"]

    calls = {
        "search": ["query=retry_with_backoff", "limit=3"],
        "search_code": ["query=ListenAndServe", "language=go", "symbol_type=method"],
        "search_docs": ["query=database is locked", "max_tokens=1000"],
        "index_status": [],
    }
    for name, arguments in calls.items():
        args = ["--method", "tools/call", "--tool-name", name]
        for argument in arguments:
            args += ["--tool-arg", argument]
        result = inspector(npm_bin, indexed, *args)
        assert result.get("isError") is False, (name, result)
        structured = result["structuredContent"]
        text = result["content"][0]["text"]
        if name == "index_status":
            assert structured["files"] == 8 and structured["indexed"]
            continue
        assert structured["results"] and not text.startswith("{")  # a readable rendering, not the JSON again
        first = structured["results"][0]
        assert f"[1] {first['path']}:{first['start_line']}-{first['end_line']}" in text
    for name, arguments in {"graph_query": ["query=retry_with_backoff", "mode=find_references"],
                            "expand_context": ["seed=retry_with_backoff", "max_tokens=1000"]}.items():
        args = ["--method", "tools/call", "--tool-name", name]
        for argument in arguments:
            args += ["--tool-arg", argument]
        result = inspector(npm_bin, indexed, *args)
        assert result.get("isError") is False, (name, result)
        assert result["structuredContent"]["resolution"] == "resolved", (name, result)
    code = inspector(npm_bin, indexed, "--method", "tools/call", "--tool-name", "search_code",
                     "--tool-arg", "query=ListenAndServe", "--tool-arg", "language=go")
    assert code["structuredContent"]["results"][0]["path"] == "server/main.go"

    bad = {
        ("limit=0",): "limit must be between 1 and 100, not 0",
        ("language=cobol",): "language must be one of this index's languages: go, javascript, markdown",
        ("lang=go",): "search does not take 'lang'",
        ("scope=nowhere",): "scope 'nowhere' matches no indexed file or folder",
    }
    for arguments, message in bad.items():
        args = ["--method", "tools/call", "--tool-name", "search", "--tool-arg", "query=retry"]
        for argument in arguments:
            args += ["--tool-arg", argument]
        result = inspector(npm_bin, indexed, *args)
        assert result.get("isError") is True, (arguments, result)
        assert message in result["content"][0]["text"], result

    resources = inspector(npm_bin, indexed, "--method", "resources/list")["resources"]
    assert resources[0]["uri"] == "amanmcp://index/status" and len(resources) == 9
    readme = next(r for r in resources if r["name"] == "README.md")
    read = inspector(npm_bin, indexed, "--method", "resources/read", "--uri", readme["uri"])
    assert read["contents"][0]["text"] == (indexed / "README.md").read_text()
    outside = inspector(npm_bin, indexed, "--method", "resources/read", "--uri", "file:///etc/passwd")
    assert outside.get("failed") and "outside the project root" in outside["output"]
    assert inspector(npm_bin, indexed, "--method", "prompts/list").get("failed")  # no prompts, none advertised


@pytest.fixture
def claude_home(tmp_path: Path) -> Iterator[dict[str, str]]:
    home = tmp_path / "home"
    home.mkdir()
    yield client_env(HOME=str(home), CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC="1", DISABLE_AUTOUPDATER="1")


def claude(npm_bin: Path, env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(npm_bin / "claude"), *args], capture_output=True, text=True, timeout=120,
                          env=env, cwd=cwd)


def test_claude_code_connects_beside_another_serve(
    npm_bin: Path, indexed: Path, claude_home: dict[str, str]
) -> None:
    """`claude mcp add` then `claude mcp list` reports amanmcp connected, while another `serve`
    (the writer of the index) runs on the same project and keeps answering."""
    added = claude(npm_bin, claude_home, indexed, "mcp", "add", "amanmcp", "--", AMANMCP, "serve", str(indexed))
    assert added.returncode == 0, added.stdout + added.stderr

    async def scenario() -> None:
        params = StdioServerParameters(command=AMANMCP, args=["serve", str(indexed)], env=server_env())
        async with Client(params, mode="legacy", read_timeout_seconds=120) as first:
            status = await watching(first)
            assert status["indexing"].get("role") == "writer", status["indexing"]
            listed = await anyio.to_thread.run_sync(claude, npm_bin, claude_home, indexed, "mcp", "list")
            assert listed.returncode == 0, listed.stdout + listed.stderr
            line = next(x for x in listed.stdout.splitlines() if x.startswith("amanmcp:"))
            assert "Connected" in line and "Failed" not in line, listed.stdout
            got = await anyio.to_thread.run_sync(claude, npm_bin, claude_home, indexed, "mcp", "get", "amanmcp")
            assert "Connected" in got.stdout, got.stdout + got.stderr
            found = await call(first, "search", query="retry_with_backoff", limit=1)
            assert found["results"][0]["path"] == "src/payments/retry.py"  # the first serve still answers

    anyio.run(scenario)


def test_init_advice_matches_claude_code(npm_bin: Path, tmp_path: Path, claude_home: dict[str, str]) -> None:
    """What `amanmcp init` tells the user about approval is what Claude Code shows for its `.mcp.json`."""
    project = tmp_path / "fresh"
    project.mkdir()
    (project / ".git").mkdir()
    (project / "app.py").write_text("def main():\n    return 0\n")
    init = subprocess.run([AMANMCP, "init", str(project), "--no-index"], capture_output=True, text=True,
                          timeout=120, env={**client_env(), "COLUMNS": "400"})
    assert init.returncode == 0, init.stderr
    assert "Pending approval" in init.stdout and "run `claude` in" in init.stdout
    listed = claude(npm_bin, claude_home, project, "mcp", "list")
    line = next(x for x in listed.stdout.splitlines() if x.startswith("amanmcp:"))
    assert "Pending approval" in line, listed.stdout
