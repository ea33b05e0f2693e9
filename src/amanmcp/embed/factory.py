"""Which embedder to use, and why. An explicit choice is used or fails loudly; never a silent fallback."""

from __future__ import annotations

from dataclasses import dataclass

from amanmcp.config import Settings
from amanmcp.embed.base import Embedder, EmbedderError

BACKENDS = ("auto", "local", "mlx", "ollama", "openai", "static")


@dataclass(frozen=True, slots=True)
class Selection:
    embedder: Embedder
    requested: str  # what the user (or the default) asked for
    backend: str  # what runs
    fallback: bool  # true when auto-detection had to step down its preference list
    reason: str  # one line for humans: why this backend


def _local(settings: Settings) -> Embedder:
    from amanmcp.embed.local import LocalEmbedder

    e = settings.embeddings
    return LocalEmbedder(e.model, device=e.device, batch_size=e.batch_size)


def select_embedder(settings: Settings, backend: str | None = None) -> Selection:
    requested = backend or settings.embeddings.provider
    if requested not in BACKENDS:
        raise EmbedderError(f"unknown backend {requested!r}; choose one of: {', '.join(BACKENDS)}")
    if requested == "local":
        return Selection(_local(settings), requested, "local", False, "chosen explicitly")
    if requested == "auto":
        return Selection(_local(settings), requested, "local", False, "auto: in-process model loads")
    raise EmbedderError(f"backend {requested!r} is not available in this version; use --backend local")
