"""Any OpenAI-compatible embeddings server: TEI, vLLM, LM Studio, llama.cpp, Infinity, `amanmcp embed-server`.

`POST {base}/v1/embeddings {"model", "input": [...]}` → `{"data": [{"index", "embedding"}]}`;
an optional bearer key comes from `openai.api_key` / `AMANMCP_OPENAI_API_KEY`.
"""

from __future__ import annotations

from typing import Any

import httpx
import numpy as np

from amanmcp.embed.base import EmbedderError
from amanmcp.embed.http import PROBE_TIMEOUT, Health, HttpEmbedder

DEFAULT_BASE_URL = "http://localhost:8080"


class OpenAIEmbedder(HttpEmbedder):
    backend = "openai"
    label = "OpenAI-compatible server"

    def __init__(self, endpoint: str = DEFAULT_BASE_URL, model: str = "", **kwargs: Any) -> None:
        base = endpoint.rstrip("/").removesuffix("/v1")  # accept both http://h:p and http://h:p/v1
        super().__init__(base, model, **kwargs)

    def how_to_start(self) -> str:
        return (
            "start it (`amanmcp embed-server`, TEI, vLLM, LM Studio, llama.cpp or Infinity) "
            "or point AMANMCP_OPENAI_BASE_URL at it"
        )

    def _probe(self) -> Health:
        response = self._client.get("/v1/models", timeout=PROBE_TIMEOUT)
        if response.status_code == 401:
            return Health(False, "HTTP 401 from /v1/models: set AMANMCP_OPENAI_API_KEY")
        if response.status_code == 404:  # some servers (TEI) have no model list; /health will do
            response = self._client.get("/health", timeout=PROBE_TIMEOUT)
            response.raise_for_status()
            return Health(True, "healthy", self.model)
        response.raise_for_status()
        ids = [str(m.get("id")) for m in response.json().get("data", []) if isinstance(m, dict)]
        if self.model and ids and self.model not in ids:
            return Health(False, f"model {self.model} is not served (served: {', '.join(ids[:5])})")
        served = self.model or (ids[0] if ids else "")
        return Health(True, f"healthy, serving {served or 'an unnamed model'}", served)

    def _rejection_hint(self, response: httpx.Response) -> str:
        return "; set AMANMCP_OPENAI_API_KEY" if response.status_code in (401, 403) else ""

    def _post_batch(self, texts: list[str]) -> np.ndarray:
        payload: dict[str, object] = {"input": texts}
        model = self.model or self._served_model
        if model:
            payload["model"] = model
        body = self._request("POST", "/v1/embeddings", payload)
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, list):
            raise EmbedderError(f"OpenAI-compatible server at {self.endpoint}: /v1/embeddings answered without 'data'")
        try:
            ordered = sorted(data, key=lambda item: int(item.get("index", 0)))
            rows = [item["embedding"] for item in ordered]
        except (AttributeError, KeyError, TypeError, ValueError):
            raise EmbedderError(f"OpenAI-compatible server at {self.endpoint}: malformed 'data' items") from None
        return self._rows(rows, "/v1/embeddings data")
