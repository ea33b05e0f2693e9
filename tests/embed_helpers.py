"""A real `amanmcp embed-server` on an ephemeral port, for the HTTP backend tests."""

from __future__ import annotations

import contextlib
import os
import queue
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

READY = re.compile(r"serving (\S+) \((\w+), (\d+)d\) at (http://\S+)")


@dataclass(frozen=True)
class RunningServer:
    url: str
    model: str
    backend: str
    dimensions: int
    process: subprocess.Popen[str]

    def faults(self, **switch: object) -> dict[str, object]:
        """Set the test-only fault switch: fail_next, status, hang_next, hang_seconds, reset_seen."""
        response = httpx.post(f"{self.url}/_faults", json=switch, timeout=5)
        response.raise_for_status()
        return dict(response.json())

    def seen(self) -> int:
        """Embedding requests the server has received (faulty or not)."""
        return int(httpx.post(f"{self.url}/_faults", json={"fail_next": 0}, timeout=5).json()["seen"])


def amanmcp_command() -> list[str]:
    script = Path(sys.executable).parent / "amanmcp"
    return [str(script)] if script.exists() else [sys.executable, "-c", "from amanmcp.cli import main; main()"]


@contextlib.contextmanager
def embed_server(
    cwd: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 90.0
) -> Iterator[RunningServer]:
    """Start `amanmcp embed-server --port 0 ARGS`, wait for its ready line, stop it afterwards."""
    environment = {**os.environ, "AMANMCP_EMBED_SERVER_FAULTS": "1", **(env or {})}
    process = subprocess.Popen(
        [*amanmcp_command(), "embed-server", "--port", "0", *args],
        cwd=cwd, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    seen: list[str] = []
    try:
        while True:
            try:
                line = lines.get(timeout=timeout)
            except queue.Empty:
                raise AssertionError(f"embed-server not ready after {timeout}s: {''.join(seen)}") from None
            if line is None:
                raise AssertionError(f"embed-server exited ({process.wait()}): {''.join(seen)}")
            seen.append(line)
            match = READY.search(line)
            if match:
                break
        model, backend, dims, url = match.groups()
        yield RunningServer(url, model, backend, int(dims), process)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def hashed_embed_server(cwd: Path) -> contextlib.AbstractContextManager[RunningServer]:
    """The quick-starting server the HTTP tests share: static hashed model, small limits to test against."""
    return embed_server(cwd, "--backend", "static", "--max-batch", "16", "--max-text-chars", "5000",
                        env={"AMANMCP_STATIC_MODEL": "hashed"})


def closed_port_url() -> str:
    """An address where nothing listens (bound, then released)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"
