"""The `amanmcp` command: parses arguments, calls the library, renders with rich. Nothing else."""

from __future__ import annotations

import functools
import json
import logging
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text

from amanmcp.config import LoadedConfig, find_project_root, load_config
from amanmcp.errors import AmanError, UsageError

if TYPE_CHECKING:
    from amanmcp.graph.service import GraphService

app = typer.Typer(
    help="Local-first code search: index a project, then search it by meaning and by name.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
config_app = typer.Typer(help="Inspect the effective configuration.", no_args_is_help=True)
app.add_typer(config_app, name="config")
# User data (paths, symbols, headings, content, config values) is never read as markup or emoji codes:
# it is escaped (`escape`), printed with markup=False, or passed as a `Text`.
out = Console(highlight=False, soft_wrap=True, emoji=False)
err = Console(stderr=True, highlight=False, soft_wrap=True, emoji=False)
F = TypeVar("F", bound=Callable[..., Any])
_MISMATCH = "  [red](differs from the index: searches are BM25-only until you re-run index)[/red]"

PathArg = Annotated[Path, typer.Argument(help="Project folder (default: the current folder).")]
PathOpt = Annotated[Path, typer.Option("--path", "-p", help="Project folder (default: the current folder).")]


class UsageProblem(UsageError):
    """Bad input from the command line; shown as one line, exit code 2."""


def _print_version(value: bool) -> None:
    if value:
        from amanmcp import __version__

        print(f"amanmcp {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[
        bool, typer.Option("--version", callback=_print_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    pass


def friendly_errors(fn: F) -> F:
    """Known failures become one clear line on stderr and their exit code (2 usage, 1 failure), never a
    traceback. The message is printed as text: a path or a query is never read as markup."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except AmanError as exc:
            err.print("[red]error:[/red] ", end="")
            err.print(str(exc), markup=False)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            err.print("interrupted; the previous index is unchanged")
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]


def _project(path: Path) -> tuple[Path, LoadedConfig]:
    path = path.expanduser()
    if not path.exists():
        raise UsageProblem(f"{path} does not exist")
    if not path.is_dir():
        raise UsageProblem(f"{path} is a file; give the project folder instead")
    root = find_project_root(path)
    loaded = load_config(root)
    logging.basicConfig(
        stream=sys.stderr, level=loaded.settings.log_level.upper(), format="%(levelname)s %(name)s: %(message)s"
    )
    return root, loaded


StoreOpt = Annotated[str | None, typer.Option(
    "--store", help="A shared team store, postgresql://USER:PASSWORD@HOST:PORT/DB (default: store.url).")]
RepoOpt = Annotated[str | None, typer.Option(
    "--repo", help="Repository name in a shared store (default: the one this folder was indexed as).")]


def _one_blas_thread() -> None:
    """For the commands that answer queries, before numpy loads: a query's matrix-vector product is
    too small for BLAS threads, which on a busy machine wait for cores (an 8,711 x 384 matrix took
    5-8 ms with two threads, 0.4 ms with one). A value the user set wins."""
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


def _with_store(loaded: LoadedConfig, store: str | None) -> LoadedConfig:
    """`--store` beats store.url and AMANMCP_STORE_URL."""
    if store is None:
        return loaded
    settings = loaded.settings.model_copy(update={"store": loaded.settings.store.model_copy(update={"url": store})})
    return loaded.model_copy(update={"settings": settings})


@app.command()
@friendly_errors
def index(
    path: PathArg = Path("."),
    force: Annotated[bool, typer.Option("--force", help="Rebuild everything instead of only changed files.")] = False,
    backend: Annotated[
        str | None, typer.Option("--backend", "-b", help="Embedding backend: auto|local|mlx|ollama|openai|static.")
    ] = None,
    allow_empty: Annotated[
        bool, typer.Option("--allow-empty", help="Let a rebuild that finds nothing to index replace a non-empty index.")
    ] = False,
    store: StoreOpt = None,
    repo: Annotated[str | None, typer.Option(
        "--repo", help="Repository name in a shared store (default: the project folder's name).")] = None,
) -> None:
    """Index a project: scan, chunk, embed and store, with progress and a stage-timing table."""
    from amanmcp.embed.factory import select_embedder
    from amanmcp.indexer import IndexEvent
    from amanmcp.team import make_indexer

    root, loaded = _project(path)
    loaded = _with_store(loaded, store)
    selection = select_embedder(loaded.settings, backend)
    err.print(f"indexing [bold]{escape(str(root))}[/bold] with {escape(selection.backend)} "
              f"({escape(selection.reason)})")
    if selection.fallback:
        err.print(f"[yellow]fallback:[/yellow] {escape(selection.provenance.chain())}", markup=True)
    labels = {"scan": "scan files", "chunk": "chunk", "embed": "embed", "store": "store", "index": "vector index"}
    progress = Progress(
        TextColumn("{task.description:>12}"), BarColumn(), MofNCompleteColumn(),
        TimeElapsedColumn(), TimeRemainingColumn(), console=err, transient=False,
    )
    tasks: dict[str, Any] = {}

    def on_event(event: IndexEvent) -> None:
        if event.stage == "searchable":  # a first build: searchable by words now, vectors next
            progress.console.print(f"searchable now: {event.total} chunks answer by BM25 while their vectors "
                                   "are built (an interruption resumes there)", markup=False)
            return
        if event.stage not in tasks:
            tasks[event.stage] = progress.add_task(labels[event.stage], total=max(event.total, 1))
        progress.update(tasks[event.stage], completed=event.done if event.total else 1, total=max(event.total, 1))

    with progress:
        indexer = make_indexer(root, loaded.settings, selection.embedder, on_event, repo=repo)
        report = indexer.run(force=force, allow_empty=allow_empty)

    table = Table(title=Text(f"Indexed {root}"), title_justify="left")
    table.add_column("stage")
    table.add_column("seconds", justify="right")
    for stage in ("scan", "chunk", "graph", "tier", "load", "embed", "store", "index"):
        if stage == "tier" and stage not in report.timings:  # static vectors only for a big first build
            continue
        label = {"load": "load model", "tier": "static tier"}.get(stage, stage)
        table.add_row(label, f"{report.timings.get(stage, 0.0):.2f}")
    total = sum(report.timings.values())
    table.add_row("total", f"{total:.2f}", style="bold")
    out.print(table)
    mode = "full rebuild" if report.full_rebuild else "incremental"
    out.print(
        f"{mode} ({escape(report.reason)}): {report.files_changed} files (re)indexed, {report.files_removed} removed, "
        f"{report.chunks_embedded} chunks embedded at {report.chunks_per_second:.1f} chunks/s"
        f"{f' ({report.chunks_reused} unchanged kept their vectors)' if report.chunks_reused else ''}; "
        f"index holds {report.files_total} files, {report.chunks_total} chunks"
    )
    if report.skipped:
        out.print("skipped: " + ", ".join(f"{k} {v}" for k, v in sorted(report.skipped.items())), markup=False)
    pool = getattr(selection.embedder, "inner", None)
    if hasattr(pool, "report"):  # an `openai.endpoints` pool: what each endpoint did, and what was lost
        for stats in pool.report():
            line = (f"endpoint {stats.endpoint}: {stats.texts} texts in {stats.batches} batches, "
                    f"{stats.texts_per_second:.1f} texts/s")
            if stats.failed:
                line += f"; taken out ({stats.failed}); {stats.resent} batch(es) re-sent to the others"
            out.print(line, markup=False)


@app.command()
@friendly_errors
def search(
    query: Annotated[str, typer.Argument(help="What to look for: words, a question, or an identifier.")],
    path: PathOpt = Path("."),
    limit: Annotated[int, typer.Option("--limit", "-n", help="How many results (1-100).")] = 10,
    type_: Annotated[str, typer.Option("--type", "-t", help="all|code|docs")] = "all",
    language: Annotated[str | None, typer.Option("--language", "-l", help="Only this language, e.g. python.")] = None,
    scope: Annotated[
        list[str] | None, typer.Option("--scope", "-s", help="Only under this path prefix (repeatable).")
    ] = None,
    format_: Annotated[str, typer.Option("--format", "-f", help="text|json")] = "text",
    explain: Annotated[
        bool, typer.Option("--explain", "--debug", help="Show BM25 rank, vector rank and fused score.")
    ] = False,
    store: StoreOpt = None,
    repo: Annotated[list[str] | None, typer.Option(
        "--repo", help="Search this repository of a shared store (repeatable; default: this project's).")] = None,
    all_repos: Annotated[bool, typer.Option("--all-repos", help="Search every repository of a shared store.")] = False,
) -> None:
    """Search an indexed project (hybrid BM25 + vectors)."""
    _one_blas_thread()
    from amanmcp.embed.factory import select_embedder
    from amanmcp.team import make_searcher

    if format_ not in ("text", "json"):
        raise UsageProblem(f"--format must be text or json, not {format_!r}")
    root, loaded = _project(path)
    loaded = _with_store(loaded, store)
    embedder = select_embedder(loaded.settings).embedder
    searcher = make_searcher(root, loaded.settings, embedder, repos=repo, all_repos=all_repos)
    response = searcher.search(
        query, limit=limit, filter=type_, language=language, scope=scope, explain=explain
    )
    if format_ == "json":
        # Every key of the contract is always there (null when unknown); `explain` only when asked for.
        skip = None if explain else {"results": {"__all__": {"explain"}}}
        print(response.model_dump_json(exclude=skip, indent=2))
        return
    quality = response.search_quality
    if quality.degraded:
        err.print(f"[yellow]{quality.mode}:[/yellow] {escape(quality.reason)}")
    if not response.results:
        out.print("no results")
    for i, r in enumerate(response.results, 1):
        name = f"  [cyan]{escape(r.symbol)}[/cyan] ({escape(r.symbol_type or '?')})" if r.symbol else ""
        stale = "  [yellow](changed on disk since indexed)[/yellow]" if r.stale else ""
        where = f"{r.repo}:" if r.repo else ""
        out.print(f"[bold]{i:>2}. {escape(where + r.path)}:{r.start_line}-{r.end_line}[/bold]{name}  "
                  f"[dim]{r.score:.3f}[/dim]{stale}")
        if r.explain:
            e = r.explain
            out.print(f"    [dim]bm25 rank {e.bm25_rank}, vector rank {e.vector_rank} "
                      f"(cos {e.vector_score}), rrf {e.rrf_score}[/dim]")
        lines = r.content.splitlines()[:4]
        for line in lines:
            out.print("    " + line[:120], markup=False, style="dim")
    out.print(f"[dim]{quality.mode} · {len(response.results)} results · {response.took_ms:.1f} ms[/dim]")


def _graph_answer(path: Path, format_: str, ask: Callable[[GraphService], Any], store: str | None = None,
                  repo: str | None = None) -> Any | None:
    """One graph question: printed as JSON (then None), or returned for a table with its warnings shown."""
    from amanmcp.graph.service import GraphService
    from amanmcp.team import repo_name

    if format_ not in ("text", "json"):
        raise UsageProblem(f"--format must be text or json, not {format_!r}")
    root, loaded = _project(path)
    url = _with_store(loaded, store).settings.store.url
    if repo and not url:
        raise UsageProblem("--repo needs a shared store: set store.url, AMANMCP_STORE_URL or --store to a "
                           "postgresql:// URL")
    service = GraphService(root, url, repo_name(root, repo) if url else None)
    try:
        answer = ask(service)
    finally:
        service.close()
    if format_ == "json":
        print(answer.model_dump_json(indent=2))
        return None
    for warning in answer.warnings:
        err.print(f"[yellow]{escape(warning)}[/yellow]")
    return answer


@app.command()
@friendly_errors
def graph(
    query: Annotated[str, typer.Argument(help="A symbol (name, Class.method, path:name, path:line) or a path.")],
    mode: Annotated[str, typer.Option("--mode", "-m", help="find_references|callers|callees|explain_symbol|"
                                                           "impact_analysis")] = "find_references",
    path: PathOpt = Path("."),
    subject_type: Annotated[str, typer.Option("--subject-type", help="auto|symbol|path")] = "auto",
    max_depth: Annotated[int, typer.Option("--max-depth", help="Hops for callers/callees/impact (1-5).")] = 2,
    max_nodes: Annotated[int, typer.Option("--max-nodes", help="Most results (1-500).")] = 50,
    max_tokens: Annotated[int | None, typer.Option("--max-tokens", help="Fit the answer to this many tokens.")] = None,
    format_: Annotated[str, typer.Option("--format", "-f", help="text|json")] = "text",
    store: StoreOpt = None,
    repo: RepoOpt = None,
) -> None:
    """Code graph: references, callers, callees, explain a symbol, impact of a change (same JSON as MCP)."""
    answer = _graph_answer(path, format_, lambda s: s.query(query, mode, subject_type, max_depth, max_nodes,
                                                            max_tokens), store, repo)
    if answer is None:
        return
    if answer.resolution != "resolved":
        table = Table(title=f"{answer.resolution}: {escape(query)}", title_justify="left")
        for column in ("symbol", "kind", "path", "line"):
            table.add_column(column)
        for c in answer.candidates:
            table.add_row(escape(c.symbol), c.kind, escape(c.path), str(c.start_line))
        out.print(table)
        raise typer.Exit(1)
    subject = answer.subject
    assert subject is not None
    out.print(f"[bold]{escape(subject.symbol)}[/bold] ({subject.kind}) {escape(subject.path)}:{subject.start_line}")
    if answer.details is not None:
        d = answer.details
        out.print(f"  {escape(d.signature)}", markup=False)
        if d.doc:
            out.print(f"  {d.doc}", markup=False, style="dim")
        out.print(f"  references {d.references} · callers {d.callers} · callees {d.callees}"
                  + (f" · bases {', '.join(d.bases)}" if d.bases else ""), markup=False)
    table = Table(title=f"{mode}: {len(answer.results)} results · {answer.took_ms:.1f} ms", title_justify="left")
    for column in ("location", "kind", "conf", "depth", "in", "line"):
        table.add_column(column, overflow="fold")
    for r in answer.results:
        table.add_row(f"{escape(r.path)}:{r.start_line}", r.kind, r.confidence or "", str(r.depth),
                      escape(r.symbol or ""), escape(r.content if not r.target else f"{r.content}  -> {r.target}"))
    out.print(table)


@app.command()
@friendly_errors
def context(
    seed: Annotated[str, typer.Argument(help="A symbol, a path, or a search result's path:line.")],
    max_tokens: Annotated[int, typer.Option("--max-tokens", help="Budget for the pack (tokens).")] = 4000,
    path: PathOpt = Path("."),
    seed_type: Annotated[str, typer.Option("--seed-type", help="auto|symbol|path")] = "auto",
    format_: Annotated[str, typer.Option("--format", "-f", help="text|json")] = "text",
    store: StoreOpt = None,
    repo: RepoOpt = None,
) -> None:
    """A context pack around a seed: its code, callees, callers, tests, docs and config, to a token budget."""
    answer = _graph_answer(path, format_, lambda s: s.context(seed, seed_type, max_tokens), store, repo)
    if answer is None:
        return
    if answer.resolution != "resolved":
        for c in answer.candidates:
            out.print(f"  {c.symbol} ({c.kind}) {c.path}:{c.start_line}", markup=False)
        raise typer.Exit(1)
    table = Table(title=f"context for {escape(seed)}: {len(answer.items)} chunks, {answer.used_tokens}/"
                        f"{answer.max_tokens} tokens", title_justify="left")
    for column in ("role", "location", "symbol", "tokens", "via"):
        table.add_column(column, overflow="fold")
    for item in answer.items:
        table.add_row(item.role, f"{escape(item.path)}:{item.start_line}-{item.end_line}", escape(item.symbol or ""),
                      str(item.tokens), escape(" > ".join(item.via)))
    out.print(table)


@app.command("eval")
@friendly_errors
def eval_(
    queries: Annotated[Path, typer.Argument(help="Graded queries: JSON list of {query, relevant, secondary, ...}.")],
    path: PathOpt = Path("."),
    tool: Annotated[str, typer.Option("--tool", help="Which search to score, as MCP calls it: search|search_code.")]
    = "search",
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Also show each query's target ranks.")] = False,
) -> None:
    """Score search on graded queries: NDCG@10, MRR@10, recall@10, overall and per category.

    Targets are `ROOT/relative/path` (ROOT: the project folder's name), optionally with a line span;
    each query runs as the MCP tool would run it with default arguments (10 results).
    """
    from amanmcp.embed.factory import select_embedder
    from amanmcp.evaluation import EvalError, evaluate, load_cases
    from amanmcp.search import Searcher

    filters = {"search": "all", "search_code": "code"}
    if tool not in filters:
        raise UsageProblem(f"--tool must be search or search_code, not {tool!r}")
    try:
        cases = load_cases(queries)
    except EvalError as exc:
        raise UsageProblem(str(exc)) from None
    root, loaded = _project(path)
    searcher = Searcher(root, loaded.settings, select_embedder(loaded.settings).embedder)
    report = evaluate(lambda q: searcher.search(q, filter=filters[tool]).results, cases, root.name)
    if as_json:
        print(json.dumps(report.to_dict(verbose), indent=2))
        return
    table = Table(title=f"{tool} on {escape(str(root))} ({len(cases)} queries)", title_justify="left")
    for column in ("category", "queries", "NDCG@10", "MRR@10", "recall@10"):
        table.add_column(column, justify="left" if column == "category" else "right")
    for name, m in [*report.by_category.items(), ("all", report.overall)]:
        table.add_row(escape(name), str(m.queries), f"{m.ndcg:.3f}", f"{m.mrr:.3f}", f"{m.recall:.3f}",
                      style="bold" if name == "all" else None)
    out.print(table)
    if verbose:
        for o in report.outcomes:
            out.print(f"[bold]{o.ndcg:.2f}[/bold] {escape(o.query)}")
            for target, rank in zip(o.targets, o.ranks, strict=True):
                out.print(f"      {'-' if rank is None else rank:>2}  {escape(target.label())}")


@app.command()
@friendly_errors
def status(
    path: PathOpt = Path("."),
    format_: Annotated[str, typer.Option("--format", "-f", help="text|json")] = "text",
    store: StoreOpt = None,
    repo: RepoOpt = None,
) -> None:
    """What is indexed: files, chunks, size on disk, embedder, last indexed (with a shared store: this
    project's repository, and every repository the store holds)."""
    from amanmcp.status import index_status

    root, loaded = _project(path)
    loaded = _with_store(loaded, store)
    if repo and not loaded.settings.store.url:
        raise UsageProblem("--repo needs a shared store: set store.url, AMANMCP_STORE_URL or --store to a "
                           "postgresql:// URL")
    info = index_status(root, loaded.settings, repo=repo)
    if format_ == "json":
        print(info.model_dump_json(indent=2))
        return
    if info.repos is not None:  # a shared store: what it holds, whether or not this project is there
        _print_repos(info)
    if not info.indexed:
        where = f" as repository {info.repo!r} in the store at {info.store}" if info.repo else ""
        option = f" --repo {info.repo}" if info.repo else ""
        out.print(f"{root}: not indexed yet{where}. Run `amanmcp index {root}{option}`.", markup=False)
        raise typer.Exit(1)
    title = f"amanmcp index of {root}" + (f" (repository {info.repo!r} in {info.store})" if info.repo else "")
    table = Table(show_header=False, title=escape(title), title_justify="left")
    stale = str(info.stale_files)
    if info.stale_files:
        stale += " [yellow](changed or deleted since indexed: `amanmcp index` or `serve` updates them)[/yellow]"
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(info.last_indexed or 0))
    rows: list[tuple[str, str]] = [
        ("files", str(info.files)), ("stale files", stale), ("chunks", str(info.chunks)),
        ("vectors", f"{info.vectors} ({info.vector_index})"),
        ("size", f"{info.size_bytes / 1e6:.1f} MB"), ("embedder", escape(info.embedder or "?")),
        ("current embedder", escape(info.current_embedder) + ("" if info.embedder_matches else _MISMATCH)),
        ("last indexed", when), ("languages", escape(", ".join(f"{k} {v}" for k, v in info.languages.items()))),
        ("skipped", escape(", ".join(f"{k} {v}" for k, v in info.skipped.items()) or "none")),
    ]
    if info.repos is not None:
        rows = [r for r in rows if r[0] != "size"]  # the store's size is the server's business
    if info.upgrading:
        rows.insert(0, ("state", f"[yellow]{escape(info.upgrading)}[/yellow]"))
    elif not info.complete:
        rows.insert(0, ("state", "[yellow]partial: a first build is storing the project's text, or was "
                                 "interrupted; the next `index` or `serve` finishes it[/yellow]"))
    for key, value in rows:
        table.add_row(key, value)
    out.print(table)


def _print_repos(info: Any) -> None:
    table = Table(title=escape(f"repositories in {info.store}"), title_justify="left")
    for column in ("repository", "files", "chunks", "embedder", "last indexed", "indexed from"):
        table.add_column(column, overflow="fold")
    for r in info.repos:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(r.last_indexed or 0))
        name = escape(r.name) + (" [bold](this project)[/bold]" if r.name == info.repo else "")
        embedder = escape(r.embedder or "?") + ("" if r.embedder_matches else " [yellow](BM25 only here)[/yellow]")
        table.add_row(name, str(r.files), str(r.chunks), embedder, when, escape(r.root))
    out.print(table)


@config_app.command("show")
@friendly_errors
def config_show(
    path: PathOpt = Path("."),
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON: {key: {value, source}}.")] = False,
) -> None:
    """Every effective setting and where it came from (default, a file, or an env variable)."""
    from amanmcp.embed.base import EmbedderError
    from amanmcp.embed.factory import select_embedder

    _, loaded = _project(path)
    rows = loaded.items()
    try:  # the embedder actually selected: auto-detection is a source of configuration too
        selection = select_embedder(loaded.settings)
        source = "auto-detection" if selection.requested == "auto" else "embeddings.provider"
        rows += [("embedder.selected", selection.embedder.identity.label(), source),
                 ("embedder.reason", selection.reason, source), ("embedder.fallback", selection.fallback, source)]
    except EmbedderError as exc:
        rows.append(("embedder.selected", f"unavailable: {exc}", "error"))
    if as_json:
        print(json.dumps({k: {"value": v, "source": s} for k, v, s in rows}, indent=2))
        return
    table = Table("key", "value", "source")
    for key, value, source in rows:  # values and sources (file paths) are data: exclude patterns hold brackets
        table.add_row(Text(key), Text(json.dumps(value)), Text(source))
    out.print(table)


@app.command()
@friendly_errors
def serve(
    path: Annotated[
        Path | None, typer.Argument(help="Project folder (default: the project around the current folder).")
    ] = None,
    log_file: Annotated[Path | None, typer.Option("--log-file", help="Write logs to this file, not stderr.")] = None,
    no_watch: Annotated[bool, typer.Option("--no-watch", help="Do not follow edits (index once at start).")] = False,
) -> None:
    """Run the MCP server over stdio (for Claude Code and other MCP clients); the index follows edits.

    Any number may run on one project: one keeps the index up to date, the others answer from it."""
    _one_blas_thread()
    from amanmcp.config import serve_root
    from amanmcp.embed.factory import select_embedder
    from amanmcp.mcp_server import serve as run_server

    if path is not None:
        _project(path)  # a path that does not exist, or a file: a usage error, exit 2
    root, refusal = serve_root(path)
    root, loaded = _project(root)
    if log_file is not None:  # stdout belongs to the protocol; stderr or this file get the logs
        logging.basicConfig(filename=log_file, level=loaded.settings.log_level.upper(), force=True,
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if refusal is not None:  # still speak MCP: the client shows the sentence instead of "failed to connect"
        run_server(root, loaded.settings, None, refusal=refusal)
        return
    run_server(root, loaded.settings, select_embedder(loaded.settings), watch=not no_watch)


@app.command()
@friendly_errors
def init(
    path: PathArg = Path("."),
    backend: Annotated[
        str | None, typer.Option("--backend", "-b", help="Embedding backend to pin (default: auto-detect).")
    ] = None,
    no_index: Annotated[bool, typer.Option("--no-index", help="Only write the files; index later.")] = False,
) -> None:
    """Set a project up: .amanmcp.yaml, .gitignore, .mcp.json for Claude Code; then index it. Safe to re-run."""
    from amanmcp.project_init import init_project
    from amanmcp.store import IndexLayout
    from amanmcp.store.layout import IndexLockedError

    root, loaded = _project(path)
    report = init_project(root, loaded.settings, backend)
    out.print(f"[bold]amanmcp init {escape(str(root))}[/bold]")
    out.print(f"  .amanmcp.yaml  {report.config} (backend {report.backend}: {report.reason})", markup=False)
    out.print(f"  .gitignore     {'.amanmcp/ ' + report.gitignore if report.gitignore != 'kept' else 'kept'}",
              markup=False)
    out.print(f"  .mcp.json      {report.mcp_json}: amanmcp -> {report.command} serve", markup=False)
    for name, outcome in report.guidance:
        out.print(f"  {name:<14} {outcome}: a section telling assistants to use amanmcp's tools", markup=False)
    for line in report.approval:  # Claude Code's approval prompt: without it, users think init failed
        out.print(line, markup=False)
    out.print("To use amanmcp in every project (Claude Code user scope), run:")
    out.print(f"  {report.user_scope}", markup=False)
    if no_index:
        return
    try:
        with IndexLayout(root).write_lock():
            pass
    except IndexLockedError:
        out.print("An amanmcp process (`serve` or `index`) is already writing this index; it keeps it up to date.")
        return
    index(root, force=False, backend=backend)


@app.command("embed-server")
@friendly_errors
def embed_server(
    host: Annotated[str, typer.Option("--host", help="Address to listen on (loopback by default).")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port, 1-65535 (0: any free port).")] = 9659,
    backend: Annotated[str, typer.Option("--backend", "-b", help="What to serve: local|static.")] = "local",
    model: Annotated[str | None, typer.Option("--model", "-m", help="Model to serve (default: from config).")] = None,
    max_batch: Annotated[int, typer.Option("--max-batch", help="Most texts per request.")] = 256,
    max_text_chars: Annotated[int, typer.Option("--max-text-chars", help="Longest text accepted.")] = 100_000,
    max_request_chars: Annotated[
        int, typer.Option("--max-request-chars", help="Most characters per request, all texts together.")
    ] = 2_000_000,
    path: PathOpt = Path("."),
) -> None:
    """Serve an in-process embedder over HTTP: MLX-server, OpenAI and Ollama wire formats."""
    import errno
    import os

    from amanmcp.embed.factory import select_embedder
    from amanmcp.embed_server import API_KEY_ENV, BACKLOG, Limits, bind, create_app, is_loopback, resolve, url_host
    from amanmcp.embed_server import serve as run_server

    if backend not in ("local", "static"):
        raise UsageProblem(f"--backend must be local or static (a server cannot serve another server), not {backend!r}")
    if max_batch < 1 or max_text_chars < 1 or max_request_chars < 1:
        raise UsageProblem("--max-batch, --max-text-chars and --max-request-chars must be positive")
    if not 0 <= port <= 65535:
        raise UsageProblem(f"--port must be between 1 and 65535 (or 0 for any free port), not {port}")
    if not host.strip():
        raise UsageProblem("--host is empty: give an address such as 127.0.0.1 or 0.0.0.0")
    try:
        resolve(host, port)
    except (OSError, UnicodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise UsageProblem(f"cannot listen on --host {host!r}: {reason}; give an address of this machine") from None
    _, loaded = _project(path)

    def listen_problem(exc: OSError) -> UsageProblem:
        what = "--host" if exc.errno == errno.EADDRNOTAVAIL else "--port"  # not an address of this machine
        return UsageProblem(f"cannot listen on {host}:{port}: {exc.strerror or exc}; choose another {what}")

    try:
        sock = bind(host, port, listen=False)  # a busy port fails now, before the model loads
    except OSError as exc:
        raise listen_problem(exc) from None
    settings = loaded.settings
    if model:
        section, field = ("embeddings", "model") if backend == "local" else ("static", "model")
        settings = settings.model_copy(update={section: getattr(settings, section).model_copy(update={field: model})})
    embedder = select_embedder(settings, backend).embedder
    err.print(f"loading {backend} model ...")
    embedder.embed_documents(["warm up"])  # load before announcing: /health must tell the truth
    try:
        sock.listen(BACKLOG)  # clients were refused while the model loaded; from now on they wait in the backlog
    except OSError as exc:
        sock.close()
        raise listen_problem(exc) from None
    api_key = os.environ.get(API_KEY_ENV, "")
    if not is_loopback(host) and not api_key:
        err.print(f"[yellow]warning:[/yellow] listening on {escape(host)} without {API_KEY_ENV}: anyone who can "
                  "reach it can use it", markup=True)
    bound = sock.getsockname()[1]
    identity = embedder.identity
    print(f"amanmcp embed-server: serving {identity.model} ({backend}, {identity.dimensions}d) "
          f"at http://{url_host(host)}:{bound}", file=sys.stderr, flush=True)
    limits = Limits(max_batch, max_text_chars, max_request_chars)
    app_ = create_app(embedder, backend, limits, api_key=api_key)
    run_server(app_, sock, log_level=loaded.settings.log_level)


@app.command()
@friendly_errors
def bench(
    path: PathArg = Path("."),
    backends: Annotated[
        str | None, typer.Option("--backends", "-b", help="Comma-separated, e.g. local-onnx,static,openai.")
    ] = None,
    texts: Annotated[int, typer.Option("--texts", "-n", help="How many chunks to embed (N).")] = 256,
    repeats: Annotated[int, typer.Option("--repeats", help="Batch-32 runs to take the median of.")] = 5,
    as_json: Annotated[bool, typer.Option("--json", help="Print the results as JSON.")] = False,
    plot: Annotated[Path | None, typer.Option("--plot", help="Draw a PNG bar chart to this file.")] = None,
) -> None:
    """Benchmark embedding backends on this project's chunks: latency, chunks/s, memory."""
    from amanmcp.bench import BenchResult, run_bench
    from amanmcp.bench import plot as draw

    root, loaded = _project(path)
    names = [b.strip() for b in backends.split(",") if b.strip()] if backends else None
    if texts < 1 or repeats < 1:
        raise UsageProblem("--texts and --repeats must be positive")

    def progress(result: BenchResult) -> None:
        state = f"{result.chunks_per_s} chunks/s" if result.available else "unavailable"
        err.print(f"  {result.name}: {state}", markup=False)

    try:
        report = run_bench(root, loaded.settings, names, texts, repeats, on_result=progress)
        if plot is not None:
            draw(report, plot)
    except ValueError as exc:
        raise UsageProblem(str(exc)) from None
    if as_json:
        print(json.dumps(report.to_dict(), indent=2))
        return
    title = (f"amanmcp bench: {report.texts} chunks of {escape(str(root))} (avg {report.avg_chars:.0f} chars), "
             f"{report.machine['usable_cpus']} CPUs")
    table = Table(title=title, title_justify="left")
    for column in ("backend", "ok", "dims", "load s", "batch-32 ms", "chunks/s", "query ms", "peak MB"):
        table.add_column(column, justify="left" if column == "backend" else "right", no_wrap=True)

    def cell(value: float | None) -> str:
        return "—" if value is None else f"{value:,}"

    for r in report.results:
        table.add_row(Text(r.name), "yes" if r.available else "[red]no[/red]", cell(r.dimensions), cell(r.load_s),
                      cell(r.batch32_ms), cell(r.chunks_per_s), cell(r.query_ms), cell(r.peak_mb))
    wide = Console(highlight=False, emoji=False, width=max(out.width, 110))
    wide.print(table)  # a report: never squeeze numbers into "…"
    for r in report.results:
        out.print(f"  {r.name}: ", end="", markup=False)
        out.print(r.detail, markup=False)
    for name in ("local-onnx", "local-onnx-int8", "static"):
        ratio = report.ratio(name, "local-torch")
        if ratio is not None:
            out.print(f"{name} / local-torch (sentence-transformers encode): {ratio:.2f}× the chunks/s")
    if plot is not None:
        out.print(f"chart written to {plot}", markup=False)


@app.command()
@friendly_errors
def doctor(
    path: PathOpt = Path("."),
    as_json: Annotated[bool, typer.Option("--json", help="Print the checks as JSON.")] = False,
) -> None:
    """Check every embedding backend, model files, device, disk and the index; say how to fix what fails."""
    from amanmcp.doctor import run_doctor

    root, loaded = _project(path)
    report = run_doctor(root, loaded.settings)
    if as_json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        marks = {"ok": "[green]✓[/green]", "warn": "[yellow]![/yellow]", "fail": "[red]✗[/red]"}
        for check in report.checks:
            out.print(f"{marks[check.level]} [bold]{escape(check.name)}[/bold]: ", end="")
            out.print(check.detail, markup=False)
            if check.fix and check.level != "ok":
                out.print("    fix: ", end="", style="dim")
                out.print(check.fix, markup=False, style="dim")
        out.print("all good" if report.ok else "[red]some checks failed[/red]")
    if not report.ok:
        raise typer.Exit(1)


def main() -> None:
    app()
