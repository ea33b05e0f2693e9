"""Warm query latency through MCP (stdio round trip, p50/p99) and edit-to-searchable time.

    python benchmarks/mcp_latency.py [flask==3.1.2:flask django==5.2.8:django ...] [--root PATH ...]

"p50/p99" are over one pass of distinct queries (no query-vector cache hits); "rep" over repeats.
"p50/p99" are what the official Python client sees: its `call_tool` also parses each answer into
models and checks it against the tool's output schema with `jsonschema` (a few ms here). "raw" is
the same distinct pass from a plain JSON-RPC client on a second `serve` (a line written, a line
read, `json.loads`): the server and the pipe, what any client sees before its own processing.
Starts the real `amanmcp serve` with the official MCP client, waits for its start-up index run
(building the index first if there is none: slow on a CPU for a big corpus), then times tool
calls as an assistant makes them. Edits append a uniquely named function to a source file, poll
`search_code` until it is the top hit, and restore the file afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import anyio
from mcp import Client
from mcp.client.stdio import StdioServerParameters

sys.path.insert(0, str(Path(__file__).resolve().parent))

from corpora import SHARED_BENCH, unpack

DEFAULT = ["flask==3.1.2:flask", "django==5.2.8:django"]
SETTLE = 5.0  # seconds after start-up before timing: background work done (see measure)
GENERIC = [
    "how are database transactions committed or rolled back",
    "QuerySet filter", "render a template with a context", "url routing and reverse lookup",
    "password hashing", "middleware that handles sessions", "csrf token check",
    "migrations autodetector", "send an email", "cache backend get and set", "ForeignKey on_delete",
    "validate a form field", "json response", "static files storage", "signal receivers connect",
    "paginate a list of objects", "timezone aware datetime", "admin site register a model",
    "HttpResponseRedirect", "get_object_or_404",
]
AMANMCP = shutil.which("amanmcp") or str(Path(sys.executable).parent / "amanmcp")


def queries_for(name: str, root: Path, identifiers: int = 100) -> list[str]:
    """Distinct queries: the corpus's graded ones, generic questions, and names defined in it."""
    path = SHARED_BENCH / "quality" / f"{name}.json"
    own = [q["query"] for q in json.loads(path.read_text())] if path.is_file() else []
    names: set[str] = set()
    for source in sorted(root.rglob("*.py")):
        if ".amanmcp" not in source.parts:
            names.update(re.findall(r"^\s*(?:def|class) ([A-Za-z_]\w{3,})", source.read_text(errors="replace"), re.M))
    picked = random.Random(7).sample(sorted(names), min(identifiers, len(names)))
    return list(dict.fromkeys(own + GENERIC + picked))


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def measure(root: Path, name: str, rounds: int, edits: int, edit_file: str | None) -> dict[str, Any]:
    params = StdioServerParameters(command=AMANMCP, args=["serve", str(root)], env={"HF_HUB_OFFLINE": "1"})
    async with Client(params, mode="legacy", read_timeout_seconds=3600) as client:
        started = time.perf_counter()
        while True:
            status = (await client.call_tool("index_status", {})).structured_content or {}
            if status.get("indexing", {}).get("state") == "watching":
                break
            await anyio.sleep(0.5)
        ready = time.perf_counter() - started
        await anyio.sleep(SETTLE)  # steady state: serve counts every chunk's answer tokens in its first seconds
        queries = queries_for(name, root)
        for q in ("warm up the server", "and its caches"):  # first-call costs are not steady state
            await client.call_tool("search", {"query": q})
        passes: list[list[float]] = []
        server_ms: list[float] = []
        for _ in range(rounds):  # the first pass is all distinct queries; later ones repeat them
            latencies = []
            for q in queries:
                t = time.perf_counter()
                result = await client.call_tool("search", {"query": q, "limit": 10})
                latencies.append((time.perf_counter() - t) * 1000)
                server_ms.append(result.structured_content["took_ms"])  # type: ignore[index]
            passes.append(latencies)
        edit_times = await edit_to_searchable(client, root, edits, edit_file)
    first, repeats = passes[0], [x for p in passes[1:] for x in p] or passes[0]
    return {
        "corpus": name, "files": status["files"], "chunks": status["chunks"], "ready_s": ready,
        "calls": len(first), "p50": statistics.median(first), "p99": percentile(first, 99),
        "repeat_p50": statistics.median(repeats), "repeat_p99": percentile(repeats, 99),
        "server_p50": statistics.median(server_ms), "edit": edit_times,
    }


def raw_round_trips(root: Path, queries: list[str]) -> list[float]:
    """Milliseconds per `search` call from a plain JSON-RPC client over a fresh `serve`'s pipes."""
    proc = subprocess.Popen([AMANMCP, "serve", str(root)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert proc.stdin is not None and proc.stdout is not None
    ids = iter(range(1, 1_000_000))

    def call(method: str, params: dict[str, Any] | None = None) -> Any:
        message: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "params": params or {}}
        notify = method.startswith("notifications/")
        if not notify:
            message["id"] = next(ids)
        proc.stdin.write((json.dumps(message) + "\n").encode())  # type: ignore[union-attr]
        proc.stdin.flush()  # type: ignore[union-attr]
        while not notify:
            answer = json.loads(proc.stdout.readline())  # type: ignore[union-attr]
            if answer.get("id") == message["id"]:
                return answer["result"]
        return None

    try:
        call("initialize", {"protocolVersion": "2025-06-18", "capabilities": {},
                            "clientInfo": {"name": "raw", "version": "0"}})
        call("notifications/initialized")
        while call("tools/call", {"name": "index_status", "arguments": {}})["structuredContent"]["indexing"][
                "state"] != "watching":
            time.sleep(0.5)
        time.sleep(SETTLE)
        for q in ("warm up the server", "and its caches"):
            call("tools/call", {"name": "search", "arguments": {"query": q}})
        times = []
        for q in queries:
            t = time.perf_counter()
            call("tools/call", {"name": "search", "arguments": {"query": q, "limit": 10}})
            times.append((time.perf_counter() - t) * 1000)
        return times
    finally:
        proc.stdin.close()
        proc.wait(timeout=60)


async def edit_to_searchable(client: Client, root: Path, edits: int, edit_file: str | None) -> list[float]:
    candidates = sorted((p for p in root.rglob("*.py") if ".amanmcp" not in p.parts), key=lambda p: p.stat().st_size)
    target = root / edit_file if edit_file else candidates[len(candidates) * 3 // 4]  # a larger-than-median file
    original = target.read_bytes()
    times = []
    try:
        for _ in range(edits):
            name = f"probe_{uuid.uuid4().hex[:10]}"
            target.write_bytes(original + f"\n\ndef {name}(value):\n    return value\n".encode())
            t = time.perf_counter()
            while True:
                result = await client.call_tool("search_code", {"query": name, "limit": 1})
                hits = (result.structured_content or {}).get("results", [])
                if hits and hits[0]["symbol"] == name:
                    break
                if time.perf_counter() - t > 60:
                    raise TimeoutError(f"{name} not searchable after 60 s")
                await anyio.sleep(0.02)
            times.append(time.perf_counter() - t)
    finally:
        target.write_bytes(original)
    print(f"  edited {target.relative_to(root)} ({len(original):,} bytes)", flush=True)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("specs", nargs="*", help="requirement:package_root (wheel corpora)")
    parser.add_argument("--root", action="append", default=[], type=Path, help="an already unpacked project")
    parser.add_argument("--rounds", type=int, default=3, help="passes over the query list (1 distinct + repeats)")
    parser.add_argument("--edits", type=int, default=5, help="edit-to-searchable trials")
    parser.add_argument("--edit-file", help="file to edit, relative to each root (default: a larger-than-median .py)")
    args = parser.parse_args()
    targets = [(p.resolve(), p.name) for p in args.root]
    if not targets:
        for spec in args.specs or DEFAULT:
            requirement, package_root = spec.split(":")
            targets.append((unpack(requirement, package_root), requirement.split("==")[0]))
    print(f"{'corpus':<10} {'files':>6} {'chunks':>7} {'queries':>8} {'p50 ms':>7} {'p99 ms':>7} "
          f"{'raw p50':>8} {'raw p99':>8} {'rep p50':>8} {'rep p99':>8}  edit-to-searchable s")
    for root, name in targets:
        r = anyio.run(measure, root, name, args.rounds, args.edits, args.edit_file)
        raw = raw_round_trips(root, queries_for(name, root))
        edits = " ".join(f"{t:.2f}" for t in r["edit"])
        print(f"{r['corpus']:<10} {r['files']:>6} {r['chunks']:>7} {r['calls']:>8} "
              f"{r['p50']:>7.1f} {r['p99']:>7.1f} {statistics.median(raw):>8.1f} {percentile(raw, 99):>8.1f} "
              f"{r['repeat_p50']:>8.1f} {r['repeat_p99']:>8.1f}  median {statistics.median(r['edit']):.2f} ({edits})",
              flush=True)


if __name__ == "__main__":
    main()
