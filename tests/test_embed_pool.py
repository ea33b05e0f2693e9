"""`openai.endpoints`: several embedding servers as one pool (issue 11, item 3), against real
`amanmcp embed-server` processes on 127.0.0.1: batches spread over them, a mixed pool refused, an
endpoint killed mid-index taken out with its batches re-sent, nothing mixed, the loss reported."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import numpy as np
import pytest

from amanmcp.config import load_config
from amanmcp.embed.base import EmbedderError
from amanmcp.embed.factory import make_server
from amanmcp.embed.http import clear_probe_cache
from amanmcp.embed.openai import OpenAIEmbedder
from amanmcp.embed.pool import EmbedderPool
from conftest import wait_for
from embed_helpers import RunningServer, amanmcp_command, embed_server, hashed_embed_server
from embed_helpers import closed_port_url as dead_url

TEXTS = [f"def handler_{i}(request):\n    return respond(request, status={i})" for i in range(150)]


@pytest.fixture(autouse=True)
def _fresh_probes() -> Iterator[None]:
    clear_probe_cache()
    yield
    clear_probe_cache()


@pytest.fixture(scope="module")
def three(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[RunningServer]]:
    with ExitStack() as stack:
        yield [stack.enter_context(hashed_embed_server(tmp_path_factory.mktemp(f"s{i}"))) for i in range(3)]


def pool_of(urls: list[str], tmp_path: Path) -> EmbedderPool:
    settings = load_config(tmp_path, env={"AMANMCP_OPENAI_BASE_URLS": ",".join(urls)}).settings
    pool = make_server("openai", settings)
    assert isinstance(pool, EmbedderPool)
    return pool


def test_endpoints_setting_reads_a_list_or_a_comma_separated_string(tmp_path: Path) -> None:
    env = {"AMANMCP_OPENAI_BASE_URLS": "http://a:1, http://b:2/v1,,http://a:1"}
    assert load_config(tmp_path, env=env).settings.openai.endpoints == ["http://a:1", "http://b:2/v1", "http://a:1"]
    (tmp_path / ".amanmcp.yaml").write_text("openai:\n  endpoints: [http://a:1, http://b:2]\n")
    pool = make_server("openai", load_config(tmp_path, env={}).settings)
    assert isinstance(pool, EmbedderPool) and pool.endpoint == "http://a:1, http://b:2"
    (tmp_path / ".amanmcp.yaml").write_text("openai:\n  endpoints: [http://a:1/, http://a:1]\n")
    single = make_server("openai", load_config(tmp_path, env={}).settings)  # one distinct endpoint: no pool
    assert isinstance(single, OpenAIEmbedder) and single.endpoint == "http://a:1"


def test_batches_spread_over_every_endpoint_and_equal_one_server(three: list[RunningServer], tmp_path: Path) -> None:
    before = [s.state()["seen"] for s in three]
    pool = pool_of([s.url for s in three], tmp_path)
    vectors = pool.embed_documents(TEXTS)
    alone = OpenAIEmbedder(three[0].url, batch_size=16).embed_documents(TEXTS)
    assert vectors.shape == alone.shape and np.allclose(vectors, alone, atol=1e-6)  # order kept, one model
    served = [s.state()["seen"] - b for s, b in zip(three, before, strict=True)]
    assert all(n >= 1 for n in served), served  # every endpoint took batches
    stats = pool.report()
    assert sum(s.texts for s in stats) == len(TEXTS) and all(s.batches >= 1 and not s.failed for s in stats)
    assert pool.identity == OpenAIEmbedder(three[1].url).identity  # the same identity as any one endpoint
    assert np.allclose(pool.embed_query("respond to a request"), OpenAIEmbedder(three[2].url).embed_query(
        "respond to a request"), atol=1e-6)


def test_an_endpoint_that_fails_is_taken_out_and_its_batches_go_elsewhere(
    three: list[RunningServer], tmp_path: Path
) -> None:
    three[1].faults(fail_next=1000, status=503)  # down for good: every retry fails
    try:
        pool = pool_of([s.url for s in three], tmp_path)
        pool.members[1].backoff = 0.01
        vectors = pool.embed_documents(TEXTS)
    finally:
        three[1].faults()
    alone = OpenAIEmbedder(three[0].url, batch_size=16).embed_documents(TEXTS)
    assert np.allclose(vectors, alone, atol=1e-6)
    failed = {s.endpoint: s for s in pool.report()}[three[1].url]
    assert "HTTP 503" in failed.failed and failed.texts == 0
    assert sum(s.texts for s in pool.report()) == len(TEXTS)


def test_a_mixed_pool_is_refused_with_what_each_endpoint_serves(three: list[RunningServer], tmp_path: Path) -> None:
    with embed_server(tmp_path, "--backend", "local") as real:  # all-MiniLM-L6-v2, 384d; the others: hashed
        pool = pool_of([three[0].url, real.url], tmp_path)
        with pytest.raises(EmbedderError, match="serve different models") as caught:
            pool.embed_documents(TEXTS[:4])
    message = str(caught.value)
    assert three[0].url in message and real.url in message and "all-MiniLM-L6-v2" in message
    assert "must not share an index" in message


def test_every_endpoint_down_is_one_clear_error(tmp_path: Path) -> None:
    pool = pool_of([dead_url(), dead_url()], tmp_path)
    for member in pool.members:
        member.backoff = 0.01
    with pytest.raises(EmbedderError, match=r"every endpoint of `openai.endpoints` failed .*--backend static"):
        pool.embed_documents(TEXTS[:4])
    assert not pool.health().ok


def write_many(root: Path, n: int = 240) -> Path:
    for i in range(n):
        folder = root / "src" / f"pkg{i % 12}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"mod_{i:03d}.py").write_text(
            f"def compute_{i:03d}(value):\n    \"\"\"Scale the value by {i}.\"\"\"\n    return value * {i}\n"
        )
    return root


@pytest.mark.slow
def test_endpoint_killed_mid_index_the_index_completes_on_the_rest(tmp_path: Path) -> None:
    root = write_many(tmp_path / "project")
    with ExitStack() as stack:
        folders = [tmp_path / f"s{i}" for i in range(3)]
        for folder in folders:
            folder.mkdir()
        servers = [stack.enter_context(hashed_embed_server(folder)) for folder in folders]
        for server in servers:
            server.faults(slow_seconds=0.05)  # a few seconds of indexing: time to kill one mid-run
        env = {**os.environ, "AMANMCP_OPENAI_BASE_URLS": ",".join(s.url for s in servers),
               "AMANMCP_EMBEDDINGS_BATCH_SIZE": "8"}
        run = subprocess.Popen([*amanmcp_command(), "index", str(root), "--backend", "openai"], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wait_for(lambda: servers[1].state()["seen"] >= 3, 60, "the second endpoint to take batches")
        servers[1].process.kill()
        out, err = run.communicate(timeout=300)
        assert run.returncode == 0, err[-3000:]
        reported = {s.url: [line for line in out.splitlines() if line.startswith(f"endpoint {s.url}: ")]
                    for s in servers}
        assert all(len(lines) == 1 for lines in reported.values()), out
        assert "taken out" in reported[servers[1].url][0] and "re-sent to the others" in reported[servers[1].url][0]
        assert all("taken out" not in reported[s.url][0] for s in (servers[0], servers[2])), out
        print("\n" + "\n".join(lines[0] for lines in reported.values()))

        # Nothing lost, nothing mixed: the same answers as an index built through one surviving server.
        twin = tmp_path / "twin"
        write_many(twin)
        single = {**os.environ, "AMANMCP_OPENAI_BASE_URL": servers[0].url}
        done = subprocess.run([*amanmcp_command(), "index", str(twin), "--backend", "openai"], env=single,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
        for query in ("scale the value by 117", "compute_042", "multiply a value"):
            answers = []
            for folder, environment in ((root, env), (twin, single)):
                found = subprocess.run(
                    [*amanmcp_command(), "search", query, "--path", str(folder), "--format", "json", "-n", "5"],
                    env={**environment, "AMANMCP_OPENAI_BASE_URLS": servers[0].url, "AMANMCP_EMBEDDER": "openai"},
                    capture_output=True, text=True, timeout=120)
                assert found.returncode == 0, found.stderr[-2000:]
                answer = json.loads(found.stdout)
                assert answer["search_quality"]["mode"] == "hybrid" and not answer["search_quality"]["degraded"]
                answers.append([(r["path"], r["start_line"], round(r["score"], 5)) for r in answer["results"]])
            assert answers[0] == answers[1], query


def test_concurrent_pool_calls_share_the_endpoints(three: list[RunningServer], tmp_path: Path) -> None:
    """Two index runs in one process (the watcher and a rebuild) may embed at once: both complete."""
    pool = pool_of([s.url for s in three], tmp_path)
    out: list[np.ndarray] = []
    threads = [threading.Thread(target=lambda: out.append(pool.embed_documents(TEXTS))) for _ in range(2)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert time.monotonic() - started < 60 and len(out) == 2 and np.allclose(out[0], out[1])
