"""Client of an MLX embedding server (Apple Silicon): the reference system's `mlx-server/server.py`
(Aman-CERP/amanmcp, v1.3.0-amanmcp, from jakedahn/qwen3-embeddings-mlx), or `amanmcp embed-server`.

Wire format, as that server's FastAPI app defines it:

- `GET /health` → `{"status": "healthy"|"degraded", "model_status": "ready"|"loading"|"unloaded"|"error",
  "loaded_model", "embedding_dim", ...}`. Models load lazily, on the first request, and the load
  blocks the server's event loop: a probe that allows 1 s calls a loading server "down". The probe
  here connects within 1 s (a stopped server is told at once) but waits `mlx.load_timeout` for the
  answer, and while `model_status` is "loading" it asks again.
- `GET /models` → `{"embeddings": {"default_model", "max_batch_size", "max_text_length",
  "models": {name: {"aliases", "embedding_dim", "status"}}}, "rerankers": {...}}`: the configured
  model (a full name or an alias: small, 0.6b, default, medium, 4b, large, 8b, embeddinggemma,
  gemma, gemma-300m) is checked there and recorded by its full name.
- `POST /embed {"text", "model"?}` → `{"embedding", "model", "dim"}`; `POST /embed_batch {"texts",
  "model"?}` → `{"embeddings", "model", "dim", "count"}` (at most 1024 texts; longer texts are cut
  at `max_text_length` tokens by the server).
- Errors: an unknown model is a 500 `{"detail": "Batch embedding generation failed: Unknown model:
  ..."}` (not retried: it will fail again); empty or whitespace-only texts are a 422 `{"detail":
  [...]}`, so blank texts are not sent: they get a zero vector (they match nothing).
"""

from __future__ import annotations

import time
from typing import Any

import httpx
import numpy as np

from amanmcp.embed.base import EmbedderError
from amanmcp.embed.http import PROBE_TIMEOUT, Health, HttpEmbedder, ServerInfo, same_model

DEFAULT_ENDPOINT = "http://localhost:9659"
DEFAULT_LOAD_TIMEOUT = 60.0  # seconds a probe waits for a server that is loading its model
MAX_BATCH = 1024  # BatchEmbedRequest: texts max_length=1024
# alias → (model the identity records, dimensions): the reference server's AVAILABLE_MODELS
MODELS: dict[str, tuple[str, int]] = {
    "small": ("mlx-community/Qwen3-Embedding-0.6B-4bit-DWQ", 1024),
    "medium": ("mlx-community/Qwen3-Embedding-4B-4bit-DWQ", 2560),
    "large": ("mlx-community/Qwen3-Embedding-8B-4bit-DWQ", 4096),
    "embeddinggemma": ("mlx-community/embeddinggemma-300m-4bit", 768),
}
_ALIASES = {"0.6b": "small", "default": "small", "4b": "medium", "8b": "large",
            "gemma": "embeddinggemma", "gemma-300m": "embeddinggemma"}


def canonical(model: str) -> tuple[str, int | None]:
    """An alias and the full name it stands for are one vector space: record the full name."""
    key = _ALIASES.get(model.lower(), model.lower())
    if key in MODELS:
        return MODELS[key]
    for name, dims in MODELS.values():
        if name.lower() == model.lower():
            return name, dims
    return model, None


def aliases_of(name: str) -> set[str]:
    """Every name the MLX server accepts for the model `name` (lowercase), itself included."""
    full, _ = canonical(name)
    names = {full.lower()}
    for alias, (model, _dims) in MODELS.items():
        if model == full:
            names.add(alias)
            names.update(a for a, key in _ALIASES.items() if key == alias)
    return names


class MlxEmbedder(HttpEmbedder):
    backend = "mlx"
    label = "MLX server"
    section = "mlx"

    def __init__(self, endpoint: str = DEFAULT_ENDPOINT, model: str = "small", *,
                 load_timeout: float = DEFAULT_LOAD_TIMEOUT, **kwargs: Any) -> None:
        # the first request loads the model, and the server answers nothing until it is loaded
        kwargs["timeout"] = max(float(kwargs.get("timeout", 60.0)), load_timeout)
        super().__init__(endpoint, model, **kwargs)
        self.load_timeout = load_timeout
        self._canonical, self._dims = canonical(model) if model else ("", None)
        self._listed: ServerInfo | None = None  # what GET /models said

    @property
    def model_name(self) -> str:
        """The full name the server gives the configured model (an alias means what the server says it
        means: ask it once), else our table's; with none configured, the server's default."""
        if self.model:
            info = self._info()
            if info is None and self.health().ok:
                info = self._info()
            return info.model if info is not None and info.model else self._canonical
        return super().model_name

    def _expected_model(self) -> str:
        return self.model_name if self.model else self._known_model()

    def _known_model(self) -> str:
        info = self._info()
        return (info.model if info is not None else "") or self._served_model or ""

    def _info(self) -> ServerInfo | None:
        if self._listed is None:
            cached = self._cached_health()
            if cached is not None and cached.ok and cached.info is not None:
                self._listed = cached.info
        return self._listed

    def _info_batch(self) -> int | None:
        info = self._info()
        return min(info.max_batch, MAX_BATCH) if info is not None and info.max_batch else MAX_BATCH

    def truncation_mode(self) -> str:
        info = self._info()
        limit = f" at {info.max_tokens} tokens" if info is not None and info.max_tokens else ""
        return f"server: the MLX server cuts long texts{limit}"

    def _same_model(self, expected: str, answered: str) -> bool:
        return same_model(expected, answered) or answered.lower() in aliases_of(expected)

    def how_to_start(self) -> str:
        return (
            f"start it with `amanmcp embed-server --port {_port(self.endpoint)}` or the qwen3-embeddings-mlx "
            f"server (`python server.py --port {_port(self.endpoint)}`)"
        )

    # -- probe ------------------------------------------------------------------------------------

    def _probe(self) -> Health:
        timeout = httpx.Timeout(self.load_timeout, connect=PROBE_TIMEOUT)
        deadline = time.monotonic() + self.load_timeout
        while True:
            try:
                response = self._client.get("/health", timeout=timeout)
            except httpx.ReadTimeout:
                return Health(False, f"connected, but /health did not answer within {self.load_timeout:.0f} s "
                                     "(loading a model?); wait, or raise `mlx.load_timeout`")
            body = response.json()
            status = body.get("status")
            if response.status_code == 200 and status == "healthy":
                break
            if body.get("model_status") == "loading" and time.monotonic() < deadline:
                time.sleep(0.5)
                continue
            state = f", model {body['model_status']}" if body.get("model_status") else ""
            return Health(False, f"/health says {status or response.status_code!r}{state}")
        default = str(body.get("model") or body.get("loaded_model") or body.get("default_model") or "")
        listing = self._client.get("/models", timeout=timeout)
        if listing.status_code == 404:  # an older server: /health is all there is
            name = self._canonical or default
            self._listed = ServerInfo("mlx", name, (name,) if name else (), self._dims or _int(body.get("dim")))
            return Health(True, f"healthy, serving {name or 'its default model'}", name, self._listed)
        listing.raise_for_status()
        info = self._read_listing(listing.json(), default)
        self._listed = info
        return Health(True, f"healthy, serving {info.model}", info.model, info)

    def _read_listing(self, data: Any, default: str) -> ServerInfo:
        embeddings = data.get("embeddings", {}) if isinstance(data, dict) else {}
        models = embeddings.get("models", {}) if isinstance(embeddings, dict) else {}
        if not isinstance(models, dict) or not models:
            raise EmbedderError("the MLX server's /models lists no embedding models")
        wanted = self.model or str(embeddings.get("default_model") or default)
        names: dict[str, str] = {}  # every accepted name (lowercase) → full name
        for name, entry in models.items():
            names[name.lower()] = name
            for alias in (entry.get("aliases") or entry.get("alias") or []) if isinstance(entry, dict) else []:
                names[str(alias).lower()] = name
        full = names.get(wanted.lower())
        if full is None:
            known = ", ".join(sorted(names))
            raise EmbedderError(f"the MLX server does not serve model {wanted!r} (it knows: {known}): set `mlx.model`")
        entry = models[full] if isinstance(models[full], dict) else {}
        dims = _int(entry.get("embedding_dim"))
        if dims:
            self._dims = dims
        batch = _int(embeddings.get("max_batch_size"))
        return ServerInfo("mlx", full, tuple(models), dims, min(batch or MAX_BATCH, MAX_BATCH),
                          _int(embeddings.get("max_text_length")), "server")

    # -- embedding --------------------------------------------------------------------------------

    def _payload_model(self) -> dict[str, str]:
        return {"model": self.model} if self.model else {}

    def _post_batch(self, texts: list[str]) -> np.ndarray:
        sent = [i for i, t in enumerate(texts) if t.strip()]  # the server rejects blank texts (422)
        if not sent:
            return np.zeros((len(texts), self.dimensions), dtype=np.float32)
        wanted = [texts[i] for i in sent]
        if len(wanted) == 1:
            body = self._request("POST", "/embed", {"text": wanted[0], **self._payload_model()})
            if not isinstance(body, dict) or "embedding" not in body:
                raise EmbedderError(f"MLX server at {self.endpoint}: /embed answered without 'embedding'")
            rows = self._rows([body["embedding"]], "/embed embedding")
        else:
            body = self._request("POST", "/embed_batch", {"texts": wanted, **self._payload_model()})
            if not isinstance(body, dict) or "embeddings" not in body:
                raise EmbedderError(f"MLX server at {self.endpoint}: /embed_batch answered without 'embeddings'")
            rows = self._rows(body["embeddings"], "/embed_batch embeddings")
        self._note_model(body.get("model"))
        if len(sent) == len(texts):
            return rows
        out = np.zeros((len(texts), rows.shape[1]), dtype=np.float32)
        out[sent] = rows
        return out


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def _port(endpoint: str) -> str:
    tail = endpoint.rsplit(":", 1)[-1].split("/")[0]
    return tail if tail.isdigit() else "9659"
