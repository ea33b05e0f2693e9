"""`amanmcp embed-server`: an in-process backend served over HTTP in every wire format our clients speak.

One GPU box can embed for a team, and every HTTP client of ours is tested against a real server:

    GET  /health            → {"status": "healthy", "model", "dim", "backend", ...}      (MLX server)
    POST /embed             {"text", "model"?}   → {"embedding", "model", "dim"}         (MLX server)
    POST /embed_batch       {"texts", "model"?}  → {"embeddings", "model", "dim"}        (MLX server)
    GET  /models            → {"data": [...]} (OpenAI, as Infinity serves it) and {"embeddings": {"models":
                              {name: {"aliases", "embedding_dim"}}, ...}} (MLX server), in one answer
    GET  /v1/models, POST /v1/embeddings and /embeddings {"input", "model"?, "encoding_format"?: "float" |
         "base64"} → {"data": [{"index", "embedding"}], "model"}                          (OpenAI)
    GET  /api/tags,  POST /api/embed {"model"?, "input"} → {"embeddings"}                (Ollama)
    POST /rerank, /v1/rerank {"query", "documents" | "texts", "model"?, "top_k" | "top_n"?}
         → {"results": [{"index", "score", "relevance_score", "document"}], "model", "query", "count"}
           (MLX server, Cohere/Jina/Infinity and text-embeddings-inference request forms)

Reranking here is the embedder's own: the cosine similarity of the embedded query (with the model's
query instruction) and each embedded document, best first. A cross-encoder ranks better; this one
lets the rerank clients be tested end to end and gives a team one server for both jobs.

The server names the model it serves (in /health, /models, /v1/models and /api/tags) and accepts
that name, or none, in requests. Where it imitates the reference MLX server (mlx-server/server.py,
v1.3.0-amanmcp) it answers as that server does: /embed and /embed_batch also accept the model's
aliases ("default", its short name, and the MLX names of the Qwen3 and EmbeddingGemma models when
it serves one), refuse empty or whitespace-only texts with a 422 `{"detail": [{"msg", ...}]}`, and
put every error under "detail" (as FastAPI does) as well as "error".

With AMANMCP_EMBED_SERVER_API_KEY set, every route but /health wants that bearer key (clients:
AMANMCP_OPENAI_API_KEY, AMANMCP_MLX_API_KEY, AMANMCP_OLLAMA_API_KEY); the key is compared as bytes, so any header is
a plain 401, never a crash.

Hostile or malformed input is a 4xx with a JSON error, never a traceback or a 500: a body that is
not JSON, not UTF-8, nested too deeply (Python's parser raises RecursionError: 400) or over the
byte limit; a field of the wrong type; text that is not valid Unicode (a lone surrogate such as
"\\ud800" cannot be encoded for the model or the answer: 400). Work per request is bounded three
ways: texts per request (--max-batch, 413), characters per text (--max-text-chars, 413) and
characters in all (--max-request-chars, texts × length, 413).

Fair service. One worker thread owns the model (one batch at a time uses all the cores). Each
request is cut into sub-batches (at most `Limits.sub_batch` texts and `Limits.sub_batch_chars`
characters, but always at least one text) and the requests take turns, one sub-batch each, round
robin: a request is queued at the back, runs one sub-batch when it reaches the front, and goes to
the back again if it has more. So a one-text request that arrives while a 256-text batch runs
waits for at most one sub-batch of each request already in the queue, not for the whole batch,
and no request starves however many small ones arrive (each waits at most one turn of every
request ahead of it). Answers are assembled in order. A request whose client closes the
connection (a client that timed out, say, and will retry) stops after its current sub-batch
instead of holding the model for nothing.

The shipped app has no test switch; the tests wrap `create_app` in a fault-injecting middleware
(tests/fault_app.py).
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import functools
import hmac
import ipaddress
import json
import logging
import re
import socket
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import anyio
import numpy as np
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from amanmcp.embed.base import Embedder

log = logging.getLogger(__name__)
DEFAULT_HOST = "127.0.0.1"
API_KEY_ENV = "AMANMCP_EMBED_SERVER_API_KEY"
_SURROGATE = re.compile("[\ud800-\udfff]")
_PARSE_IN_THREAD_BYTES = 1 << 20  # bodies over 1 MiB are parsed off the event loop


@dataclass(frozen=True, slots=True)
class Limits:
    max_batch: int = 256  # texts per request
    max_text_chars: int = 100_000  # characters per text
    max_request_chars: int = 2_000_000  # characters per request, all texts (and the rerank query) together
    max_body_bytes: int = 64 * 1024 * 1024
    sub_batch: int = 32  # texts per turn on the model (see "Fair service")
    sub_batch_chars: int = 262_144  # characters per turn on the model (a sub-batch has at least one text)


class ApiError(Exception):
    """Becomes a JSON error response with this status; `detail`: the MLX routes' FastAPI-style detail."""

    def __init__(self, status: int, message: str, detail: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.detail = detail


@dataclass(eq=False, slots=True)
class _Job:
    """One request's sub-batches, run in order; `results` fills as they run."""

    steps: list[Callable[[], Any]]
    results: list[Any] = field(default_factory=list)
    future: concurrent.futures.Future[list[Any]] = field(default_factory=concurrent.futures.Future)
    cancelled: bool = False


class FairScheduler:
    """One worker thread runs every model call; requests take turns, one sub-batch each (round robin)."""

    def __init__(self) -> None:
        self._queue: deque[_Job] = deque()
        self._wake = threading.Condition()
        self._worker = threading.Thread(target=self._work, name="amanmcp-embed-worker", daemon=True)
        self._worker.start()

    def submit(self, steps: list[Callable[[], Any]]) -> _Job:
        job = _Job(steps)
        with self._wake:
            self._queue.append(job)
            self._wake.notify()
        return job

    def _work(self) -> None:
        while True:
            with self._wake:
                while not self._queue:
                    self._wake.wait()
                job = self._queue.popleft()
            if job.cancelled or job.future.done():
                continue
            try:
                job.results.append(job.steps[len(job.results)]())
            except Exception as exc:
                _settle(job.future, exc)
                continue
            if len(job.results) == len(job.steps):
                _settle(job.future, job.results)
            else:
                with self._wake:
                    self._queue.append(job)  # to the back: every other waiting request gets its turn first


def _settle(future: concurrent.futures.Future[list[Any]], outcome: list[Any] | Exception) -> None:
    try:
        if isinstance(outcome, Exception):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)
    except concurrent.futures.InvalidStateError:  # the waiter was cancelled meanwhile
        pass


class EmbedService:
    """The embedder behind a fair scheduler: one sub-batch at a time uses all the cores; requests take turns."""

    def __init__(self, embedder: Embedder, backend: str, limits: Limits) -> None:
        self.embedder = embedder
        self.backend = backend
        self.limits = limits
        self.model = embedder.identity.model
        self.dim = embedder.dimensions
        self.aliases = model_aliases(self.model)
        self.scheduler = FairScheduler()
        self.started = time.time()

    def check_model(self, requested: Any, aliases: bool = False) -> None:
        """The served model's name (or none) is accepted; on the MLX routes (`aliases`) also its aliases."""
        if requested in (None, ""):
            return
        if not isinstance(requested, str):
            raise ApiError(400, "'model' must be a string")
        if aliases and requested.lower() in self.aliases:
            return
        if requested not in (self.model, f"{self.model}:latest"):
            raise ApiError(
                404, f"model {requested!r} is not served here; this server serves {self.model!r} (or omit 'model')"
            )

    def check_texts(self, texts: Any, field_name: str, extra_chars: int = 0) -> list[str]:
        """A string or a non-empty list of strings, within every limit; `extra_chars`: the rerank query."""
        if isinstance(texts, str):
            texts = [texts]
        if not isinstance(texts, list):
            raise ApiError(400, f"'{field_name}' must be a string or a list of strings, not {_kind(texts)}")
        if not texts:
            raise ApiError(400, f"'{field_name}' is empty")
        if len(texts) > self.limits.max_batch:
            raise ApiError(
                413, f"{len(texts)} texts in one request; the limit is {self.limits.max_batch}: send smaller batches"
            )
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                raise ApiError(400, f"'{field_name}' must be a string or a list of strings (item {i} is {_kind(text)})")
        longest = max(len(t) for t in texts)
        if longest > self.limits.max_text_chars:
            raise ApiError(413, f"a text has {longest:,} characters; the limit is {self.limits.max_text_chars:,}")
        total = sum(len(t) for t in texts) + extra_chars
        if total > self.limits.max_request_chars:
            raise ApiError(
                413, f"the request has {total:,} characters in all; the limit is {self.limits.max_request_chars:,} "
                "per request: send fewer or shorter texts"
            )
        for i, text in enumerate(texts):
            check_unicode(text, f"'{field_name}' item {i}" if len(texts) > 1 else f"'{field_name}'")
        return texts

    def sub_batches(self, texts: list[str]) -> list[list[str]]:
        """Consecutive runs of at most `sub_batch` texts and `sub_batch_chars` characters (at least one text)."""
        batches: list[list[str]] = []
        current: list[str] = []
        chars = 0
        for text in texts:
            if current and (len(current) >= self.limits.sub_batch or chars + len(text) > self.limits.sub_batch_chars):
                batches.append(current)
                current, chars = [], 0
            current.append(text)
            chars += len(text)
        if current:
            batches.append(current)
        return batches

    def _documents(self, texts: list[str]) -> np.ndarray:
        return np.asarray(self.embedder.embed_documents(texts), dtype=np.float32)

    def _query(self, text: str) -> np.ndarray:
        return np.asarray(self.embedder.embed_query(text), dtype=np.float32)

    async def _run(self, steps: list[Callable[[], Any]], request: Request | None) -> list[Any]:
        """Queue the steps and wait for them; if the client goes away first, the rest are not run."""
        job = self.scheduler.submit(steps)
        done = asyncio.wrap_future(job.future)
        gone = asyncio.ensure_future(_disconnected(request)) if request is not None else None
        try:
            if gone is None:
                return await done
            await asyncio.wait({done, gone}, return_when=asyncio.FIRST_COMPLETED)
            if done.done():
                return done.result()
            raise ApiError(499, "the client closed the connection; the request was abandoned")
        finally:
            job.cancelled = True  # a no-op once done; otherwise its remaining sub-batches are skipped
            if not done.done():
                done.cancel()  # nobody waits for it any more
            if gone is not None:
                gone.cancel()

    async def embed(self, texts: list[str], request: Request | None = None) -> np.ndarray:
        steps: list[Callable[[], Any]] = [functools.partial(self._documents, b) for b in self.sub_batches(texts)]
        return np.concatenate(await self._run(steps, request))

    async def similarities(self, query: str, documents: list[str], request: Request | None = None) -> np.ndarray:
        """Cosine similarity of the query (embedded as a search embeds it) and each document."""
        prefix = self.embedder.identity.query_prefix
        steps: list[Callable[[], Any]] = [functools.partial(self._query, prefix + query)]
        steps += [functools.partial(self._documents, b) for b in self.sub_batches(documents)]
        query_vector, *parts = await self._run(steps, request)
        return np.concatenate(parts) @ query_vector  # rows are L2-normalised: a dot product is the cosine


async def _disconnected(request: Request) -> None:
    """Returns when the client closes the connection (the body has been read by then)."""
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return


def check_unicode(text: str, what: str) -> None:
    """JSON can carry lone surrogates ("\\ud800"); no model or UTF-8 answer can: a 400, not a crash."""
    bad = _SURROGATE.search(text)
    if bad:
        raise ApiError(
            400, f"{what} is not valid Unicode: a lone surrogate (\\u{ord(bad.group()):04x}) at character "
            f"{bad.start():,}; send UTF-8 text"
        )


def _kind(value: Any) -> str:
    names = {type(None): "null", bool: "a boolean", int: "a number", float: "a number", str: "a string",
             list: "a list", dict: "an object"}
    return names.get(type(value), type(value).__name__)


def create_app(embedder: Embedder, backend: str, limits: Limits | None = None, api_key: str = "") -> Starlette:
    """`api_key`: when set, every route but /health wants `Authorization: Bearer <key>`."""
    service = EmbedService(embedder, backend, limits or Limits())

    async def read_json(request: Request) -> dict[str, Any]:
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > service.limits.max_body_bytes:
            raise ApiError(413, f"request body over {service.limits.max_body_bytes:,} bytes")
        body = bytearray()
        try:
            async for piece in request.stream():
                body.extend(piece)
                if len(body) > service.limits.max_body_bytes:
                    raise ApiError(413, f"request body over {service.limits.max_body_bytes:,} bytes")
        except ClientDisconnect:
            raise ApiError(400, "the client closed the connection before the whole body arrived") from None
        try:
            if len(body) > _PARSE_IN_THREAD_BYTES:
                data = await anyio.to_thread.run_sync(json.loads, bytes(body))
            else:
                data = json.loads(body)
        except RecursionError:
            raise ApiError(400, "the request body is nested too deeply to be a request") from None
        except ValueError:  # also bytes that are not UTF-8, and integers too long to parse
            raise ApiError(400, "the request body is not valid JSON") from None
        if not isinstance(data, dict):
            raise ApiError(400, "the request body must be a JSON object")
        return data

    def endpoint(
        handler: Callable[[Request], Awaitable[Any]], errors: str = "plain"
    ) -> Callable[[Request], Awaitable[JSONResponse]]:
        """Every route: the key (if one is set), then the handler; any failure is a JSON error in the
        route's style (`errors`: plain, openai or mlx)."""

        async def wrapped(request: Request) -> JSONResponse:
            try:
                if api_key and request.url.path != "/health" and not _authorized(request, api_key):
                    raise ApiError(401, "missing or wrong bearer key: send `Authorization: Bearer <key>`")
                return JSONResponse(await handler(request))
            except ApiError as exc:
                return _error(exc.status, str(exc), errors, exc.detail)
            except Exception as exc:  # never a traceback to the client
                log.exception("embed-server: %s %s failed", request.method, request.url.path)
                return _error(500, f"internal error: {type(exc).__name__}: {exc}", errors)

        return wrapped

    def rows(vectors: np.ndarray) -> list[list[float]]:
        return vectors.tolist()  # type: ignore[no-any-return]

    async def health(request: Request) -> dict[str, Any]:
        return {
            "status": "healthy", "model": service.model, "loaded_model": service.model, "dim": service.dim,
            "backend": service.backend, "max_batch_size": service.limits.max_batch,
            "max_text_chars": service.limits.max_text_chars, "max_request_chars": service.limits.max_request_chars,
            "uptime_s": round(time.time() - service.started, 1),
        }

    async def embed_one(request: Request) -> dict[str, Any]:
        data = await read_json(request)
        service.check_model(data.get("model"), aliases=True)
        if "text" not in data:
            raise ApiError(400, "missing 'text'")
        if not isinstance(data["text"], str):
            raise ApiError(400, f"'text' must be a string, not {_kind(data['text'])}")
        if not data["text"].strip():  # EmbedRequest: stripped, then min_length=1
            raise ApiError(422, "'text' is empty or whitespace only", [
                {"type": "string_too_short", "loc": ["body", "text"], "msg": "String should have at least 1 character",
                 "ctx": {"min_length": 1}}])
        texts = service.check_texts(data["text"], "text")
        vectors = await service.embed(texts, request)
        return {"embedding": rows(vectors)[0], "model": service.model, "dim": service.dim, "normalized": True}

    async def embed_batch(request: Request) -> dict[str, Any]:
        data = await read_json(request)
        service.check_model(data.get("model"), aliases=True)
        if not isinstance(data.get("texts"), list):
            raise ApiError(400, "missing 'texts' (a list of strings)")
        texts = service.check_texts(data["texts"], "texts")
        blank = next((i for i, t in enumerate(texts) if not t.strip()), None)
        if blank is not None:  # BatchEmbedRequest.validate_texts
            message = f"Value error, Text at index {blank} cannot be empty or whitespace only"
            raise ApiError(422, message, [{"type": "value_error", "loc": ["body", "texts"], "msg": message,
                                           "ctx": {"error": {}}}])
        vectors = await service.embed(texts, request)
        return {"embeddings": rows(vectors), "model": service.model, "dim": service.dim, "normalized": True}

    def card() -> dict[str, Any]:
        return {"id": service.model, "object": "model", "owned_by": "amanmcp",
                "max_batch_size": service.limits.max_batch}

    async def openai_models(request: Request) -> dict[str, Any]:
        return {"object": "list", "data": [card()]}

    async def models(request: Request) -> dict[str, Any]:
        """Both shapes a client may ask `/models` for: OpenAI's list (as Infinity serves it without a
        prefix) and the MLX server's catalogue."""
        entry = {"status": "ready", "embedding_dim": service.dim, "aliases": sorted(service.aliases - {service.model}),
                 "description": f"{service.model} ({service.backend})"}
        catalogue = {"loaded_models": [service.model], "default_model": service.model, "models": {service.model: entry}}
        return {"object": "list", "data": [card()],
                "embeddings": {**catalogue, "max_batch_size": service.limits.max_batch},
                "rerankers": catalogue}

    async def openai_embeddings(request: Request) -> dict[str, Any]:
        data = await read_json(request)
        service.check_model(data.get("model"))
        if "input" not in data:
            raise ApiError(400, "missing 'input'")
        encoding = data.get("encoding_format")
        if encoding not in (None, "float", "base64"):
            raise ApiError(400, "'encoding_format' must be 'float' or 'base64'")
        texts = service.check_texts(data["input"], "input")
        vectors = await service.embed(texts, request)
        if encoding == "base64":  # little-endian float32 bytes, as OpenAI sends them
            items: list[Any] = [base64.b64encode(v.astype("<f4").tobytes()).decode("ascii") for v in vectors]
        else:
            items = rows(vectors)
        return {
            "object": "list", "model": service.model,
            "data": [{"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(items)],
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
        vectors = await service.embed(texts, request)
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
        check_unicode(query, "'query'")
        field_name = "documents" if "documents" in data else "texts"
        if field_name not in data:
            raise ApiError(400, "missing 'documents' (or 'texts'): a list of strings")
        if not isinstance(data[field_name], list):
            raise ApiError(400, f"'{field_name}' must be a list of strings, not {_kind(data[field_name])}")
        documents = service.check_texts([_document_text(d) for d in data[field_name]], field_name, len(query))
        limit = _top(data)
        scores = await service.similarities(query, documents, request)
        order = sorted(range(len(documents)), key=lambda i: (-float(scores[i]), i))
        if limit is not None:
            order = order[:limit]
        results = [
            {"index": i, "score": float(scores[i]), "relevance_score": float(scores[i]), "document": documents[i]}
            for i in order
        ]
        return {"results": results, "model": service.model, "query": query, "count": len(results)}

    routes = [
        Route("/health", endpoint(health, "mlx"), methods=["GET"]),
        Route("/embed", endpoint(embed_one, "mlx"), methods=["POST"]),
        Route("/embed_batch", endpoint(embed_batch, "mlx"), methods=["POST"]),
        Route("/models", endpoint(models), methods=["GET"]),
        Route("/v1/models", endpoint(openai_models, "openai"), methods=["GET"]),
        Route("/v1/embeddings", endpoint(openai_embeddings, "openai"), methods=["POST"]),
        Route("/embeddings", endpoint(openai_embeddings, "openai"), methods=["POST"]),
        Route("/api/tags", endpoint(ollama_tags), methods=["GET"]),
        Route("/api/embed", endpoint(ollama_embed), methods=["POST"]),
        Route("/rerank", endpoint(rerank), methods=["POST"]),
        Route("/v1/rerank", endpoint(rerank, "openai"), methods=["POST"]),
    ]

    async def not_found(request: Request, exc: Exception) -> JSONResponse:
        status = getattr(exc, "status_code", 500)
        message = "no such endpoint" if status == 404 else getattr(exc, "detail", "error")
        style = "openai" if request.url.path.startswith("/v1/") else "plain"
        return _error(status, f"{message}: {request.method} {request.url.path}", style)

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
    """Compared as bytes: headers arrive as latin-1 text, and `compare_digest` refuses non-ASCII `str`."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    sent = token.strip().encode("latin-1")  # latin-1 text back to the bytes on the wire: never fails
    return scheme.lower() == "bearer" and hmac.compare_digest(sent, api_key.encode("utf-8"))


def _error(status: int, message: str, style: str, detail: Any = None) -> JSONResponse:
    """`openai`: `{"error": {"message", "type", "code"}}`; `mlx`: FastAPI's `{"detail"}` (and `error`,
    which our own clients and older ones read); `plain`: `{"error": message}` (Ollama's shape)."""
    if style == "openai":
        kind = "invalid_request_error" if status < 500 else "server_error"
        return JSONResponse({"error": {"message": message, "type": kind, "code": status}}, status_code=status)
    if style == "mlx":
        return JSONResponse({"detail": message if detail is None else detail, "error": message}, status_code=status)
    return JSONResponse({"error": message}, status_code=status)


def model_aliases(model: str) -> set[str]:
    """The names the MLX routes accept for `model` (lowercase): "default", the name with and without
    its organisation, and, for a model of the MLX server's table, that server's aliases."""
    from amanmcp.embed.mlx import aliases_of

    names = {"default", model, model.lower(), model.rsplit("/", 1)[-1].lower()}
    return names | aliases_of(model) if aliases_of(model) - {model.lower()} else names


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def resolve(host: str, port: int) -> tuple[socket.AddressFamily, tuple[Any, ...]]:
    """The address family and socket address to bind `host:port`; `socket.gaierror` if it does not resolve."""
    family, _, _, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)[0]
    return family, address


def url_host(host: str) -> str:
    """`host` as it goes in a URL: IPv6 literals in brackets."""
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def bind(host: str, port: int, listen: bool = True) -> socket.socket:
    """Bind and listen first: port 0 gives a real port to announce, and clients that connect
    between the announcement and the first accept wait in the backlog instead of being refused.
    `listen=False` only binds (a busy port fails at once); call `sock.listen(BACKLOG)` when ready."""
    family, address = resolve(host, port)
    # proto=IPPROTO_TCP matters: asyncio sets TCP_NODELAY only on sockets that say they are TCP,
    # and without it every keep-alive request stalls ~40 ms on Nagle + delayed ACK (measured).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        if listen:
            sock.listen(BACKLOG)
    except BaseException:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


BACKLOG = 2048


def serve(app: Starlette, sock: socket.socket, log_level: str = "warning") -> None:
    """Run until interrupted (Ctrl-C / SIGTERM)."""
    import uvicorn

    config = uvicorn.Config(app, log_level=log_level, access_log=False, lifespan="off", timeout_graceful_shutdown=2)
    uvicorn.Server(config).run(sockets=[sock])
