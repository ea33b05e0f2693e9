"""Bad MCP tool arguments, as a client sends them: every answer is a plain sentence (no pydantic report,
no URL), the server keeps serving, and an unknown language or symbol type names the valid ones."""

from __future__ import annotations

from pathlib import Path

import anyio

from amanmcp.search import SYMBOL_TYPES
from test_mcp_server import call, connect, error, watching


def plain(message: str) -> str:
    """A tool error as a person would want it: one line, no validation-library report or links."""
    assert "\n" not in message and "http" not in message.lower(), message
    assert "pydantic" not in message.lower() and "validation error" not in message.lower(), message
    assert "Traceback" not in message and "Error executing tool" not in message, message
    return message


def test_bad_arguments_are_plain_sentences(project: Path) -> None:
    async def scenario() -> None:
        async with connect(project) as client:
            tools = {t.name: t for t in (await client.list_tools()).tools}
            schema = tools["search_code"].input_schema["properties"]
            assert schema["limit"]["type"] == "integer" and schema["limit"]["maximum"] == 100  # still informative
            assert set(SYMBOL_TYPES) <= set(schema["symbol_type"]["enum"])
            assert {"string", "array"} <= {alt.get("type") for alt in schema["scope"]["anyOf"]}
            status = await watching(client)
            assert status["stale_files"] == 0

            async def refused(tool: str, **arguments: object) -> str:
                return plain(await error(client, tool, **arguments))

            assert await refused("search", query="retry", limit="x") == (
                "limit must be a whole number between 1 and 100, not 'x'")
            assert await refused("search_code", query="retry", limit=2.5) == (
                "limit must be a whole number between 1 and 100, not 2.5")
            assert await refused("search", query="retry", limit=0) == "limit must be between 1 and 100, not 0"
            assert (await refused("search", query=None)).startswith("query must be text")
            assert (await refused("search_docs")).startswith("query is required")
            assert (await refused("search", query="retry", filter="pictures")).startswith(
                "filter must be one of all, code, docs")
            assert (await refused("search", query="x", scope=["../"])).endswith("leaves the project root; use a path "
                                                                               "inside it")

            languages = await refused("search", query="retry", language="cobol")
            assert "cobol" in languages
            for indexed in ("go", "python", "markdown", "rust"):
                assert indexed in languages
            kinds = await refused("search_code", query="retry", symbol_type="widget")
            assert "widget" in kinds and "function, method, class" in kinds

            # Accepted forms: one scope as a plain string, names in any case.
            scoped = await call(client, "search", query="invoice retry", scope="src/payments")
            assert scoped["results"] and all(r["path"].startswith("src/payments/") for r in scoped["results"])
            go = await call(client, "search_code", query="ListenAndServe", language="Go", symbol_type="METHOD")
            assert go["results"] and {(r["language"], r["symbol_type"]) for r in go["results"]} == {("go", "method")}
            assert all(r["stale"] is False for r in go["results"])  # always present
            found = await call(client, "search", query="retry_with_backoff", limit=1)
            assert found["results"][0]["path"] == "src/payments/retry.py"  # still serving after all that

    anyio.run(scenario)
