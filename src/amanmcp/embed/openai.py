"""Any OpenAI-compatible embeddings server, spoken to in its own dialect.

The configured URL is an API base, with or without `/v1` (`http://h:8080` and `http://h:8080/v1`
are the same); routes are tried under `/v1` first and, on a 404, without it (Infinity's default
`url_prefix` is empty: `/embeddings`, `/models`). Before the first request the client asks the
server who it is and what it serves:

- text-embeddings-inference (router/src/http/server.rs): told by `GET /info` (`model_id`,
  `max_client_batch_size`, `max_input_length`, `auto_truncate`); embeds through its own
  `POST /embed {"inputs", "truncate": true, "normalize": true}`, so TEI cuts long inputs whatever
  its `--auto-truncate` (off by default before 1.9.2); batches capped at max_client_batch_size.
- vLLM (entrypoints/openai/protocol.py): `/v1/models` cards `owned_by: "vllm"` with `max_model_len`;
  requests add `truncate_prompt_tokens: max_model_len`, so vLLM cuts long inputs.
- Infinity (infinity_emb/infinity_server.py): `/models` cards `owned_by: "infinity"`, routes without
  a prefix; the model cuts long inputs at its maximum sequence length.
- llama.cpp (tools/server/server.cpp): cards `owned_by: "llamacpp"`; a text longer than its
  physical batch is a 500 "input (N tokens) is too large to process": cut here and resent alone.
- anything else (OpenAI itself, LM Studio, `amanmcp embed-server`): `{"model", "input"}` and no other
  field (OpenAI rejects unknown fields); a context-length error is answered by cutting here.

Requests always carry `model`: the configured one, else the only one the server lists (several
listed and none configured is an error that asks for `openai.model`), else (a server with no list)
the one its first answer names; it is never a placeholder. An optional bearer key comes from
`openai.api_key` / `AMANMCP_OPENAI_API_KEY`.
"""

from __future__ import annotations

import base64
import threading
import time
from typing import Any

import httpx
import numpy as np

from amanmcp.embed.base import EmbedderError
from amanmcp.embed.http import PROBE_TIMEOUT, Health, HttpEmbedder, RequestRejected, ServerInfo, _short

DEFAULT_BASE_URL = "http://localhost:8080"
PREFIXES = ("/v1", "")  # where OpenAI routes may live: under /v1, else (Infinity, some proxies) at the root
OWNERS = {"vllm": "vllm", "llamacpp": "llamacpp", "infinity": "infinity", "amanmcp": "amanmcp"}
NAMES = {"tei": "text-embeddings-inference", "vllm": "vLLM", "infinity": "Infinity", "llamacpp": "llama.cpp",
         "amanmcp": "amanmcp embed-server", "openai": "OpenAI-compatible"}


class OpenAIEmbedder(HttpEmbedder):
    backend = "openai"
    label = "OpenAI-compatible server"
    section = "openai"

    def __init__(self, endpoint: str = DEFAULT_BASE_URL, model: str = "", **kwargs: Any) -> None:
        base = endpoint.rstrip("/").removesuffix("/v1")  # accept both http://h:p and http://h:p/v1
        super().__init__(base, model, **kwargs)
        self._server: ServerInfo | None = None
        self._route: str | None = None  # the prefix /embeddings answered under
        self._discovery = threading.Lock()

    def how_to_start(self) -> str:
        return (
            "start it (`amanmcp embed-server`, TEI, vLLM, LM Studio, llama.cpp or Infinity) "
            "or point AMANMCP_OPENAI_BASE_URL at it"
        )

    def _rejection_hint(self, response: httpx.Response) -> str:
        return "; set AMANMCP_OPENAI_API_KEY" if response.status_code in (401, 403) else ""

    # -- what the server says about itself ---------------------------------------------------------

    def _probe(self) -> Health:
        try:
            info = self._discover(quick=True)
        except RequestRejected as exc:
            if exc.status in (401, 403):
                return Health(False, f"HTTP {exc.status} from /v1/models: set AMANMCP_OPENAI_API_KEY")
            raise
        if info.api_base is None and info.dialect != "tei":  # no model list: is it an embeddings server at all?
            response = self._client.get("/health", timeout=PROBE_TIMEOUT)
            if response.status_code >= 400:
                return Health(False, f"no model list at /v1/models or /models, and /health answered HTTP "
                                     f"{response.status_code}: is this an embeddings server?")
        if self.model and info.models and not any(self._same_model(self.model, m) for m in info.models):
            served = ", ".join(info.models[:5])
            return Health(False, f"model {self.model} is not served (served: {served}): set `openai.model`")
        if not self.model and not info.model and len(info.models) > 1:
            return Health(False, self._several(info))
        with self._discovery:
            self._server = info
            self._route = info.api_base
        served = self.model or info.model
        return Health(True, f"healthy ({NAMES[info.dialect]}), serving {served or 'an unnamed model'}", served, info)

    def _prepare(self) -> None:
        self._info()

    def _info(self) -> ServerInfo:
        """What the server said about itself: from this process's probe, else asked now."""
        with self._discovery:
            if self._server is None:
                cached = self._cached_health()
                if cached is not None and cached.ok and cached.info is not None:
                    self._server = cached.info
                else:
                    self._server = self._discover(quick=False)
                self._route = self._server.api_base
            return self._server

    def _discover(self, quick: bool) -> ServerInfo:
        """Ask `/info` (TEI), then `/v1/models` and `/models`. `quick`: one try each within 1 s (a probe);
        otherwise the usual timeout and retries (before the first request)."""
        tei = self._get("/info", quick)
        if tei is not None and tei.status_code == 200:
            body = _json(tei)
            if isinstance(body, dict) and "model_id" in body and "max_client_batch_size" in body:
                return self._tei(body)
        for prefix in PREFIXES:
            response = self._get(f"{prefix}/models", quick)
            if response is None:
                continue
            if response.status_code in (401, 403):
                raise self._rejection("GET", f"{prefix}/models", response)
            body = _json(response) if response.status_code == 200 else None
            if isinstance(body, dict) and isinstance(body.get("data"), list):
                return self._listed(prefix, body["data"])
        return ServerInfo("openai", self.model, truncation="client")

    def _get(self, path: str, quick: bool) -> httpx.Response | None:
        """GET for discovery: a transport failure is an error (after retries unless `quick`); a status
        is an answer (None for a 5xx: no information there)."""
        tries = 1 if quick else self.attempts
        last = ""
        for attempt in range(tries):
            if attempt:
                time.sleep(self._wait(attempt))
            try:
                response = self._client.get(path, timeout=PROBE_TIMEOUT) if quick else self._client.get(path)
            except httpx.TimeoutException as exc:
                last = f"timed out ({type(exc).__name__})"
                if quick:
                    raise
                continue
            except httpx.TransportError as exc:
                last = _short(exc)
                if quick:
                    raise
                continue
            return None if response.status_code >= 500 else response
        raise EmbedderError(
            f"{self.label} at {self.endpoint} failed after {self.attempts} attempts ({last}): "
            f"{self.how_to_start()}, or choose `--backend static`"
        )

    def _tei(self, body: dict[str, Any]) -> ServerInfo:
        model = str(body["model_id"])
        max_tokens = _positive(body.get("max_input_length"))
        limit = f" at {max_tokens} tokens" if max_tokens else ""
        return ServerInfo("tei", model, (model,), None, _positive(body.get("max_client_batch_size")), max_tokens,
                          f"server: truncate=true on /embed (TEI cuts{limit}; its auto_truncate is "
                          f"{str(bool(body.get('auto_truncate'))).lower()})", "", str(body.get("version") or ""))

    def _listed(self, prefix: str, cards: list[Any]) -> ServerInfo:
        cards = [c for c in cards if isinstance(c, dict) and c.get("id")]
        ids = tuple(str(c["id"]) for c in cards)
        owners = {str(c.get("owned_by", "")) for c in cards}
        dialect = next((OWNERS[o] for o in owners if o in OWNERS), "openai")
        chosen = self.model or (ids[0] if len(ids) == 1 else "")
        card = next((c for c in cards if str(c["id"]) == chosen), {})
        max_tokens = _positive(card.get("max_model_len")) if dialect == "vllm" else None
        batch = _positive(card.get("max_batch_size")) if dialect == "amanmcp" else None
        if dialect == "vllm" and max_tokens:
            truncation = f"server: truncate_prompt_tokens={max_tokens} (vLLM cuts at the model's length)"
        elif dialect == "infinity":
            truncation = "server: Infinity cuts at the model's maximum sequence length"
        else:
            truncation = "client"
        return ServerInfo(dialect, chosen, ids, None, batch, max_tokens, truncation, prefix)

    def _several(self, info: ServerInfo) -> str:
        listed = ", ".join(info.models[:8]) + ("…" if len(info.models) > 8 else "")
        return (f"{self.label} at {self.endpoint} serves several models ({listed}): set the one to use with "
                "`openai.model` (AMANMCP_OPENAI_MODEL)")

    def _known_model(self) -> str:
        info = self._info()
        if info.model:
            return info.model
        if len(info.models) > 1:
            raise EmbedderError(self._several(info))
        return self._served_model or ""

    def _info_batch(self) -> int | None:
        return self._server.max_batch if self._server is not None else None

    def truncation_mode(self) -> str:
        info = self._info()
        if info.truncation.startswith("server"):
            return info.truncation
        return "client: a text the server finds too long is cut and resent alone"

    def describe(self) -> str:
        dialect = NAMES.get(self._server.dialect, "") if self._server is not None else ""
        return f"{self.model_name} at {self.endpoint}" + (f" ({dialect})" if dialect else "")

    # -- embedding --------------------------------------------------------------------------------

    def _post_batch(self, texts: list[str]) -> np.ndarray:
        info = self._info()
        if info.dialect == "tei":
            body = self._request("POST", "/embed", {"inputs": texts, "truncate": True, "normalize": True})
            if not isinstance(body, list):
                raise EmbedderError(f"text-embeddings-inference at {self.endpoint}: /embed answered without vectors")
            return self._rows(body, "/embed answer")
        model = self.model or self._known_model()
        payload: dict[str, Any] = {"model": model, "input": texts} if model else {"input": texts}
        if info.dialect == "vllm" and info.max_tokens:
            payload["truncate_prompt_tokens"] = info.max_tokens
        body = self._post_embeddings(payload)
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, list):
            raise EmbedderError(f"OpenAI-compatible server at {self.endpoint}: /embeddings answered without 'data'")
        try:
            ordered = sorted(data, key=lambda item: int(item.get("index", 0)))
            rows = [_vector(item["embedding"]) for item in ordered]
        except (AttributeError, KeyError, TypeError, ValueError):
            raise EmbedderError(f"OpenAI-compatible server at {self.endpoint}: malformed 'data' items") from None
        self._note_model(body.get("model"))
        return self._rows(rows, "/embeddings data")

    def _post_embeddings(self, payload: dict[str, Any]) -> Any:
        """POST under the prefix known to work, else `/v1` and, on a 404 about the route, the root."""
        prefixes = [self._route] if self._route is not None else list(PREFIXES)
        for i, prefix in enumerate(prefixes):
            try:
                body = self._request("POST", f"{prefix}/embeddings", payload)
            except RequestRejected as exc:
                route_missing = exc.status in (404, 405) and "model" not in exc.detail.lower()
                if route_missing and i + 1 < len(prefixes):
                    continue
                raise
            self._route = prefix
            return body
        raise AssertionError("unreachable")  # pragma: no cover


def _vector(value: Any) -> Any:
    """A float list, or (encoding_format base64) little-endian float32 bytes in base64."""
    if isinstance(value, str):
        return np.frombuffer(base64.b64decode(value), dtype="<f4")
    return value


def _positive(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None
