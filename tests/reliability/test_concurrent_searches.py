"""50 concurrent MCP searches while `serve` re-indexes, through one official-client session.

`amanmcp index --force` from another process is refused while `serve` holds the write lock (checked
here too), so the re-index is the one `serve` itself runs: every file but the probe ones is rewritten,
the watcher queues the changes, and the burst of 50 `search` calls is fired once `index_status` says
a run is in progress. The hashed static backend keeps the run and the searches about indexing and
storage, not model time. Asserted: 0 errors, every answer right. Reported: latency p50/p95/p99/max.
"""

from __future__ import annotations

import itertools
import random
import statistics
import time
from pathlib import Path
from typing import Any

import anyio
import pytest
from attack import amanmcp
from mcp import Client
from test_fuzz_mcp import session

FILES = 3000
PROBES = 100  # files 0-99 are never edited: the burst asks for them and checks the answer
CALLS = 50
WORDS = (
    "account address adapter agent alert archive audit backoff balance batch billing buffer cache cart channel "
    "checkout client cluster config connection consumer cursor customer dashboard database deadline decoder "
    "delivery device digest discount document domain driver email encoder endpoint engine event export feature "
    "filter gateway graph handler header history image import index inventory invoice job journal kernel key "
    "ledger limit listener loader locale lock logger mailbox manifest mapper message metric migration module "
    "monitor network node notification order owner packet page parser partition payload payment permission "
    "pipeline plugin policy pool price printer process profile promotion proxy quota queue quote receipt record "
    "refund region registry release replica report request resolver resource response retry route router "
    "schedule schema scheduler session shipment signal snapshot socket source storage stream subscription "
    "supplier table tax template tenant thread ticket timer token topic trace transaction transport upload user "
    "validator vendor version voucher wallet warehouse webhook widget worker"
).split()
VERBS = "build check compute create decode delete encode fetch find flush load merge parse render save sync".split()


def names(count: int) -> list[tuple[str, str, str]]:
    """(function, class, docstring words) for each file: distinct three-word function names over a
    realistic spread of vocabulary (a word is in a few percent of the files, not in all of them)."""
    rng = random.Random(7)
    combos = [(v, a, b) for v in VERBS for a, b in itertools.permutations(WORDS, 2)]
    rng.shuffle(combos)
    out = []
    for verb, a, b in combos[:count]:
        cls = a.title() + rng.choice(WORDS).title()
        out.append((f"{verb}_{a}_{b}", cls, " ".join(rng.sample(WORDS, 6))))
    return out


def module(function: str, cls: str, words: str, edit: str = "") -> str:
    return (f'"""{words.capitalize()}."""\n\n\ndef {function}(value, limit=10):\n'
            f'    """{function.replace("_", " ").capitalize()} for the {words.split()[0]}{edit}."""\n'
            f"    return [value] * limit\n\n\nclass {cls}:\n    def handle(self, item):\n        return item\n")


def write_corpus(root: Path) -> tuple[list[Path], list[tuple[str, str, str]]]:
    spec = names(FILES)
    paths = []
    for i, (function, cls, words) in enumerate(spec):
        path = root / f"pkg{i // 100:02d}" / f"{function}.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(module(function, cls, words))
        paths.append(path)
    return paths, spec


async def call(client: Client, tool: str, **arguments: Any) -> dict[str, Any]:
    result = await client.call_tool(tool, arguments)
    assert not result.is_error, result.content
    assert result.structured_content is not None
    return result.structured_content


async def until(client: Client, want: str, timeout: float = 60.0, stages: tuple[str, ...] = ()) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = await call(client, "index_status")
        if status["indexing"]["state"] == want and (not stages or status["indexing"]["stage"] in stages):
            return status
        await anyio.sleep(0.01)
    raise AssertionError(f"index_status never said {want!r} within {timeout}s")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


@pytest.mark.slow
def test_fifty_concurrent_searches_during_reindex(tmp_path: Path) -> None:
    root = tmp_path / "corpus"
    paths, spec = write_corpus(root)
    assert amanmcp("index", str(root)).returncode == 0

    async def scenario() -> dict[str, Any]:
        async with session(root) as (client, garbage):
            await until(client, "watching")
            refused = amanmcp("index", str(root), "--force")  # one writer: serve holds the lock
            assert refused.returncode == 1 and "is keeping the index" in refused.stderr, refused.stderr

            latencies: list[float] = []
            errors: list[str] = []

            async def one(k: int, into: list[float]) -> None:
                probe = (k * 7) % PROBES
                expected = paths[probe].relative_to(root).as_posix()
                started = time.perf_counter()
                try:
                    result = await client.call_tool("search", {"query": spec[probe][0], "limit": 5})
                    into.append((time.perf_counter() - started) * 1000)
                    if result.is_error or result.structured_content is None:
                        errors.append(str(result.content))
                    elif (top := result.structured_content["results"][0])["path"] != expected:
                        errors.append(f"wrong top result for {spec[probe][0]}: {top}")
                except Exception as exc:  # a transport failure counts as an error too
                    errors.append(repr(exc))

            async def burst(into: list[float]) -> float:
                started = time.perf_counter()
                async with anyio.create_task_group() as group:
                    for k in range(CALLS):
                        group.start_soon(one, k, into)
                return (time.perf_counter() - started) * 1000

            idle: list[float] = []
            await burst(idle)  # the same burst with nothing else running: what queueing alone costs

            for i in range(PROBES, FILES):
                paths[i].write_text(module(*spec[i], edit=" (reindexed)"))
            status = await until(client, "indexing", stages=("chunk", "embed", "store"))  # past the scan
            reindex_started = time.perf_counter()
            burst_ms = await burst(latencies)
            after = await call(client, "index_status")

            await until(client, "watching", timeout=120)
            reindex = (time.perf_counter() - reindex_started) * 1000
            edited = await call(client, "search_code", query=f"{spec[-1][0]} reindexed", limit=1)
            assert edited["results"][0]["path"] == paths[-1].relative_to(root).as_posix()
            assert "(reindexed)" in edited["results"][0]["content"]
            assert not garbage, garbage
            return {"latencies": latencies, "idle": idle, "errors": errors, "burst_ms": burst_ms,
                    "stage": status["indexing"]["stage"], "still_indexing": after["indexing"]["state"] == "indexing",
                    "reindex_ms": reindex, "stage_after": after["indexing"]["stage"]}

    outcome = anyio.run(scenario)
    latencies, idle = outcome["latencies"], outcome["idle"]
    print(f"\n{CALLS} concurrent MCP searches (one session, hashed static backend, {FILES} files): "
          f"{len(outcome['errors'])} errors. During a re-index of {FILES - PROBES} files: latency ms "
          f"p50 {statistics.median(latencies):.0f}, p95 {percentile(latencies, 0.95):.0f}, "
          f"p99 {percentile(latencies, 0.99):.0f}, max {max(latencies):.0f} (burst {outcome['burst_ms']:.0f} ms, "
          f"fired at stage {outcome['stage']!r} of a re-index that ran {outcome['reindex_ms']:.0f} ms from there; "
          f"still running, at stage {outcome['stage_after']!r}, when the burst ended: {outcome['still_indexing']}). "
          "Idle, the same burst: "
          f"p50 {statistics.median(idle):.0f}, p99 {percentile(idle, 0.99):.0f} ms")
    assert outcome["errors"] == [] and len(latencies) == len(idle) == CALLS
    assert outcome["still_indexing"], "the re-index ended before the burst did: the test no longer measures overlap"
