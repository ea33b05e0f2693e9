"""graph_query and expand_context through the official MCP client against `amanmcp serve`."""

from __future__ import annotations

import time
from pathlib import Path

import anyio

from test_graph import PROJECT, write
from test_mcp_server import call, connect, error, until, watching

EDIT_SECONDS = 2.0  # an edit that adds a call shows up in `callers` within this long under serve


def test_graph_tools_over_mcp_and_a_live_edit(tmp_path: Path) -> None:
    root = tmp_path / "demo"
    write(root, PROJECT)
    (root / ".git").mkdir()

    async def scenario() -> None:
        async with connect(root) as client:
            tools = {t.name: t for t in (await client.list_tools()).tools}
            schema = tools["graph_query"].input_schema["properties"]
            assert schema["mode"]["enum"] == ["find_references", "callers", "callees", "explain_symbol",
                                              "impact_analysis"]
            assert schema["subject_type"]["enum"] == ["auto", "symbol", "path"]
            assert "grep" in tools["graph_query"].description and "grep" in tools["expand_context"].description
            await watching(client)

            found = await call(client, "graph_query", query="url_for")
            assert found["resolution"] == "resolved" and found["subject"]["path"] == "pkg/helpers.py"
            assert {(r["path"], r["start_line"]) for r in found["results"]} >= {
                ("pkg/app.py", 7), ("tests/test_app.py", 7)}
            ambiguous = await call(client, "graph_query", query="add_url_rule", mode="callers")
            assert ambiguous["resolution"] == "disambiguation_required" and len(ambiguous["candidates"]) == 2
            assert "mode must be one of" in await error(client, "graph_query", query="x", mode="calls")
            for arguments, expected in (
                ({"query": "x", "max_depth": 0}, "max_depth must be a whole number between 1 and 5, not 0"),
                ({"query": "x", "max_depth": True}, "max_depth must be a whole number between 1 and 5"),
                ({"query": "x", "max_nodes": "many"}, "max_nodes must be a whole number between 1 and 500"),
                ({"query": "x", "subject_type": "file"}, "subject_type must be one of auto, symbol, path"),
                ({"query": "   "}, "query must name a symbol"),
                ({"mode": "callers"}, "query is required"),
                ({"seed": "x", "seed_type": 3}, "seed_type must be one of auto, symbol, path"),
                ({"seed": "x", "max_tokens": 10}, "max_tokens must be"),
            ):
                tool = "expand_context" if "seed" in arguments else "graph_query"
                assert expected in await error(client, tool, **arguments), (tool, arguments)
            pack = await call(client, "expand_context", seed="pkg/app.py:10", max_tokens=2000)
            assert pack["subject"]["symbol"] == "Flask.run" and pack["items"][0]["role"] == "implementation"

            before = await call(client, "graph_query", query="Flask.run", mode="callers")
            assert before["results"] == []
            started = time.monotonic()
            (root / "pkg/extra.py").write_text("from .app import Flask\n\n\ndef start():\n    Flask().run()\n")

            async def seen() -> bool:
                answer = await call(client, "graph_query", query="Flask.run", mode="callers")
                return [(r["path"], r["start_line"], r["symbol"]) for r in answer["results"]] == [
                    ("pkg/extra.py", 5, "start")]

            await until(seen, timeout=30, what="the new call under callers")
            elapsed = time.monotonic() - started
            assert elapsed < EDIT_SECONDS, f"the edit took {elapsed:.2f} s to show up in callers"

    anyio.run(scenario)
