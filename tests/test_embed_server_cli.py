"""`amanmcp embed-server` refuses what it cannot serve on with one clear line and exit code 2, never a traceback."""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from embed_helpers import amanmcp_command

CASES = {
    "port over 65535": (["--port", "70000"], "--port must be between 1 and 65535"),
    "port 65536": (["--port", "65536"], "--port must be between 1 and 65535"),
    "negative port": (["--port", "-1"], "not -1"),
    "unresolvable host": (["--host", "no-such-host.invalid"], "--host 'no-such-host.invalid'"),
    "empty host": (["--host", ""], "--host is empty"),
    "not an address of this machine": (["--host", "192.0.2.1", "--port", "0"], "choose another --host"),
    "no request budget": (["--max-request-chars", "0"], "--max-request-chars"),
}


def run_embed_server(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "AMANMCP_STATIC_MODEL": "hashed"}
    return subprocess.run([*amanmcp_command(), "embed-server", "--backend", "static", *args],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=60)


def assert_one_clear_line(proc: subprocess.CompletedProcess[str], words: str) -> None:
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and words in lines[0], proc.stderr


@pytest.mark.parametrize("case", list(CASES))
def test_bad_addresses_and_limits_are_usage_errors(tmp_path: Path, case: str) -> None:
    args, words = CASES[case]
    assert_one_clear_line(run_embed_server(tmp_path, *args), words)


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def test_a_busy_port_is_a_usage_error_before_the_model_loads(tmp_path: Path, busy_port: int) -> None:
    proc = run_embed_server(tmp_path, "--port", str(busy_port))
    assert_one_clear_line(proc, f"cannot listen on 127.0.0.1:{busy_port}")
    assert "choose another --port" in proc.stderr and "loading" not in proc.stderr
