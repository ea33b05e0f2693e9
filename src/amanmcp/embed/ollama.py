"""Ollama, as its `server/routes.go` (EmbedHandler, ListHandler) answers:

`GET /api/tags` → `{"models": [{"name", "model", ...}]}` lists pulled models;
`POST /api/embed {"model", "input": [...], "truncate": true}` → `{"model", "embeddings", ...}`.
`truncate` (default true there) cuts inputs longer than the model's context on the server. Errors
are `{"error": "..."}`: an unknown model is a 404 (`model "x" not found, try pulling it first`),
a busy server a 503 (retried). A key (`ollama.api_key`, for a proxy or ollama.com) goes as a
bearer token.
"""

from __future__ import annotations

from typing import Any

import httpx
import numpy as np

from amanmcp.embed.base import EmbedderError
from amanmcp.embed.http import PROBE_TIMEOUT, Health, HttpEmbedder, ServerInfo

DEFAULT_HOST = "http://localhost:11434"
DEFAULT_MODEL = "qwen3-embedding:0.6b"


def _same_model(wanted: str, listed: str) -> bool:
    """`nomic-embed-text` is pulled as `nomic-embed-text:latest`."""
    return listed == wanted or listed == f"{wanted}:latest" or listed.removesuffix(":latest") == wanted


class OllamaEmbedder(HttpEmbedder):
    backend = "ollama"
    label = "Ollama"
    section = "ollama"

    def __init__(self, endpoint: str = DEFAULT_HOST, model: str = DEFAULT_MODEL, **kwargs: Any) -> None:
        super().__init__(endpoint, model or DEFAULT_MODEL, **kwargs)

    def how_to_start(self) -> str:
        return f"start it with `ollama serve` and `ollama pull {self.model}`"

    def truncation_mode(self) -> str:
        return "server: truncate=true (Ollama cuts inputs at the model's context length)"

    def _probe(self) -> Health:
        response = self._client.get("/api/tags", timeout=PROBE_TIMEOUT)
        if response.status_code in (401, 403):
            return Health(False, f"HTTP {response.status_code} from /api/tags: set `ollama.api_key`")
        response.raise_for_status()
        names = [str(m.get("name") or m.get("model")) for m in response.json().get("models", [])]
        if not any(_same_model(self.model, n) for n in names):
            listed = ", ".join(names[:5]) or "none"
            pull = f"run `ollama pull {self.model}`"
            return Health(False, f"model {self.model} is not pulled (available: {listed}): {pull}")
        info = ServerInfo("ollama", self.model, tuple(names), truncation="server")
        return Health(True, f"healthy, {self.model} pulled", self.model, info)

    def _rejection_hint(self, response: httpx.Response) -> str:
        if response.status_code in (401, 403):
            return "; set `ollama.api_key`"
        return f"; run `ollama pull {self.model}`" if response.status_code == 404 else ""

    def _post_batch(self, texts: list[str]) -> np.ndarray:
        body = self._request("POST", "/api/embed", {"model": self.model, "input": texts, "truncate": True})
        if not isinstance(body, dict) or "embeddings" not in body:
            raise EmbedderError(f"Ollama at {self.endpoint}: /api/embed answered without 'embeddings'")
        self._note_model(body.get("model"))
        return self._rows(body["embeddings"], "/api/embed embeddings")
