"""`amanmcp serve`: the MCP server (stdio, official `mcp` SDK) over the same library as the CLI.

Tools return typed models, so clients get structured content with a published output schema.
Bad arguments become tool errors with a plain sentence (the server keeps running): `AmanServer`
maps every library error and every argument the SDK's schema check rejects, in one place. The
process holds the index write lock for its lifetime: one writer per index, while `amanmcp
search`/`status` in a shell keep working (SQLite WAL). Nothing here writes to stdout: the SDK's
stdio transport owns it, and logs go to stderr or a file.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import ToolAnnotations
from pydantic import Field, ValidationError

from amanmcp import __version__
from amanmcp.config import Settings
from amanmcp.embed.factory import Selection
from amanmcp.errors import AmanError
from amanmcp.search import FILTERS, SYMBOL_TYPES, NoIndexError, Searcher, SearchQuality, SearchResponse, preview
from amanmcp.status import IndexStatus, index_status
from amanmcp.store import IndexLayout
from amanmcp.store.layout import IndexLockedError
from amanmcp.watch import LiveIndex

log = logging.getLogger(__name__)

INSTRUCTIONS = """\
amanmcp searches this project's code and docs by meaning and by name (hybrid BM25 + embeddings).
Use `search` for anything, `search_code` for functions/classes (optionally by symbol_type),
`search_docs` for README/markdown prose. Results give path (relative to the project root),
start_line/end_line (1-based, inclusive), symbol and content. The index follows edits live;
`index_status` says what is indexed and whether a build is still running."""

Query = Annotated[str, Field(description="What to look for: words, a question, or an identifier.")]
# Bounds and choices are published in the schema but checked by the library, whose messages are
# plain sentences ("limit must be between 1 and 100, not 0") rather than pydantic reports.
Limit = Annotated[
    int, Field(description="How many results to return (1-100).", json_schema_extra={"minimum": 1, "maximum": 100})
]
Filter = Annotated[
    str,
    Field(description="all, code only, or docs (markdown/text) only.", json_schema_extra={"enum": list(FILTERS)}),
]
Language = Annotated[
    str | None,
    Field(description="Only files of this language, e.g. python, go, typescript, markdown; one of the languages "
                      "index_status lists (any other is an error that names them)."),
]
Scope = Annotated[
    list[str] | str | None,
    Field(description="Only under these folders or files (paths relative to the project root, e.g. ['src/api']); "
                      "a single path may be given as a plain string."),
]
SymbolType = Annotated[
    str | None,
    Field(description=f"Only chunks defining this kind of symbol: {', '.join(SYMBOL_TYPES)}.",
          json_schema_extra={"enum": [*SYMBOL_TYPES, None]}),
]
# What each argument must be, for the sentence that answers a value the input schema rejects.
EXPECTED = {
    "query": "text: words, a question, or an identifier",
    "limit": "a whole number between 1 and 100",
    "filter": f"one of {', '.join(FILTERS)}",
    "language": "a language name such as python (index_status lists this index's languages)",
    "symbol_type": f"one of {', '.join(SYMBOL_TYPES)}",
    "scope": "a path inside the project, or a list of them",
}
READ_ONLY = ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False)


class SearchService:
    """What the tools share: the live index and one Searcher, rebuilt when the settings change."""

    def __init__(self, root: Path, live: LiveIndex) -> None:
        self.root = root
        self.live = live
        self._lock = threading.Lock()  # tools run in worker threads; one Searcher, one connection
        self._searcher: Searcher | None = None
        self._config_version = -1

    def _current_searcher(self) -> Searcher:
        if self._searcher is None or self._config_version != self.live.config_version:
            if self._searcher is not None:
                self._searcher.close()
            self._config_version = self.live.config_version
            self._searcher = Searcher(self.root, self.live.settings, self.live.selection.embedder)
        return self._searcher

    def search(self, query: str, **kwargs: object) -> SearchResponse:
        progress = self.live.progress()
        try:
            with self._lock:
                response = self._current_searcher().search(query, **kwargs)  # type: ignore[arg-type]
        except NoIndexError:
            if progress.state in ("starting", "indexing"):
                return self._empty(query, "indexing: nothing is searchable yet; the first build has just started")
            raise AmanError(f"{self.root} has no index and building one failed: {progress.last_error}") from None
        if progress.building:
            quality = response.search_quality
            note = f"indexing: the first build is running ({_describe(progress.stage, progress.done, progress.total)})"
            quality.reason = f"{note}; {quality.reason}" if quality.reason else note
            quality.degraded = True
        return response

    def _empty(self, query: str, reason: str) -> SearchResponse:
        selection = self.live.selection
        identity = selection.embedder.identity
        quality = SearchQuality(mode="bm25_only", degraded=True, reason=reason, backend=identity.backend,
                                model=identity.model)
        return SearchResponse(query=query.strip(), results=[], search_quality=quality, took_ms=0.0)

    def status(self) -> IndexStatus:
        info = index_status(self.root, self.live.settings, self.live.selection)
        info.indexing = self.live.progress()
        return info

    def close(self) -> None:
        with self._lock:
            if self._searcher is not None:
                self._searcher.close()


class AmanServer(MCPServer):
    """The SDK's server, with every tool error a plain sentence, mapped here and nowhere else.

    An `AmanError` from the library (bad query, limit, filter, scope, language, symbol_type; no
    index; a damaged index) answers its own message. Arguments the input schema rejects (`limit="x"`,
    `limit=2.5`, no `query`) answer one sentence per argument instead of pydantic's report. The
    SDK raises every tool failure as a `ToolError` whose `__cause__` is what went wrong.
    """

    async def call_tool(self, name: str, arguments: dict[str, Any], context: Any = None) -> Any:
        try:
            return await super().call_tool(name, arguments, context)
        except ToolError as exc:
            cause = exc.__cause__
            if isinstance(cause, AmanError):
                raise ToolError(str(cause)) from None
            if isinstance(cause, ValidationError):
                raise ToolError(plain_argument_errors(cause)) from None
            raise


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
        try:
            yield
        finally:  # clients allow ~2 s after closing stdin; committed work stays, the rest resumes
            service.live.stop(timeout=1.5)

    server: MCPServer = AmanServer(
        name="amanmcp",
        version=__version__,
        instructions=INSTRUCTIONS,
        log_level=settings.log_level.upper(),  # type: ignore[arg-type]
        lifespan=lifespan,
    )

    @server.tool(annotations=READ_ONLY)
    def search(
        query: Query,
        limit: Limit = 10,
        filter: Filter = "all",
        language: Language = None,
        scope: Scope = None,
    ) -> SearchResponse:
        """Search the project's code and docs by meaning and by name; best chunks first."""
        return service.search(query, limit=limit, filter=filter, language=language, scope=scope)

    @server.tool(annotations=READ_ONLY)
    def search_code(
        query: Query,
        limit: Limit = 10,
        language: Language = None,
        symbol_type: SymbolType = None,
        scope: Scope = None,
    ) -> SearchResponse:
        """Search source code only: functions, classes, methods and the code around them."""
        return service.search(
            query, limit=limit, filter="code", language=language, scope=scope, symbol_type=symbol_type
        )

    @server.tool(annotations=READ_ONLY)
    def search_docs(query: Query, limit: Limit = 10, scope: Scope = None) -> SearchResponse:
        """Search documentation only (markdown and text), section by section."""
        return service.search(query, limit=limit, filter="docs", scope=scope)

    @server.tool(annotations=READ_ONLY)
    def index_status() -> IndexStatus:
        """What is indexed (files, chunks, size, last indexed, embedder) and any build in progress."""
        return service.status()

    return server


def serve(root: Path, settings: Settings, selection: Selection, *, watch: bool = True) -> None:
    """Run until the client closes stdin. Raises IndexLockedError if another writer holds the index."""
    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(IndexLayout(root).write_lock())
        except IndexLockedError as exc:
            raise IndexLockedError(f"cannot serve {root}: {exc}. One `amanmcp serve` per project.") from None
        service = SearchService(root, LiveIndex(root, settings, selection, watch=watch))
        stack.callback(service.close)
        log.info("serving %s over stdio (embedder %s: %s)", root, selection.backend, selection.reason)
        build_server(service, settings).run("stdio")
