"""The seam every embedding backend plugs into."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from amanmcp.errors import AmanError


class EmbedderError(AmanError):
    """A backend cannot produce vectors; the message says how to fix it."""


@dataclass(frozen=True, slots=True)
class EmbedderIdentity:
    """What makes two vector spaces the same. Indexes record it; searches compare it."""

    backend: str
    model: str
    dimensions: int
    normalized: bool = True
    query_prefix: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EmbedderIdentity:
        return cls(**{k: data[k] for k in ("backend", "model", "dimensions", "normalized", "query_prefix")})

    def label(self) -> str:
        return f"{self.backend}:{self.model} ({self.dimensions}d)"


@runtime_checkable
class Embedder(Protocol):
    """Texts in, L2-normalised float32 rows out."""

    @property
    def identity(self) -> EmbedderIdentity: ...

    @property
    def dimensions(self) -> int: ...

    def embed_documents(self, texts: list[str]) -> np.ndarray: ...

    def embed_query(self, text: str) -> np.ndarray: ...


# Models trained with an instruction on the query side only. Documents are embedded as they are;
# the prefix travels in the identity so a search uses exactly what the index was built for.
QUERY_INSTRUCTIONS: tuple[tuple[str, str], ...] = (
    ("qwen3-embedding",
     "Instruct: Given a code search query, retrieve relevant code snippets and documentation\nQuery: "),
    ("e5-", "query: "),
    ("bge-m3", ""),
    ("bge-", "Represent this sentence for searching relevant passages: "),
    ("mxbai-embed-large", "Represent this sentence for searching relevant passages: "),
    ("snowflake-arctic-embed", "Represent this sentence for searching relevant passages: "),
    ("nomic-embed-text", "search_query: "),
)


def query_prefix_for(model: str) -> str:
    """The query instruction a model was trained with ('' for most sentence-transformers models)."""
    name = model.lower()
    for marker, prefix in QUERY_INSTRUCTIONS:
        if marker in name:
            return prefix
    return ""


def l2_normalize(vectors: np.ndarray) -> np.ndarray:
    """Every backend's output goes through this: servers differ in whether they normalise."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)
