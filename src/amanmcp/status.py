"""What an index holds, for `amanmcp status` and the MCP `index_status` tool."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel

from amanmcp.config import Settings
from amanmcp.embed.base import EmbedderIdentity
from amanmcp.embed.factory import select_embedder
from amanmcp.store import IndexLayout, IndexStore
from amanmcp.store.vectors import HNSW


class IndexStatus(BaseModel):
    root: str
    indexed: bool
    files: int = 0
    chunks: int = 0
    vectors: int = 0
    vector_index: str = ""
    size_bytes: int = 0
    last_indexed: float | None = None
    embedder: str | None = None
    current_embedder: str = ""
    embedder_matches: bool = False
    languages: dict[str, int] = {}
    skipped: dict[str, int] = {}


def index_status(root: Path, settings: Settings) -> IndexStatus:
    try:
        selection = select_embedder(settings)
        current = selection.embedder.identity
        current_label = f"{current.label()} [{selection.reason}]"
    except Exception as exc:  # status must work even when no embedder does
        current, current_label = None, f"unavailable: {exc}"
    generation = IndexLayout(root).current()
    if generation is None:
        return IndexStatus(root=str(root), indexed=False, current_embedder=current_label)
    store = IndexStore(generation, readonly=True)
    try:
        counts = store.counts()
        recorded = store.get_meta("embedder")
        identity = EmbedderIdentity.from_dict(recorded) if recorded else None
        return IndexStatus(
            root=str(root),
            indexed=True,
            files=counts["files"],
            chunks=counts["chunks"],
            vectors=counts["vectors"],
            vector_index="hnsw" if (generation / HNSW).exists() else "exact",
            size_bytes=sum(p.stat().st_size for p in generation.iterdir() if p.is_file()),
            last_indexed=store.get_meta("last_indexed"),
            embedder=identity.label() if identity else None,
            current_embedder=current_label,
            embedder_matches=identity is not None and identity == current,
            languages=store.languages(),
            skipped=store.get_meta("skipped") or {},
        )
    finally:
        store.close()
