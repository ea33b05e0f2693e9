"""Client of an MLX embedding server (Apple Silicon), e.g. qwen3-embeddings-mlx or `amanmcp embed-server`.

Wire format: `GET /health` → `{"status": "healthy", ...}`; `POST /embed {"text", "model"}` →
`{"embedding"}`; `POST /embed_batch {"texts", "model"}` → `{"embeddings", "dim"}`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from amanmcp.embed.base import EmbedderError
from amanmcp.embed.http import Health, HttpEmbedder

DEFAULT_ENDPOINT = "http://localhost:9659"
# alias → (model the identity records, dimensions)
MODELS: dict[str, tuple[str, int]] = {
    "small": ("mlx-community/Qwen3-Embedding-0.6B-4bit-DWQ", 1024),
    "medium": ("mlx-community/Qwen3-Embedding-4B-4bit-DWQ", 2560),
    "large": ("mlx-community/Qwen3-Embedding-8B-4bit-DWQ", 4096),
}
_ALIASES = {"0.6b": "small", "default": "small", "4b": "medium", "8b": "large"}


def canonical(model: str) -> tuple[str, int | None]:
    """An alias and the full name it stands for are one vector space: record the full name."""
    key = _ALIASES.get(model.lower(), model.lower())
    if key in MODELS:
        return MODELS[key]
    for name, dims in MODELS.values():
        if name.lower() == model.lower():
            return name, dims
    return model, None


class MlxEmbedder(HttpEmbedder):
    backend = "mlx"
    label = "MLX server"

    def __init__(self, endpoint: str = DEFAULT_ENDPOINT, model: str = "small", **kwargs: Any) -> None:
        super().__init__(endpoint, model, **kwargs)
        if model:
            self._canonical, self._dims = canonical(model)

    @property
    def model_name(self) -> str:
        return self._canonical if self.model else super().model_name

    def how_to_start(self) -> str:
        return (
            f"start it with `amanmcp embed-server --port {_port(self.endpoint)}` or the qwen3-embeddings-mlx "
            f"server (`python server.py --port {_port(self.endpoint)}`)"
        )

    def _probe(self) -> Health:
        from amanmcp.embed.http import PROBE_TIMEOUT

        response = self._client.get("/health", timeout=PROBE_TIMEOUT)
        body = response.json()
        if response.status_code != 200 or body.get("status") != "healthy":
            return Health(False, f"/health says {body.get('status', response.status_code)!r}")
        served = body.get("model") or body.get("loaded_model") or body.get("default_model") or ""
        return Health(True, f"healthy, serving {served or 'its default model'}", str(served))

    def _payload_model(self) -> dict[str, str]:
        return {"model": self.model} if self.model else {}

    def _post_batch(self, texts: list[str]) -> np.ndarray:
        if len(texts) == 1:
            body = self._request("POST", "/embed", {"text": texts[0], **self._payload_model()})
            if not isinstance(body, dict) or "embedding" not in body:
                raise EmbedderError(f"MLX server at {self.endpoint}: /embed answered without 'embedding'")
            return self._rows([body["embedding"]], "/embed embedding")
        body = self._request("POST", "/embed_batch", {"texts": texts, **self._payload_model()})
        if not isinstance(body, dict) or "embeddings" not in body:
            raise EmbedderError(f"MLX server at {self.endpoint}: /embed_batch answered without 'embeddings'")
        return self._rows(body["embeddings"], "/embed_batch embeddings")


def _port(endpoint: str) -> str:
    tail = endpoint.rsplit(":", 1)[-1].split("/")[0]
    return tail if tail.isdigit() else "9659"
