"""Answers sized for the client (issue 14): `max_tokens`, trimming at whole lines, the compact text
rendering; and the rest of what a client sees of the server: guidance, schemas, capabilities,
resources, and requests answered after stdin closes."""

from __future__ import annotations

import json
import random
import subprocess
import threading
from pathlib import Path
from typing import Any

import anyio
import jsonschema
import pytest

from amanmcp import __version__
from amanmcp.answers import (
    MAX_MAX_TOKENS,
    MIN_MAX_TOKENS,
    TokenCounter,
    bound,
    check_max_tokens,
    compact_json,
    fit,
    measure,
    token_counter,
)
from amanmcp.config import Settings
from amanmcp.indexer import Indexer
from amanmcp.search import SearchError, SearchQuality, SearchResponse, SearchResult
from test_mcp_server import AMANMCP, _cli_env, call, connect, error, watching

QUALITY = SearchQuality(mode="hybrid", degraded=False, reason="", backend="local", model="all-MiniLM-L6-v2")


def response(sizes: list[int], width: int = 40, seed: int = 0) -> SearchResponse:
    """Results of `sizes[i]` lines each, lines of varied length (and a blank one now and then)."""
    rng = random.Random(seed)
    results = []
    for i, n in enumerate(sizes):
        lines = [" " * rng.randrange(0, 8) + " ".join(f"word{rng.randrange(10**6)}_x" for _ in range(rng.randrange(
            0, width // 8))) for _ in range(n)]
        results.append(SearchResult(
            path=f"pkg/mod_{i}.py", start_line=10, end_line=9 + n, symbol=f"func_{i}", symbol_type="function",
            language="python", content_type="code", score=round(1 - i / 200, 4), content="\n".join(lines)))
    return SearchResponse(query="find things", results=results, search_quality=QUALITY, took_ms=1.0)


def sizes_of(answer: Any, text: str, counter: TokenCounter) -> tuple[int, int]:
    return counter.count(compact_json(answer.model_dump(mode="json"))), counter.count(text)


def test_counts_with_the_default_models_tokenizer() -> None:
    counter = token_counter()
    assert counter.name == "all-MiniLM-L6-v2 tokenizer"  # installed with the dev extra: never chars/4 in tests
    long = "def retry_with_backoff(func):\n    return func()\n" * 200
    assert counter.count(long) > 2000  # no 128-token truncation from tokenizer.json
    assert counter.counts(["", "hello world"]) == [0, 2]  # no [CLS]/[SEP], no padding
    assert TokenCounter(None, "characters/4").counts(["", "abcd", "abcde"]) == [0, 1, 2]


@pytest.mark.parametrize("budget", [MIN_MAX_TOKENS, 800, 2000, 8000])
@pytest.mark.parametrize("seed", range(4))
def test_fit_never_exceeds_the_budget_and_cuts_whole_lines(budget: int, seed: int) -> None:
    rng = random.Random(seed)
    full = response([rng.randrange(0, 150) for _ in range(rng.choice([3, 10, 40, 100]))], width=rng.choice([40, 160]),
                    seed=seed)
    counter = token_counter()
    answer, text = fit(full, budget, counter)
    structured, rendered = sizes_of(answer, text, counter)
    assert structured <= budget and rendered <= budget
    assert answer.max_tokens == budget
    assert answer.omitted_results == len(full.results) - len(answer.results)
    cut = 0
    for got, want in zip(answer.results, full.results, strict=False):  # kept in rank order, headers intact
        assert (got.path, got.start_line, got.end_line, got.symbol, got.score) == (
            want.path, want.start_line, want.end_line, want.symbol, want.score)
        whole = want.content.split("\n") if want.content else []
        shown = got.content.split("\n") if got.content else []
        assert shown == whole[: len(shown)]  # a prefix of whole lines: never a line cut in the middle
        assert got.truncated_lines == len(whole) - len(shown)
        cut += got.truncated_lines
    assert answer.truncated == bool(cut or answer.omitted_results)
    assert bool(answer.note) == answer.truncated
    if answer.truncated:
        assert f"max_tokens={budget}" in answer.note and answer.note in text


def test_small_answers_are_whole_and_heads_come_before_tails() -> None:
    counter = token_counter()
    small = response([5, 5, 5])
    answer, _ = fit(small, 8000, counter)
    assert not answer.truncated and answer.note == "" and answer.omitted_results == 0
    assert [r.content for r in answer.results] == [r.content for r in small.results]
    assert all(r.truncated_lines == 0 for r in answer.results)

    # Ten long results in a budget that holds about a third of them: every result keeps its first
    # lines; the best ones are completed first; no result is dropped.
    big = response([120] * 10, width=80)
    answer, _ = fit(big, 4000, counter)
    assert len(answer.results) == 10 and answer.omitted_results == 0
    kept = [120 - r.truncated_lines for r in answer.results]
    assert all(k >= 3 for k in kept), kept
    assert kept == sorted(kept, reverse=True), kept  # best first
    assert kept[0] > 3 and kept[-1] < 120

    # A hundred results whose headers alone overflow: the lowest-ranked go, the rest keep first lines.
    many = response([30] * 100)
    answer, _ = fit(many, 4000, counter)
    assert 0 < len(answer.results) < 100 and answer.omitted_results == 100 - len(answer.results)
    assert all(r.content for r in answer.results)
    assert f"the {answer.omitted_results} lowest-ranked results left out" in answer.note


def test_text_block_is_a_compact_rendering_not_json() -> None:
    answer, text = fit(response([4, 2]), 8000)
    lines = text.splitlines()
    assert lines[0] == '2 results for "find things" (hybrid)'
    assert "[1] pkg/mod_0.py:10-13  func_0 (function)" in lines
    assert "[2] pkg/mod_1.py:10-11  func_1 (function)" in lines
    assert '"path"' not in text and "{" not in text  # the JSON is the structured content, not repeated here
    for result in answer.results:
        assert result.content in text
    cut, cut_text = fit(response([200, 200], width=120), MIN_MAX_TOKENS)
    assert cut.truncated and "more lines not shown (max_tokens)" in cut_text
    degraded = SearchResponse(query="x", results=[], took_ms=0.0, search_quality=SearchQuality(
        mode="bm25_only", degraded=True, reason="embedder_unavailable: down", backend="", model=""))
    assert fit(degraded, 8000)[1] == 'No results for "x" (bm25_only, degraded: embedder_unavailable: down).'


def test_max_tokens_bounds_are_plain_sentences() -> None:
    assert check_max_tokens(MIN_MAX_TOKENS) == MIN_MAX_TOKENS and check_max_tokens(MAX_MAX_TOKENS) == MAX_MAX_TOKENS
    for bad in (MIN_MAX_TOKENS - 1, MAX_MAX_TOKENS + 1, 0, -5, True, 2.5, "8000", None):
        with pytest.raises(SearchError, match=r"^max_tokens must be a whole number between 500 and 200,000, not "):
            check_max_tokens(bad)


def test_the_setting_is_the_default(tmp_path: Path) -> None:
    assert Settings().search.max_tokens == 8000
    from amanmcp.config import load_config

    (tmp_path / ".amanmcp.yaml").write_text("search:\n  max_tokens: 1200\n")
    assert load_config(tmp_path, env={}).settings.search.max_tokens == 1200
    (tmp_path / ".amanmcp.yaml").write_text("search:\n  max_tokens: 10\n")
    with pytest.raises(Exception, match="max_tokens"):
        load_config(tmp_path, env={})


# -- through a real `amanmcp serve` ---------------------------------------------------------------

LONG_FILES = {  # big enough that limit=100 with no budget would be far over the default
    f"lib/module_{i:02d}.py": "\n".join(
        [f'"""Module {i}: request handling helpers, part {i}."""', ""]
        + [line for j in range(6) for line in (
            f"def handle_request_{i}_{j}(request, session, retries={j}):",
            f'    """Handle a request for tenant {i}, attempt {j}, and record the session state."""',
            *(f"    value_{k} = request.headers.get('x-header-{k}', session.get('key_{k}', {k}))"
              for k in range(30)),
            "    return value_0", "", "")]
    )
    for i in range(40)
}


def test_answers_fit_the_budget_through_the_server(tmp_path: Path, settings: Settings, embedder) -> None:
    root = tmp_path / "big"
    for rel, text in LONG_FILES.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    (root / ".git").mkdir()
    Indexer(root, settings, embedder).run()
    counter = token_counter()

    async def scenario() -> None:
        async with connect(root) as client:
            await watching(client)
            tools = {t.name: t for t in (await client.list_tools()).tools}
            for limit, budget in ((10, None), (100, None), (100, 3000), (10, MAX_MAX_TOKENS)):
                arguments: dict[str, Any] = {"query": "handle a request and record the session", "limit": limit}
                if budget is not None:
                    arguments["max_tokens"] = budget
                result = await client.call_tool("search_code", arguments)
                assert not result.is_error, result.content
                structured = result.structured_content
                assert structured is not None
                jsonschema.validate(structured, tools["search_code"].output_schema)
                expected = budget or 8000
                assert structured["max_tokens"] == expected
                text = result.content[0].text  # type: ignore[union-attr]
                assert counter.count(compact_json(structured)) <= expected and counter.count(text) <= expected
                assert not text.lstrip().startswith("{")
                if budget == MAX_MAX_TOKENS:
                    assert not structured["truncated"] and structured["note"] == ""
                else:
                    assert structured["truncated"] and "Trimmed to fit" in structured["note"]
                    assert any(r["truncated_lines"] > 0 for r in structured["results"])
                for r in structured["results"]:
                    lines = (root / r["path"]).read_text().splitlines()[r["start_line"] - 1 : r["end_line"]]
                    shown = r["content"].split("\n") if r["content"] else []
                    assert shown == lines[: len(shown)] and len(shown) + r["truncated_lines"] == len(lines)
            settled = await call(client, "search", query="handle_request_3_2", limit=3)
            assert settled["results"][0]["symbol"] == "handle_request_3_2"

    anyio.run(scenario)


def test_guidance_schemas_capabilities_and_version(project: Path, settings: Settings, embedder) -> None:
    Indexer(project, settings, embedder).run()

    async def scenario() -> None:
        async with connect(project) as client:
            info = client.server_info
            assert info is not None and info.name == "amanmcp" and info.version == __version__ != ""
            caps = client.server_capabilities
            assert caps.tools is not None and caps.tools.list_changed is False
            assert caps.resources is not None and not caps.resources.list_changed and not caps.resources.subscribe
            assert caps.prompts is None and caps.logging is None
            instructions = client.instructions or ""
            for words in ("grep", "exact string", "regular expression", "every", "search_code", "search_docs",
                          "max_tokens", "truncated_lines"):
                assert words in instructions, words

            tools = {t.name: t for t in (await client.list_tools()).tools}
            for name in ("search", "search_code", "search_docs"):
                props = tools[name].input_schema["properties"]
                assert props["max_tokens"]["minimum"] == MIN_MAX_TOKENS and props["max_tokens"]["maximum"] == (
                    MAX_MAX_TOKENS)
                assert "grep" in tools[name].description
                for field in ("truncated", "omitted_results", "note", "max_tokens"):
                    assert field in tools[name].output_schema["properties"]
                if "language" in props:  # the languages of this index, as an enum
                    assert props["language"]["enum"] == ["go", "javascript", "markdown", "python", "rust",
                                                         "typescript", None]
            assert tools["search"].input_schema["properties"]["filter"]["enum"] == ["all", "code", "docs"]
            assert "function" in tools["search_code"].input_schema["properties"]["symbol_type"]["enum"]
            assert "languages" in tools["index_status"].description

            found = await client.call_tool("search", {"query": "retry_with_backoff", "limit": 2})
            text = found.content[0].text  # type: ignore[union-attr]
            assert text.startswith('2 results for "retry_with_backoff" (hybrid)')
            assert "[1] src/payments/retry.py:6-13  retry_with_backoff (function)" in text
            assert "def retry_with_backoff(func, attempts=3, base_delay=0.5):" in text
            structured = found.structured_content
            assert structured is not None and structured["truncated"] is False
            jsonschema.validate(structured, tools["search"].output_schema)
            assert set(structured["results"][0]) == {
                "path", "start_line", "end_line", "symbol", "symbol_type", "language", "content_type", "score",
                "content", "stale", "repo", "truncated_lines"}
            with pytest.raises(Exception, match=r"[Mm]ethod not found"):
                await client.list_prompts()

    anyio.run(scenario)


def test_resources_are_the_status_and_the_indexed_files_only(project: Path, settings: Settings, embedder) -> None:
    Indexer(project, settings, embedder).run()
    secret = project / "src/payments/keys.py"
    secret.write_text('GITHUB = "ghp_' + "a" * 36 + '"\n')
    Indexer(project, settings, embedder).run()
    root = project.resolve()

    async def scenario() -> None:
        async with connect(project) as client:
            listed = (await client.list_resources()).resources
            uris = [str(r.uri) for r in listed]
            assert uris[0] == "amanmcp://index/status"
            files = {r.name: r for r in listed[1:]}
            assert set(files) == {"README.md", "docs/guide.md", "engine/src/lib.rs", "server/main.go",
                                  "src/payments/invoice.py", "src/payments/keys.py", "src/payments/retry.py",
                                  "web/cart.js", "web/user.ts"}
            assert str(files["src/payments/retry.py"].uri) == (root / "src/payments/retry.py").as_uri()
            assert files["docs/guide.md"].mime_type == "text/markdown"

            status = await client.read_resource("amanmcp://index/status")
            assert json.loads(status.contents[0].text)["files"] == 9  # type: ignore[union-attr]
            retry = await client.read_resource((root / "src/payments/retry.py").as_uri())
            assert retry.contents[0].text == (project / "src/payments/retry.py").read_text()  # type: ignore[union-attr]
            keys = await client.read_resource((root / "src/payments/keys.py").as_uri())
            assert "ghp_" not in keys.contents[0].text and "[REDACTED:github-token]" in keys.contents[0].text  # type: ignore[union-attr]

            refused = {
                "file:///etc/passwd": "outside the project root",
                (root / "src/payments/../../../shop-outside/secret_plan.py").as_uri(): "outside the project root",
                (root / "src/../README.md").as_uri().replace("/README.md", "/src/%2E%2E/README.md"): None,
                (root / "linked_outside.py").as_uri(): "not an indexed file",
                (root / ".env").as_uri(): "not an indexed file",
                (root / "generated/big_table.py").as_uri(): "not an indexed file",
                (root / "assets/logo.png").as_uri(): "not an indexed file",
                "amanmcp://nothing/here": None,
                "http://example.com/x": None,
            }
            for uri, why in refused.items():
                if why is None and "README" in uri:  # an encoded `..` that stays inside the root is fine
                    got = await client.read_resource(uri)
                    assert got.contents[0].text.startswith("# Demo shop")  # type: ignore[union-attr]
                    continue
                with pytest.raises(Exception) as caught:
                    await client.read_resource(uri)
                if why is not None:
                    assert why in str(caught.value), (uri, caught.value)

    anyio.run(scenario)


def test_requests_in_flight_are_answered_after_stdin_closes(project: Path, settings: Settings, embedder) -> None:
    """A script writes its requests and closes stdin at once: every one of them is answered."""
    Indexer(project, settings, embedder).run()
    messages: list[dict[str, Any]] = [
        {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "pipe", "version": "0"}}},
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
    ]
    queries = ["retry with backoff", "invoice pdf", "ListenAndServe", "shopping cart", "database is locked",
               "tokenize source", "validate email", "install"]
    for i, query in enumerate(queries, 1):
        messages.append({"jsonrpc": "2.0", "id": i, "method": "tools/call",
                         "params": {"name": "search", "arguments": {"query": query, "limit": 5}}})
    messages.append({"jsonrpc": "2.0", "id": 99, "method": "tools/call", "params": {"name": "index_status"}})
    messages.append({"jsonrpc": "2.0", "id": 100, "method": "resources/list"})
    data = "".join(json.dumps(m) + "\n" for m in messages).encode()
    done = subprocess.run([AMANMCP, "serve", str(project), "--no-watch"], input=data, capture_output=True,
                          env=_cli_env(), timeout=120)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    replies = {reply["id"]: reply for reply in map(json.loads, done.stdout.splitlines()) if "id" in reply}
    assert set(replies) == {0, *range(1, len(queries) + 1), 99, 100}
    for i in range(1, len(queries) + 1):
        assert replies[i]["result"]["isError"] is False and replies[i]["result"]["structuredContent"]["results"]
    assert replies[99]["result"]["structuredContent"]["files"] == 8


def test_every_bad_argument_is_a_plain_sentence(project: Path, settings: Settings, embedder) -> None:
    """The full matrix: each tool, each argument, each kind of wrong value; and unknown names."""
    from test_mcp_arguments import plain

    Indexer(project, settings, embedder).run()
    bad_values = {
        "query": [None, 5, 2.5, True, ["retry"], {"q": "retry"}, "", "   ", "***"],
        "limit": [None, "x", 2.5, 0, 101, -1, True, [10], {"n": 1}],
        "filter": [None, 5, "pictures", ["code"], {"a": 1}],
        "language": [5, "cobol", ["python"], {"a": 1}, True],
        "symbol_type": [5, "widget", ["function"], True],
        "scope": [5, [1, 2], {"a": 1}, "../", "/etc", ["src", "../x"], "no/such/folder", True],
        "max_tokens": ["x", 2.5, 0, 499, 200_001, True, [8000], {"n": 1}],
        "repos": [5, "shop", [1], {"a": 1}, True, ["shop"]],  # the last: this project has no shared store
    }
    takes = {
        "search": ("query", "limit", "filter", "language", "scope", "max_tokens", "repos"),
        "search_code": ("query", "limit", "language", "symbol_type", "scope", "max_tokens"),
        "search_docs": ("query", "limit", "scope", "max_tokens"),
    }
    checked: dict[str, int] = {}

    async def scenario() -> None:
        async with connect(project) as client:
            async def refused(tool: str, **arguments: object) -> str:
                message = plain(await error(client, tool, **arguments))
                checked[tool] = checked.get(tool, 0) + 1
                return message

            for tool, names in takes.items():
                for name in names:
                    for value in bad_values[name]:
                        arguments = {"query": "retry", name: value}
                        if name == "query" and value is None:
                            arguments.pop("query")
                        message = await refused(tool, **arguments)
                        assert message.split(" ")[0].strip("'") in (name, "the") or name in message, (
                            tool, name, value, message)
                assert (await refused(tool, query="retry", lang="go")) == (
                    f"{tool} does not take 'lang': its arguments are {', '.join(names)}")
            assert "valid" not in await refused("search", query="x", scope="no/such/folder")
            assert "the index's top-level files and folders are: README.md, docs, engine, server, src, web" in (
                await refused("search", query="x", scope="nowhere"))
            assert "under src/ the index holds: src/payments" in await refused("search", query="x", scope="src/pay")
            assert (await refused("index_status", verbose=True)) == (
                "index_status does not take 'verbose': its arguments are none")
            assert (await refused("grep", query="x")) == (
                "there is no tool named 'grep'; the tools are search, search_code, search_docs, index_status, "
                "graph_query, expand_context")
            found = await call(client, "search", query="retry_with_backoff", limit=1, scope="src")
            assert found["results"][0]["path"] == "src/payments/retry.py"  # still serving, string scope read

    anyio.run(scenario)
    matrix = sum(len(bad_values[name]) for names in takes.values() for name in names)
    assert checked == {"search": 54, "search_code": 44, "search_docs": 35, "index_status": 1, "grep": 1}, checked
    assert sum(checked.values()) == matrix + 3 + 3 + 2  # the matrix, an unknown argument each, scopes, names


@pytest.mark.parametrize("seed", range(3))
def test_measuring_in_parts_equals_counting_the_whole(seed: int) -> None:
    """The fast measure (skeleton + remembered contents) is the count of each whole form, exactly."""
    rng = random.Random(seed)
    full = response([rng.randrange(0, 60) for _ in range(8)], width=rng.choice([40, 160]), seed=seed)
    full.results[0].content += '\n\tquote " backslash \\ café 東京 ünïcode'  # escapes and non-ASCII
    counter = token_counter()
    for budget in (MAX_MAX_TOKENS, 1500):
        answer, text = fit(full, budget, counter)
        assert measure(answer, counter) == max(sizes_of(answer, text, counter))
        assert measure(answer, counter) == max(sizes_of(answer, text, counter))  # from the remembered counts


@pytest.mark.parametrize("seed", range(3))
def test_the_quick_bound_is_never_below_the_measure(seed: int) -> None:
    """`fit` accepts an answer by `bound` without tokenising its skeleton: a bound that could fall
    below the true size would let an answer through over budget."""
    rng = random.Random(seed)
    full = response([rng.randrange(0, 60) for _ in range(8)], width=rng.choice([40, 160]), seed=seed)
    full.results[1].content += "\n\u6771\u4eac\u90fd \U0001f600 x\ty \"q\" \\ caf\u00e9"  # CJK, emoji, escapes
    for counter in (token_counter(), TokenCounter(None, "characters/4")):
        for budget in (MAX_MAX_TOKENS, 1500, MIN_MAX_TOKENS):
            answer, _ = fit(full, budget, counter)
            assert bound(answer, counter) >= measure(answer, counter)
    counter = token_counter()  # and a budget the bound cannot settle is measured, never cut needlessly
    answer, _ = fit(full, measure(fit(full, MAX_MAX_TOKENS, counter)[0], counter), counter)
    assert not answer.truncated


def test_warm_counts_both_forms_ahead_so_answers_need_no_tokenising() -> None:
    """`serve` counts every chunk once in the background; afterwards fitting an answer of those chunks
    tokenises only its small skeleton, and the counts equal a fresh count."""
    base = token_counter()
    assert base._tokenizer is not None
    full = response([40, 25, 60], width=120, seed=7)
    contents = [r.content for r in full.results]
    counter = TokenCounter(base._tokenizer, base.name)
    assert counter.warm(iter(contents), threading.Event(), batch=2) == 3

    class Recording:
        def __init__(self) -> None:
            self.seen: list[str] = []

        def encode_batch(self, texts: list[str], add_special_tokens: bool = False) -> Any:
            self.seen += texts
            return base._tokenizer.encode_batch(texts, add_special_tokens=add_special_tokens)

    recording = Recording()
    counter._tokenizer = recording
    assert measure(fit(full, MAX_MAX_TOKENS, counter)[0], counter) == measure(fit(full, MAX_MAX_TOKENS)[0], base)
    assert not any(c in recording.seen for c in contents)  # every content came from the warm-up
    assert all(len(text) < 4000 for text in recording.seen)  # only the skeletons were tokenised
    recording.seen.clear()
    fit(full, MAX_MAX_TOKENS, counter)  # far below the budget: the bound settles it, nothing is tokenised
    assert recording.seen == []
