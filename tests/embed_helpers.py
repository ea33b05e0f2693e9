"""A real `amanmcp embed-server` on an ephemeral port, for the HTTP backend tests.

`embed_server(..., faults=True)` runs the same command through tests/fault_server.py, which wraps the
shipped app in the test-only fault switch (tests/fault_app.py); the shipped server has none.
"""

from __future__ import annotations

import contextlib
import functools
import os
import queue
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

READY = re.compile(r"serving (\S+) \((\w+), (\d+)d\) at (http://\S+)")
FAULT_SERVER = Path(__file__).resolve().parent / "fault_server.py"


@dataclass(frozen=True)
class RunningServer:
    url: str
    model: str
    backend: str
    dimensions: int
    process: subprocess.Popen[str]
    switch: bool = False  # started with the test-only fault switch
    stderr: list[str] = field(default_factory=list, compare=False)  # every line it has written so far

    def faults(self, **switch: object) -> dict[str, object]:
        """Set the test-only fault switch: fail_next, status, hang_next, hang_seconds, slow_seconds,
        reset_seen, reset_calls (tests/fault_app.py); fields not named go back to their defaults."""
        self._need_switch()
        response = _switch_client().post(f"{self.url}/_faults", json=switch)
        response.raise_for_status()
        return dict(response.json())

    def state(self) -> dict[str, object]:
        """The switch and its counters (seen, calls, call_sizes), changing nothing."""
        self._need_switch()
        response = _switch_client().get(f"{self.url}/_faults")
        response.raise_for_status()
        return dict(response.json())

    def seen(self) -> int:
        """Embedding requests the server has received (faulty or not)."""
        return int(self.faults(fail_next=0)["seen"])  # type: ignore[call-overload]

    def _need_switch(self) -> None:
        if not self.switch:
            raise AssertionError("this server has no fault switch: start it with embed_server(..., faults=True)")


@functools.cache
def _switch_client() -> httpx.Client:
    """One kept-alive client for the switch: it is set around every test (a fresh client costs ~10 ms)."""
    return httpx.Client(timeout=5)


def amanmcp_command() -> list[str]:
    script = Path(sys.executable).parent / "amanmcp"
    return [str(script)] if script.exists() else [sys.executable, "-c", "from amanmcp.cli import main; main()"]


@contextlib.contextmanager
def embed_server(
    cwd: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 90.0, faults: bool = False
) -> Iterator[RunningServer]:
    """Start `amanmcp embed-server --port 0 ARGS`, wait for its ready line, stop it afterwards.
    `faults`: the same command with the test-only fault switch (tests/fault_server.py)."""
    environment = {**os.environ, **(env or {})}
    command = [sys.executable, str(FAULT_SERVER)] if faults else amanmcp_command()
    process = subprocess.Popen(
        [*command, "embed-server", "--port", "0", *args],
        cwd=cwd, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    lines: queue.Queue[str | None] = queue.Queue()
    output: list[str] = []

    def pump() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            output.append(line)
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
        yield RunningServer(url, model, backend, int(dims), process, switch=faults, stderr=output)
    finally:
        stop_process(process)


def stop_process(process: subprocess.Popen[str]) -> None:
    """Terminate a server the tests started, killing it if it does not exit within 10 s."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def hashed_embed_server(cwd: Path) -> contextlib.AbstractContextManager[RunningServer]:
    """The quick-starting server the HTTP tests share: static hashed model, small limits to test against,
    with the fault switch."""
    return embed_server(cwd, "--backend", "static", "--max-batch", "16", "--max-text-chars", "5000",
                        env={"AMANMCP_STATIC_MODEL": "hashed"}, faults=True)


def closed_port_url() -> str:
    """An address where nothing listens (bound, then released)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"
