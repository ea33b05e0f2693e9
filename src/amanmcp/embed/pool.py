"""Several OpenAI-compatible embedding servers as one embedder (`openai.endpoints`).

One server is a bottleneck for a team; a pool spreads the batches of one `index` over several
(TEI, vLLM, Infinity, LM Studio, our `embed-server`). It must never mix two models' vectors, so
before the first batch every endpoint is asked what it serves, and a pool whose endpoints disagree
on the model or its dimensions is refused. While indexing, each endpoint runs as many batches at a
time as its `max_in_flight`, pulling from one queue, so a faster server takes more of them. An
endpoint that fails (unreachable after its retries, or refusing in a way that is about the
endpoint: a bad key, a missing route, another model) is taken out and its batch goes back in the
queue for the others; the index completes as long as one endpoint is left, and the loss is
reported. A refusal that is about the texts (a 4xx the client could not answer by cutting) fails
the run: sending it elsewhere would not help. `report()` gives per-endpoint throughput for
`index` to print.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np

from amanmcp.embed.base import EmbedderError, EmbedderIdentity
from amanmcp.embed.http import Health, RequestRejected
from amanmcp.embed.openai import OpenAIEmbedder

ENDPOINT_STATUSES = (401, 403, 404, 405)  # refusals about the endpoint (key, route), not about the texts


@dataclass(slots=True)
class EndpointStats:
    """What one endpoint did in this process: for the report at the end of `index`."""

    endpoint: str
    texts: int = 0
    batches: int = 0
    seconds: float = 0.0  # summed over its batches (they overlap when max_in_flight > 1)
    resent: int = 0  # batches it failed that went to another endpoint
    failed: str = ""  # why it was taken out; "" while it serves

    @property
    def texts_per_second(self) -> float:
        return self.texts / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"endpoint": self.endpoint, "texts": self.texts, "batches": self.batches,
                "texts_per_second": round(self.texts_per_second, 1), "resent": self.resent,
                "failed": self.failed or None}


class EmbedderPool:
    """OpenAI-compatible endpoints serving one model, used as one embedder."""

    backend = "openai"
    label = "OpenAI-compatible server pool"
    section = "openai"

    def __init__(self, members: list[OpenAIEmbedder]) -> None:
        if len(members) < 2:
            raise ValueError("a pool needs at least two endpoints")
        self.members = members
        self.stats = {m.endpoint: EndpointStats(m.endpoint) for m in members}
        self._lock = threading.Lock()
        self._checked = False
        self._identity: EmbedderIdentity | None = None

    @property
    def endpoint(self) -> str:
        return ", ".join(m.endpoint for m in self.members)

    def _live(self) -> list[OpenAIEmbedder]:
        return [m for m in self.members if not self.stats[m.endpoint].failed]

    # -- the model every endpoint must serve -----------------------------------------------------

    def _check(self) -> None:
        """Ask every endpoint its model and dimensions once; take out the unreachable, refuse a mix."""
        with self._lock:
            if self._checked:
                return
            served: dict[str, EmbedderIdentity] = {}
            for member in self.members:
                try:
                    served[member.endpoint] = member.identity
                except EmbedderError as exc:
                    self.stats[member.endpoint].failed = f"at start: {exc}"
            if not served:
                raise EmbedderError(self._all_failed())
            kinds = {(i.model, i.dimensions) for i in served.values()}
            if len(kinds) > 1:
                listed = "; ".join(f"{url} serves {i.model} ({i.dimensions}d)" for url, i in served.items())
                raise EmbedderError(
                    f"the endpoints in `openai.endpoints` serve different models ({listed}): vectors of two models "
                    "must not share an index; point every endpoint at servers running the same model, or set "
                    "`openai.model` to the one they should all serve"
                )
            self._identity = next(iter(served.values()))
            self._checked = True

    @property
    def identity(self) -> EmbedderIdentity:
        self._check()
        assert self._identity is not None
        return self._identity

    @property
    def dimensions(self) -> int:
        return self.identity.dimensions

    @property
    def model_name(self) -> str:
        return self.identity.model

    # -- embedding ---------------------------------------------------------------------------------

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        self._check()
        if not texts:
            return np.zeros((0, self.dimensions), dtype=np.float32)
        size = min(m.batch_cap for m in self._live())
        batches = [texts[i : i + size] for i in range(0, len(texts), size)]
        results: list[np.ndarray | None] = [None] * len(batches)
        pending = deque(range(len(batches)))
        state = {"in_flight": 0}
        fatal: list[BaseException] = []
        done = threading.Condition()

        def worker(member: OpenAIEmbedder) -> None:
            stats = self.stats[member.endpoint]
            while True:
                with done:
                    while not pending and state["in_flight"] and not fatal and not stats.failed:
                        done.wait()  # a batch in flight elsewhere may come back to the queue
                    if fatal or stats.failed or not pending:
                        return
                    job = pending.popleft()
                    state["in_flight"] += 1
                started = time.perf_counter()
                try:
                    vectors = member.embed_documents(batches[job])
                except EmbedderError as exc:
                    with done:
                        state["in_flight"] -= 1
                        if not _about_endpoint(exc):
                            fatal.append(exc)
                        else:
                            pending.appendleft(job)
                            stats.resent += 1
                            stats.failed = stats.failed or str(exc)
                            if not self._live():
                                fatal.append(EmbedderError(self._all_failed()))
                        done.notify_all()
                    return
                except BaseException as exc:  # never leave the other workers waiting
                    with done:
                        state["in_flight"] -= 1
                        fatal.append(exc)
                        done.notify_all()
                    return
                with done:
                    results[job] = vectors
                    state["in_flight"] -= 1
                    stats.texts += len(batches[job])
                    stats.batches += 1
                    stats.seconds += time.perf_counter() - started
                    done.notify_all()

        threads = [threading.Thread(target=worker, args=(m,), name=f"pool-{m.endpoint}", daemon=True)
                   for m in self._live() for _ in range(m.max_in_flight)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if fatal:
            raise fatal[0]
        missing = [i for i, r in enumerate(results) if r is None]
        if missing:  # every worker gone with batches left: only when every endpoint failed
            raise EmbedderError(self._all_failed())
        return np.concatenate([r for r in results if r is not None], axis=0)

    def embed_query(self, text: str) -> np.ndarray:
        self._check()
        for member in self._live():
            try:
                return member.embed_query(text)
            except EmbedderError as exc:
                if not _about_endpoint(exc):
                    raise
                with self._lock:
                    self.stats[member.endpoint].failed = str(exc)
        raise EmbedderError(self._all_failed())

    def _all_failed(self) -> str:
        why = "; ".join(f"{s.endpoint}: {s.failed}" for s in self.stats.values())
        return (f"every endpoint of `openai.endpoints` failed ({why}); start the servers, fix the URLs, "
                "or choose `--backend static`")

    # -- what the factory, doctor and `index` ask of a server --------------------------------------

    def health(self, cached: bool = True) -> Health:
        """Healthy when any endpoint is; the detail names each."""
        checks = [(m.endpoint, m.health(cached)) for m in self.members]
        ok = [h for _, h in checks if h.ok]
        detail = "; ".join(f"{url}: {h.detail}" for url, h in checks)
        return Health(bool(ok), f"pool of {len(checks)} ({len(ok)} reachable): {detail}", ok[0].model if ok else "")

    def unreachable_message(self, detail: str) -> str:
        return f"no endpoint of `openai.endpoints` is reachable ({detail}); start the servers, or fix the URLs"

    def how_to_start(self) -> str:
        return self.members[0].how_to_start()

    def describe(self) -> str:
        return f"{self.model_name} at a pool of {len(self.members)}: {self.endpoint}"

    def report(self) -> list[EndpointStats]:
        return list(self.stats.values())

    def close(self) -> None:
        for member in self.members:
            member.close()


def _about_endpoint(exc: EmbedderError) -> bool:
    """Whether another endpoint might succeed where this one failed."""
    if isinstance(exc, RequestRejected):
        return exc.status in ENDPOINT_STATUSES or exc.status >= 500 or exc.status == 429 or exc.status == 0
    return True  # unreachable, timed out, answered with another model, or with the wrong shape
