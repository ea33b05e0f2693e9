"""One typed reader of what an index records about itself: schema, embedder, completeness, versions."""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from amanmcp.embed.base import EmbedderIdentity
from amanmcp.store.db import SCHEMA_VERSION, IndexStore

STALLED_SECONDS = 120.0  # an upgrade with no commit for this long is not running (it was interrupted)


@dataclass(frozen=True, slots=True)
class Upgrade:
    """The vector stage of a tiered first build: every chunk is stored and BM25-searchable, and the
    vectors of `total` chunks are being built (`done` so far, committed as they come)."""

    total: int
    done: int = 0
    started: float = 0.0  # when embedding began (after the model loaded), epoch seconds
    updated: float = 0.0  # the last commit of vectors
    tier: EmbedderIdentity | None = None  # static vectors of every chunk that answer meanwhile (TIER folder)

    def advanced(self, count: int, now: float | None = None) -> Upgrade:
        return replace(self, done=self.done + count, updated=time.time() if now is None else now)

    @property
    def eta_seconds(self) -> float | None:
        """Seconds left at the rate so far; None before the first group is in."""
        elapsed = self.updated - self.started
        if self.done <= 0 or elapsed <= 0:
            return None
        return (self.total - self.done) * elapsed / self.done

    def running(self, now: float | None = None) -> bool:
        """Whether a build is (very likely) still at work: it committed recently."""
        return (time.time() if now is None else now) - max(self.updated, self.started) < STALLED_SECONDS

    def describe(self, now: float | None = None, *, tier: bool = False) -> str:
        """One line for `search_quality.reason` and `status`; it starts with `upgrading`. `tier`: the
        static vectors answer (with BM25) meanwhile."""
        line = f"upgrading: vectors for {self.done:,} of {self.total:,} chunks are built"
        answering = (f"static vectors ({self.tier.model}) and BM25 answer" if tier and self.tier is not None
                     else "BM25 answers")
        if not self.running(now):
            return f"{line}; the build stopped (the next `amanmcp index` or `serve` finishes it); {answering} meanwhile"
        eta = self.eta_seconds
        return line + (f", about {_duration(eta)} left" if eta is not None else "") + f"; {answering} until all are in"

    def to_dict(self) -> dict[str, Any]:
        return {"total": self.total, "done": self.done, "started": self.started, "updated": self.updated,
                "tier": self.tier.to_dict() if self.tier is not None else None}

    @classmethod
    def from_value(cls, value: Any) -> Upgrade | None:
        if not isinstance(value, dict):
            return None
        try:
            tier = EmbedderIdentity.from_dict(value["tier"]) if isinstance(value.get("tier"), dict) else None
            return cls(int(value["total"]), int(value["done"]), float(value["started"]), float(value["updated"]),
                       tier)
        except (KeyError, TypeError, ValueError):
            return None


def _duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


@dataclass(frozen=True, slots=True)
class IndexMeta:
    schema_version: int | None = None
    identity: EmbedderIdentity | None = None  # None: the index records no (readable) embedder
    complete: bool = True  # False while a first build (its text, then its vectors) has not finished
    upgrade: Upgrade | None = None  # set once a first build's text is all in and its vectors are being built
    vectors_version: int = 0  # bumped at every commit; names the vector cache that matches
    last_indexed: float | None = None
    skipped: dict[str, int] = field(default_factory=dict)

    @property
    def building(self) -> bool:
        """A first build is storing the project's text: searches see part of it."""
        return not self.complete and self.upgrade is None

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
            upgrade=Upgrade.from_value(items.get("upgrade")),
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
