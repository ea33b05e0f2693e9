"""The `amanmcp` command: parses arguments, calls the library, renders with rich. Nothing else."""

from __future__ import annotations

import functools
import json
import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from amanmcp.config import ConfigError, LoadedConfig, find_project_root, load_config

app = typer.Typer(
    help="Local-first code search: index a project, then search it by meaning and by name.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
config_app = typer.Typer(help="Inspect the effective configuration.", no_args_is_help=True)
app.add_typer(config_app, name="config")
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False)
F = TypeVar("F", bound=Callable[..., Any])
_MISMATCH = "  [red](differs from the index: searches are BM25-only until you re-run index)[/red]"

PathArg = Annotated[Path, typer.Argument(help="Project folder (default: the current folder).")]
PathOpt = Annotated[Path, typer.Option("--path", "-p", help="Project folder (default: the current folder).")]


class UsageProblem(Exception):
    """Bad input from the command line; shown as one line, exit code 2."""


def friendly_errors(fn: F) -> F:
    """Known failures become one clear line on stderr and a non-zero exit, never a traceback."""
    from amanmcp.embed.base import EmbedderError
    from amanmcp.search import SearchError
    from amanmcp.store.layout import IndexLockedError

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (UsageProblem, ConfigError) as exc:
            err.print(f"[red]error:[/red] {exc}", markup=True)
            raise typer.Exit(2) from None
        except (SearchError, EmbedderError, IndexLockedError) as exc:
            err.print(f"[red]error:[/red] {exc}", markup=True)
            raise typer.Exit(1) from None
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


@app.command()
@friendly_errors
def index(
    path: PathArg = Path("."),
    force: Annotated[bool, typer.Option("--force", help="Rebuild everything instead of only changed files.")] = False,
    backend: Annotated[
        str | None, typer.Option("--backend", "-b", help="Embedding backend: auto|local|mlx|ollama|openai|static.")
    ] = None,
) -> None:
    """Index a project: scan, chunk, embed and store, with progress and a stage-timing table."""
    from amanmcp.embed.factory import select_embedder
    from amanmcp.indexer import Indexer, IndexEvent

    root, loaded = _project(path)
    selection = select_embedder(loaded.settings, backend)
    err.print(f"indexing [bold]{root}[/bold] with {selection.backend} ({selection.reason})")
    labels = {"scan": "scan files", "chunk": "chunk", "embed": "embed", "store": "store", "index": "vector index"}
    progress = Progress(
        TextColumn("{task.description:>12}"), BarColumn(), MofNCompleteColumn(),
        TimeElapsedColumn(), TimeRemainingColumn(), console=err, transient=False,
    )
    tasks: dict[str, Any] = {}

    def on_event(event: IndexEvent) -> None:
        if event.stage not in tasks:
            tasks[event.stage] = progress.add_task(labels[event.stage], total=max(event.total, 1))
        progress.update(tasks[event.stage], completed=event.done if event.total else 1, total=max(event.total, 1))

    with progress:
        report = Indexer(root, loaded.settings, selection.embedder, on_event).run(force=force)

    table = Table(title=f"Indexed {root}", title_justify="left")
    table.add_column("stage")
    table.add_column("seconds", justify="right")
    for stage in ("scan", "chunk", "load", "embed", "store", "index"):
        label = "load model" if stage == "load" else stage
        table.add_row(label, f"{report.timings.get(stage, 0.0):.2f}")
    total = sum(report.timings.values())
    table.add_row("total", f"{total:.2f}", style="bold")
    out.print(table)
    mode = "full rebuild" if report.full_rebuild else "incremental"
    out.print(
        f"{mode} ({report.reason}): {report.files_changed} files (re)indexed, {report.files_removed} removed, "
        f"{report.chunks_embedded} chunks embedded at {report.chunks_per_second:.1f} chunks/s; "
        f"index holds {report.files_total} files, {report.chunks_total} chunks"
    )
    if report.skipped:
        out.print("skipped: " + ", ".join(f"{k} {v}" for k, v in sorted(report.skipped.items())))


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
) -> None:
    """Search an indexed project (hybrid BM25 + vectors)."""
    from amanmcp.embed.factory import select_embedder
    from amanmcp.search import Searcher

    if format_ not in ("text", "json"):
        raise UsageProblem(f"--format must be text or json, not {format_!r}")
    root, loaded = _project(path)
    embedder = select_embedder(loaded.settings).embedder
    response = Searcher(root, loaded.settings, embedder).search(
        query, limit=limit, filter=type_, language=language, scope=scope, explain=explain
    )
    if format_ == "json":
        print(response.model_dump_json(exclude_none=not explain, indent=2))
        return
    quality = response.search_quality
    if quality.degraded:
        err.print(f"[yellow]{quality.mode}:[/yellow] {quality.reason}")
    if not response.results:
        out.print("no results")
    for i, r in enumerate(response.results, 1):
        name = f"  [cyan]{r.symbol}[/cyan] ({r.symbol_type})" if r.symbol else ""
        out.print(f"[bold]{i:>2}. {r.path}:{r.start_line}-{r.end_line}[/bold]{name}  [dim]{r.score:.3f}[/dim]")
        if r.explain:
            e = r.explain
            out.print(f"    [dim]bm25 rank {e.bm25_rank}, vector rank {e.vector_rank} "
                      f"(cos {e.vector_score}), rrf {e.rrf_score}[/dim]")
        lines = r.content.splitlines()[:4]
        for line in lines:
            out.print("    " + line[:120], markup=False, style="dim")
    out.print(f"[dim]{quality.mode} · {len(response.results)} results · {response.took_ms:.1f} ms[/dim]")


@app.command()
@friendly_errors
def status(
    path: PathOpt = Path("."),
    format_: Annotated[str, typer.Option("--format", "-f", help="text|json")] = "text",
) -> None:
    """What is indexed: files, chunks, size on disk, embedder, last indexed."""
    from amanmcp.status import index_status

    root, loaded = _project(path)
    info = index_status(root, loaded.settings)
    if format_ == "json":
        print(info.model_dump_json(indent=2))
        return
    if not info.indexed:
        out.print(f"{root}: not indexed yet. Run `amanmcp index {root}`.")
        raise typer.Exit(1)
    table = Table(show_header=False, title=f"amanmcp index of {root}", title_justify="left")
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(info.last_indexed or 0))
    rows: list[tuple[str, str]] = [
        ("files", str(info.files)), ("chunks", str(info.chunks)), ("vectors", f"{info.vectors} ({info.vector_index})"),
        ("size", f"{info.size_bytes / 1e6:.1f} MB"), ("embedder", info.embedder or "?"),
        ("current embedder", info.current_embedder + ("" if info.embedder_matches else _MISMATCH)),
        ("last indexed", when), ("languages", ", ".join(f"{k} {v}" for k, v in info.languages.items())),
        ("skipped", ", ".join(f"{k} {v}" for k, v in info.skipped.items()) or "none"),
    ]
    for key, value in rows:
        table.add_row(key, value)
    out.print(table)


@config_app.command("show")
@friendly_errors
def config_show(
    path: PathOpt = Path("."),
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON: {key: {value, source}}.")] = False,
) -> None:
    """Every effective setting and where it came from (default, a file, or an env variable)."""
    _, loaded = _project(path)
    rows = loaded.items()
    if as_json:
        print(json.dumps({k: {"value": v, "source": s} for k, v, s in rows}, indent=2))
        return
    table = Table("key", "value", "source")
    for key, value, source in rows:
        table.add_row(key, json.dumps(value), source)
    out.print(table)


def main() -> None:
    app()
