"""Which embedder to use, and why. An explicit choice is used or fails loudly; never a silent fallback.

`auto` walks a preference list and records every step, so `index`, `status`, `config show`,
`doctor` and `search_quality` can all say what was chosen, why, and whether it is a fallback:

    mlx (Apple Silicon and its server healthy) → local (its model and a runtime are present)
    → ollama (healthy, model pulled) → static (model2vec distilled from the local model,
    else the dependency-free hashed bag of identifiers).

`fallback` means the in-process default could not be used (auto ended on ollama or static);
skipping MLX on a machine without it is not a fallback. Probes are short and cached per process.
Every embedder handed out is wrapped with the query-embedding cache.
"""

from __future__ import annotations

import platform
import sys
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from amanmcp.config import Settings
from amanmcp.embed.base import Embedder, EmbedderError, EmbedderIdentity

if TYPE_CHECKING:  # httpx loads only when a server backend is used
    from amanmcp.embed.http import HttpEmbedder
    from amanmcp.embed.pool import EmbedderPool

BACKENDS = ("auto", "local", "mlx", "ollama", "openai", "static")
SERVERS = ("mlx", "ollama", "openai")
QUERY_CACHE_SIZE = 1000


@dataclass(frozen=True, slots=True)
class Attempt:
    """One step of auto-detection: a backend, whether it could be used, and why (not)."""

    backend: str
    ok: bool
    detail: str


@dataclass(frozen=True, slots=True)
class Provenance:
    """Why this embedder: carried by the embedder itself, so a search can report it."""

    requested: str  # what the user (or the default) asked for
    backend: str  # what runs
    fallback: bool  # auto had to go past the in-process default
    reason: str  # one line for humans
    attempts: tuple[Attempt, ...] = ()

    def chain(self) -> str:
        """`mlx ✗ (not Apple Silicon) → local ✓` — the path auto took."""
        return " → ".join(f"{a.backend} {'✓' if a.ok else '✗'} ({a.detail})" for a in self.attempts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "requested": self.requested, "backend": self.backend, "fallback": self.fallback, "reason": self.reason,
            "attempts": [{"backend": a.backend, "ok": a.ok, "detail": a.detail} for a in self.attempts],
        }


@dataclass(frozen=True, slots=True)
class Selection:
    embedder: Embedder
    requested: str
    backend: str
    fallback: bool
    reason: str
    attempts: tuple[Attempt, ...] = field(default=())

    @property
    def provenance(self) -> Provenance:
        return Provenance(self.requested, self.backend, self.fallback, self.reason, self.attempts)


# -- query cache --------------------------------------------------------------------------------


class QueryCache:
    """LRU of query vectors, keyed by embedder identity + text, shared by the whole process."""

    def __init__(self, size: int = QUERY_CACHE_SIZE) -> None:
        self.size = size
        self._items: OrderedDict[tuple[EmbedderIdentity, str], np.ndarray] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: tuple[EmbedderIdentity, str]) -> np.ndarray | None:
        with self._lock:
            vector = self._items.get(key)
            if vector is None:
                self.misses += 1
                return None
            self._items.move_to_end(key)
            self.hits += 1
            return vector

    def put(self, key: tuple[EmbedderIdentity, str], vector: np.ndarray) -> None:
        with self._lock:
            self._items[key] = vector
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self.hits = self.misses = 0

    def __len__(self) -> int:
        return len(self._items)


QUERY_CACHE = QueryCache()


class ManagedEmbedder:
    """What the factory hands out: the backend, the query cache, and why it was chosen."""

    def __init__(self, inner: Embedder, provenance: Provenance, cache: bool = True) -> None:
        self.inner = inner
        self.provenance = provenance
        self.cache = cache

    @property
    def identity(self) -> EmbedderIdentity:
        return self.inner.identity

    @property
    def dimensions(self) -> int:
        return self.inner.dimensions

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        return self.inner.embed_documents(texts)

    def embed_query(self, text: str) -> np.ndarray:
        if not self.cache:
            return self.inner.embed_query(text)
        key = (self.inner.identity, text)
        vector = QUERY_CACHE.get(key)
        if vector is None:
            vector = self.inner.embed_query(text)
            vector.setflags(write=False)  # shared between callers: nobody may change it
            QUERY_CACHE.put(key, vector)
        return vector

    def describe(self) -> str:
        return _describe(self.inner)


def _describe(embedder: Embedder) -> str:
    """Backends may say more about themselves (runtime, device, endpoint) than their identity."""
    describe = getattr(embedder, "describe", None)
    return describe() if callable(describe) else embedder.identity.label()


# -- constructors, one per backend -------------------------------------------------------------


def make_backend(name: str, settings: Settings) -> Embedder:
    """Construct a backend from settings (cheap: no model load, no network)."""
    e = settings.embeddings
    if name == "local":
        from amanmcp.embed.local import LocalEmbedder

        return LocalEmbedder(e.model, device=e.device, batch_size=e.batch_size, runtime=e.runtime, quantize=e.quantize)
    if name == "static":
        from amanmcp.embed.static import HASHED, HashedEmbedder, StaticEmbedder

        if settings.static.model == HASHED:
            return HashedEmbedder()
        return StaticEmbedder(settings.static.model, source_model=e.model)
    if name in SERVERS:
        return make_server(name, settings)
    raise EmbedderError(f"unknown backend {name!r}; choose one of: {', '.join(BACKENDS)}")


def make_server(name: str, settings: Settings) -> HttpEmbedder | EmbedderPool:
    """A client of the mlx, ollama or openai server configured in settings (no request yet); for
    `openai.endpoints`, a pool of clients."""
    server = getattr(settings, name)
    kwargs: dict[str, Any] = {
        "batch_size": settings.embeddings.batch_size, "max_in_flight": server.max_in_flight, "timeout": server.timeout,
        "api_key": server.api_key,  # every server's key is sent (as a bearer token) when set
    }
    if name == "mlx":
        from amanmcp.embed.mlx import MlxEmbedder

        return MlxEmbedder(server.endpoint, server.model, load_timeout=settings.mlx.load_timeout, **kwargs)
    if name == "ollama":
        from amanmcp.embed.ollama import OllamaEmbedder

        return OllamaEmbedder(server.endpoint, server.model, **kwargs)
    from amanmcp.embed.openai import OpenAIEmbedder

    endpoints = list(dict.fromkeys(url.rstrip("/") for url in settings.openai.endpoints)) or [server.endpoint]
    if len(endpoints) == 1:
        return OpenAIEmbedder(endpoints[0], server.model, **kwargs)
    from amanmcp.embed.pool import EmbedderPool

    return EmbedderPool([OpenAIEmbedder(url, server.model, **kwargs) for url in endpoints])


def is_apple_silicon() -> bool:
    return sys.platform == "darwin" and platform.machine() == "arm64"


def local_problem(settings: Settings) -> str | None:
    """Why the in-process model cannot run here (None: it can), checked without loading it."""
    from amanmcp.embed.local import GPU_EXTRA, is_bert_safetensors, resolve_model, torch_available

    try:
        name, model_dir = resolve_model(settings.embeddings.model)
    except EmbedderError as exc:
        return str(exc)
    torch_ok = torch_available()
    if model_dir is not None:
        if is_bert_safetensors(model_dir) or (torch_ok and (model_dir / "config.json").is_file()):
            return None
        return f"{model_dir} is not a model this machine can run (non-BERT models need torch: `{GPU_EXTRA}`)"
    if not torch_ok:
        return f"hub model {name} needs torch and sentence-transformers (`{GPU_EXTRA}`)"
    try:
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(name, "config.json")
    except Exception:  # an unusual name or cache layout: treat as not downloaded
        cached = None
    if not isinstance(cached, str):
        return f"hub model {name} is not downloaded; run `amanmcp index --backend local` once to fetch it"
    return None


def _server_attempt(name: str, embedder: HttpEmbedder | EmbedderPool) -> Attempt:
    health = embedder.health()
    return Attempt(name, health.ok, health.detail if health.ok else embedder.unreachable_message(health.detail))


def select_embedder(settings: Settings, backend: str | None = None, *, apple_silicon: bool | None = None) -> Selection:
    """The embedder for this command. `apple_silicon` overrides platform detection (tests, docs)."""
    requested = backend or settings.embeddings.provider
    if requested not in BACKENDS:
        raise EmbedderError(f"unknown backend {requested!r}; choose one of: {', '.join(BACKENDS)}")
    cache = settings.embeddings.cache
    if requested != "auto":
        return _explicit(requested, settings, cache)
    apple = is_apple_silicon() if apple_silicon is None else apple_silicon
    attempts: list[Attempt] = []

    if apple:
        mlx = make_server("mlx", settings)
        attempt = _server_attempt("mlx", mlx)
        attempts.append(attempt)
        if attempt.ok:
            reason = f"auto: MLX server healthy at {settings.mlx.endpoint}"
            return _chosen(mlx, "auto", "mlx", attempts, False, reason, cache)
    else:
        attempts.append(Attempt("mlx", False, "not Apple Silicon"))

    problem = local_problem(settings)
    if problem is None:
        try:
            local = make_backend("local", settings)
            attempts.append(Attempt("local", True, _describe(local)))
            return _chosen(local, "auto", "local", attempts, False, "auto: in-process model", cache)
        except EmbedderError as exc:
            problem = str(exc)
    attempts.append(Attempt("local", False, problem))

    ollama = make_server("ollama", settings)
    attempt = _server_attempt("ollama", ollama)
    attempts.append(attempt)
    if attempt.ok:
        reason = f"auto fallback: local unavailable ({problem}); Ollama healthy"
        return _chosen(ollama, "auto", "ollama", attempts, True, reason, cache)

    static, detail = _auto_static(settings)
    attempts.append(Attempt("static", True, detail))
    reason = f"auto fallback: local unavailable ({problem}); {detail}"
    return _chosen(static, "auto", "static", attempts, True, reason, cache)


def _auto_static(settings: Settings) -> tuple[Embedder, str]:
    """The configured static model if it can be built, else the hashed bag that always works."""
    from amanmcp.embed.static import HashedEmbedder

    try:
        static = make_backend("static", settings)
        return static, f"static {static.identity.model}"
    except EmbedderError as exc:
        return HashedEmbedder(), f"static {HashedEmbedder.MODEL} ({exc})"


def _explicit(name: str, settings: Settings, cache: bool) -> Selection:
    """Used as asked, or a clear error that says how to fix it. Never another backend."""
    if name == "local":
        problem = local_problem(settings)
        if problem is not None and "not downloaded" not in problem:  # an explicit hub model may download
            raise EmbedderError(f"local backend unavailable: {problem}, or choose `--backend static`")
    if name in SERVERS:
        server = make_server(name, settings)
        attempt = _server_attempt(name, server)
        if not attempt.ok:
            raise EmbedderError(attempt.detail)
        embedder: Embedder = server
    else:
        embedder = make_backend(name, settings)
    explicit = "chosen explicitly"
    return _chosen(embedder, name, name, [Attempt(name, True, explicit)], False, explicit, cache)


def _chosen(embedder: Embedder, requested: str, backend: str, attempts: list[Attempt], fallback: bool, reason: str,
            cache: bool) -> Selection:
    provenance = Provenance(requested, backend, fallback, reason, tuple(attempts))
    managed = ManagedEmbedder(embedder, provenance, cache=cache)
    return Selection(managed, requested, backend, fallback, reason, tuple(attempts))
