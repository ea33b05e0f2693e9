"""One typed reader of what an index records about itself: schema, embedder, completeness, versions."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from amanmcp.embed.base import EmbedderIdentity
from amanmcp.store.db import SCHEMA_VERSION, IndexStore


@dataclass(frozen=True, slots=True)
class IndexMeta:
    schema_version: int | None = None
    identity: EmbedderIdentity | None = None  # None: the index records no (readable) embedder
    complete: bool = True  # False while a progressive first build has not finished
    vectors_version: int = 0  # bumped at every commit; names the vector cache that matches
    last_indexed: float | None = None
    skipped: dict[str, int] = field(default_factory=dict)

    @property
    def current_schema(self) -> bool:
        return self.schema_version == SCHEMA_VERSION

    @classmethod
    def from_items(cls, items: dict[str, Any]) -> IndexMeta:
        recorded = items.get("embedder")
        try:
            identity = EmbedderIdentity.from_dict(recorded) if isinstance(recorded, dict) else None
        except (KeyError, TypeError):
            identity = None
        return cls(
            schema_version=items.get("schema_version"),
            identity=identity,
            complete=items.get("complete") is not False,
            vectors_version=int(items.get("vectors_version") or 0),
            last_indexed=items.get("last_indexed"),
            skipped=dict(items.get("skipped") or {}),
        )


def read_meta(store: IndexStore) -> IndexMeta:
    """The metadata of an open store (one query)."""
    return IndexMeta.from_items(store.meta_items())


def load_meta(generation: Path) -> IndexMeta:
    """The metadata of a generation folder, read through a short-lived read-only connection."""
    store = IndexStore(generation, readonly=True)
    try:
        return read_meta(store)
    finally:
        store.close()
