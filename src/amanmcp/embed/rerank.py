"""A client for server rerank APIs: one relevance score per (query, document) pair.

Reranking is optional (off unless `reranker.endpoint` is set) and re-scores only the top results
of a search, so it speaks the three wire forms that rerank servers use, all `POST {endpoint}/rerank`
(or `/v1/rerank`, tried once when `/rerank` answers 404, then remembered):

- `mlx`    (MLX embedding server): `{"query", "documents", "model"?, "top_k"}` → `{"results": [{"index", "score"}]}`;
           it rejects blank documents and more than 100 documents a request.
- `tei`    (Hugging Face text-embeddings-inference): `{"query", "texts", "truncate": true}` → `[{"index", "score"}]`;
           32 texts a request by default.
- `cohere` (Cohere, Jina, Infinity, vLLM, llama.cpp): `{"query", "documents", "model"?, "top_n"}`
           → `{"results": [{"index", "relevance_score"}]}`.
- `auto`   sends the `documents` form, and on a 400/422 the `texts` form once; the form that worked
           is remembered.

Blank documents travel as a placeholder (scores stay aligned with the documents given). Batches
that a server finds too large (413, or a 400/422 about the batch size) are halved and resent.
Connection errors, timeouts and 5xx are retried once; a 4xx is not retried and shows the server's
message.
"""

from __future__ import annotations

import math
import threading
from typing import TYPE_CHECKING, Any

import httpx

from amanmcp.embed.base import EmbedderError
from amanmcp.embed.http import _error_text, send_with_retries

if TYPE_CHECKING:
    from amanmcp.config import Settings

FORMATS = ("auto", "mlx", "tei", "cohere")
MAX_DOCUMENTS = {"auto": 100, "mlx": 100, "cohere": 100, "tei": 32}  # per request, until a server says less
PLACEHOLDER = "(empty)"  # for blank documents, which the MLX server rejects
PATHS = ("/rerank", "/v1/rerank")
ATTEMPTS = 2  # transient failures are retried once: reranking must not make a search feel stuck
RETRY_DELAY = 0.2  # seconds
HOW_TO_FIX = "start it, or unset `reranker.endpoint` (AMANMCP_RERANKER_ENDPOINT) to search without reranking"


class RerankError(EmbedderError):
    """The reranker cannot score; the message says how to fix it."""


class _Rejected(RerankError):
    """The server answered 4xx: retrying the same request will not help."""

    def __init__(self, message: str, status: int, detail: str, path: str) -> None:
        super().__init__(message)
        self.status = status
        self.detail = detail
        self.path = path

    @property
    def batch_too_large(self) -> bool:
        return self.status == 413 or (self.status in (400, 422) and "batch" in self.detail.lower())


class Reranker:
    """Scores documents against a query on a rerank server; higher = more relevant."""

    def __init__(
        self, endpoint: str, *, model: str = "", api_key: str = "", format: str = "auto", timeout: float = 10.0
    ) -> None:
        if format not in FORMATS:
            raise RerankError(f"unknown reranker format {format!r}: choose one of {', '.join(FORMATS)}")
        self.endpoint = endpoint.strip().rstrip("/")
        if not self.endpoint:
            raise RerankError("no reranker endpoint: set `reranker.endpoint` (AMANMCP_RERANKER_ENDPOINT)")
        self.model = model
        self.format = format  # as configured
        self._resolved: str | None = None if format == "auto" else format  # the form the server accepted
        self._path: str | None = None  # /rerank or /v1/rerank, once the server has answered on it
        self._max_documents: int | None = None  # what the server accepted after a "batch too large"
        self._served_model = ""
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(
            base_url=self.endpoint, headers=headers, timeout=httpx.Timeout(timeout, connect=min(timeout, 2.0))
        )
        self._lock = threading.Lock()

    def __enter__(self) -> Reranker:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()

    @property
    def label(self) -> str:
        """`format:model at endpoint`: the form in use (or `auto` before the first request) and the model."""
        model = self.model or self._served_model or "default"
        return f"{self._resolved or self.format}:{model} at {self.endpoint}"

    # -- scoring ------------------------------------------------------------------------------------

    def score(self, query: str, documents: list[str]) -> list[float]:
        """One relevance score per document, in the order given."""
        if not documents:
            return []
        texts = [d if isinstance(d, str) and d.strip() else PLACEHOLDER for d in documents]
        scores: list[float] = []
        start = 0
        while start < len(texts):
            size = self._max_documents or MAX_DOCUMENTS[self._resolved or self.format]
            batch = texts[start : start + size]
            try:
                scores.extend(self._score_batch(query, batch))
            except _Rejected as exc:
                if not exc.batch_too_large or len(batch) == 1:
                    raise
                with self._lock:
                    self._max_documents = max(1, len(batch) // 2)
                continue
            start += len(batch)
        return scores

    def _score_batch(self, query: str, batch: list[str]) -> list[float]:
        if self._resolved is not None:
            scores, _ = self._parse(self._post(self._payload(self._resolved, query, batch)), len(batch))
            return scores
        try:
            data = self._post(self._payload("auto", query, batch))
        except _Rejected as first:
            if first.status not in (400, 422) or first.batch_too_large:
                raise
            try:
                data = self._post(self._payload("tei", query, batch))
            except _Rejected as second:
                if second.batch_too_large:
                    self._resolved = "tei"  # it understood the `texts` form, and wants smaller batches
                    raise
                raise RerankError(
                    f"reranker at {self.endpoint} rejected both request forms: `documents` "
                    f"(HTTP {first.status}: {first.detail}) and `texts` (HTTP {second.status}: {second.detail}); "
                    "set `reranker.format` to the server's (mlx, tei or cohere)"
                ) from None
            scores, _ = self._parse(data, len(batch))
            self._resolved = "tei"
            return scores
        scores, form = self._parse(data, len(batch))
        self._resolved = form
        return scores

    def _payload(self, form: str, query: str, batch: list[str]) -> dict[str, Any]:
        if form == "tei":
            return {"query": query, "texts": batch, "truncate": True}
        payload: dict[str, Any] = {"query": query, "documents": batch}
        if self.model:
            payload["model"] = self.model
        if form == "mlx":
            payload["top_k"] = len(batch)  # every document back, whatever the server's default
        elif form == "cohere":
            payload["top_n"] = len(batch)
        return payload

    # -- transport ----------------------------------------------------------------------------------

    def _post(self, payload: dict[str, Any]) -> Any:
        """POST to the known rerank path, else `/rerank` and, when that answers 404, `/v1/rerank`."""
        if self._path is not None:
            return self._request(self._path, payload)
        missing: _Rejected | None = None
        for path in PATHS:
            try:
                data = self._request(path, payload)
            except _Rejected as exc:
                if exc.status != 404:
                    self._path = path  # the route exists; the request was what it did not like
                    raise
                if missing is None:
                    missing = exc
                    continue
                if exc.detail == missing.detail:
                    raise
                raise _Rejected(
                    f"reranker at {self.endpoint} answered HTTP 404 on {missing.path} ({missing.detail}) "
                    f"and on {exc.path} ({exc.detail}): check `reranker.endpoint` and `reranker.model`",
                    404, exc.detail, exc.path,
                ) from None
            self._path = path
            return data
        raise AssertionError("unreachable")  # pragma: no cover

    def _request(self, path: str, payload: dict[str, Any]) -> Any:
        response, last = send_with_retries(self._client, "POST", path, payload, ATTEMPTS, lambda _: RETRY_DELAY)
        if response is None:
            raise RerankError(f"reranker at {self.endpoint} is unreachable ({last}): {HOW_TO_FIX}")
        if response.status_code >= 400:
            detail = _error_text(response)
            hint = ""
            if response.status_code in (401, 403):
                hint = "; set `reranker.api_key` (AMANMCP_RERANKER_API_KEY)"
            raise _Rejected(
                f"reranker at {self.endpoint} rejected POST {path} (HTTP {response.status_code}): {detail}{hint}",
                response.status_code, detail, path,
            )
        try:
            return response.json()
        except ValueError:
            raise RerankError(f"reranker at {self.endpoint} answered POST {path} with non-JSON") from None

    # -- answers ------------------------------------------------------------------------------------

    def _parse(self, data: Any, count: int) -> tuple[list[float], str]:
        """Scores aligned with the documents sent, and the form the answer looks like: results with a
        `score` are the MLX server's (or text-embeddings-inference's), with only `relevance_score` Cohere's."""
        where = f"reranker at {self.endpoint}"
        items = data
        if isinstance(data, dict):
            if isinstance(data.get("model"), str) and data["model"]:
                self._served_model = data["model"]
            key = next((k for k in ("results", "data") if k in data), None)
            if key is None:
                raise RerankError(f"{where} answered without 'results' (keys: {', '.join(map(str, data))[:100]})")
            items = data[key]
        if not isinstance(items, list):
            raise RerankError(f"{where} answered with {type(items).__name__} instead of a list of results")
        scores: list[float | None] = [None] * count
        form = "mlx"
        for item in items:
            if not isinstance(item, dict):
                raise RerankError(f"{where} answered a result that is not an object: {str(item)[:80]}")
            index = item.get("index")
            if isinstance(index, float) and index.is_integer():
                index = int(index)
            if isinstance(index, bool) or not isinstance(index, int):
                raise RerankError(f"{where} answered a result without a document index: {str(item)[:80]}")
            if not 0 <= index < count:
                raise RerankError(f"{where} answered index {index} for {count} documents")
            if scores[index] is not None:
                raise RerankError(f"{where} answered document {index} twice")
            value = item.get("relevance_score", item.get("score"))
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise RerankError(f"{where} answered a non-numeric score for document {index}: {value!r}")
            scores[index] = float(value)
            if "score" not in item:
                form = "cohere"
        missing = [i for i, s in enumerate(scores) if s is None]
        if missing:
            raise RerankError(
                f"{where} answered {count - len(missing)} scores for {count} documents "
                f"(missing: {', '.join(map(str, missing[:10]))}{'…' if len(missing) > 10 else ''})"
            )
        return [float(s) for s in scores if s is not None], form


def make_reranker(settings: Settings) -> Reranker | None:
    """The configured reranker, or None when `reranker.endpoint` is empty (the default: reranking off)."""
    config = settings.reranker
    if not config.endpoint.strip():
        return None
    return Reranker(
        config.endpoint, model=config.model, api_key=config.api_key, format=config.format, timeout=config.timeout
    )
