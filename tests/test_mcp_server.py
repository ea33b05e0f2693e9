"""`amanmcp serve` as an MCP client sees it: a real subprocess over stdio, the official client.

Every session also checks protocol hygiene: a stdout line that is not a JSON-RPC message reaches
the client's message handler as an exception, and the test fails on it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
from mcp import Client
from mcp.client.stdio import StdioServerParameters

from amanmcp.config import Settings
from amanmcp.indexer import Indexer
from conftest import default_local_model

AMANMCP = shutil.which("amanmcp") or str(Path(sys.executable).parent / "amanmcp")
TOOLS = {"search", "search_code", "search_docs", "index_status", "graph_query", "expand_context"}


def server_env() -> dict[str, str]:
    return {
        "XDG_CONFIG_HOME": os.environ["XDG_CONFIG_HOME"],  # the isolated user config from conftest
        "AMANMCP_LOG_LEVEL": "info",
        "HF_HUB_OFFLINE": "1",
        **{k: os.environ[k] for k in ("PYTHONPATH",) if k in os.environ},  # a worktree's sources, not the install
    }


@asynccontextmanager
async def connect(root: Path) -> AsyncIterator[Client]:
    """A client session on `amanmcp serve root`; fails the test if stdout carried anything else."""
    garbage: list[str] = []

    async def on_message(message: object) -> None:
        if isinstance(message, Exception):
            garbage.append(repr(message))

    params = StdioServerParameters(command=AMANMCP, args=["serve", str(root)], env=server_env())
    async with Client(params, mode="legacy", message_handler=on_message, read_timeout_seconds=120) as client:
        yield client
    assert not garbage, f"non-protocol output on stdout: {garbage}"


async def call(client: Client, tool: str, **arguments: Any) -> dict[str, Any]:
    result = await client.call_tool(tool, arguments)
    assert not result.is_error, result.content
    assert result.structured_content is not None
    return result.structured_content


async def error(client: Client, tool: str, **arguments: Any) -> str:
    result = await client.call_tool(tool, arguments)
    assert result.is_error, result.structured_content
    return result.content[0].text  # type: ignore[union-attr]


async def until(check: Callable[[], Awaitable[Any]], timeout: float = 60.0, what: str = "condition") -> Any:
    """Poll (no fixed sleeps): returns the first truthy value of `check()`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = await check()
        if value:
            return value
        await anyio.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


async def watching(client: Client, timeout: float = 20.0) -> dict[str, Any]:
    """Until the start-up run is done. The default timeout is under the worker's 30 s wait for
    the watcher, so a watcher that never reports ready fails here instead of passing slowly."""

    async def ready() -> dict[str, Any] | None:
        status = await call(client, "index_status")
        return status if status["indexing"]["state"] == "watching" else None

    return await until(ready, timeout, what="the start-up index run")


async def top(client: Client, query: str, tool: str = "search", n: int = 5, **kw: Any) -> list[str]:
    return [r["path"] for r in (await call(client, tool, query=query, limit=n, **kw))["results"]]


def test_tools_schemas_results_and_errors(project: Path) -> None:
    async def scenario() -> None:
        async with connect(project) as client:
            tools = {t.name: t for t in (await client.list_tools()).tools}
            assert set(tools) == TOOLS
            schema = tools["search"].input_schema
            assert schema["required"] == ["query"]
            props = schema["properties"]
            assert props["limit"]["minimum"] == 1 and props["limit"]["maximum"] == 100
            assert props["filter"]["enum"] == ["all", "code", "docs"] and props["filter"]["default"] == "all"
            assert {"language", "scope"} <= set(props)
            assert {"symbol_type", "language", "scope"} <= set(tools["search_code"].input_schema["properties"])
            assert set(tools["search_docs"].input_schema["properties"]) == {"query", "limit", "scope", "max_tokens"}
            for name in TOOLS:
                assert tools[name].output_schema is not None and tools[name].description
            assert "results" in tools["search"].output_schema["properties"]

            status = await watching(client)  # no index at start: built in the background
            assert status["indexed"] and status["complete"] and status["files"] == 8
            assert status["embedder"] == f"local:{default_local_model()} (384d)" and status["embedder_matches"]
            assert status["embedder_fallback"] is False and status["size_bytes"] > 0 and status["last_indexed"]

            found = await call(client, "search", query="retry_with_backoff", limit=3)
            assert found["query"] == "retry_with_backoff" and found["took_ms"] > 0
            assert found["search_quality"]["mode"] == "hybrid" and not found["search_quality"]["degraded"]
            hit = found["results"][0]
            assert (hit["path"], hit["symbol"], hit["symbol_type"], hit["language"], hit["content_type"]) == (
                "src/payments/retry.py", "retry_with_backoff", "function", "python", "code"
            )
            lines = (project / hit["path"]).read_text().splitlines()
            assert "\n".join(lines[hit["start_line"] - 1 : hit["end_line"]]) == hit["content"]

            code = await call(client, "search_code", query="ListenAndServe", language="go", symbol_type="method")
            assert code["results"] and {r["symbol_type"] for r in code["results"]} == {"method"}
            assert code["results"][0]["symbol"].endswith("ListenAndServe")
            assert code["results"][0]["path"] == "server/main.go"
            docs = await call(client, "search_docs", query="database is locked")
            assert docs["results"][0]["path"] == "docs/guide.md"
            assert {r["content_type"] for r in docs["results"]} == {"docs"}
            assert set(await top(client, "invoice retry", scope=["src/payments"])) <= {
                "src/payments/retry.py", "src/payments/invoice.py"
            }
            assert set(await top(client, "install", filter="docs")) <= {"docs/guide.md", "README.md"}

            assert "empty" in await error(client, "search", query="   ")
            assert "limit must be between 1 and 100" in await error(client, "search", query="retry", limit=0)
            assert "limit must be between 1 and 100" in await error(client, "search_code", query="retry", limit=101)
            assert "filter must be one of all, code, docs" in await error(client, "search", query="x", filter="img")
            assert "leaves the project root" in await error(client, "search", query="x", scope=["../"])
            assert "outside the project root" in await error(client, "search_docs", query="x", scope=["/etc"])
            assert (await top(client, "retry_with_backoff", n=1)) == ["src/payments/retry.py"]  # still serving

    anyio.run(scenario)


def test_edits_become_visible_persist_and_one_writer(project: Path) -> None:
    retry = project / "src/payments/retry.py"

    async def first_session() -> None:
        async with connect(project) as client:
            await watching(client)
            retry.write_text(retry.read_text() + "\n\ndef circuit_breaker_trip(threshold):\n    return threshold > 5\n")
            (project / "docs/roadmap.md").write_text("# Roadmap\n\nThe quarterly roadmap lives here.\n")
            (project / "web/cart.js").unlink()

            async def edit_visible() -> dict[str, Any] | None:
                results = (await call(client, "search_code", query="circuit_breaker_trip", limit=1))["results"]
                return results[0] if results and results[0]["symbol"] == "circuit_breaker_trip" else None

            hit = await until(edit_visible, what="the edit")
            assert hit["path"] == "src/payments/retry.py"
            assert retry.read_text().splitlines()[hit["start_line"] - 1].startswith("def circuit_breaker_trip")

            async def created() -> bool:
                return (await top(client, "quarterly roadmap", "search_docs", 1)) == ["docs/roadmap.md"]

            async def deleted() -> bool:
                return "web/cart.js" not in await top(client, "addItemToCart", n=10)

            await until(created, what="the new file")
            await until(deleted, what="the deletion")

            # A second serve answers too, read-only (this one keeps the writer role: tests/test_serve_many.py);
            # `amanmcp index` is refused (serve keeps the index up to date); shell readers work (WAL).
            async with connect(project) as second:
                progress = (await call(second, "index_status"))["indexing"]
                assert (progress["role"], progress["state"]) == ("reader", "following")
                assert (await top(second, "circuit_breaker_trip", n=1)) == ["src/payments/retry.py"]
            refused = await anyio.run_process([AMANMCP, "index", str(project)], check=False, env=_cli_env())
            assert refused.returncode == 1 and refused.stdout == b""
            assert "is keeping the index" in refused.stderr.decode()
            found = await anyio.run_process(
                [AMANMCP, "search", "circuit_breaker_trip", "--path", str(project), "--format", "json", "-n", "1"],
                env=_cli_env(),
            )
            assert json.loads(found.stdout)["results"][0]["symbol"] == "circuit_breaker_trip"
            status = await anyio.run_process(
                [AMANMCP, "status", "--path", str(project), "--format", "json"], env=_cli_env()
            )
            assert json.loads(status.stdout)["files"] == 8  # one created, one deleted

    async def after_restart() -> None:
        async with connect(project) as client:
            status = await watching(client)
            assert status["indexing"]["last_run"].startswith("update")
            assert " 0 file(s) (re)indexed" in status["indexing"]["last_run"]  # nothing to redo: persisted
            assert (await top(client, "circuit_breaker_trip", n=1)) == ["src/payments/retry.py"]
            assert (await top(client, "quarterly roadmap", "search_docs", 1)) == ["docs/roadmap.md"]
            assert "web/cart.js" not in await top(client, "addItemToCart", n=10)

    anyio.run(first_session)
    anyio.run(after_restart)


def _cli_env() -> dict[str, str]:
    return {**os.environ, **server_env()}


def test_search_while_first_build_runs(tmp_path: Path) -> None:
    root = tmp_path / "big"
    for i in range(1500):
        path = root / f"pkg_{i // 100:02d}" / f"mod_{i:04d}.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"def bulk_function_{i:04d}(x):\n    return x * {i}\n")

    async def scenario() -> None:
        async with connect(root) as client:
            async def upgrading() -> dict[str, Any] | None:
                status = await call(client, "index_status")
                progress = status["indexing"]
                assert progress["state"] != "watching", "the build finished before its vector stage was seen"
                return status if status["upgrading"] else None

            status = await until(upgrading, what="a first build's vector stage")
            assert not status["complete"] and status["chunks"] == 1500 and status["vectors"] < 1500
            assert not status["indexing"]["building"]  # every file is in: searches see the whole project
            response = await call(client, "search", query="bulk_function_1499", limit=1)
            assert response["results"][0]["path"] == "pkg_14/mod_1499.py"
            quality = response["search_quality"]
            assert quality["degraded"] and quality["reason"].startswith("upgrading: vectors for ")
            # BM25 alone, or with static vectors where the distilled model is at hand (the user's cache)
            assert quality["mode"] == ("hybrid" if "static vectors" in quality["reason"] else "bm25_only")

            status = await watching(client, timeout=180)
            assert status["complete"] and status["chunks"] == 1500
            response = await call(client, "search", query="bulk_function_1499", limit=1)
            assert response["results"][0]["path"] == "pkg_14/mod_1499.py"
            assert not response["search_quality"]["degraded"] and response["search_quality"]["reason"] == ""

    anyio.run(scenario)


def test_stdout_carries_only_protocol(project: Path, settings: Settings, embedder) -> None:
    """Byte-level: every stdout line is a JSON-RPC message, even with logging at debug."""
    Indexer(project, settings, embedder).run()
    messages = [
        {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "raw", "version": "0"}}},
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
        {"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {
            "name": "search", "arguments": {"query": "retry"}}},
        {"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": {"name": "search", "arguments": {"query": ""}}},
        {"jsonrpc": "2.0", "id": 5, "method": "tools/call", "params": {"name": "index_status", "arguments": {}}},
    ]
    proc = subprocess.Popen(
        [AMANMCP, "serve", str(project)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env={**_cli_env(), "AMANMCP_LOG_LEVEL": "debug"},
    )
    assert proc.stdin is not None and proc.stdout is not None
    replies: dict[int, dict[str, Any]] = {}
    for message in messages:
        proc.stdin.write((json.dumps(message) + "\n").encode())
        proc.stdin.flush()
        while "id" in message and message["id"] not in replies:
            line = proc.stdout.readline()
            assert line, "server closed stdout"
            decoded = json.loads(line)  # anything but JSON-RPC fails here
            assert decoded["jsonrpc"] == "2.0"
            if "id" in decoded:
                replies[decoded["id"]] = decoded
    rest, stderr = proc.communicate(timeout=30)  # closes stdin: the server must exit cleanly
    for line in rest.splitlines():
        assert json.loads(line)["jsonrpc"] == "2.0"
    assert proc.returncode == 0, stderr.decode()[-2000:]
    assert b"serving" in stderr and b"DEBUG" in stderr  # the logs went to stderr
    assert {t["name"] for t in replies[2]["result"]["tools"]} == TOOLS
    assert replies[3]["result"]["structuredContent"]["results"][0]["path"] == "src/payments/retry.py"
    assert replies[4]["result"]["isError"] is True
    assert replies[5]["result"]["structuredContent"]["files"] == 8


def test_log_file(project: Path, tmp_path: Path) -> None:
    log = tmp_path / "serve.log"
    proc = subprocess.run(
        [AMANMCP, "serve", str(project), "--log-file", str(log), "--no-watch"],
        input=b"", capture_output=True, env=_cli_env(), timeout=60,
    )
    assert proc.returncode == 0 and proc.stdout == b""
    assert b"serving" not in proc.stderr and "serving" in log.read_text()
