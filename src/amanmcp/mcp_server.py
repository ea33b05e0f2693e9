"""`amanmcp serve`: the MCP server (stdio, official `mcp` SDK) over the same library as the CLI.

Tools return typed models, so clients get structured content with a published output schema.
Bad arguments become tool errors with a plain sentence (the server keeps running): `AmanServer`
maps every library error and every argument the SDK's schema check rejects, in one place. Any
number of `serve` processes may share a project: one holds the index write lock (the writer role),
the others answer read-only and one takes over when it exits (`watch.ServeIndex`); `amanmcp
search`/`status` in a shell keep working beside them (SQLite WAL). Nothing here writes to stdout: the SDK's
stdio transport owns it, and logs go to stderr or a file.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any

import anyio
from mcp.server.lowlevel.helper_types import ReadResourceContents
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.stdio import stdio_server
from mcp.shared.exceptions import MCPError
from mcp_types import (
    INVALID_PARAMS,
    CallToolResult,
    JSONRPCError,
    JSONRPCNotification,
    JSONRPCRequest,
    JSONRPCResponse,
    ListResourcesResult,
    PaginatedRequestParams,
    TextContent,
    ToolAnnotations,
)
from mcp_types import Tool as MCPTool
from pydantic import BeforeValidator, Field, ValidationError

from amanmcp import __version__
from amanmcp.answers import MAX_MAX_TOKENS, MIN_MAX_TOKENS, SearchAnswer, check_max_tokens, fit, token_counter
from amanmcp.config import Settings
from amanmcp.embed.factory import Selection
from amanmcp.errors import AmanError
from amanmcp.graph.context import SEED_TYPES, ContextAnswer
from amanmcp.graph.query import MAX_DEPTH, MAX_NODES, MODES, SUBJECT_TYPES, GraphAnswer
from amanmcp.graph.service import GraphService
from amanmcp.mcp_resources import STATUS_URI, IndexFiles
from amanmcp.search import (
    FILTERS,
    SYMBOL_TYPES,
    NoIndexError,
    Searcher,
    SearchError,
    SearchQuality,
    SearchResponse,
    preview,
)
from amanmcp.status import IndexStatus, index_status
from amanmcp.store import IndexLayout, IndexStore
from amanmcp.team import PgSearcher, make_searcher, repo_name
from amanmcp.watch import ServeIndex

log = logging.getLogger(__name__)

INSTRUCTIONS = """\
amanmcp searches this project's code and docs by meaning and by name (hybrid BM25 + embeddings),
and answers with the best-matching chunks: path (relative to the project root), start_line-end_line
(1-based, inclusive), symbol and content. Prefer it to reading files blind or to grep for questions
like "where is X handled", "how does Y work", "what calls the payment API", or a name you only half
remember.
- search_code: where something is defined or implemented: a function, class or method by name or by
  what it does. Narrow with language, symbol_type (function, method, class, ...) and scope (folders).
- search_docs: README, markdown and text prose: setup, design notes, how-tos, section by section.
- search: code and docs together, when unsure which holds the answer.
- index_status: what is indexed (files, languages), and whether a build is still running.
- graph_query: the code graph, resolved by scope and imports (not text matching): every reference
  to a symbol (find_references), who calls it (callers), what it calls (callees), its signature,
  doc, members and counts (explain_symbol), and what a change to it reaches (impact_analysis).
  Prefer it to grep for "who calls X", "where is X used", "what breaks if I change X": grep also
  matches comments, strings and unrelated symbols of the same name, and misses aliased imports.
  An ambiguous name answers resolution=disambiguation_required with candidates: ask again with
  one (Class.method, path:name or path:line); it never guesses.
- expand_context: before editing or explaining a symbol or file, one call gathers its code, the
  functions it calls, its callers, its tests, and docs/config that name it, to a token budget.
Use grep (or your editor's find) instead for an exact string, a regular expression, or every
occurrence of a literal (a log message, an error code, a config key): amanmcp ranks and returns
the top chunks, not every match.
Answers fit in max_tokens (default 8000): content is cut at whole lines from the end of each result
and the result says so (truncated_lines); read the file at the lines given for the rest. The index
follows edits live; stale=true marks a file changed since it was indexed. Resources: the index
status (amanmcp://index/status) and every indexed file (file:// URIs)."""



def _no_bool(value: object) -> object:
    """pydantic reads true as 1; a whole-number argument given a boolean is an error like any other."""
    if isinstance(value, bool):
        raise ValueError("a boolean is not a number")
    return value


Query = Annotated[str, Field(description="What to look for: words, a question, or an identifier.")]
# Bounds and choices are published in the schema but checked by the library, whose messages are
# plain sentences ("limit must be between 1 and 100, not 0") rather than pydantic reports.
Limit = Annotated[
    int,
    BeforeValidator(_no_bool),
    Field(description="How many results to return (1-100).", json_schema_extra={"minimum": 1, "maximum": 100}),
]
Filter = Annotated[
    str,
    Field(description="all, code only, or docs (markdown/text) only.", json_schema_extra={"enum": list(FILTERS)}),
]
LANGUAGE_HELP = ("Only files of this language, e.g. python, go, typescript, markdown; one of the languages "
                 "this index holds (index_status lists them; any other is an error that names them).")
Language = Annotated[str | None, Field(description=LANGUAGE_HELP)]
Scope = Annotated[
    list[str] | str | None,
    Field(description="Only under these folders or files (paths relative to the project root, e.g. ['src/api']); "
                      "a single path may be given as a plain string."),
]
MaxTokens = Annotated[
    int | None,
    BeforeValidator(_no_bool),
    Field(description=f"Most tokens the answer may take ({MIN_MAX_TOKENS:,}-{MAX_MAX_TOKENS:,}; default: the "
                      "search.max_tokens setting, 8000). Content is cut at whole lines to fit, and each result "
                      "says how many lines it lost (truncated_lines); path, lines and symbol always stay.",
          json_schema_extra={"minimum": MIN_MAX_TOKENS, "maximum": MAX_MAX_TOKENS}),
]
SymbolType = Annotated[
    str | None,
    Field(description=f"Only chunks defining this kind of symbol: {', '.join(SYMBOL_TYPES)}.",
          json_schema_extra={"enum": [*SYMBOL_TYPES, None]}),
]
Repos = Annotated[
    list[str] | None,
    Field(description="With a shared team store only: the repositories to search (index_status lists them); "
                      "default: this project's. ['*'] searches every repository."),
]
# What each argument must be, for the sentence that answers a value the input schema rejects.
EXPECTED = {
    "query": "text: words, a question, or an identifier",
    "limit": "a whole number between 1 and 100",
    "filter": f"one of {', '.join(FILTERS)}",
    "language": "a language name such as python (index_status lists this index's languages)",
    "symbol_type": f"one of {', '.join(SYMBOL_TYPES)}",
    "scope": "a path inside the project, or a list of them",
    "repos": "a list of repository names of the shared store",
    "max_tokens": f"a whole number between {MIN_MAX_TOKENS} and {MAX_MAX_TOKENS:,}",
    "mode": f"one of {', '.join(MODES)}",
    "subject_type": f"one of {', '.join(SUBJECT_TYPES)}",
    "seed_type": f"one of {', '.join(SEED_TYPES)}",
    "seed": "a symbol, a path, or a search result's path:line",
    "max_depth": f"a whole number between 1 and {MAX_DEPTH}",
    "max_nodes": f"a whole number between 1 and {MAX_NODES}",
}
DRAIN_SECONDS = 30.0  # at end of input, the longest wait for answers still owed
READ_ONLY = ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False)


class SearchService:
    """What the tools share: this process's part in the index (writer or reader, `ServeIndex`) and
    one Searcher, rebuilt when the settings change. `refusal`: `serve` was started outside any
    project; every tool answers that sentence as a tool error (the client shows it) and nothing
    is indexed."""

    def __init__(self, root: Path, live: ServeIndex | NoProject, refusal: str | None = None) -> None:
        self.root = root
        self.live = live
        self.refusal = refusal
        self._lock = threading.Lock()  # tools run in worker threads; one Searcher, one connection
        self._searcher: Searcher | None = None
        self._config_version = -1

    def _current_searcher(self) -> Searcher:
        if self._searcher is None or self._config_version != self.live.config_version:
            if self._searcher is not None:
                self._searcher.close()
            self._config_version = self.live.config_version
            self._searcher = make_searcher(self.root, self.live.settings, self.live.selection.embedder)
        return self._searcher

    def search(self, query: str, **kwargs: object) -> SearchResponse:
        if self.refusal is not None:
            raise AmanError(self.refusal)
        progress = self.live.progress()
        following = progress.role == "reader"
        try:
            with self._lock:
                searcher = self._current_searcher()
                if "repos" in kwargs and not isinstance(searcher, PgSearcher):
                    raise SearchError("repos needs a shared team store: set store.url or AMANMCP_STORE_URL to a "
                                      "postgresql:// URL (this project has its own index)")
                response = searcher.search(query, **kwargs)  # type: ignore[arg-type]
        except NoIndexError:
            if following and (progress.writer_pid or not progress.last_error):
                writer = f" (pid {progress.writer_pid})" if progress.writer_pid else ""
                return self._empty(query, f"indexing: nothing is searchable yet; another amanmcp serve{writer} is "
                                          "building the index")
            if progress.state in ("starting", "indexing"):
                return self._empty(query, "indexing: nothing is searchable yet; the first build has just started")
            raise AmanError(f"{self.root} has no index and building one failed: {progress.last_error}") from None
        if progress.building:
            quality = response.search_quality
            running = (f"in another amanmcp serve (pid {progress.writer_pid})" if following
                       else _describe(progress.stage, progress.done, progress.total))
            note = f"indexing: the first build is running ({running}); BM25 answers from the part stored so far"
            rest = "" if quality.reason.startswith("indexing:") else quality.reason  # the store's own words for it
            quality.reason = f"{note}; {rest}" if rest else note
            quality.degraded = True
        return response

    def _empty(self, query: str, reason: str) -> SearchResponse:
        selection = self.live.selection
        identity = selection.embedder.identity
        quality = SearchQuality(mode="bm25_only", degraded=True, reason=reason, backend=identity.backend,
                                model=identity.model)
        return SearchResponse(query=query.strip(), results=[], search_quality=quality, took_ms=0.0)

    def status(self) -> IndexStatus:
        if self.refusal is not None:
            raise AmanError(self.refusal)
        info = index_status(self.root, self.live.settings, self.live.selection)
        info.indexing = self.live.progress()
        return info

    def close(self) -> None:
        with self._lock:
            if self._searcher is not None:
                self._searcher.close()


class AmanServer(MCPServer):
    """The SDK's server, with every tool error a plain sentence, mapped here and nowhere else.

    An `AmanError` from the library (bad query, limit, filter, scope, language, symbol_type,
    max_tokens; no index; a damaged index) answers its own message. Arguments the input schema
    rejects (`limit="x"`, `limit=2.5`, no `query`) answer one sentence per argument instead of
    pydantic's report, and an argument the tool does not take (`lang="go"`) is named, not ignored.
    The SDK raises every tool failure as a `ToolError` whose `__cause__` is what went wrong.

    It advertises only what it has: tools, and resources (the index status and every indexed
    file, `IndexFiles`); no prompts, and no list-change notifications in any protocol era. Over
    stdio, requests still in flight when the client closes stdin are answered before it exits.
    """

    def __init__(self, *args: Any, files: IndexFiles | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("subscriptions", False)  # nothing is pushed: listChanged is false in every era
        super().__init__(*args, **kwargs)
        self.files = files
        lowlevel = self._lowlevel_server
        for method in ("prompts/list", "prompts/get"):  # no prompts: no capability that leads nowhere
            lowlevel._request_handlers.pop(method, None)
        lowlevel.add_request_handler("resources/list", PaginatedRequestParams, self._list_resources_page)

    async def call_tool(self, name: str, arguments: dict[str, Any], context: Any = None) -> Any:
        tool = self._tool_manager.get_tool(name)
        if tool is None:
            names = ", ".join(t.name for t in self._tool_manager.list_tools())
            raise ToolError(f"there is no tool named {preview(name)}; the tools are {names}")
        known = tool.parameters.get("properties", {})
        unknown = [key for key in arguments if key not in known]
        if unknown:
            listed = ", ".join(preview(key) for key in unknown)
            raise ToolError(f"{name} does not take {listed}: its arguments are {', '.join(known) or 'none'}")
        try:
            return await super().call_tool(name, arguments, context)
        except ToolError as exc:
            cause = exc.__cause__
            if isinstance(cause, AmanError):
                raise ToolError(str(cause)) from None
            if isinstance(cause, ValidationError):
                raise ToolError(plain_argument_errors(cause)) from None
            raise

    async def list_tools(self) -> list[MCPTool]:
        """The tools, with `language` limited to the languages the index holds right now (when known)."""
        tools = await super().list_tools()
        languages = await anyio.to_thread.run_sync(self.files.languages) if self.files is not None else []
        if not languages:
            return tools
        out = []
        for tool in tools:
            properties = tool.input_schema.get("properties", {})
            if "language" in properties:
                schema = {**tool.input_schema, "properties": {**properties, "language": {
                    **properties["language"], "enum": [*languages, None],
                    "description": f"{LANGUAGE_HELP} This index holds: {', '.join(languages)}.",
                }}}
                tool = tool.model_copy(update={"input_schema": schema})
            out.append(tool)
        return out

    async def _list_resources_page(self, ctx: Any, params: PaginatedRequestParams) -> ListResourcesResult:
        """The index status, then the indexed files, a page at a time."""
        cursor = params.cursor if params is not None else None
        fixed = await self.list_resources() if not cursor else []
        if self.files is None:
            return ListResourcesResult(resources=fixed)
        try:
            files, next_cursor = await anyio.to_thread.run_sync(self.files.page, cursor)
        except AmanError as exc:  # no readable index: the status resource says why
            log.info("resources/list: %s", exc)
            files, next_cursor = [], None
        except Exception as exc:
            raise MCPError(code=INVALID_PARAMS, message=str(exc)) from None
        return ListResourcesResult(resources=[*fixed, *files], next_cursor=next_cursor)

    async def read_resource(self, uri: Any, context: Any = None) -> Any:
        if self.files is not None and str(uri).startswith("file:"):
            text, mime = await anyio.to_thread.run_sync(self.files.read, str(uri))
            return [ReadResourceContents(content=text, mime_type=mime)]
        return await super().read_resource(uri, context)

    async def run_stdio_async(self) -> None:
        """The SDK's stdio loop, except that end of input waits for the answers still owed."""
        async with stdio_server() as (read_stream, write_stream):
            drain = Drain(read_stream, write_stream)
            await self._lowlevel_server.run(
                drain.reader, drain.writer, self._lowlevel_server.create_initialization_options()
            )


class Drain:
    """Wraps a transport's streams so that end of input is passed on only once every request read
    has been answered (or DRAIN_SECONDS have passed).

    The SDK's dispatcher cancels the handlers still running when its input ends, so a client that
    writes its requests and closes stdin (a script, a pipe) would lose every answer not yet sent.
    """

    def __init__(self, read_stream: Any, write_stream: Any, grace: float | None = None) -> None:
        self._read, self._write = read_stream, write_stream
        self.grace = DRAIN_SECONDS if grace is None else grace
        self._owed: set[Any] = set()
        self._answered = anyio.Event()
        self.reader = _DrainReader(self)
        self.writer = _DrainWriter(self)

    def _seen(self, item: Any) -> None:
        message = getattr(item, "message", None)
        if isinstance(message, JSONRPCRequest):
            self._owed.add(message.id)
        elif isinstance(message, JSONRPCNotification) and message.method == "notifications/cancelled":
            self._settle((message.params or {}).get("requestId"))

    def _settle(self, request_id: Any) -> None:
        self._owed.discard(request_id)
        if not self._owed:
            self._answered.set()
            self._answered = anyio.Event()

    async def receive(self) -> Any:
        try:
            item = await self._read.receive()
        except anyio.EndOfStream:
            if self._owed:
                log.info("input closed with %d request(s) in flight: answering them first", len(self._owed))
                with anyio.move_on_after(self.grace):
                    while self._owed:
                        await self._answered.wait()
            raise
        self._seen(item)
        return item

    async def send(self, item: Any) -> None:
        await self._write.send(item)
        message = getattr(item, "message", None)
        if isinstance(message, JSONRPCResponse | JSONRPCError):
            self._settle(message.id)


class _DrainReader:
    def __init__(self, drain: Drain) -> None:
        self._drain = drain

    @property
    def last_context(self) -> Any:  # the sender's context, which the dispatcher restores per message
        return getattr(self._drain._read, "last_context", None)

    async def receive(self) -> Any:
        return await self._drain.receive()

    async def aclose(self) -> None:
        await self._drain._read.aclose()

    def __aiter__(self) -> _DrainReader:
        return self

    async def __anext__(self) -> Any:
        try:
            return await self.receive()
        except anyio.EndOfStream:
            raise StopAsyncIteration from None

    async def __aenter__(self) -> _DrainReader:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


class _DrainWriter:
    def __init__(self, drain: Drain) -> None:
        self._drain = drain

    async def send(self, item: Any) -> None:
        await self._drain.send(item)

    async def aclose(self) -> None:
        await self._drain._write.aclose()

    async def __aenter__(self) -> _DrainWriter:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


def plain_argument_errors(exc: ValidationError) -> str:
    """One sentence per rejected argument, e.g. "limit must be a whole number between 1 and 100, not 'x'"."""
    sentences: dict[str, str] = {}
    for error in exc.errors():
        name = str(error["loc"][0]) if error["loc"] else "arguments"
        expected = EXPECTED.get(name, error["msg"].lower())
        if name in sentences:  # a union reports each of its alternatives: one sentence is enough
            continue
        if error["type"] == "missing":
            sentences[name] = f"{name} is required: {expected}"
        else:
            sentences[name] = f"{name} must be {expected}, not {preview(error.get('input'))}"
    return "; ".join(sentences.values()) or "the arguments do not match the tool's input schema"


def _describe(stage: str, done: int, total: int) -> str:
    return f"{stage} {done}/{total}" if total else (stage or "starting")


def build_server(service: SearchService, settings: Settings) -> MCPServer:
    """The MCP server with its four tools; `service` answers them."""

    @contextlib.asynccontextmanager
    async def lifespan(_: MCPServer) -> AsyncIterator[None]:
        # Started here, once the transport owns stdout: nothing the indexer's libraries print
        # can reach the protocol stream.
        service.live.start()
        stop = threading.Event()
        threading.Thread(target=_warm_answers, args=(service, stop), name="amanmcp-answer-tokens", daemon=True).start()
        try:
            yield
        finally:  # clients allow ~2 s after closing stdin; committed work stays, the rest resumes
            stop.set()
            service.live.stop(timeout=1.5)

    refused = getattr(service, "refusal", None) is not None  # outside any project: no files to offer
    server: MCPServer = AmanServer(
        name="amanmcp",
        version=__version__,
        instructions=INSTRUCTIONS,
        log_level=settings.log_level.upper(),  # type: ignore[arg-type]
        lifespan=lifespan,
        files=None if refused else IndexFiles(service.root, lambda: service.live.settings),
    )

    def budget(max_tokens: int | None) -> int:
        if max_tokens is None:  # the setting as it is now: `.amanmcp.yaml` edits reload it
            max_tokens = getattr(service.live, "settings", settings).search.max_tokens
        return check_max_tokens(max_tokens)

    def answer(response: SearchResponse, max_tokens: int) -> CallToolResult:
        """Structured content (the full contract) and a compact text rendering, each within max_tokens."""
        fitted, text = fit(response, max_tokens)
        return CallToolResult(content=[TextContent(type="text", text=text)],
                              structured_content=fitted.model_dump(mode="json"))

    @server.tool(annotations=READ_ONLY)
    def search(
        query: Query,
        limit: Limit = 10,
        filter: Filter = "all",
        language: Language = None,
        scope: Scope = None,
        max_tokens: MaxTokens = None,
        repos: Repos = None,
    ) -> Annotated[CallToolResult, SearchAnswer]:
        """Search code and docs together, by meaning and by name: the best-matching chunks, each with its
        path, start_line-end_line, symbol and content. Use it when unsure whether the answer is in code or
        in docs; search_code and search_docs are sharper. Use grep instead for an exact string, a regular
        expression, or every occurrence of a literal: this returns the top chunks, not every match."""
        tokens = budget(max_tokens)
        extra = {} if repos is None else {"repos": repos}
        return answer(service.search(query, limit=limit, filter=filter, language=language, scope=scope, **extra),
                      tokens)

    @server.tool(annotations=READ_ONLY)
    def search_code(
        query: Query,
        limit: Limit = 10,
        language: Language = None,
        symbol_type: SymbolType = None,
        scope: Scope = None,
        max_tokens: MaxTokens = None,
    ) -> Annotated[CallToolResult, SearchAnswer]:
        """Find where code is defined or implemented: functions, classes and methods (with the code around
        them) by name or by what they do, e.g. "where are failed payments retried", "HttpClient.send",
        "parse the config file". Narrow with language, symbol_type and scope. Use grep instead for an exact
        string, a regular expression, or every call site of a name."""
        tokens = budget(max_tokens)
        return answer(service.search(query, limit=limit, filter="code", language=language, scope=scope,
                                     symbol_type=symbol_type), tokens)

    @server.tool(annotations=READ_ONLY)
    def search_docs(
        query: Query, limit: Limit = 10, scope: Scope = None, max_tokens: MaxTokens = None
    ) -> Annotated[CallToolResult, SearchAnswer]:
        """Find documentation prose: README, markdown and text files, section by section (setup,
        configuration, design notes, how-tos, troubleshooting). Use search_code for code, grep for an
        exact phrase."""
        tokens = budget(max_tokens)
        return answer(service.search(query, limit=limit, filter="docs", scope=scope), tokens)

    @server.tool(annotations=READ_ONLY)
    def index_status() -> IndexStatus:
        """What is indexed: files, chunks, languages (the values `language` accepts), size, when it was
        last indexed, the embedder, files changed since, and whether a build is running. Call it when
        results look empty, partial or stale."""
        return service.status()

    url = getattr(service.live, "settings", None) and service.live.settings.store.url
    graphs = GraphService(service.root, url, repo_name(service.root, None) if url else None)

    def graph_service() -> GraphService:
        if getattr(service, "refusal", None) is not None:
            raise AmanError(service.refusal)  # type: ignore[arg-type]
        if not graphs.shared and graphs.layout.current() is None:
            progress = service.live.progress()
            if progress.role == "reader" or progress.state in ("starting", "indexing"):
                raise AmanError("indexing: the first build is running and nothing is in the code graph yet; "
                                "ask again in a moment")
        return graphs

    @server.tool(annotations=READ_ONLY)
    def graph_query(
        query: Annotated[str, Field(description="The subject: a name (Router), a qualified name (Router.add), "
                                                "path:name, path:line, or (subject_type path) a file.")],
        mode: Annotated[str, Field(description="find_references: every use; callers / callees: calls in and out, "
                                               "by depth; explain_symbol: signature, doc, members, counts; "
                                               "impact_analysis: transitive users by depth.",
                                   json_schema_extra={"enum": list(MODES)})] = "find_references",
        subject_type: Annotated[str, Field(description="auto (a path when it names an indexed file), symbol or path.",
                                           json_schema_extra={"enum": list(SUBJECT_TYPES)})] = "auto",
        max_depth: Annotated[int, BeforeValidator(_no_bool), Field(
            description=f"Hops for callers, callees and impact_analysis (1-{MAX_DEPTH}).",
            json_schema_extra={"minimum": 1, "maximum": MAX_DEPTH})] = 2,
        max_nodes: Annotated[int, BeforeValidator(_no_bool), Field(
            description=f"Most results (1-{MAX_NODES}).", json_schema_extra={"minimum": 1, "maximum": MAX_NODES})] = 50,
        max_tokens: MaxTokens = None,
    ) -> GraphAnswer:
        """The code graph, resolved through scopes and imports: find_references, callers, callees,
        explain_symbol, impact_analysis. Prefer it to grep for "who calls X", "where is X used", "what does X
        call", "what breaks if X changes": grep matches comments, strings and same-named symbols and misses
        aliased imports. Every result has path, start_line, end_line; an occurrence is reported at its own line
        with the enclosing definition in symbol and the line in content, and a confidence (exact: resolved
        through an import or scope; name: only the name matches, and the subject is its only definition).
        resolution says whether the subject was found: disambiguation_required lists candidates (ask again
        with one), subject_not_found lists near misses; it never guesses."""
        return graph_service().query(query, mode, subject_type, max_depth, max_nodes, budget(max_tokens))

    @server.tool(annotations=READ_ONLY)
    def expand_context(
        seed: Annotated[str, Field(description="A symbol (name, Class.method, path:name), a path, or a search "
                                               "result's path:line.")],
        seed_type: Annotated[str, Field(description="auto, symbol or path.",
                                        json_schema_extra={"enum": list(SEED_TYPES)})] = "auto",
        max_tokens: Annotated[int, BeforeValidator(_no_bool), Field(
            description=f"Budget for the pack ({MIN_MAX_TOKENS:,}-{MAX_MAX_TOKENS:,} tokens).",
            json_schema_extra={"minimum": MIN_MAX_TOKENS, "maximum": MAX_MAX_TOKENS})] = 4000,
    ) -> ContextAnswer:
        """Everything needed to understand or change a symbol or file, in one call: a ranked pack of whole
        chunks with a role (implementation, callee, caller, test, doc, config) and the path from the seed,
        filled to max_tokens. Use it before editing or explaining code instead of reading files one by one
        or grepping for callers and tests. An ambiguous seed answers disambiguation_required with candidates."""
        return graph_service().context(seed, seed_type, max_tokens)

    @server.resource(STATUS_URI, name="index_status", title="amanmcp index status", mime_type="application/json",
                     description="What is indexed and whether a build is running (as the index_status tool).")
    def status_resource() -> str:
        return service.status().model_dump_json(indent=2)

    return server


def _warm_answers(service: SearchService, stop: threading.Event) -> None:
    """Count every indexed chunk's tokens once, in the background, so that fitting an answer to
    max_tokens finds the counts remembered instead of tokenising (~10 ms an answer on 2 cores)."""
    if service.refusal is not None or service.live.settings.store.url:  # nothing indexed here
        return
    layout = IndexLayout(service.root)
    while layout.current() is None or service.live.progress().building:
        if stop.wait(1.0):
            return
    current = layout.current()
    if current is None:
        return
    try:
        store = IndexStore(current, readonly=True)
        try:
            counted = token_counter().warm(store.contents(), stop)
        finally:
            store.close()
        log.info("answer tokens counted for %d chunks", counted)
    except Exception as exc:  # an optimisation: a failure must never reach a client
        log.info("answer tokens not counted ahead: %s", exc)


class NoProject:
    """What stands in for the index when `serve` refuses to pick a project: nothing to start or stop."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.config_version = 0

    def start(self) -> None:
        pass

    def stop(self, timeout: float = 0.0) -> None:
        pass


def serve(
    root: Path, settings: Settings, selection: Selection | None, *, watch: bool = True, refusal: str | None = None
) -> None:
    """Run until the client closes stdin. Any number of `serve` processes may share a project: the
    first holds the writer role, the others answer read-only and take over when it exits
    (`ServeIndex`). `refusal`: not a project; speak MCP anyway, every tool answering that sentence,
    so the client shows why instead of "failed to connect"."""
    if refusal is not None or selection is None:
        message = refusal or f"no embedder for {root}"
        log.error("%s", message)
        service = SearchService(root, NoProject(settings), refusal=message)
        build_server(service, settings).run("stdio")
        return
    service = SearchService(root, ServeIndex(root, settings, selection, watch=watch))
    try:
        log.info("serving %s over stdio (embedder %s: %s)", root, selection.backend, selection.reason)
        build_server(service, settings).run("stdio")
    finally:
        service.close()
