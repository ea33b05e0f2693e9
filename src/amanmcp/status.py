"""What an index holds, for `amanmcp status` and the MCP `index_status` tool."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel

from amanmcp.config import Settings
from amanmcp.embed.base import EmbedderIdentity
from amanmcp.embed.factory import Selection, select_embedder
from amanmcp.search import changed_files
from amanmcp.store import IndexLayout, IndexStore, read_meta
from amanmcp.store.vectors import HNSW


class IndexProgress(BaseModel):
    """What a running `serve` is doing to its index (absent outside `serve`).

    `role`: each project has one writer `serve` (it builds, watches and updates the index) and any
    number of readers (state `following`: they search the same index read-only, and one of them
    takes the writer role when the writer exits). `writer_pid` names the writer."""

    state: Literal["starting", "indexing", "watching", "following", "error"]
    role: Literal["writer", "reader"] = "writer"
    writer_pid: int | None = None
    building: bool = False  # a first build is storing the project's text: searches see part of it
    stage: str = ""  # scan | chunk | embed | store | index
    done: int = 0
    total: int = 0
    started_at: float | None = None  # of the run in progress
    last_run: str = ""  # one line about the last finished run
    last_run_at: float | None = None
    last_error: str | None = None


class RepoStatus(BaseModel):
    """One repository of a shared team store."""

    name: str
    root: str  # where it was indexed from (on the machine that indexed it)
    files: int
    chunks: int
    vectors: int
    embedder: str | None
    embedder_matches: bool  # built with the current embedder: its vectors take part in a search
    last_indexed: float | None
    languages: dict[str, int] = {}


class IndexStatus(BaseModel):
    root: str
    indexed: bool
    complete: bool = True  # False while a first build is partial (still running, or interrupted)
    upgrading: str | None = None  # a first build's vectors are being built: progress, ETA; BM25 answers meanwhile
    eta_seconds: float | None = None  # of that vector stage, at its rate so far (null before its first group)
    files: int = 0
    stale_files: int = 0  # indexed files changed on disk (size or mtime) or deleted since they were indexed
    chunks: int = 0
    vectors: int = 0
    vector_index: str = ""
    size_bytes: int = 0
    last_indexed: float | None = None
    embedder: str | None = None
    current_embedder: str = ""
    embedder_matches: bool = False
    embedder_fallback: bool = False  # auto-detection had to step down its list of backends
    languages: dict[str, int] = {}
    skipped: dict[str, int] = {}
    indexing: IndexProgress | None = None
    store: str = "sqlite"  # or the shared store's URL (without its password)
    repo: str | None = None  # with a shared store: the repository this project is (`--repo`, remembered, folder)
    repos: list[RepoStatus] | None = None  # the shared store's repositories; null for a project's own index


def index_status(root: Path, settings: Settings, selection: Selection | None = None,
                 repo: str | None = None) -> IndexStatus:
    """`selection`: the embedder already chosen (by `serve`), so status does not probe again; `repo`: this
    project's repository in a shared store (default: `store.pg.repo_name`)."""
    fallback = False
    try:
        selection = selection or select_embedder(settings)
        current = selection.embedder.identity
        current_label = f"{current.label()} [{selection.reason}]"
        fallback = selection.fallback
    except Exception as exc:  # status must work even when no embedder does
        current, current_label = None, f"unavailable: {exc}"
    if settings.store.url:
        return _store_status(root, settings, current, current_label, fallback, repo)
    generation = IndexLayout(root).current()
    if generation is None:
        return IndexStatus(root=str(root), indexed=False, current_embedder=current_label, embedder_fallback=fallback)
    store = IndexStore(generation, readonly=True)
    try:
        counts = store.counts()
        meta = read_meta(store)
        identity = meta.identity
        upgrade = meta.upgrade if not meta.complete else None  # a first build's vector stage
        return IndexStatus(
            root=str(root),
            indexed=True,
            complete=meta.complete,
            upgrading=upgrade.describe() if upgrade is not None else None,
            eta_seconds=upgrade.eta_seconds if upgrade is not None else None,
            files=counts["files"],
            stale_files=len(changed_files(root, store.file_stats())),
            chunks=counts["chunks"],
            vectors=counts["vectors"],
            vector_index="hnsw" if (generation / HNSW).exists() else "exact",
            size_bytes=sum(p.stat().st_size for p in generation.iterdir() if p.is_file()),
            last_indexed=meta.last_indexed,
            embedder=identity.label() if identity else None,
            current_embedder=current_label,
            embedder_matches=identity is not None and identity == current,
            embedder_fallback=fallback,
            languages=store.languages(),
            skipped=meta.skipped,
        )
    finally:
        store.close()


def _store_status(
    root: Path, settings: Settings, current: EmbedderIdentity | None, current_label: str, fallback: bool,
    repo: str | None,
) -> IndexStatus:
    """A shared store: every repository, and this project's as the index (with its stale files when the
    repository was indexed from this folder)."""
    from amanmcp.store.pg import PgDatabase, PgStore, describe, repo_name

    assert settings.store.url is not None
    name = repo_name(root, repo)
    db = PgDatabase(settings.store.url)
    repos, generation = [], None
    for row in db.summaries():
        identity = EmbedderIdentity.from_dict(row["embedder"]) if isinstance(row["embedder"], dict) else None
        repos.append(RepoStatus(
            name=row["name"], root=row["root"], files=row["files"], chunks=row["chunks"], vectors=row["vectors"],
            embedder=identity.label() if identity else None,
            embedder_matches=identity is not None and identity == current,
            last_indexed=row["last_indexed"], languages=row["languages"]))
        if row["name"] == name:
            generation = row["generation"]
    mine = next((r for r in repos if r.name == name), None)
    status = IndexStatus(root=str(root), indexed=mine is not None, current_embedder=current_label,
                         embedder_fallback=fallback, store=describe(settings.store.url), repo=name, repos=repos)
    if mine is None or generation is None:
        return status
    stale = 0
    if Path(mine.root) == root.resolve():  # another folder's (or machine's) checkout: staleness unknown here
        store = PgStore(db, {generation: name})
        try:
            stale = len(changed_files(root, store.file_stats()))
        finally:
            store.close()
    return status.model_copy(update={
        "files": mine.files, "chunks": mine.chunks, "vectors": mine.vectors, "vector_index": "pgvector",
        "stale_files": stale, "last_indexed": mine.last_indexed, "embedder": mine.embedder,
        "embedder_matches": mine.embedder_matches, "languages": mine.languages})
