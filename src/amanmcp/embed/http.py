"""What every HTTP embedding backend shares: pooled connections, timeouts, retries, batching, limits.

The reference system lost most of its indexing time sending one chunk per call to a sequential
server. Here texts go in batches (default 32), a bounded number of batches are in flight at once,
and transient failures (connection refused or reset, timeouts, 5xx) are retried with exponential
backoff. A 429 is retried too, after the server's `Retry-After`. What will fail again is not
retried, and the server's own message is shown: a 4xx, and a 5xx that says so (unknown model,
input too large).

Servers differ in what they accept, and they say so in their errors; the clients answer:

- a batch-size error (TEI's 413 "batch size 64 > maximum allowed batch size 32", a 422 "at most
  N items", any 413): the batch is cut to the size the server names (else halved) and resent,
  and that size is kept as the server's batch cap;
- a context-length error (vLLM's 400 "maximum context length is N tokens. However, you requested
  M tokens", TEI's 413 "must have less than N tokens. Given: M", llama.cpp's 500 "input (M tokens)
  is too large to process ... (current batch size: N)"): the offending text alone is cut (to N/M
  of its length, else halved) and resent; the other texts of the batch go as they are. What was
  learned (the token limit, characters per token) cuts later long texts before they are sent.
  No chunk is lost: each gets a vector of its longest part the server accepts.

Vectors are L2-normalised on our side whatever the server does.
"""

from __future__ import annotations

import email.utils
import logging
import re
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
RATE_LIMIT_ATTEMPTS = 8  # tries of one request that a server answers 429 (each after its Retry-After)
MAX_RETRY_AFTER = 30.0  # seconds: the longest Retry-After honoured at once
MAX_CUTS = 6  # tries at cutting one over-long text before giving up on it
CUT_MARGIN = 0.9  # cut a little below the proportional length: tokens are not spread evenly


class RequestRejected(EmbedderError):
    """The server refused the request and says why; sending it again unchanged will not help."""

    def __init__(self, message: str, status: int = 0, detail: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.detail = detail


class BatchTooLarge(RequestRejected):
    """Too many texts (or bytes) in one request; `limit` is the batch size the server names, if any."""

    def __init__(self, message: str, status: int, detail: str, limit: int | None) -> None:
        super().__init__(message, status, detail)
        self.limit = limit


class InputTooLong(RequestRejected):
    """A text is longer than the model (or the server) takes; `limit` and `given` in `unit`s when said."""

    def __init__(self, message: str, status: int, detail: str, limit: int | None, given: int | None,
                 unit: str = "tokens") -> None:
        super().__init__(message, status, detail)
        self.limit = limit
        self.given = given
        self.unit = unit


@dataclass(frozen=True, slots=True)
class ServerInfo:
    """What a server says about itself: its dialect, models and limits."""

    dialect: str  # tei | vllm | infinity | llamacpp | amanmcp | openai | mlx | ollama
    model: str = ""  # the model requests go to ("" = not known before the first answer)
    models: tuple[str, ...] = ()  # every model it lists
    dimensions: int | None = None
    max_batch: int | None = None  # texts per request it accepts
    max_tokens: int | None = None  # the model's input limit, where the server says it
    truncation: str = ""  # how over-long inputs are handled, for people
    api_base: str | None = None  # path prefix where its OpenAI routes answered ("/v1" or "")
    version: str = ""


@dataclass(frozen=True, slots=True)
class Health:
    ok: bool
    detail: str  # why not, or what the server says it serves
    model: str = ""
    info: ServerInfo | None = None


@dataclass(frozen=True, slots=True)
class ServerReport:
    """`doctor`'s view of one server: reachable, model, dimensions, batch cap, truncation."""

    reachable: bool
    detail: str
    dialect: str = ""
    model: str = ""
    dimensions: int | None = None
    batch_cap: int | None = None
    truncation: str = ""
    problem: str = ""  # reachable, but the model or a test embedding failed

    def to_dict(self) -> dict[str, object]:
        return {"reachable": self.reachable, "dialect": self.dialect, "model": self.model or None,
                "dimensions": self.dimensions, "batch_cap": self.batch_cap, "truncation": self.truncation or None,
                "problem": self.problem or None}


_probe_cache: dict[tuple[str, str, str], Health] = {}
_probe_lock = threading.Lock()


def clear_probe_cache() -> None:
    """Probes are cached for the life of the process; tests and long-lived servers can reset."""
    with _probe_lock:
        _probe_cache.clear()


def same_model(a: str, b: str) -> bool:
    """One model under two spellings: case, a `:latest` tag, an organisation prefix, or a versioned
    name that contains the other (OpenAI answers `text-embedding-ada-002-v2` for `...-002`)."""

    def norm(name: str) -> str:
        return name.strip().lower().removesuffix(":latest")

    x, y = norm(a), norm(b)
    if not x or not y:
        return True
    return x == y or x.rsplit("/", 1)[-1] == y.rsplit("/", 1)[-1] or x in y or y in x


class HttpEmbedder:
    """Base class: subclasses say how a batch travels (`_post_batch`) and how health is checked."""

    backend: ClassVar[str] = ""
    label: ClassVar[str] = "embedding server"  # for messages: "MLX server", "Ollama", ...
    section: ClassVar[str] = ""  # the settings section: "mlx", "ollama", "openai"

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
        rate_limit_attempts: int = RATE_LIMIT_ATTEMPTS,
    ) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.model = model
        self.batch_size = max(1, batch_size)
        self.max_in_flight = max(1, max_in_flight)
        self.attempts = max(1, attempts)
        self.backoff = backoff
        self.rate_limit_attempts = max(1, rate_limit_attempts)
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(
            base_url=self.endpoint,
            headers=headers,
            timeout=httpx.Timeout(timeout, connect=connect_timeout),
            limits=httpx.Limits(max_connections=self.max_in_flight, max_keepalive_connections=self.max_in_flight),
        )
        self._dims: int | None = None
        self._served_model: str | None = None  # what the server answered with, when nothing was configured
        self._cap: int | None = None  # the server's batch cap, once it has said it
        self._max_tokens: int | None = None  # the model's input limit, once a server has said it
        self._chars_per_token: float | None = None  # the fewest characters per token seen in a refused text
        self._max_chars: int | None = None  # a server's limit in characters per text
        self._unsafe_chars: int | None = None  # the shortest text refused without numbers in the message
        self._safe_chars: int | None = None  # the longest cut of such a text that was then accepted
        self.truncated = 0  # texts cut on our side to fit the model
        self._lock = threading.Lock()

    def close(self) -> None:
        self._client.close()

    # -- identity -------------------------------------------------------------------------------

    @property
    def model_name(self) -> str:
        """The configured model, else the one the server says it serves. Never a placeholder."""
        if self.model:
            return self.model
        known = self._known_model()
        if known:
            return known
        self._embed_batch(["model probe"])  # the answer names the model (and gives the dimensions)
        if self._served_model:
            return self._served_model
        raise EmbedderError(
            f"{self.label} at {self.endpoint} does not say which model it serves: set `{self.section}.model`"
            f"{self._env_hint('MODEL')} to the model it runs"
        )

    def _known_model(self) -> str:
        """The model the server has named so far ('' if none): subclasses add what their probe learned."""
        return self._served_model or ""

    @property
    def dimensions(self) -> int:
        if self._dims is None:
            self._dims = int(self._embed_batch(["dimension probe"]).shape[1])
        return self._dims

    @property
    def identity(self) -> EmbedderIdentity:
        name = self.model_name
        return EmbedderIdentity(self.backend, name, self.dimensions, True, query_prefix_for(name))

    @property
    def batch_cap(self) -> int:
        """Texts per request: the configured batch size, or less where the server says so."""
        cap = self._cap or self._info_batch()
        return min(self.batch_size, cap) if cap else self.batch_size

    def _info_batch(self) -> int | None:
        return None

    def truncation_mode(self) -> str:
        return "client: a text the server finds too long is cut and resent alone"

    def describe(self) -> str:
        return f"{self.model_name} at {self.endpoint}"

    def _env_hint(self, key: str) -> str:
        names = {"mlx": "AMANMCP_MLX_", "ollama": "AMANMCP_OLLAMA_", "openai": "AMANMCP_OPENAI_"}
        prefix = names.get(self.section)
        return f" ({prefix}{key})" if prefix else ""

    # -- health -----------------------------------------------------------------------------------

    def health(self, cached: bool = True) -> Health:
        """A short probe (≤ 1 s, longer for a server loading its model); by default remembered for
        the process."""
        key = (self.backend, self.endpoint, self.model)
        if cached:
            with _probe_lock:
                if key in _probe_cache:
                    return _probe_cache[key]
        try:
            result = self._probe()
        except EmbedderError as exc:
            result = Health(False, str(exc))
        except (httpx.HTTPError, ValueError, KeyError, TypeError, AttributeError) as exc:
            result = Health(False, _short(exc))
        with _probe_lock:
            _probe_cache[key] = result
        return result

    def _cached_health(self) -> Health | None:
        with _probe_lock:
            return _probe_cache.get((self.backend, self.endpoint, self.model))

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

    def server_report(self) -> ServerReport:
        """For `doctor`: reachable, the model, its dimensions (one test embedding), batch cap, truncation."""
        health = self.health()
        if not health.ok:
            return ServerReport(False, health.detail)
        dialect = health.info.dialect if health.info else self.backend
        model, dims, problem = health.model, None, ""
        try:
            model = self.model_name
            dims = self.dimensions
        except EmbedderError as exc:
            problem = str(exc)
        return ServerReport(True, health.detail, dialect, model, dims, self.batch_cap, self.truncation_mode(), problem)

    # -- embedding --------------------------------------------------------------------------------

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimensions), dtype=np.float32)
        self._prepare()
        texts = [self._precut(t) for t in texts]
        size = self.batch_cap
        batches = [texts[i : i + size] for i in range(0, len(texts), size)]
        if len(batches) == 1 or self.max_in_flight == 1:
            parts = [self._embed_batch(b) for b in batches]
        else:
            with ThreadPoolExecutor(self.max_in_flight, thread_name_prefix=f"{self.backend}-embed") as pool:
                parts = list(pool.map(self._embed_batch, batches))
        out = np.concatenate(parts, axis=0)
        if out.shape[0] != len(texts):
            raise EmbedderError(
                f"{self.label} at {self.endpoint} returned {out.shape[0]} vectors for {len(texts)} texts"
            )
        if self._dims is None:
            self._dims = int(out.shape[1])
        return out

    def embed_query(self, text: str) -> np.ndarray:
        self._prepare()
        return self._embed_batch([self._precut(text)])[0]

    def _prepare(self) -> None:
        """Learn what is needed before the first request (the OpenAI client: the server's dialect)."""

    def _embed_batch(self, texts: list[str]) -> np.ndarray:
        """One batch, answering the server's batch-size and context-length errors (see the module doc)."""
        try:
            vectors = self._post_batch(texts)
        except BatchTooLarge as exc:
            if len(texts) == 1:
                raise
            size = exc.limit if exc.limit and exc.limit < len(texts) else max(1, len(texts) // 2)
            with self._lock:
                self._cap = min(self._cap or size, size)
            log.info("%s: batch of %d too large (%s); sending %d at a time", self.label, len(texts), exc.detail, size)
            return np.concatenate([self._embed_batch(texts[i : i + size]) for i in range(0, len(texts), size)])
        except InputTooLong as exc:
            if len(texts) > 1:
                recut = [self._precut(t) for t in texts]
                if recut != texts:  # learned more since this batch was formed: send it cut as that says
                    return self._embed_batch(recut)
                # the longest is the likeliest culprit: it goes alone, the rest as a batch
                longest = max(range(len(texts)), key=lambda i: len(texts[i]))
                with self._lock:
                    if exc.limit and exc.unit == "tokens":
                        self._max_tokens = exc.limit
                alone = self._embed_batch([texts[longest]])
                rest = [self._precut(t) for i, t in enumerate(texts) if i != longest]  # with what it taught
                others = self._embed_batch(rest)
                return np.concatenate([others[:longest], alone, others[longest:]])
            return self._cut_and_send(texts[0], exc)
        self._check_rows(vectors, len(texts))
        return vectors

    def _check_rows(self, vectors: np.ndarray, count: int) -> None:
        if vectors.shape[0] != count:
            raise EmbedderError(
                f"{self.label} at {self.endpoint} returned {vectors.shape[0]} vectors for {count} texts"
            )
        if self._dims is not None and vectors.shape[1] != self._dims:
            raise EmbedderError(
                f"{self.label} at {self.endpoint} answered {vectors.shape[1]}-dimensional vectors after "
                f"{self._dims}-dimensional ones: the model changed; vectors of two models must not share an index"
            )

    def _cut_and_send(self, text: str, exc: InputTooLong) -> np.ndarray:
        """Cut one over-long text until the server takes it (its longest accepted part is embedded)."""
        original = len(text)
        for _ in range(MAX_CUTS):
            text = self._cut(text, exc)
            try:
                vectors = self._post_batch([text])
            except InputTooLong as again:
                exc = again
                continue
            self._check_rows(vectors, 1)
            with self._lock:
                self.truncated += 1
                if exc.limit is None:  # no numbers to go by: remember what fitted, for the next long text
                    self._safe_chars = max(self._safe_chars or 0, len(text))
            log.info("%s: a text of %d characters was cut to %d to fit the model (%s)",
                     self.label, original, len(text), exc.detail)
            return vectors
        raise RequestRejected(
            f"{self.label} at {self.endpoint} refused a text even cut from {original:,} to {len(text):,} characters: "
            f"{exc.detail}", exc.status, exc.detail,
        )

    def _cut(self, text: str, exc: InputTooLong) -> str:
        if len(text) <= 1:
            raise RequestRejected(f"{self.label} at {self.endpoint} refused a one-character text: {exc.detail}",
                                  exc.status, exc.detail)
        if exc.unit == "characters" and exc.limit:
            keep = exc.limit
            with self._lock:
                self._max_chars = min(self._max_chars or keep, keep)
        elif exc.limit and exc.given and exc.given > exc.limit:
            keep = int(len(text) * exc.limit / exc.given * CUT_MARGIN)
            with self._lock:  # what this text teaches about the model, for the texts still to come
                self._max_tokens = exc.limit
                ratio = len(text) / exc.given
                self._chars_per_token = min(self._chars_per_token or ratio, ratio)
        else:
            keep = len(text) // 2
            with self._lock:
                self._unsafe_chars = min(self._unsafe_chars or len(text), len(text))
        return text[: max(1, min(keep, len(text) - 1))]

    def _precut(self, text: str) -> str:
        """Cut a text that is certain to be refused, from what the server has said so far."""
        if self._max_chars and len(text) > self._max_chars:
            with self._lock:
                self.truncated += 1
            return text[: self._max_chars]
        if self._max_tokens and self._chars_per_token:
            keep = int(self._max_tokens * self._chars_per_token * CUT_MARGIN)
        elif self._unsafe_chars and self._safe_chars and len(text) >= self._unsafe_chars:
            keep = self._safe_chars
        else:
            return text
        if len(text) <= keep:
            return text
        with self._lock:
            self.truncated += 1
        return text[:keep]

    def _post_batch(self, texts: list[str]) -> np.ndarray:
        """One batch over the wire; returns normalised float32 rows."""
        raise NotImplementedError

    def _note_model(self, answered: Any) -> None:
        """Each answer names its model: learn it, or check it against the one this index is built with."""
        if not isinstance(answered, str) or not answered.strip():
            return
        expected = self._expected_model()
        if not expected:
            with self._lock:
                if self._served_model is None:
                    self._served_model = answered
            return
        if not self._same_model(expected, answered):
            raise EmbedderError(
                f"{self.label} at {self.endpoint} answered with model {answered!r} where {expected!r} was asked "
                f"for: vectors of two models must not share an index; set `{self.section}.model`"
                f"{self._env_hint('MODEL')} to the model the server runs"
            )

    def _expected_model(self) -> str:
        return self.model or self._known_model()

    def _same_model(self, expected: str, answered: str) -> bool:
        return same_model(expected, answered)

    def _wait(self, attempt: int) -> float:
        return self.backoff * 2 ** (attempt - 1)

    def _request(self, method: str, path: str, payload: dict[str, Any] | None = None,
                 timeout: float | httpx.Timeout | None = None) -> Any:
        """JSON in, JSON out, with retries on what may pass: connection errors, timeouts, 5xx, 429."""
        response, last = send_with_retries(
            self._client, method, path, payload, self.attempts, self._wait,
            permanent=permanent_failure, rate_limit_attempts=self.rate_limit_attempts, timeout=timeout,
        )
        if response is None:
            raise EmbedderError(
                f"{self.label} at {self.endpoint} failed after {self.attempts} attempts ({last}): "
                f"{self.how_to_start()}, or choose `--backend static`"
            )
        if response.status_code >= 400:
            raise self._rejection(method, path, response)
        try:
            return response.json()
        except ValueError:
            raise EmbedderError(f"{self.label} at {self.endpoint} answered {path} with non-JSON") from None

    def _rejection(self, method: str, path: str, response: httpx.Response) -> RequestRejected:
        """The server's refusal as an error that says what to do, classified for `_embed_batch`."""
        status = response.status_code
        detail = _error_text(response)
        where = f"{self.label} at {self.endpoint}"
        if status == 429:
            return RequestRejected(
                f"{where} is overloaded: {method} {path} still answered HTTP 429 after {self.rate_limit_attempts} "
                f"tries ({detail}); try again later, or lower `{self.section}.max_in_flight`", status, detail)
        too_long = parse_too_long(status, detail, _json_body(response))
        if too_long is not None:
            limit, given, unit = too_long
            return InputTooLong(f"{where}: a text is too long for the model (HTTP {status}): {detail}",
                                status, detail, limit, given, unit)
        batch = parse_batch_limit(status, detail)
        if batch is not None:
            return BatchTooLarge(f"{where}: too many texts in one request (HTTP {status}): {detail}",
                                 status, detail, batch or None)
        verb = "failed" if status >= 500 else "rejected"
        return RequestRejected(
            f"{where} {verb} {method} {path} (HTTP {status}): {detail}{self._rejection_hint(response)}", status, detail
        )

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


# -- what servers say in their errors ----------------------------------------------------------------

# A 5xx that will fail again however often it is sent: the server's message says why.
_PERMANENT = re.compile(
    r"unknown model|invalid model|does not exist|not found|not served|model loading failed|"
    r"too large to process|too long|context length|context size|maximum context|exceeds",
    re.IGNORECASE,
)
# (pattern, which group is the limit, which the given size, unit)
_TOO_LONG: tuple[tuple[re.Pattern[str], int, int, str], ...] = (
    # vLLM (serving_engine.py `_validate_input`), OpenAI: "maximum context length is 512 tokens. However,
    # you requested 600 tokens ..."; vLLM with max_embed_len: "maximum embedding input length is ..."
    (re.compile(r"maximum (?:context|embedding input) length is (\d+) tokens.{0,40}?requested (\d+) tokens",
                re.IGNORECASE | re.DOTALL), 1, 2, "tokens"),
    # TEI (core/src/tokenization.rs): "`inputs` must have less than 512 tokens. Given: 600"
    (re.compile(r"must have less than (\d+) tokens\. Given: (\d+)", re.IGNORECASE), 1, 2, "tokens"),
    # llama.cpp (server-context.cpp): "input (600 tokens) is too large to process. increase the physical
    # batch size (current batch size: 512)"
    (re.compile(r"input \((\d+) tokens\) is too large to process.*?current batch size: (\d+)",
                re.IGNORECASE | re.DOTALL), 2, 1, "tokens"),
    # llama.cpp's exceed_context_size_error, as Ollama 0.40 relays it: "request (2622 tokens) exceeds the
    # available context size (512 tokens), try increasing it"
    (re.compile(r"request \((\d+) tokens\) exceeds the available context size \((\d+) tokens\)", re.IGNORECASE),
     2, 1, "tokens"),
    # amanmcp embed-server: "a text has 6,000 characters; the limit is 5,000"
    (re.compile(r"a text has ([\d,]+) characters; the limit is ([\d,]+)", re.IGNORECASE), 2, 1, "characters"),
)
_TOO_LONG_WORDS = re.compile(
    r"too large to process|exceeds the available context size|context length|maximum context|"
    r"input length exceeds|too many tokens|is too long|sequence length",
    re.IGNORECASE,
)
_BATCH = (
    re.compile(r"batch size \d+ > maximum allowed batch size (\d+)", re.IGNORECASE),  # TEI
    re.compile(r"\d+ texts in one request; the limit is (\d+)", re.IGNORECASE),  # amanmcp embed-server
    re.compile(r"at most (\d+) items", re.IGNORECASE),  # FastAPI/pydantic: Infinity (2048), MLX server (1024)
)


def permanent_failure(response: httpx.Response) -> bool:
    """A 5xx whose message says it will fail again (unknown model, input too large): not retried."""
    return bool(_PERMANENT.search(_error_text(response)))


def parse_too_long(status: int, detail: str, body: Any = None) -> tuple[int | None, int | None, str] | None:
    """(limit, given, unit) if the error says an input is longer than the model takes, else None."""
    for pattern, limit_group, given_group, unit in _TOO_LONG:
        match = pattern.search(detail)
        if match:
            return _int(match.group(limit_group)), _int(match.group(given_group)), unit
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict) and "n_ctx" in error:  # llama.cpp exceed_context_size_error
        return _int(error.get("n_ctx")), _int(error.get("n_prompt_tokens")), "tokens"
    if _TOO_LONG_WORDS.search(detail):
        return None, None, "tokens"
    return None


def parse_batch_limit(status: int, detail: str) -> int | None:
    """The batch size a server accepts (0 if it does not say), or None if this is no batch-size error."""
    for pattern in _BATCH:
        match = pattern.search(detail)
        if match and status in (400, 413, 422):
            return _int(match.group(1)) or 0
    if status == 413 or (status in (400, 422) and re.search(r"\bbatch\b", detail, re.IGNORECASE)):
        return 0
    return None


def _int(text: Any) -> int | None:
    try:
        return int(str(text).replace(",", ""))
    except (TypeError, ValueError):
        return None


def retry_after(response: httpx.Response) -> float | None:
    """Seconds the server asks to wait (`Retry-After`: seconds or an HTTP date), if it says."""
    value = response.headers.get("retry-after", "").strip()
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def send_with_retries(
    client: httpx.Client, method: str, path: str, payload: dict[str, Any] | None, attempts: int,
    wait: Callable[[int], float], *, permanent: Callable[[httpx.Response], bool] | None = None,
    rate_limit_attempts: int = RATE_LIMIT_ATTEMPTS, max_wait: float = MAX_RETRY_AFTER,
    timeout: float | httpx.Timeout | None = None,
) -> tuple[httpx.Response | None, str]:
    """The first answer that is final, or (None, the last transient failure) after `attempts` tries.

    Connection errors, timeouts and 5xx may pass, so they are retried after `wait(attempt)`
    seconds (or the server's Retry-After); a 5xx that `permanent` recognises is returned at once,
    as is a 4xx. A 429 is retried after its Retry-After (at most `max_wait` seconds), up to
    `rate_limit_attempts` tries in all; then the 429 is returned for the caller to explain.
    """
    last = ""
    failures = limited = 0
    delay = 0.0
    extra: dict[str, Any] = {} if timeout is None else {"timeout": timeout}
    while True:
        if delay > 0:
            time.sleep(delay)
        try:
            response = client.request(method, path, json=payload, **extra)
        except httpx.TimeoutException as exc:
            last = f"timed out ({type(exc).__name__})"
        except httpx.TransportError as exc:
            last = _short(exc)
        else:
            code = response.status_code
            if code == 429:
                limited += 1
                if limited >= rate_limit_attempts:
                    return response, ""
                asked = retry_after(response)
                delay = min(max_wait, asked if asked is not None else wait(limited))
                log.info("%s %s: HTTP 429 (%s); retrying in %.1f s", method, path, _error_text(response), delay)
                continue
            if code < 500 or (permanent is not None and permanent(response)):
                return response, ""
            last = f"HTTP {code}: {_error_text(response)}"
            failures += 1
            if failures >= attempts:
                return None, last
            asked = retry_after(response)
            delay = min(max_wait, asked) if asked is not None else wait(failures)
            continue
        failures += 1
        if failures >= attempts:
            return None, last
        delay = wait(failures)


def _short(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0][:200]


def _json_body(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _error_text(response: httpx.Response) -> str:
    """The server's own message, from the error shapes servers use: `{"error": "..."}` (Ollama, TEI),
    `{"error": {"message"}}` (OpenAI, vLLM, llama.cpp, Infinity), `{"message"}` (TEI's OpenAI route,
    older vLLM), `{"detail": "..."}` or `{"detail": [{"msg"}]}` (FastAPI: the MLX server); else the
    start of the body."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:200] or response.reason_phrase
    if isinstance(body, dict):
        if "error" in body:
            error = body["error"]
        elif "detail" in body:
            error = body["detail"]
        elif "message" in body:
            error = body["message"]
        else:
            error = body
        if isinstance(error, dict):
            error = error.get("message", error)
        if isinstance(error, list):  # FastAPI validation errors
            messages = [str(item.get("msg", item)) if isinstance(item, dict) else str(item) for item in error]
            error = "; ".join(messages)
        return str(error)[:300]
    return str(body)[:300]
