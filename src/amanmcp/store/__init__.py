"""Where an index lives: SQLite for files, chunks and BM25; a vector index beside it."""

from amanmcp.store.db import IndexStore
from amanmcp.store.layout import IndexLayout
from amanmcp.store.meta import IndexMeta, load_meta, read_meta
from amanmcp.store.vectors import VectorIndex

__all__ = ["IndexLayout", "IndexMeta", "IndexStore", "VectorIndex", "load_meta", "read_meta"]
