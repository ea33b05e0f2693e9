"""Test-only fault switch around the shipped embed-server app (which has none).

`wrap_create_app(create_app)` returns a `create_app` whose app is the shipped one behind
`FaultMiddleware`, and whose embedder is wrapped in `CountingEmbedder`. The switch answers at
`/_faults` (POST sets it, GET reads it) and can:

- fail (with `status`) or hang (for `hang_seconds`) the next N POST requests (embedding and
  rerank requests; the clients' discovery GETs such as /v1/models pass untouched), to prove the
  clients' retries and timeouts (`fail_next`, `status`, `hang_next`, `hang_seconds`);
- count those requests (`seen`, `reset_seen`);
- slow every model call by `slow_seconds` and record the size of each (`calls`, `call_sizes`,
  `reset_calls`), to prove the server's fair scheduling and that abandoned requests stop.

A POST sets every field it does not name back to its default (as before: `faults(reset_seen=True)`
clears the switch); the counters change only with `reset_seen` / `reset_calls`.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import anyio
from starlette.requests import Request

Scope = dict[str, Any]
Receive = Callable[[], Any]
Send = Callable[[dict[str, Any]], Any]


@dataclass(slots=True)
class Faults:
    fail_next: int = 0
    status: int = 503
    hang_next: int = 0
    hang_seconds: float = 5.0
    slow_seconds: float = 0.0
    seen: int = 0  # POST requests received, faulty or not
    call_sizes: list[int] = field(default_factory=list)  # texts per model call, in order
    lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self) -> tuple[str, float] | None:
        with self.lock:
            self.seen += 1
            if self.hang_next > 0:
                self.hang_next -= 1
                return ("hang", self.hang_seconds)
            if self.fail_next > 0:
                self.fail_next -= 1
                return ("fail", float(self.status))
            return None

    def model_call(self, size: int) -> None:
        with self.lock:
            self.call_sizes.append(size)
            delay = self.slow_seconds
        if delay > 0:
            time.sleep(delay)

    def update(self, data: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            self.fail_next = int(data.get("fail_next", 0))
            self.status = int(data.get("status", 503))
            self.hang_next = int(data.get("hang_next", 0))
            self.hang_seconds = float(data.get("hang_seconds", 5.0))
            self.slow_seconds = float(data.get("slow_seconds", 0.0))
            if data.get("reset_seen"):
                self.seen = 0
            if data.get("reset_calls"):
                self.call_sizes.clear()
        return self.state()

    def state(self) -> dict[str, Any]:
        with self.lock:
            return {"fail_next": self.fail_next, "hang_next": self.hang_next, "slow_seconds": self.slow_seconds,
                    "seen": self.seen, "calls": len(self.call_sizes), "call_sizes": list(self.call_sizes)}


class CountingEmbedder:
    """The served embedder, each model call recorded (and slowed while `slow_seconds` is set)."""

    def __init__(self, inner: Any, faults: Faults) -> None:
        self._inner = inner
        self._faults = faults

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def embed_documents(self, texts: list[str]) -> Any:
        self._faults.model_call(len(texts))
        return self._inner.embed_documents(texts)

    def embed_query(self, text: str) -> Any:
        self._faults.model_call(1)
        return self._inner.embed_query(text)


class FaultMiddleware:
    """ASGI middleware: `/_faults`, then faults for the app's routes (but /health), then the app."""

    def __init__(self, app: Any, faults: Faults) -> None:
        self.app = app
        self.faults = faults
        self.routes = {  # the requests that embed or rerank: discovery GETs (/v1/models, /models) pass
            (route.path, method)
            for route in app.routes
            if route.path != "/health"
            for method in (route.methods or ())
            if method == "POST"
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path, method = scope["path"], scope["method"]
        if path == "/_faults":
            if method == "POST":
                body = await Request(scope, receive).body()
                await _json(send, 200, self.faults.update(json.loads(body or b"{}")))
            else:
                await _json(send, 200, self.faults.state())
            return
        if (path, method) in self.routes:
            fault = self.faults.take()
            if fault and fault[0] == "hang":
                await anyio.sleep(fault[1])
            elif fault:
                message = "injected fault (test switch)"
                status = int(fault[1])
                error: Any = {"message": message, "type": "server_error", "code": status}
                await _json(send, status, {"error": error if path.startswith("/v1/") else message})
                return
        await self.app(scope, receive, send)


async def _json(send: Send, status: int, payload: Any) -> None:
    body = json.dumps(payload).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def wrap_create_app(create_app: Callable[..., Any]) -> Callable[..., Any]:
    """`create_app` with the switch: same arguments, the shipped app inside."""

    def create_app_with_faults(embedder: Any, *args: Any, **kwargs: Any) -> Any:
        faults = Faults()
        return FaultMiddleware(create_app(CountingEmbedder(embedder, faults), *args, **kwargs), faults)

    return create_app_with_faults
