"""Selection rules (auto, explicit, unreachable), the query cache, and vector spaces that never mix."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from amanmcp.config import Settings, load_config
from amanmcp.embed.base import EmbedderError, EmbedderIdentity, query_prefix_for
from amanmcp.embed.factory import QUERY_CACHE, ManagedEmbedder, select_embedder
from amanmcp.embed.http import clear_probe_cache
from amanmcp.embed.static import HashedEmbedder
from amanmcp.indexer import Indexer
from amanmcp.search import Searcher
from conftest import default_local_model
from embed_helpers import RunningServer, amanmcp_command, closed_port_url, embed_server

NO_LOCAL = "no-such-org/no-such-model"  # a hub name that is not downloaded: local is unavailable


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with embed_server(tmp_path_factory.mktemp("server"), "--backend", "static",
                      env={"AMANMCP_STATIC_MODEL": "hashed"}) as running:
        yield running


@pytest.fixture(autouse=True)
def _fresh_probes() -> None:
    clear_probe_cache()
    QUERY_CACHE.clear()


def configure(project: Path, env: dict[str, str]) -> Settings:
    return load_config(project, env=env).settings


def dead_servers() -> dict[str, str]:
    url = closed_port_url()
    return {"AMANMCP_MLX_ENDPOINT": url, "AMANMCP_OLLAMA_HOST": url, "AMANMCP_OPENAI_BASE_URL": url}


def test_auto_prefers_the_in_process_model(project: Path) -> None:
    selection = select_embedder(configure(project, dead_servers()), apple_silicon=False)
    assert (selection.requested, selection.backend, selection.fallback) == ("auto", "local", False)
    assert selection.embedder.identity.model == default_local_model()
    assert [(a.backend, a.ok) for a in selection.attempts] == [("mlx", False), ("local", True)]
    assert selection.attempts[0].detail == "not Apple Silicon"


def test_auto_on_apple_silicon_uses_a_healthy_mlx_server(project: Path, server: RunningServer) -> None:
    settings = configure(project, {"AMANMCP_MLX_ENDPOINT": server.url, "AMANMCP_MLX_MODEL": server.model})
    selection = select_embedder(settings, apple_silicon=True)
    assert (selection.backend, selection.fallback) == ("mlx", False)
    assert selection.embedder.identity == EmbedderIdentity("mlx", server.model, 512, True, "")


def test_auto_on_apple_silicon_without_mlx_server_is_local_not_a_fallback(project: Path) -> None:
    selection = select_embedder(configure(project, dead_servers()), apple_silicon=True)
    assert (selection.backend, selection.fallback) == ("local", False)
    mlx = selection.attempts[0]
    assert mlx.backend == "mlx" and not mlx.ok and "MLX server not reachable" in mlx.detail


def test_auto_falls_back_to_ollama_then_static_and_says_so(project: Path, server: RunningServer) -> None:
    env = {**dead_servers(), "AMANMCP_EMBEDDINGS_MODEL": NO_LOCAL,
           "AMANMCP_OLLAMA_HOST": server.url, "AMANMCP_OLLAMA_MODEL": server.model}
    selection = select_embedder(configure(project, env), apple_silicon=False)
    assert (selection.backend, selection.fallback) == ("ollama", True)
    assert "local unavailable" in selection.reason and "not downloaded" in selection.reason
    assert selection.embedder.provenance.chain().startswith("mlx ✗ (not Apple Silicon) → local ✗")

    env["AMANMCP_OLLAMA_HOST"] = closed_port_url()
    clear_probe_cache()
    selection = select_embedder(configure(project, env), apple_silicon=False)
    assert (selection.backend, selection.fallback) == ("static", True)
    # the distilled static model needs the local model too: the hashed bag is the floor that always works
    assert selection.embedder.identity.model == HashedEmbedder.MODEL
    assert [a.backend for a in selection.attempts] == ["mlx", "local", "ollama", "static"]


def test_probes_are_short(project: Path) -> None:
    import time

    env = {**dead_servers(), "AMANMCP_EMBEDDINGS_MODEL": NO_LOCAL}
    env["AMANMCP_OLLAMA_HOST"] = "http://10.255.255.1:11434"  # unroutable: a connect timeout, not a refusal
    started = time.perf_counter()
    select_embedder(configure(project, env), apple_silicon=True)
    assert time.perf_counter() - started < 4.0  # mlx refused + ollama ≤ 1 s (+ slack for a loaded CI box)


@pytest.mark.parametrize(
    ("backend", "says"),
    [
        ("mlx", "MLX server not reachable at"),
        ("ollama", "Ollama not reachable at"),
        ("openai", "OpenAI-compatible server not reachable at"),
    ],
)
def test_explicit_choice_never_falls_back(project: Path, backend: str, says: str) -> None:
    settings = configure(project, dead_servers())
    with pytest.raises(EmbedderError) as info:
        select_embedder(settings, backend)
    message = str(info.value)
    assert message.startswith(says) and "or choose `--backend static`" in message
    env = {**dead_servers(), "AMANMCP_EMBEDDER": backend}
    with pytest.raises(EmbedderError):
        select_embedder(configure(project, env))  # the same through AMANMCP_EMBEDDER


def test_explicit_static_does_not_silently_become_hashed(project: Path) -> None:
    settings = configure(project, {"AMANMCP_EMBEDDINGS_MODEL": NO_LOCAL})
    with pytest.raises(EmbedderError, match=r"static\.model: hashed"):
        select_embedder(settings, "static")
    hashed = select_embedder(configure(project, {"AMANMCP_STATIC_MODEL": "hashed"}), "static")
    assert (hashed.backend, hashed.fallback, hashed.reason) == ("static", False, "chosen explicitly")


def test_explicit_local_with_a_missing_model_fails_clearly(project: Path, tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text('{"model_type": "gpt2"}')
    settings = configure(project, {"AMANMCP_EMBEDDINGS_MODEL": str(tmp_path), "AMANMCP_EMBEDDINGS_RUNTIME": "onnx"})
    with pytest.raises(EmbedderError, match="onnx runtime runs BERT safetensors models only"):
        _ = select_embedder(settings, "local").embedder.identity


def test_unknown_backend(project: Path) -> None:
    with pytest.raises(EmbedderError, match="unknown backend 'gpu'"):
        select_embedder(configure(project, {}), "gpu")


def test_query_cache_hits_and_switch(project: Path) -> None:
    settings = configure(project, {"AMANMCP_STATIC_MODEL": "hashed"})
    embedder = select_embedder(settings, "static").embedder
    assert isinstance(embedder, ManagedEmbedder)
    first = embedder.embed_query("where are retries handled")
    again = embedder.embed_query("where are retries handled")
    assert again is first and (QUERY_CACHE.hits, QUERY_CACHE.misses) == (1, 1)
    with pytest.raises(ValueError):
        first[0] = 1.0  # cached vectors are shared, so read-only

    off = select_embedder(configure(project, {"AMANMCP_STATIC_MODEL": "hashed", "AMANMCP_EMBED_CACHE": "false"}),
                          "static").embedder
    off.embed_query("where are retries handled")
    assert (QUERY_CACHE.hits, QUERY_CACHE.misses) == (1, 1)  # not consulted at all


def test_query_cache_key_is_identity_and_text(project: Path, embedder) -> None:
    hashed = select_embedder(configure(project, {"AMANMCP_STATIC_MODEL": "hashed"}), "static").embedder
    local = select_embedder(configure(project, dead_servers()), "local").embedder
    a = hashed.embed_query("parse the config")
    b = local.embed_query("parse the config")
    assert a.shape == (512,) and b.shape == (384,) and len(QUERY_CACHE) == 2
    assert np.allclose(b, embedder.embed_query("parse the config"), atol=1e-6)


def test_query_cache_is_bounded() -> None:
    from amanmcp.embed.factory import QueryCache

    cache = QueryCache(size=3)
    identity = EmbedderIdentity("static", "m", 2)
    for i in range(5):
        cache.put((identity, str(i)), np.zeros(2))
    assert len(cache) == 3 and cache.get((identity, "0")) is None and cache.get((identity, "4")) is not None


def test_identity_records_query_instructions() -> None:
    assert query_prefix_for("qwen3-embedding:0.6b").startswith("Instruct: ")
    assert query_prefix_for("intfloat/e5-base-v2") == "query: "
    assert query_prefix_for("BAAI/bge-small-en-v1.5").startswith("Represent this sentence")
    assert query_prefix_for("BAAI/bge-m3") == ""
    assert query_prefix_for("all-MiniLM-L6-v2") == ""


def test_other_embedder_means_bm25_only_and_reindex_reembeds_all(project: Path) -> None:
    settings = configure(project, dead_servers())
    hashed = select_embedder(configure(project, {"AMANMCP_STATIC_MODEL": "hashed"}), "static").embedder
    first = Indexer(project, settings, hashed).run()
    local = select_embedder(settings, apple_silicon=False).embedder

    response = Searcher(project, settings, local).search("where are retries handled")
    quality = response.search_quality
    assert (quality.mode, quality.degraded) == ("bm25_only", True)
    assert quality.reason.startswith("embedder_mismatch") and "re-run `amanmcp index`" in quality.reason
    assert (quality.backend, quality.model) == ("static", HashedEmbedder.MODEL)

    second = Indexer(project, settings, local).run()
    assert second.full_rebuild and "re-embedding every chunk" in second.reason
    assert second.chunks_embedded == second.chunks_total == first.chunks_total
    quality = Searcher(project, settings, local).search("where are retries handled").search_quality
    assert (quality.mode, quality.degraded, quality.reason) == ("hybrid", False, "")


def test_search_reports_a_fallback_embedder_as_degraded(project: Path) -> None:
    env = {**dead_servers(), "AMANMCP_EMBEDDINGS_MODEL": NO_LOCAL}
    settings = configure(project, env)
    selection = select_embedder(settings, apple_silicon=False)
    assert selection.fallback
    Indexer(project, settings, selection.embedder).run()
    response = Searcher(project, settings, selection.embedder).search("retry_with_backoff")
    quality = response.search_quality
    assert quality.mode == "hybrid" and quality.degraded
    assert quality.reason.startswith("embedder_fallback: auto fallback: local unavailable")
    assert response.results[0].path == "src/payments/retry.py"


def test_cli_explicit_backend_error_is_one_clear_line(project: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", **dead_servers(), "XDG_CONFIG_HOME": str(project / ".xdg")}
    import os

    env["XDG_CACHE_HOME"] = os.environ["XDG_CACHE_HOME"]
    proc = subprocess.run([*amanmcp_command(), "index", str(project), "--backend", "mlx"],
                          capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 1
    assert "error: MLX server not reachable at" in proc.stderr and "Traceback" not in proc.stderr
    assert "amanmcp embed-server" in proc.stderr
