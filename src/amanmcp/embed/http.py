"""What every HTTP embedding backend shares: pooled connections, timeouts, retries, batching.

The reference system lost most of its indexing time sending one chunk per call to a sequential
server. Here texts go in batches (default 32), a bounded number of batches are in flight at once,
and transient failures (connection refused or reset, timeouts, 5xx) are retried with exponential
backoff. A request the server rejects (4xx) is not retried: the server's message is shown.
Vectors are L2-normalised on our side whatever the server does.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, ClassVar

import httpx
import numpy as np

from amanmcp.embed.base import EmbedderError, EmbedderIdentity, l2_normalize, query_prefix_for

log = logging.getLogger(__name__)
PROBE_TIMEOUT = 1.0  # seconds: auto-detection must never make a command feel slow


class RequestRejected(EmbedderError):
    """The server answered 4xx: retrying will not help."""


@dataclass(frozen=True, slots=True)
class Health:
    ok: bool
    detail: str  # why not, or what the server says it serves
    model: str = ""


_probe_cache: dict[tuple[str, str, str], Health] = {}
_probe_lock = threading.Lock()


def clear_probe_cache() -> None:
    """Probes are cached for the life of the process; tests and long-lived servers can reset."""
    with _probe_lock:
        _probe_cache.clear()


class HttpEmbedder:
    """Base class: subclasses say how a batch travels (`_post_batch`) and how health is checked."""

    backend: ClassVar[str] = ""
    label: ClassVar[str] = "embedding server"  # for messages: "MLX server", "Ollama", ...

    def __init__(
        self,
        endpoint: str,
        model: str = "",
        *,
        api_key: str = "",
        batch_size: int = 32,
        max_in_flight: int = 2,
        timeout: float = 60.0,
        connect_timeout: float = 2.0,
        attempts: int = 3,
        backoff: float = 0.5,
    ) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.model = model
        self.batch_size = max(1, batch_size)
        self.max_in_flight = max(1, max_in_flight)
        self.attempts = max(1, attempts)
        self.backoff = backoff
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(
            base_url=self.endpoint,
            headers=headers,
            timeout=httpx.Timeout(timeout, connect=connect_timeout),
            limits=httpx.Limits(max_connections=self.max_in_flight, max_keepalive_connections=self.max_in_flight),
        )
        self._dims: int | None = None
        self._served_model: str | None = None
        self._lock = threading.Lock()

    def close(self) -> None:
        self._client.close()

    # -- identity -------------------------------------------------------------------------------

    @property
    def model_name(self) -> str:
        """The configured model, else the one the server says it serves."""
        if self.model:
            return self.model
        if self._served_model is None:
            health = self.health(cached=False)
            if not health.ok:
                raise EmbedderError(self.unreachable_message(health.detail))
            self._served_model = health.model or "default"
        return self._served_model

    @property
    def dimensions(self) -> int:
        if self._dims is None:
            self._dims = int(self._post_batch(["dimension probe"]).shape[1])
        return self._dims

    @property
    def identity(self) -> EmbedderIdentity:
        return EmbedderIdentity(self.backend, self.model_name, self.dimensions, True, query_prefix_for(self.model_name))

    def describe(self) -> str:
        return f"{self.model_name} at {self.endpoint}"

    # -- health -----------------------------------------------------------------------------------

    def health(self, cached: bool = True) -> Health:
        """A short probe (≤ 1 s); by default remembered for the process."""
        key = (self.backend, self.endpoint, self.model)
        if cached:
            with _probe_lock:
                if key in _probe_cache:
                    return _probe_cache[key]
        try:
            result = self._probe()
        except (httpx.HTTPError, ValueError, KeyError, TypeError, AttributeError) as exc:
            result = Health(False, _short(exc))
        with _probe_lock:
            _probe_cache[key] = result
        return result

    def _probe(self) -> Health:
        raise NotImplementedError

    def how_to_start(self) -> str:
        """The actionable half of an error message."""
        return "start the server"

    def unreachable_message(self, detail: str) -> str:
        return (
            f"{self.label} not reachable at {self.endpoint} ({detail}): {self.how_to_start()}, "
            "or choose `--backend static`"
        )

    # -- embedding --------------------------------------------------------------------------------

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimensions), dtype=np.float32)
        batches = [texts[i : i + self.batch_size] for i in range(0, len(texts), self.batch_size)]
        if len(batches) == 1 or self.max_in_flight == 1:
            parts = [self._post_batch(b) for b in batches]
        else:
            with ThreadPoolExecutor(self.max_in_flight, thread_name_prefix=f"{self.backend}-embed") as pool:
                parts = list(pool.map(self._post_batch, batches))
        out = np.concatenate(parts, axis=0)
        if out.shape[0] != len(texts):
            raise EmbedderError(
                f"{self.label} at {self.endpoint} returned {out.shape[0]} vectors for {len(texts)} texts"
            )
        if self._dims is None:
            self._dims = int(out.shape[1])
        return out

    def embed_query(self, text: str) -> np.ndarray:
        return self._post_batch([text])[0]

    def _post_batch(self, texts: list[str]) -> np.ndarray:
        """One batch over the wire; returns normalised float32 rows."""
        raise NotImplementedError

    def _request(self, method: str, path: str, payload: dict[str, Any] | None = None) -> Any:
        """JSON in, JSON out, with retries on what may pass: connection errors, timeouts, 5xx."""
        response, last = send_with_retries(
            self._client, method, path, payload, self.attempts, lambda n: self.backoff * 2 ** (n - 1)
        )
        if response is None:
            raise EmbedderError(
                f"{self.label} at {self.endpoint} failed after {self.attempts} attempts ({last}): "
                f"{self.how_to_start()}, or choose `--backend static`"
            )
        if response.status_code >= 400:
            raise RequestRejected(
                f"{self.label} at {self.endpoint} rejected {method} {path} "
                f"(HTTP {response.status_code}): {_error_text(response)}{self._rejection_hint(response)}"
            )
        try:
            return response.json()
        except ValueError:
            raise EmbedderError(f"{self.label} at {self.endpoint} answered {path} with non-JSON") from None

    def _rejection_hint(self, response: httpx.Response) -> str:
        return ""

    @staticmethod
    def _rows(data: Any, what: str) -> np.ndarray:
        try:
            array = np.asarray(data, dtype=np.float32)
        except (TypeError, ValueError):
            raise EmbedderError(f"the server's {what} is not a list of vectors") from None
        if array.ndim != 2 or array.shape[1] == 0:
            raise EmbedderError(f"the server's {what} is not a list of vectors (shape {array.shape})")
        return l2_normalize(array)


def send_with_retries(
    client: httpx.Client, method: str, path: str, payload: dict[str, Any] | None, attempts: int,
    wait: Callable[[int], float],
) -> tuple[httpx.Response | None, str]:
    """The first answer below 500, or (None, the last transient failure) after `attempts` tries.

    Connection errors, timeouts and 5xx may pass, so they are retried after `wait(attempt)`
    seconds; a 4xx is returned at once for the caller to explain.
    """
    last = ""
    for attempt in range(attempts):
        if attempt:
            time.sleep(wait(attempt))
        try:
            response = client.request(method, path, json=payload)
        except httpx.TimeoutException as exc:
            last = f"timed out ({type(exc).__name__})"
            continue
        except httpx.TransportError as exc:
            last = _short(exc)
            continue
        if response.status_code >= 500:
            last = f"HTTP {response.status_code}: {_error_text(response)}"
            continue
        return response, ""
    return None, last


def _short(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0][:200]


def _error_text(response: httpx.Response) -> str:
    """The server's own message: JSON `error`/`detail` if present, else the start of the body."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:200] or response.reason_phrase
    if isinstance(body, dict):
        error = body.get("error", body.get("detail", body))
        if isinstance(error, dict):
            error = error.get("message", error)
        return str(error)[:300]
    return str(body)[:300]
