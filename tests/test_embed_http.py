"""The mlx, openai and ollama clients against a real `amanmcp embed-server` (no mocks)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from amanmcp.embed.base import Embedder, EmbedderError
from amanmcp.embed.http import HttpEmbedder, RequestRejected, clear_probe_cache
from amanmcp.embed.mlx import MlxEmbedder
from amanmcp.embed.mlx import canonical as mlx_canonical
from amanmcp.embed.ollama import OllamaEmbedder
from amanmcp.embed.openai import OpenAIEmbedder
from amanmcp.embed.static import HashedEmbedder
from embed_helpers import RunningServer, closed_port_url, embed_server, hashed_embed_server

TEXTS = [f"def handler_{i}(request):\n    return retry_with_backoff(request, attempts={i})" for i in range(11)]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with hashed_embed_server(tmp_path_factory.mktemp("server")) as running:
        yield running


@pytest.fixture(autouse=True)
def _clean_switch(server: RunningServer) -> Iterator[None]:
    clear_probe_cache()
    server.faults(fail_next=0, hang_next=0, reset_seen=True)
    yield
    server.faults(fail_next=0, hang_next=0)


def clients(url: str, model: str, **kwargs: object) -> list[HttpEmbedder]:
    """One client of each kind; Ollama always names a model, so it gets the served one when `model` is ''."""
    return [
        MlxEmbedder(url, model, **kwargs),  # type: ignore[arg-type]
        OpenAIEmbedder(url, model, **kwargs),  # type: ignore[arg-type]
        OllamaEmbedder(url, model or "hashed-identifiers-v1", **kwargs),  # type: ignore[arg-type]
    ]


def test_server_announces_and_names_its_model(server: RunningServer) -> None:
    assert (server.model, server.backend, server.dimensions) == ("hashed-identifiers-v1", "static", 512)
    health = httpx.get(f"{server.url}/health").json()
    assert health["status"] == "healthy" and health["model"] == server.model and health["dim"] == 512
    assert httpx.get(f"{server.url}/api/tags").json()["models"][0]["name"] == server.model
    assert httpx.get(f"{server.url}/v1/models").json()["data"][0]["id"] == server.model


@pytest.mark.parametrize("model", ["", "hashed-identifiers-v1"])
def test_every_client_gets_the_in_process_vectors(server: RunningServer, model: str) -> None:
    """Batches of 4 with 3 in flight, order kept, normalised on our side: same as embedding here."""
    expected = HashedEmbedder().embed_documents(TEXTS)
    for client in clients(server.url, model, batch_size=4, max_in_flight=3):
        assert isinstance(client, Embedder)
        vectors = client.embed_documents(TEXTS)
        assert vectors.shape == (11, 512) and vectors.dtype == np.float32
        assert np.allclose(vectors, expected, atol=1e-6), type(client).__name__
        assert np.allclose(client.embed_query(TEXTS[3]), expected[3], atol=1e-6)
        identity = client.identity
        assert (identity.backend, identity.model, identity.dimensions) == (client.backend, server.model, 512)
        client.close()
    assert server.seen() >= 3 * (3 + 1)  # 3 batches and one query per client, at least


def test_clients_batch_instead_of_one_call_per_text(server: RunningServer) -> None:
    client = OpenAIEmbedder(server.url, batch_size=5)
    client.embed_documents(TEXTS)
    assert server.seen() == 3  # 11 texts in batches of 5


def test_transient_failures_are_retried(server: RunningServer) -> None:
    for client in clients(server.url, "", backoff=0.05):
        server.faults(fail_next=2, status=503, reset_seen=True)
        assert client.embed_documents(TEXTS[:2]).shape == (2, 512)
        assert server.seen() == 3  # two 503s, then success on the third attempt


def test_persistent_failure_ends_in_a_clear_error(server: RunningServer) -> None:
    server.faults(fail_next=3, status=500, reset_seen=True)
    client = MlxEmbedder(server.url, "", backoff=0.05)
    with pytest.raises(EmbedderError) as info:
        client.embed_documents(TEXTS[:2])
    message = str(info.value)
    assert "failed after 3 attempts" in message and "HTTP 500" in message and "injected fault" in message
    assert "amanmcp embed-server" in message and "--backend static" in message
    assert server.seen() == 3


def test_hangs_time_out_then_retry(server: RunningServer) -> None:
    server.faults(hang_next=1, hang_seconds=3, reset_seen=True)
    client = OllamaEmbedder(server.url, server.model, timeout=0.5, backoff=0.05)
    started = time.perf_counter()
    assert client.embed_documents(TEXTS[:2]).shape == (2, 512)
    assert time.perf_counter() - started < 2.5  # one 0.5 s timeout, not a 3 s hang
    server.faults(hang_next=3, hang_seconds=3, reset_seen=True)
    started = time.perf_counter()
    with pytest.raises(EmbedderError, match=r"failed after 3 attempts \(timed out"):
        client.embed_documents(TEXTS[:2])
    assert time.perf_counter() - started < 3.0
    assert server.seen() == 3


def test_rejections_are_not_retried_and_say_why(server: RunningServer) -> None:
    for client in clients(server.url, "some-other-model", backoff=0.05):
        server.faults(reset_seen=True)
        with pytest.raises(RequestRejected, match="not served here") as info:
            client.embed_documents(TEXTS[:2])
        assert "HTTP 404" in str(info.value)
        assert server.seen() == 1
    too_many = MlxEmbedder(server.url, "", batch_size=64)  # a batch-size error is answered, not fatal:
    server.faults(reset_seen=True)
    assert too_many.embed_documents(TEXTS * 2).shape == (22, 512)
    assert (too_many.batch_cap, server.seen()) == (16, 3)  # 22 (413 "the limit is 16"), then 16 + 6


def test_server_errors_are_json_never_tracebacks(server: RunningServer) -> None:
    cases = [
        ("POST", "/embed", {"texts": ["x"]}, 400),
        ("POST", "/embed_batch", {"texts": "x" * 10}, 400),
        ("POST", "/embed_batch", {"texts": [1, 2]}, 400),
        ("POST", "/embed_batch", {"texts": ["x" * 6000]}, 413),
        ("POST", "/embed_batch", {"texts": ["x"] * 17}, 413),
        ("POST", "/api/embed", {"model": "nope", "input": ["x"]}, 404),
        ("POST", "/v1/embeddings", {"input": ["x"], "encoding_format": "int8"}, 400),
        ("POST", "/v1/embeddings", {}, 400),
        ("GET", "/no/such/path", None, 404),
        ("GET", "/embed", None, 405),
    ]
    for method, path, body, status in cases:
        response = httpx.request(method, f"{server.url}{path}", json=body)
        assert response.status_code == status, (path, body, response.text)
        data = response.json()
        assert "error" in data and "Traceback" not in response.text
    bad = httpx.post(f"{server.url}/embed", content=b"{not json", headers={"content-type": "application/json"})
    assert bad.status_code == 400 and bad.json()["error"] == "the request body is not valid JSON"
    single = httpx.post(f"{server.url}/v1/embeddings", json={"input": "one string"}).json()
    assert len(single["data"]) == 1 and single["data"][0]["index"] == 0


def test_keep_alive_requests_do_not_stall(server: RunningServer) -> None:
    """Without TCP_NODELAY on the server's sockets each kept-alive request waited ~40 ms (Nagle)."""
    with httpx.Client(base_url=server.url) as client:
        timings = []
        for _ in range(8):
            started = time.perf_counter()
            client.get("/health").raise_for_status()
            timings.append(time.perf_counter() - started)
    assert sorted(timings)[len(timings) // 2] < 0.03


def test_unreachable_endpoint_is_fast_and_actionable() -> None:
    url = closed_port_url()
    for client in clients(url, "", backoff=0.01):
        started = time.perf_counter()
        health = client.health()
        assert not health.ok and time.perf_counter() - started < 1.5
        with pytest.raises(EmbedderError) as info:
            client.embed_documents(["x"])
        assert "failed after 3 attempts" in str(info.value) and "--backend static" in str(info.value)
    message = MlxEmbedder(url).unreachable_message("connection refused")
    assert message.startswith(f"MLX server not reachable at {url}")
    assert "amanmcp embed-server" in message and "or choose `--backend static`" in message


def test_probe_results_are_cached_for_the_process(tmp_path: Path) -> None:
    with embed_server(tmp_path, "--backend", "static", env={"AMANMCP_STATIC_MODEL": "hashed"}) as short_lived:
        client = OpenAIEmbedder(short_lived.url)
        assert client.health().ok
    assert client.health().ok  # remembered, although the server is gone
    assert not client.health(cached=False).ok
    clear_probe_cache()
    assert not OpenAIEmbedder(short_lived.url).health().ok


def test_bearer_key_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from amanmcp.config import load_config
    from amanmcp.embed.factory import select_embedder

    env = {"AMANMCP_STATIC_MODEL": "hashed", "AMANMCP_EMBED_SERVER_API_KEY": "s3cret"}
    with embed_server(tmp_path, "--backend", "static", env=env) as guarded:
        assert httpx.get(f"{guarded.url}/health").status_code == 200  # health stays open for probes
        anonymous = OpenAIEmbedder(guarded.url)
        assert not anonymous.health().ok and "AMANMCP_OPENAI_API_KEY" in anonymous.health().detail
        with pytest.raises(RequestRejected, match=r"HTTP 401.*set AMANMCP_OPENAI_API_KEY"):
            anonymous.embed_documents(["x"])
        clear_probe_cache()
        monkeypatch.setenv("AMANMCP_OPENAI_BASE_URL", guarded.url)
        monkeypatch.setenv("AMANMCP_OPENAI_API_KEY", "s3cret")
        selection = select_embedder(load_config(tmp_path).settings, "openai")
        assert selection.embedder.embed_documents(["x", "y"]).shape == (2, 512)


def test_mlx_aliases_are_one_vector_space() -> None:
    assert mlx_canonical("small") == ("mlx-community/Qwen3-Embedding-0.6B-4bit-DWQ", 1024)
    assert mlx_canonical("mlx-community/Qwen3-Embedding-8B-4bit-DWQ")[1] == 4096
    assert mlx_canonical("MEDIUM") == mlx_canonical("4b")
    small = MlxEmbedder(closed_port_url(), "small")
    assert small.dimensions == 1024 and small.model_name == mlx_canonical("small")[0]
    assert small.identity.query_prefix.startswith("Instruct:")  # Qwen3 wants an instruction on queries


def test_local_backend_served_over_http_matches_in_process(tmp_path: Path, embedder) -> None:
    """One GPU box can serve a team: its vectors are the in-process model's."""
    with embed_server(tmp_path, "--backend", "local") as running:
        assert (running.model, running.dimensions) == (embedder.identity.model, 384)  # +int8 on a CPU
        client = OpenAIEmbedder(running.url, batch_size=8)
        remote = client.embed_documents(TEXTS)
        local = embedder.embed_documents(TEXTS)
        assert np.min(np.sum(remote * local, axis=1)) > 0.9999
        assert client.identity.model == embedder.identity.model
        assert client.identity != embedder.identity  # another backend: never mixed in one index
