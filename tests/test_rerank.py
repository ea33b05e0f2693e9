"""The rerank client and the embed-server's /rerank route, against a real `amanmcp embed-server` process.

Two helpers stand in for servers we cannot run here, and say so where they are used: a small real
HTTP relay that speaks text-embeddings-inference's dialect (it accepts only `texts`, answers the
`documents` form with TEI's 422, and forwards the texts to the real embed-server for the scores),
and one httpx.MockTransport test for the 413-halving path with TEI's exact batch-size message.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from amanmcp.config import load_config
from amanmcp.embed.base import EmbedderError
from amanmcp.embed.rerank import PLACEHOLDER, Reranker, RerankError, make_reranker
from amanmcp.embed.static import HashedEmbedder
from embed_helpers import RunningServer, closed_port_url, embed_server, hashed_embed_server

QUERY = "retry_with_backoff after a ConnectionError"
DOCUMENTS = [
    "class Invoice:\n    number: str\n    total_cents: int\n\n    def apply_discount(self, percent): ...",
    "def retry_with_backoff(func, attempts=3):\n    for attempt in range(attempts):\n        try:\n"
    "            return func()\n        except ConnectionError:\n            time.sleep(2 ** attempt)",
    "export function addItemToCart(cart, item) {\n  cart.items.push(item);\n  return cart;\n}",
    "## Installation\n\nInstall with pip and run the setup wizard.",
]
RELEVANT = 1


def expected_scores(query: str, documents: list[str]) -> np.ndarray:
    """What the server computes: cosine of the embedded query and documents (hashed static model)."""
    hashed = HashedEmbedder()
    return hashed.embed_documents(documents) @ hashed.embed_query(query)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with hashed_embed_server(tmp_path_factory.mktemp("rerank-server")) as running:
        yield running


@pytest.fixture(autouse=True)
def _clean_switch(server: RunningServer) -> Iterator[None]:
    server.faults(fail_next=0, hang_next=0, reset_seen=True)
    yield
    server.faults(fail_next=0, hang_next=0)


# -- the embed-server's route ----------------------------------------------------------------------


def test_server_rerank_puts_the_relevant_document_first(server: RunningServer) -> None:
    answer = httpx.post(f"{server.url}/rerank", json={"query": QUERY, "documents": DOCUMENTS}).json()
    assert answer["model"] == server.model and answer["query"] == QUERY and answer["count"] == len(DOCUMENTS)
    results = answer["results"]
    assert results[0]["index"] == RELEVANT and results[0]["document"] == DOCUMENTS[RELEVANT]
    assert results[0]["score"] > results[1]["score"] + 0.1  # clearly, not by a hair
    scores = [r["score"] for r in results]
    assert scores == sorted(scores, reverse=True)
    assert sorted(r["index"] for r in results) == list(range(len(DOCUMENTS)))
    expected = expected_scores(QUERY, DOCUMENTS)
    for r in results:
        assert r["relevance_score"] == r["score"]
        assert r["score"] == pytest.approx(float(expected[r["index"]]), abs=1e-5)
        assert r["document"] == DOCUMENTS[r["index"]]


def test_server_rerank_accepts_the_tei_form_and_a_top_n(server: RunningServer) -> None:
    answer = httpx.post(f"{server.url}/v1/rerank",
                        json={"query": QUERY, "texts": DOCUMENTS, "top_n": 2, "model": server.model}).json()
    assert [r["index"] for r in answer["results"]][:1] == [RELEVANT] and answer["count"] == 2
    top_k = httpx.post(f"{server.url}/rerank", json={"query": QUERY, "documents": DOCUMENTS, "top_k": 1}).json()
    assert [r["index"] for r in top_k["results"]] == [RELEVANT]
    cohere_objects = [{"text": d} for d in DOCUMENTS]
    answer = httpx.post(f"{server.url}/rerank", json={"query": QUERY, "documents": cohere_objects}).json()
    assert answer["results"][0]["index"] == RELEVANT


def test_server_rerank_errors_are_json(server: RunningServer) -> None:
    cases = [
        ({"documents": ["x"]}, 400, "query"),
        ({"query": "  ", "documents": ["x"]}, 400, "empty"),
        ({"query": "q"}, 400, "documents"),
        ({"query": "q", "documents": "one string"}, 400, "list"),
        ({"query": "q", "documents": []}, 400, "empty"),
        ({"query": "q", "documents": ["x", 3]}, 400, "strings"),
        ({"query": "q", "documents": ["x"] * 17}, 413, "limit is 16"),
        ({"query": "q", "documents": ["x" * 6000]}, 413, "limit is 5,000"),
        ({"query": "q" * 6000, "documents": ["x"]}, 413, "query"),
        ({"query": "q", "documents": ["x"], "model": "nope"}, 404, "not served here"),
        ({"query": "q", "documents": ["x"], "top_k": 0}, 400, "top_k"),
        ({"query": "q", "documents": ["x"], "top_n": "2"}, 400, "top_n"),
    ]
    for body, status, words in cases:
        for path in ("/rerank", "/v1/rerank"):
            response = httpx.post(f"{server.url}{path}", json=body)
            assert response.status_code == status, (path, body, response.text)
            assert words in response.text and "Traceback" not in response.text
            error = response.json()["error"]
            assert isinstance(error, str) if path == "/rerank" else isinstance(error["message"], str)
    bad = httpx.post(f"{server.url}/rerank", content=b"{nope", headers={"content-type": "application/json"})
    assert bad.status_code == 400 and bad.json()["error"] == "the request body is not valid JSON"
    assert httpx.get(f"{server.url}/rerank").status_code == 405


def test_server_rerank_goes_through_the_fault_switch(server: RunningServer) -> None:
    server.faults(fail_next=1, status=503, reset_seen=True)
    assert httpx.post(f"{server.url}/rerank", json={"query": "q", "documents": ["x"]}).status_code == 503
    assert httpx.post(f"{server.url}/rerank", json={"query": "q", "documents": ["x"]}).status_code == 200
    assert server.seen() == 2


def test_local_model_server_ranks_by_meaning(tmp_path: Path) -> None:
    """The real MiniLM model behind /rerank: no shared words needed to find the right passage."""
    with embed_server(tmp_path, "--backend", "local") as running:
        with Reranker(running.url) as reranker:
            scores = reranker.score(
                "how do I make a failed network request try again",
                ["The invoice total includes tax and discounts.",
                 "If a call to the remote server fails, it is repeated after a growing delay.",
                 "Shopping cart items are shown with their prices."],
            )
        assert int(np.argmax(scores)) == 1 and scores[1] > max(scores[0], scores[2]) + 0.1


# -- the client against the real server --------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["mlx", "cohere", "tei", "auto"])
def test_client_scores_are_aligned_with_the_documents(server: RunningServer, fmt: str) -> None:
    documents = [*DOCUMENTS[:2], "", DOCUMENTS[2], "   \n", DOCUMENTS[3]]
    with Reranker(server.url, format=fmt) as reranker:
        assert reranker.label == f"{fmt}:default at {server.url}"
        scores = reranker.score(QUERY, documents)
        sent = [d if d.strip() else PLACEHOLDER for d in documents]  # blanks travel as a placeholder
        assert len(scores) == len(documents) and all(isinstance(s, float) for s in scores)
        assert np.allclose(scores, expected_scores(QUERY, sent), atol=1e-5)
        assert int(np.argmax(scores)) == RELEVANT
        resolved = "mlx" if fmt == "auto" else fmt  # the embed-server answers MLX-style `score`s
        assert reranker.label == f"{resolved}:{server.model} at {server.url}"  # the model it answered
        assert reranker.score(QUERY, []) == []
    assert server.seen() == 1  # one request: no path or form probing against a server that has both


def test_client_names_the_configured_model(server: RunningServer) -> None:
    with Reranker(server.url + "/", model=server.model, format="cohere") as reranker:
        assert reranker.label == f"cohere:{server.model} at {server.url}"
        assert int(np.argmax(reranker.score(QUERY, DOCUMENTS))) == RELEVANT


def test_batches_over_the_server_limit_are_halved(server: RunningServer) -> None:
    """TEI form: 40 texts go 32 at a time; this server takes 16, says so (413), and gets halves."""
    documents = [f"def helper_{i}(x):\n    return x + {i}" for i in range(39)] + [DOCUMENTS[RELEVANT]]
    with Reranker(server.url, format="tei") as reranker:
        scores = reranker.score(QUERY, documents)
        assert np.allclose(scores, expected_scores(QUERY, documents), atol=1e-5)
        assert int(np.argmax(scores)) == 39
        assert server.seen() == 4  # 32 (413), then 16 + 16 + 8
        server.faults(reset_seen=True)
        reranker.score(QUERY, documents)
        assert server.seen() == 3  # the smaller size is remembered


def test_one_transient_failure_is_retried(server: RunningServer) -> None:
    with Reranker(server.url, format="mlx") as reranker:
        server.faults(fail_next=1, status=503, reset_seen=True)
        assert int(np.argmax(reranker.score(QUERY, DOCUMENTS))) == RELEVANT
        assert server.seen() == 2
        server.faults(fail_next=2, status=500, reset_seen=True)
        with pytest.raises(RerankError) as info:
            reranker.score(QUERY, DOCUMENTS)
        message = str(info.value)
        assert f"reranker at {server.url} is unreachable" in message and "HTTP 500" in message
        assert "injected fault" in message and "AMANMCP_RERANKER_ENDPOINT" in message
        assert server.seen() == 2  # retried once, not more


def test_a_hang_times_out_and_is_retried_once(server: RunningServer) -> None:
    with Reranker(server.url, format="cohere", timeout=0.5) as reranker:
        server.faults(hang_next=1, hang_seconds=3, reset_seen=True)
        started = time.perf_counter()
        assert len(reranker.score(QUERY, DOCUMENTS)) == len(DOCUMENTS)
        assert time.perf_counter() - started < 2.5
        server.faults(hang_next=2, hang_seconds=3, reset_seen=True)
        with pytest.raises(RerankError, match=r"is unreachable \(timed out"):
            reranker.score(QUERY, DOCUMENTS)


def test_server_down_is_a_clear_error() -> None:
    url = closed_port_url()
    with Reranker(url) as reranker:
        started = time.perf_counter()
        with pytest.raises(RerankError) as info:
            reranker.score(QUERY, DOCUMENTS)
        assert time.perf_counter() - started < 3.0
    message = str(info.value)
    assert message.startswith(f"reranker at {url} is unreachable")
    assert "start it" in message and "reranker.endpoint" in message and "AMANMCP_RERANKER_ENDPOINT" in message
    assert isinstance(info.value, EmbedderError)


@pytest.mark.parametrize("fmt", ["auto", "mlx", "cohere", "tei"])
def test_a_rejected_request_shows_the_servers_message(server: RunningServer, fmt: str) -> None:
    with Reranker(server.url, model="some-other-model", format=fmt) as reranker:
        if fmt == "tei":  # the tei form names no model: a text over the server's limit is the 4xx here
            with pytest.raises(RerankError, match=r"HTTP 413.*limit is 5,000"):
                reranker.score(QUERY, ["x" * 6000])
            assert server.seen() == 1
            return
        with pytest.raises(RerankError) as info:
            reranker.score(QUERY, DOCUMENTS)
    message = str(info.value)
    assert f"reranker at {server.url}" in message and "HTTP 404" in message
    assert "'some-other-model' is not served here" in message and "unreachable" not in message
    assert server.seen() == 2  # /rerank, then /v1/rerank once: no retries


def test_bearer_key(tmp_path: Path) -> None:
    env = {"AMANMCP_STATIC_MODEL": "hashed", "AMANMCP_EMBED_SERVER_API_KEY": "s3cret"}
    with embed_server(tmp_path, "--backend", "static", env=env) as guarded:
        with Reranker(guarded.url) as anonymous, pytest.raises(RerankError) as info:
            anonymous.score(QUERY, DOCUMENTS)
        assert "HTTP 401" in str(info.value) and "AMANMCP_RERANKER_API_KEY" in str(info.value)
        with Reranker(guarded.url, api_key="s3cret") as keyed:
            assert int(np.argmax(keyed.score(QUERY, DOCUMENTS))) == RELEVANT


def test_unknown_format_is_refused() -> None:
    with pytest.raises(RerankError, match="unknown reranker format 'jina'"):
        Reranker("http://127.0.0.1:1", format="jina")


# -- a text-embeddings-inference-like relay (real HTTP; scores from the real embed-server) ----------


class Relay:
    """Speaks TEI's dialect in front of the embed-server, or answers a canned body.

    `paths`: where it answers (others 404); `max_batch`: TEI's max_client_batch_size;
    `canned`: a JSON body to answer instead of relaying. Every request body is kept in `requests`.
    """

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.paths = {"/rerank"}
        self.max_batch = 32
        self.canned: Any = None
        self.requests: list[tuple[str, dict[str, Any]]] = []
        relay = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                relay.requests.append((self.path, body))
                status, answer = relay.answer(self.path, body)
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def answer(self, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        if path not in self.paths:
            return 404, {"error": "Not Found"}
        if self.canned is not None:
            return 200, self.canned
        if "texts" not in body:  # what TEI's axum router answers to the `documents` form
            return 422, "Failed to deserialize the JSON body into the target type: missing field `texts`"
        if len(body["texts"]) > self.max_batch:
            message = f"batch size {len(body['texts'])} > maximum allowed batch size {self.max_batch}"
            return 413, {"error": message, "error_type": "Validation"}
        upstream = httpx.post(f"{self.upstream}/rerank", json={"query": body["query"], "texts": body["texts"]})
        upstream.raise_for_status()
        return 200, [{"index": r["index"], "score": r["score"]} for r in upstream.json()["results"]]

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def relay(server: RunningServer) -> Iterator[Relay]:
    running = Relay(server.url)
    yield running
    running.close()


def test_auto_falls_back_to_the_tei_form_and_remembers_it(relay: Relay) -> None:
    documents = [*DOCUMENTS, ""]
    with Reranker(relay.url) as reranker:
        scores = reranker.score(QUERY, documents)
        assert np.allclose(scores, expected_scores(QUERY, [*DOCUMENTS, PLACEHOLDER]), atol=1e-5)
        assert [("documents" in body, "texts" in body) for _, body in relay.requests] == [(True, False), (False, True)]
        assert relay.requests[1][1]["truncate"] is True
        assert relay.requests[1][1]["texts"] == [*DOCUMENTS, PLACEHOLDER]  # mlx rejects blank documents
        assert reranker.label == f"tei:default at {relay.url}"
        relay.requests.clear()
        reranker.score(QUERY, DOCUMENTS)
        assert [("texts" in body) for _, body in relay.requests] == [True]  # remembered: no second probe


def test_auto_with_a_batch_too_large_for_tei(relay: Relay) -> None:
    relay.max_batch = 8
    documents = [f"def helper_{i}(x):\n    return x + {i}" for i in range(19)] + [DOCUMENTS[RELEVANT]]
    with Reranker(relay.url) as reranker:
        scores = reranker.score(QUERY, documents)
    assert np.allclose(scores, expected_scores(QUERY, documents), atol=1e-5)
    sizes = [len(body.get("texts", body.get("documents", []))) for _, body in relay.requests]
    assert sizes == [20, 20, 10, 5, 5, 5, 5]  # documents form (422), texts (413), halves until it fits


def test_v1_rerank_is_tried_once_after_a_404_and_remembered(relay: Relay) -> None:
    relay.paths = {"/v1/rerank"}
    with Reranker(relay.url, format="tei") as reranker:
        assert int(np.argmax(reranker.score(QUERY, DOCUMENTS))) == RELEVANT
        reranker.score(QUERY, DOCUMENTS)
    assert [path for path, _ in relay.requests] == ["/rerank", "/v1/rerank", "/v1/rerank"]
    relay.paths = set()
    relay.requests.clear()
    with Reranker(relay.url, format="cohere") as reranker, pytest.raises(RerankError, match=r"HTTP 404.*Not Found"):
        reranker.score(QUERY, DOCUMENTS)
    assert [path for path, _ in relay.requests] == ["/rerank", "/v1/rerank"]


@pytest.mark.parametrize(
    ("canned", "scores"),
    [
        ([{"index": 1, "score": 0.25}, {"index": 0, "score": 0.75}], [0.75, 0.25]),
        ({"data": [{"index": 0, "relevance_score": 1}, {"index": 1.0, "relevance_score": -2.5}]}, [1.0, -2.5]),
        ({"results": [{"index": 1, "relevance_score": 0.5, "document": {"text": "b"}},
                      {"index": 0, "relevance_score": 0.1}], "model": "bge-reranker-base"}, [0.1, 0.5]),
    ],
)
def test_answers_are_read_leniently(relay: Relay, canned: Any, scores: list[float]) -> None:
    relay.canned = canned
    with Reranker(relay.url) as reranker:
        assert reranker.score("q", ["a", "b"]) == scores
        if isinstance(canned, dict) and "model" in canned:
            assert reranker.label == f"cohere:bge-reranker-base at {relay.url}"


@pytest.mark.parametrize(
    ("canned", "message"),
    [
        ({"results": [{"index": 0, "score": 0.5}]}, r"answered 1 scores for 2 documents \(missing: 1\)"),
        ([{"index": 0, "score": 0.5}, {"index": 0, "score": 0.4}], "document 0 twice"),
        ([{"index": 0, "score": 0.5}, {"index": 2, "score": 0.4}], "index 2 for 2 documents"),
        ([{"score": 0.5}, {"index": 1, "score": 0.4}], "without a document index"),
        ([{"index": 0, "score": "high"}, {"index": 1, "score": 0.4}], "non-numeric score for document 0: 'high'"),
        ([{"index": 0, "score": None}, {"index": 1, "score": 0.4}], "non-numeric score"),
        ({"scores": [0.5, 0.4]}, "without 'results'"),
        ({"results": "none"}, "instead of a list"),
        (["0.5", "0.4"], "not an object"),
    ],
)
def test_malformed_answers_are_plain_errors(relay: Relay, canned: Any, message: str) -> None:
    relay.canned = canned
    with Reranker(relay.url, format="mlx") as reranker, pytest.raises(RerankError, match=message):
        reranker.score("q", ["a", "b"])


def test_tei_413_halving_with_teis_own_message() -> None:
    """httpx.MockTransport, allowed for this path only: TEI's 413 for a batch over its
    max_client_batch_size (here 8), which the real embed-server words differently."""
    sizes: list[int] = []

    def tei(request: httpx.Request) -> httpx.Response:
        texts = json.loads(request.content)["texts"]
        sizes.append(len(texts))
        if len(texts) > 8:
            return httpx.Response(413, json={"error": f"batch size {len(texts)} > maximum allowed batch size 8",
                                             "error_type": "Validation"})
        return httpx.Response(200, json=[{"index": i, "score": float(len(t))} for i, t in enumerate(texts)])

    reranker = Reranker("http://tei.invalid", format="tei")
    reranker._client.close()
    reranker._client = httpx.Client(base_url="http://tei.invalid", transport=httpx.MockTransport(tei))
    documents = ["x" * (i + 1) for i in range(40)]
    assert reranker.score("q", documents) == [float(i + 1) for i in range(40)]
    assert sizes == [32, 16, 8, 8, 8, 8, 8]
    reranker.close()


# -- configuration ---------------------------------------------------------------------------------


def test_make_reranker_is_off_by_default_and_on_with_an_endpoint(server: RunningServer, tmp_path: Path) -> None:
    settings = load_config(tmp_path, env={}).settings
    assert settings.reranker.endpoint == "" and settings.reranker.candidates == 30
    assert make_reranker(settings) is None
    env = {"AMANMCP_RERANKER_ENDPOINT": server.url, "AMANMCP_RERANKER_MODEL": server.model,
           "AMANMCP_RERANKER_API_KEY": "unused-key"}
    loaded = load_config(tmp_path, env=env)
    reranker = make_reranker(loaded.settings)
    assert isinstance(reranker, Reranker)
    with reranker:
        assert reranker.label == f"auto:{server.model} at {server.url}"
        assert int(np.argmax(reranker.score(QUERY, DOCUMENTS))) == RELEVANT
    assert loaded.sources["reranker.endpoint"] == "AMANMCP_RERANKER_ENDPOINT"
    (tmp_path / ".amanmcp.yaml").write_text(f"reranker:\n  endpoint: {server.url}\n  format: tei\n  timeout: 2.5\n")
    from_file = make_reranker(load_config(tmp_path, env={}).settings)
    assert from_file is not None and from_file.label == f"tei:default at {server.url}"
    from_file.close()


@pytest.mark.parametrize(
    ("yaml_text", "key"),
    [
        ("reranker:\n  format: jina\n", "reranker.format"),
        ("reranker:\n  candidates: 1\n", "reranker.candidates"),
        ("reranker:\n  candidates: 101\n", "reranker.candidates"),
        ("reranker:\n  timeout: 0\n", "reranker.timeout"),
        ("reranker:\n  endpoints: x\n", "reranker.endpoints"),
    ],
)
def test_invalid_reranker_settings_name_the_key(tmp_path: Path, yaml_text: str, key: str) -> None:
    from amanmcp.config import ConfigError

    (tmp_path / ".amanmcp.yaml").write_text(yaml_text)
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_config(tmp_path, env={})


def test_config_show_masks_the_reranker_key(tmp_path: Path) -> None:
    env = {**os.environ, "AMANMCP_RERANKER_API_KEY": "hunter2-rerank", "AMANMCP_RERANKER_ENDPOINT": "http://gpu:8080"}
    command = [sys.executable, "-m", "amanmcp", "config", "show", "--path", str(tmp_path)]
    shown = subprocess.run([*command, "--json"], capture_output=True, text=True, env=env, timeout=120)
    assert shown.returncode == 0, shown.stderr
    data = json.loads(shown.stdout)
    assert data["reranker.api_key"] == {"value": "***", "source": "AMANMCP_RERANKER_API_KEY"}
    assert data["reranker.endpoint"] == {"value": "http://gpu:8080", "source": "AMANMCP_RERANKER_ENDPOINT"}
    assert data["reranker.format"] == {"value": "auto", "source": "default"}
    text = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
    assert text.returncode == 0 and "reranker.api_key" in text.stdout
    assert "hunter2-rerank" not in shown.stdout + text.stdout + shown.stderr + text.stderr


# --- in search: the top results reordered, reported in search_quality ---------------------------------


def _indexed_project(tmp_path: Path, env: dict[str, str]):
    from amanmcp.indexer import Indexer
    from amanmcp.search import Searcher
    from conftest import write_project

    root = write_project(tmp_path / "shop")
    (root / "shop").mkdir(exist_ok=True)
    settings = load_config(root, env=env).settings
    hashed = HashedEmbedder()
    Indexer(root, settings, hashed).run()
    return Searcher(root, settings, hashed)


def test_search_reranks_the_top_results_with_the_configured_server(server: RunningServer, tmp_path: Path) -> None:
    plain = _indexed_project(tmp_path / "a", {})
    before = plain.search("retry a failed connection", limit=8)
    assert before.search_quality.reranker is None and plain.reranker is None

    reranked = _indexed_project(tmp_path / "b", {"AMANMCP_RERANKER_ENDPOINT": server.url})
    after = reranked.search("retry a failed connection", limit=8, explain=True)
    quality = after.search_quality
    assert quality.reranker is not None and server.url in quality.reranker and not quality.degraded
    scores = [r.explain.rerank_score for r in after.results]
    assert all(s is not None for s in scores) and scores == sorted(scores, reverse=True)
    # the order is the server's: ask it directly about the same chunks
    documents = [f"{r.path} {r.symbol or ''}\n{r.content}" for r in after.results]
    direct = Reranker(server.url).score("retry a failed connection", documents)
    assert [round(s, 4) for s in direct] == [round(s, 4) for s in scores]
    assert after.results[0].score == 1.0


def test_search_with_a_reranker_that_is_down_says_so_and_still_answers(tmp_path: Path) -> None:
    down = _indexed_project(tmp_path, {"AMANMCP_RERANKER_ENDPOINT": closed_port_url()})
    response = down.search("retry a failed connection", limit=5)
    quality = response.search_quality
    assert response.results and quality.degraded and "reranker_unavailable" in quality.reason
    assert quality.reranker is not None
