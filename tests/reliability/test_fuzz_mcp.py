"""Property-based fuzzing of MCP tool arguments against one real `amanmcp serve`, through the official client.

Every tool gets any subset of its arguments (plus unknown ones), each an ordinary value or an arbitrary
JSON value (nulls, numbers, strings with NUL and FTS syntax, nested lists and objects). The answer is a
result, or a tool error whose text is one plain sentence (no pydantic report, no URL); the server keeps
answering, and stdout carries nothing but protocol. Lone surrogates cannot pass through the client
(it refuses to encode them), so they are sent as raw JSON-RPC to a second server.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal
from attack import SCRIPT, amanmcp, cli_env
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mcp import Client
from mcp.client.stdio import StdioServerParameters

from amanmcp.search import FILTERS, SYMBOL_TYPES

HYPOTHESIS = {"deadline": None, "derandomize": True, "database": None,
              "suppress_health_check": [HealthCheck.function_scoped_fixture, HealthCheck.too_slow]}
TEXT = st.characters(codec="utf-8")  # any code point the client can encode, NUL included
JSON_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=False, allow_infinity=False),
              st.text(TEXT, max_size=30)),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(TEXT, max_size=8), inner, max_size=4)),
    max_leaves=12,
)
ORDINARY = {
    "query": st.sampled_from(["retry_with_backoff", "invoice", 'NEAR("retry" *', "database is locked", "函数 поиск",
                              "x" * 5000, "AND OR NOT", "\x00retry"]),
    "limit": st.integers(1, 100),
    "filter": st.sampled_from(FILTERS),
    "language": st.sampled_from([None, "python", "Go", "markdown"]),
    "scope": st.sampled_from([None, "src", ["src/payments", "web"], "../", "/etc"]),
    "symbol_type": st.sampled_from([None, *SYMBOL_TYPES]),
}
TOOLS = {
    "search": ("query", "limit", "filter", "language", "scope"),
    "search_code": ("query", "limit", "language", "symbol_type", "scope"),
    "search_docs": ("query", "limit", "scope"),
    "index_status": (),
}
COUNTS = {"calls": 0, "results": 0, "tool_errors": 0}


def arguments(tool: str) -> st.SearchStrategy[dict[str, Any]]:
    """Any subset of the tool's arguments (and an unknown one), each ordinary or any JSON value; mostly
    with a query of some kind, so most calls get past "query is required" to the other checks."""
    optional = {name: st.one_of(ORDINARY[name], JSON_VALUES) for name in TOOLS[tool] if name != "query"}
    optional["unexpected"] = JSON_VALUES
    if "query" not in TOOLS[tool]:
        return st.fixed_dictionaries({}, optional=optional)
    query = st.one_of(ORDINARY["query"], st.text(TEXT, max_size=80), JSON_VALUES)
    return st.one_of(st.fixed_dictionaries({"query": query}, optional=optional),
                     st.fixed_dictionaries({}, optional={"query": query, **optional}))

ERRORS: dict[str, int] = {}


CALLS = st.sampled_from(sorted(TOOLS)).flatmap(lambda tool: st.tuples(st.just(tool), arguments(tool)))


def server_params(root: Path) -> StdioServerParameters:
    keep = ("AMANMCP_EMBEDDER", "AMANMCP_STATIC_MODEL", "HF_HUB_OFFLINE", "XDG_CONFIG_HOME", "XDG_CACHE_HOME")
    env = {k: v for k, v in cli_env().items() if k in keep}
    return StdioServerParameters(command=SCRIPT, args=["serve", str(root)], env=env)


@asynccontextmanager
async def session(root: Path) -> AsyncIterator[tuple[Client, list[str]]]:
    garbage: list[str] = []

    async def on_message(message: object) -> None:
        if isinstance(message, Exception):
            garbage.append(repr(message))

    async with Client(server_params(root), mode="legacy", message_handler=on_message,
                      read_timeout_seconds=60) as client:
        yield client, garbage


def indexed_project(base: Path) -> Path:
    from conftest import write_project

    root = base / "shop"
    root.mkdir()
    write_project(root)
    assert amanmcp("index", str(root)).returncode == 0
    return root


@pytest.fixture(scope="module")
def indexed_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return indexed_project(tmp_path_factory.mktemp("mcpfuzz"))


@pytest.fixture(scope="module")
def served(indexed_root: Path) -> Iterator[tuple[BlockingPortal, Client, list[str]]]:
    """One `amanmcp serve` for the whole module, driven from the (synchronous) hypothesis tests."""
    with start_blocking_portal() as portal, portal.wrap_async_context_manager(session(indexed_root)) as opened:
        client, garbage = opened
        yield portal, client, garbage
    print(f"\nMCP argument fuzzing: {COUNTS['calls']} calls, {COUNTS['results']} results, "
          f"{COUNTS['tool_errors']} plain tool errors (of {len(ERRORS)} kinds, by their first words)")


def plain(text: str) -> None:
    assert text and "\n" not in text and len(text) < 1000, text  # several bad arguments: one clause each
    lowered = text.lower()
    for leak in ("pydantic", "http", "traceback", "validation error", "error executing tool", "input should be"):
        assert leak not in lowered, text


@pytest.mark.slow
@settings(max_examples=400, **HYPOTHESIS)
@given(call=CALLS)
def test_tool_arguments(served: tuple[BlockingPortal, Client, list[str]], call: tuple[str, dict[str, Any]]) -> None:
    portal, client, garbage = served
    tool, args = call
    COUNTS["calls"] += 1
    result = portal.call(client.call_tool, tool, args)
    if result.is_error:
        COUNTS["tool_errors"] += 1
        assert len(result.content) == 1, result.content
        plain(result.content[0].text)  # type: ignore[union-attr]
        kind = result.content[0].text[:24]  # type: ignore[union-attr]
        ERRORS[kind] = ERRORS.get(kind, 0) + 1
    else:
        COUNTS["results"] += 1
        content = result.structured_content
        assert content is not None
        assert isinstance(content["results"], list) if tool != "index_status" else content["indexed"]
    assert not garbage, garbage


@pytest.mark.slow
def test_server_alive_after_fuzzing(served: tuple[BlockingPortal, Client, list[str]]) -> None:
    portal, client, garbage = served
    result = portal.call(client.call_tool, "search", {"query": "retry_with_backoff", "limit": 1})
    assert not result.is_error and result.structured_content is not None
    assert result.structured_content["results"][0]["path"] == "src/payments/retry.py"
    status = portal.call(client.call_tool, "index_status", {})
    assert status.structured_content is not None and status.structured_content["indexing"]["state"] == "watching"
    assert not garbage, garbage


def test_lone_surrogates_as_raw_json_rpc(tmp_path: Path) -> None:
    """JSON allows "\\ud800" (a lone surrogate) in a string: the server carries on, answering the next call."""
    root = indexed_project(tmp_path)  # its own project: one `serve` per project
    calls = [
        {"query": "\ud800"}, {"query": "retry\udcff"}, {"query": "retry", "scope": "src/\udce9"},
        {"query": "retry", "language": "\ud83d"}, {"query": "retry", "filter": "\udfff"},
    ]
    messages: list[dict[str, Any]] = [
        {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "raw", "version": "0"}}},
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        *({"jsonrpc": "2.0", "id": i, "method": "tools/call", "params": {"name": "search", "arguments": args}}
          for i, args in enumerate(calls, 1)),
        {"jsonrpc": "2.0", "id": 99, "method": "tools/call", "params": {"name": "search", "arguments": {
            "query": "retry_with_backoff", "limit": 1}}},
    ]
    stdin = "".join(json.dumps(m) + "\n" for m in messages)  # ensure_ascii: the surrogates travel as \\uXXXX
    env = {**cli_env(), "XDG_CACHE_HOME": os.environ.get("XDG_CACHE_HOME", "")}
    proc = subprocess.Popen([SCRIPT, "serve", str(root), "--no-watch"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(stdin.encode())
    proc.stdin.flush()
    replies: dict[int, dict[str, Any]] = {}
    while 99 not in replies:
        line = proc.stdout.readline()
        assert line, proc.stderr.read().decode()[-2000:] if proc.stderr else "server closed stdout"
        reply = json.loads(line)
        if "id" in reply:
            replies[reply["id"]] = reply
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 0 and b"Traceback" not in stderr, stderr.decode()[-2000:]
    # The SDK's stdio transport parses each line with pydantic, which refuses a lone surrogate: such a
    # request gets no answer at all (upstream behaviour: the client waits for its timeout). What is ours
    # to guarantee: the server neither crashes nor stops, and any answer it does give is a plain error.
    for i in range(1, len(calls) + 1):
        if i in replies:
            result = replies[i]["result"]
            assert result["isError"] is True, result
            plain(result["content"][0]["text"])
    assert replies[99]["result"]["structuredContent"]["results"][0]["path"] == "src/payments/retry.py"
