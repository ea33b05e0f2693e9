"""`amanmcp embed-server`: an in-process backend served over HTTP in every wire format our clients speak.

One GPU box can embed for a team, and every HTTP client of ours is tested against a real server:

    GET  /health            → {"status": "healthy", "model", "dim", "backend", ...}      (MLX server)
    POST /embed             {"text", "model"?}   → {"embedding", "model", "dim"}         (MLX server)
    POST /embed_batch       {"texts", "model"?}  → {"embeddings", "model", "dim"}        (MLX server)
    GET  /v1/models, POST /v1/embeddings {"input", "model"?} → {"data": [{"index", "embedding"}]} (OpenAI)
    GET  /api/tags,  POST /api/embed {"model"?, "input"} → {"embeddings"}                (Ollama)
    POST /rerank, /v1/rerank {"query", "documents" | "texts", "model"?, "top_k" | "top_n"?}
         → {"results": [{"index", "score", "relevance_score", "document"}], "model", "query", "count"}
           (MLX server, Cohere/Jina/Infinity and text-embeddings-inference request forms)

Reranking here is the embedder's own: the cosine similarity of the embedded query (with the model's
query instruction) and each embedded document, best first. A cross-encoder ranks better; this one
lets the rerank clients be tested end to end and gives a team one server for both jobs.

The server names the model it serves (in /health, /v1/models and /api/tags) and accepts that
name, or none, in requests. Requests over the batch, text or body limits get a 4xx; every error
is JSON, never a traceback. With AMANMCP_EMBED_SERVER_FAULTS=1 (tests only) `POST /_faults` makes
the next requests fail or hang, to prove the clients' retries and timeouts. With
AMANMCP_EMBED_SERVER_API_KEY set, requests need that bearer key (clients: AMANMCP_OPENAI_API_KEY).
"""

from __future__ import annotations

import ipaddress
import json
import logging
import socket
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import anyio
import numpy as np
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from amanmcp.embed.base import Embedder

log = logging.getLogger(__name__)
DEFAULT_HOST = "127.0.0.1"
FAULTS_ENV = "AMANMCP_EMBED_SERVER_FAULTS"
API_KEY_ENV = "AMANMCP_EMBED_SERVER_API_KEY"


@dataclass(frozen=True, slots=True)
class Limits:
    max_batch: int = 256  # texts per request
    max_text_chars: int = 100_000  # characters per text
    max_body_bytes: int = 64 * 1024 * 1024


class ApiError(Exception):
    """Becomes a JSON error response with this status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(slots=True)
class Faults:
    """Test-only switch: fail (with `status`) or hang (for `hang_seconds`) the next N embedding requests."""

    fail_next: int = 0
    status: int = 503
    hang_next: int = 0
    hang_seconds: float = 5.0
    seen: int = 0  # embedding requests received, faulty or not
    lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self) -> tuple[str, float | int] | None:
        with self.lock:
            self.seen += 1
            if self.hang_next > 0:
                self.hang_next -= 1
                return ("hang", self.hang_seconds)
            if self.fail_next > 0:
                self.fail_next -= 1
                return ("fail", self.status)
            return None


class EmbedService:
    """The embedder behind a lock: one batch at a time uses all the cores; requests queue."""

    def __init__(self, embedder: Embedder, backend: str, limits: Limits) -> None:
        self.embedder = embedder
        self.backend = backend
        self.limits = limits
        self.model = embedder.identity.model
        self.dim = embedder.dimensions
        self._lock = threading.Lock()
        self.started = time.time()

    def check_model(self, requested: Any) -> None:
        if requested in (None, ""):
            return
        if not isinstance(requested, str):
            raise ApiError(400, "'model' must be a string")
        if requested not in (self.model, f"{self.model}:latest"):
            raise ApiError(
                404, f"model {requested!r} is not served here; this server serves {self.model!r} (or omit 'model')"
            )

    def check_texts(self, texts: Any, field_name: str) -> list[str]:
        if isinstance(texts, str):
            texts = [texts]
        if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
            raise ApiError(400, f"'{field_name}' must be a string or a list of strings")
        if not texts:
            raise ApiError(400, f"'{field_name}' is empty")
        if len(texts) > self.limits.max_batch:
            raise ApiError(
                413, f"{len(texts)} texts in one request; the limit is {self.limits.max_batch}: send smaller batches"
            )
        longest = max(len(t) for t in texts)
        if longest > self.limits.max_text_chars:
            raise ApiError(413, f"a text has {longest:,} characters; the limit is {self.limits.max_text_chars:,}")
        return texts

    async def embed(self, texts: list[str]) -> np.ndarray:
        def run() -> np.ndarray:
            with self._lock:
                return np.asarray(self.embedder.embed_documents(texts), dtype=np.float32)

        return await anyio.to_thread.run_sync(run)

    async def similarities(self, query: str, documents: list[str]) -> np.ndarray:
        """Cosine similarity of the query (embedded as a search embeds it) and each document."""

        def run() -> np.ndarray:
            prefix = self.embedder.identity.query_prefix
            with self._lock:
                query_vector = np.asarray(self.embedder.embed_query(prefix + query), dtype=np.float32)
                vectors = np.asarray(self.embedder.embed_documents(documents), dtype=np.float32)
            return vectors @ query_vector  # rows are L2-normalised: a dot product is the cosine

        return await anyio.to_thread.run_sync(run)


def create_app(
    embedder: Embedder, backend: str, limits: Limits | None = None, faults: bool = False, api_key: str = ""
) -> Starlette:
    """`api_key`: when set, every route but /health wants `Authorization: Bearer <key>`."""
    service = EmbedService(embedder, backend, limits or Limits())
    switch = Faults() if faults else None

    async def read_json(request: Request) -> dict[str, Any]:
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > service.limits.max_body_bytes:
            raise ApiError(413, f"request body over {service.limits.max_body_bytes:,} bytes")
        body = bytearray()
        async for piece in request.stream():
            body.extend(piece)
            if len(body) > service.limits.max_body_bytes:
                raise ApiError(413, f"request body over {service.limits.max_body_bytes:,} bytes")
        try:
            data = json.loads(body)
        except ValueError:
            raise ApiError(400, "the request body is not valid JSON") from None
        if not isinstance(data, dict):
            raise ApiError(400, "the request body must be a JSON object")
        return data

    def endpoint(handler: Callable[[Request], Awaitable[Any]], openai_errors: bool = False,
                 faulty: bool = True) -> Callable[[Request], Awaitable[JSONResponse]]:
        """Every route: faults (if switched on), then the handler; any failure is a JSON error."""

        async def wrapped(request: Request) -> JSONResponse:
            try:
                if api_key and request.url.path != "/health" and not _authorized(request, api_key):
                    raise ApiError(401, "missing or wrong bearer key: send `Authorization: Bearer <key>`")
                if switch is not None and faulty:
                    fault = switch.take()
                    if fault and fault[0] == "hang":
                        await anyio.sleep(float(fault[1]))
                    elif fault:
                        raise ApiError(int(fault[1]), "injected fault (test switch)")
                return JSONResponse(await handler(request))
            except ApiError as exc:
                return _error(exc.status, str(exc), openai_errors)
            except Exception as exc:  # never a traceback to the client
                log.exception("embed-server: %s %s failed", request.method, request.url.path)
                return _error(500, f"internal error: {type(exc).__name__}: {exc}", openai_errors)

        return wrapped

    def rows(vectors: np.ndarray) -> list[list[float]]:
        return [[float(x) for x in row] for row in vectors]

    async def health(request: Request) -> dict[str, Any]:
        return {
            "status": "healthy", "model": service.model, "loaded_model": service.model, "dim": service.dim,
            "backend": service.backend, "max_batch_size": service.limits.max_batch,
            "max_text_chars": service.limits.max_text_chars, "uptime_s": round(time.time() - service.started, 1),
        }

    async def embed_one(request: Request) -> dict[str, Any]:
        data = await read_json(request)
        service.check_model(data.get("model"))
        if "text" not in data:
            raise ApiError(400, "missing 'text'")
        if not isinstance(data["text"], str):
            raise ApiError(400, "'text' must be a string")
        texts = service.check_texts(data["text"], "text")
        vectors = await service.embed(texts)
        return {"embedding": rows(vectors)[0], "model": service.model, "dim": service.dim, "normalized": True}

    async def embed_batch(request: Request) -> dict[str, Any]:
        data = await read_json(request)
        service.check_model(data.get("model"))
        if not isinstance(data.get("texts"), list):
            raise ApiError(400, "missing 'texts' (a list of strings)")
        texts = service.check_texts(data["texts"], "texts")
        vectors = await service.embed(texts)
        return {"embeddings": rows(vectors), "model": service.model, "dim": service.dim, "normalized": True}

    async def openai_models(request: Request) -> dict[str, Any]:
        return {"object": "list", "data": [{"id": service.model, "object": "model", "owned_by": "amanmcp"}]}

    async def openai_embeddings(request: Request) -> dict[str, Any]:
        data = await read_json(request)
        service.check_model(data.get("model"))
        if "input" not in data:
            raise ApiError(400, "missing 'input'")
        if data.get("encoding_format", "float") != "float":
            raise ApiError(400, "only encoding_format 'float' is supported")
        texts = service.check_texts(data["input"], "input")
        vectors = await service.embed(texts)
        return {
            "object": "list", "model": service.model,
            "data": [{"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(rows(vectors))],
            "usage": {"prompt_tokens": 0, "total_tokens": 0},
        }

    async def ollama_tags(request: Request) -> dict[str, Any]:
        return {"models": [{"name": service.model, "model": service.model,
                            "details": {"family": service.backend, "embedding_length": service.dim}}]}

    async def ollama_embed(request: Request) -> dict[str, Any]:
        data = await read_json(request)
        service.check_model(data.get("model"))
        if "input" not in data:
            raise ApiError(400, "missing 'input'")
        texts = service.check_texts(data["input"], "input")
        vectors = await service.embed(texts)
        return {"model": service.model, "embeddings": rows(vectors)}

    async def rerank(request: Request) -> dict[str, Any]:
        data = await read_json(request)
        service.check_model(data.get("model"))
        query = data.get("query")
        if not isinstance(query, str):
            raise ApiError(400, "missing 'query' (a string)")
        if not query.strip():
            raise ApiError(400, "'query' is empty")
        most = service.limits.max_text_chars
        if len(query) > most:
            raise ApiError(413, f"the query has {len(query):,} characters; the limit is {most:,}")
        field_name = "documents" if "documents" in data else "texts"
        if field_name not in data:
            raise ApiError(400, "missing 'documents' (or 'texts'): a list of strings")
        if not isinstance(data[field_name], list):
            raise ApiError(400, f"'{field_name}' must be a list of strings")
        documents = service.check_texts([_document_text(d) for d in data[field_name]], field_name)
        limit = _top(data)
        scores = await service.similarities(query, documents)
        order = sorted(range(len(documents)), key=lambda i: (-float(scores[i]), i))
        if limit is not None:
            order = order[:limit]
        results = [
            {"index": i, "score": float(scores[i]), "relevance_score": float(scores[i]), "document": documents[i]}
            for i in order
        ]
        return {"results": results, "model": service.model, "query": query, "count": len(results)}

    async def set_faults(request: Request) -> dict[str, Any]:
        assert switch is not None
        data = await read_json(request)
        with switch.lock:
            switch.fail_next = int(data.get("fail_next", 0))
            switch.status = int(data.get("status", 503))
            switch.hang_next = int(data.get("hang_next", 0))
            switch.hang_seconds = float(data.get("hang_seconds", 5.0))
            if data.get("reset_seen"):
                switch.seen = 0
            return {"fail_next": switch.fail_next, "hang_next": switch.hang_next, "seen": switch.seen}

    routes = [
        Route("/health", endpoint(health, faulty=False), methods=["GET"]),
        Route("/embed", endpoint(embed_one), methods=["POST"]),
        Route("/embed_batch", endpoint(embed_batch), methods=["POST"]),
        Route("/v1/models", endpoint(openai_models, openai_errors=True), methods=["GET"]),
        Route("/v1/embeddings", endpoint(openai_embeddings, openai_errors=True), methods=["POST"]),
        Route("/api/tags", endpoint(ollama_tags), methods=["GET"]),
        Route("/api/embed", endpoint(ollama_embed), methods=["POST"]),
        Route("/rerank", endpoint(rerank), methods=["POST"]),
        Route("/v1/rerank", endpoint(rerank, openai_errors=True), methods=["POST"]),
    ]
    if switch is not None:
        routes.append(Route("/_faults", endpoint(set_faults, faulty=False), methods=["POST"]))

    async def not_found(request: Request, exc: Exception) -> JSONResponse:
        status = getattr(exc, "status_code", 500)
        message = "no such endpoint" if status == 404 else getattr(exc, "detail", "error")
        return _error(status, f"{message}: {request.method} {request.url.path}", request.url.path.startswith("/v1/"))

    return Starlette(routes=routes, exception_handlers={404: not_found, 405: not_found})


def _document_text(document: Any) -> Any:
    """Cohere-style APIs also accept `{"text": ...}` objects; anything else is checked as it is."""
    if isinstance(document, dict) and isinstance(document.get("text"), str):
        return document["text"]
    return document


def _top(data: dict[str, Any]) -> int | None:
    """`top_k` (MLX server) or `top_n` (Cohere): how many results to answer; None = all."""
    for key in ("top_k", "top_n"):
        value = data.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ApiError(400, f"'{key}' must be a positive integer")
        return value
    return None


def _authorized(request: Request, api_key: str) -> bool:
    import hmac

    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(token.strip(), api_key)


def _error(status: int, message: str, openai_style: bool) -> JSONResponse:
    if openai_style:
        kind = "invalid_request_error" if status < 500 else "server_error"
        return JSONResponse({"error": {"message": message, "type": kind, "code": status}}, status_code=status)
    return JSONResponse({"error": message}, status_code=status)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def bind(host: str, port: int) -> socket.socket:
    """Bind and listen first: port 0 gives a real port to announce, and clients that connect
    between the announcement and the first accept wait in the backlog instead of being refused."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto=IPPROTO_TCP matters: asyncio sets TCP_NODELAY only on sockets that say they are TCP,
    # and without it every keep-alive request stalls ~40 ms on Nagle + delayed ACK (measured).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def serve(app: Starlette, sock: socket.socket, log_level: str = "warning") -> None:
    """Run until interrupted (Ctrl-C / SIGTERM)."""
    import uvicorn

    config = uvicorn.Config(app, log_level=log_level, access_log=False, lifespan="off", timeout_graceful_shutdown=2)
    uvicorn.Server(config).run(sockets=[sock])
