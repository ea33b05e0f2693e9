"""How big MCP search answers are, in tokens of the default model's tokenizer (issue 14: ≤ 20k).

    python benchmarks/answer_size.py [flask==3.1.2:flask ...] [--root PATH ...] [--sdist flask==3.1.2]

Starts the real `amanmcp serve` with the official MCP client (building the index first if there
is none), runs every query of the corpus's graded set and some generic questions through `search`,
`search_code` and `search_docs` at limit 10 (the default) and limit 100, with the default
max_tokens, and reports the largest answer: the structured content as a client stringifies it
(what Claude Code hands its model), the text block, and the whole `tools/call` result on the wire
(both together). "untrimmed" repeats limit 100 with max_tokens at its maximum, to show what the
budget saves.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path
from typing import Any

import anyio
from mcp import Client
from mcp.client.stdio import StdioServerParameters

sys.path.insert(0, str(Path(__file__).resolve().parent))

from corpora import SHARED_BENCH, unpack, unpack_sdist

from amanmcp.answers import MAX_MAX_TOKENS, compact_json, token_counter

AMANMCP = shutil.which("amanmcp") or str(Path(sys.executable).parent / "amanmcp")
GENERIC = ["how does this project handle errors", "configuration loading", "tests for the command line",
           "request", "app", "def", "install"]
TOOLS = ("search", "search_code", "search_docs")


def queries_for(name: str) -> list[str]:
    path = SHARED_BENCH / "quality" / f"{name}.json"
    own = [q["query"] for q in json.loads(path.read_text())] if path.is_file() else []
    return list(dict.fromkeys(own + GENERIC))


def sizes(result: Any) -> dict[str, int]:
    count = token_counter().count
    structured = compact_json(result.structured_content)
    text = "".join(block.text for block in result.content if getattr(block, "type", "") == "text")
    wire = compact_json({"content": [{"type": "text", "text": text}], "structuredContent": result.structured_content})
    return {"structured": count(structured), "text": count(text), "wire": count(wire)}


async def measure(root: Path, name: str) -> dict[str, Any]:
    params = StdioServerParameters(command=AMANMCP, args=["serve", str(root)], env={"HF_HUB_OFFLINE": "1"})
    rows: dict[str, dict[str, Any]] = {}
    async with Client(params, mode="legacy", read_timeout_seconds=3600) as client:
        while True:
            status = (await client.call_tool("index_status", {})).structured_content or {}
            if status.get("indexing", {}).get("state") == "watching":
                break
            await anyio.sleep(0.5)
        runs = [("limit 10", {}), ("limit 100", {"limit": 100}),
                ("limit 100 untrimmed", {"limit": 100, "max_tokens": MAX_MAX_TOKENS})]
        for label, extra in runs:
            worst: dict[str, Any] = {"structured": 0, "text": 0, "wire": 0, "calls": 0, "trimmed": 0}
            for query in queries_for(name):
                for tool in TOOLS:
                    result = await client.call_tool(tool, {"query": query, **extra})
                    assert not result.is_error, result.content
                    size = sizes(result)
                    worst["calls"] += 1
                    worst["trimmed"] += bool(result.structured_content["truncated"])  # type: ignore[index]
                    for key, value in size.items():
                        if value > worst[key]:
                            worst[key] = value
                            worst[f"{key}_at"] = f"{tool}({query!r})"
            rows[label] = worst
    return {"corpus": name, "files": status["files"], "chunks": status["chunks"], "rows": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("specs", nargs="*", help="requirement:package_root (wheel corpora)")
    parser.add_argument("--root", action="append", default=[], type=Path, help="an already unpacked project")
    parser.add_argument("--sdist", action="append", default=[], help="a requirement: its whole source distribution")
    args = parser.parse_args()
    targets = [(p.resolve(), p.name) for p in args.root]
    targets += [(unpack_sdist(req), req.split("==")[0] + " (sdist)") for req in args.sdist]
    if not targets:
        for spec in args.specs or ["flask==3.1.2:flask"]:
            requirement, package_root = spec.split(":")
            targets.append((unpack(requirement, package_root), requirement.split("==")[0]))
    print(f"tokens counted with the {token_counter().name}; the default max_tokens applies unless marked")
    print(f"{'corpus':<16} {'run':<20} {'calls':>5} {'trimmed':>7} {'structured':>10} {'text':>6} {'wire':>6}"
          "  largest at")
    for root, name in targets:
        r = anyio.run(measure, root, name.split(" ")[0])
        for label, w in r["rows"].items():
            print(f"{name:<16} {label:<20} {w['calls']:>5} {w['trimmed']:>7} {w['structured']:>10} {w['text']:>6} "
                  f"{w['wire']:>6}  {w.get('wire_at', '')}")
        print(f"{'':<16} ({r['files']} files, {r['chunks']} chunks)")


if __name__ == "__main__":
    main()
