"""The embed-server against hostile and malformed requests, its per-request budget and its fair scheduling.

Real server processes on 127.0.0.1 (no mocks): one module-scoped `amanmcp embed-server` (static
hashed model) behind the test-only fault switch, which here only counts (and, for the scheduling
tests, slows) the model calls; and one plain `amanmcp embed-server` to prove the shipped app has
no switch.
"""

from __future__ import annotations

import inspect
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

import amanmcp.embed_server as shipped
from amanmcp.embed.static import HashedEmbedder
from embed_helpers import RunningServer, embed_server

KEY = "s3cret"
MAX_TEXT = 100_000
MAX_REQUEST = 300_000
POST_ROUTES = ["/embed", "/embed_batch", "/v1/embeddings", "/api/embed", "/rerank", "/v1/rerank"]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    env = {"AMANMCP_STATIC_MODEL": "hashed", "AMANMCP_EMBED_SERVER_API_KEY": KEY}
    with embed_server(tmp_path_factory.mktemp("embed-server"), "--backend", "static", "--max-batch", "256",
                      "--max-text-chars", str(MAX_TEXT), "--max-request-chars", str(MAX_REQUEST),
                      env=env, faults=True) as running:
        yield running


@pytest.fixture(scope="module")
def client(server: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {KEY}"}, timeout=60) as keyed:
        yield keyed


@pytest.fixture(scope="module")
def anonymous(server: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=60) as plain:
        yield plain


@pytest.fixture(autouse=True)
def _clean_switch(server: RunningServer) -> Iterator[None]:
    server.faults(reset_seen=True, reset_calls=True)
    logged = len(server.stderr)
    yield
    server.faults()
    time.sleep(0.002)  # let the last lines arrive
    assert not [line for line in server.stderr[logged:] if "Traceback" in line or "ERROR" in line], (
        "the server logged an error:\n" + "".join(server.stderr[logged:])
    )


def body_for(route: str, value: Any) -> dict[str, Any]:
    """A request to `route` with `value` where its texts go."""
    if route == "/embed":
        return {"text": value}
    if route == "/embed_batch":
        return {"texts": value}
    if route in ("/v1/embeddings", "/api/embed"):
        return {"input": value}
    return {"query": "retry with backoff", "documents": value}


def post_json(client: httpx.Client, route: str, body: Any) -> httpx.Response:
    """JSON with ASCII escapes: lone surrogates travel as "\\ud800" (httpx's own encoder cannot send them)."""
    return client.post(route, content=json.dumps(body).encode(), headers={"content-type": "application/json"})


def assert_json_4xx(response: httpx.Response, route: str, status: int | None = None) -> str:
    """A plain JSON error with a 4xx status (the given one, if any); returns the message."""
    assert 400 <= response.status_code < 500, (route, response.status_code, response.text[:300])
    if status is not None:
        assert response.status_code == status, (route, response.text[:300])
    assert "Traceback" not in response.text
    error = response.json()["error"]
    message = error["message"] if route.startswith("/v1/") else error
    assert isinstance(message, str) and message
    return message


# -- malformed bodies, on every route ----------------------------------------------------------------

RAW_BODIES = {
    "nested 100k lists": b"[" * 100_000 + b"]" * 100_000,
    "nested 50k objects in a field": b'{"texts": ' + b'{"a": ' * 50_000 + b"1" + b"}" * 50_000 + b"}",
    "nested 100k lists in every field": b'{"text": X, "texts": X, "input": X, "query": X, "documents": X}'.replace(
        b"X", b"[" * 20_000 + b"]" * 20_000),
    "not UTF-8": b'{"text": "\xff\xfe", "texts": ["\xc3"], "input": "\xff", "query": "\xff", "documents": ["\xff"]}',
    "not JSON": b"{nope",
    "truncated": b'{"text": "abc',
    "empty": b"",
    "a list": b'["x"]',
    "a string": b'"x"',
    "null": b"null",
    "NaN": b"NaN",
    "an integer too long to parse": b'{"top_k": 1' + b"0" * 5000 + b', "text": "x", "texts": ["x"]}',
    "lone surrogates everywhere": (b'{"text": "\\ud800", "texts": ["ok", "\\udfff"], "input": "a\\udc00b", '
                                   b'"query": "\\ud83d", "documents": ["\\ud800"]}'),
}


@pytest.mark.parametrize("case", list(RAW_BODIES))
@pytest.mark.parametrize("route", POST_ROUTES)
def test_malformed_bodies_get_a_4xx(client: httpx.Client, server: RunningServer, route: str, case: str) -> None:
    response = client.post(route, content=RAW_BODIES[case], headers={"content-type": "application/json"})
    message = assert_json_4xx(response, route, 400)
    if case.startswith("nested"):
        assert "nested too deeply" in message
    if case == "lone surrogates everywhere":
        assert "not valid Unicode" in message
    assert server.state()["calls"] == 0  # nothing reached the model


# -- wrong types and invalid text, field by field -----------------------------------------------------

TEXT_VALUES = {
    "null": None, "a number": 5, "a float": 2.5, "a boolean": True, "an object": {"a": 1}, "an empty object": {},
    "an empty list": [], "a list with null": [None], "a list of numbers": [1, 2], "a nested list": [["x"]],
    "token ids": [[101, 2023]], "an object with a non-string text": [{"text": 5}],
    "a lone surrogate": "\ud800", "a list with a lone surrogate": ["ok", "\udfff"],
    "a surrogate inside": "abc\udc00def", "a cohere object with a lone surrogate": [{"text": "\ud800"}],
}


@pytest.mark.parametrize("case", list(TEXT_VALUES))
@pytest.mark.parametrize("route", POST_ROUTES)
def test_wrong_texts_get_a_4xx(client: httpx.Client, route: str, case: str) -> None:
    value = TEXT_VALUES[case]
    message = assert_json_4xx(post_json(client, route, body_for(route, value)), route, 400)
    if "surrogate" in case and well_typed(route, value):
        assert "not valid Unicode" in message and "lone surrogate" in message, message


def well_typed(route: str, value: Any) -> bool:
    """Whether `value` has the type `route` wants for its texts (so only the text itself is wrong)."""
    strings = isinstance(value, list) and all(isinstance(v, str) for v in value)
    if route == "/embed":
        return isinstance(value, str)
    if route == "/embed_batch":
        return strings
    if route.endswith("rerank"):
        return isinstance(value, list) and all(isinstance(v, (str, dict)) for v in value)
    return isinstance(value, str) or strings


OTHER_FIELDS = [
    ("/embed", {"text": "x", "model": 5}),
    ("/embed", {"text": "x", "model": ["hashed-identifiers-v1"]}),
    ("/embed", {"text": "x", "model": {"name": "x"}}),
    ("/embed_batch", {"texts": ["x"], "model": True}),
    ("/embed_batch", {"texts": ["x"], "model": "\ud800"}),
    ("/v1/embeddings", {"input": ["x"], "encoding_format": 5}),
    ("/v1/embeddings", {"input": ["x"], "encoding_format": ["float"]}),
    ("/v1/embeddings", {"input": ["x"], "encoding_format": "int8"}),
    ("/v1/embeddings", {"input": ["x"], "model": 1.5}),
    ("/api/embed", {"input": ["x"], "model": []}),
    ("/api/embed", {"model": "hashed-identifiers-v1"}),
    ("/rerank", {"query": None, "documents": ["x"]}),
    ("/rerank", {"query": 5, "documents": ["x"]}),
    ("/rerank", {"query": ["q"], "documents": ["x"]}),
    ("/rerank", {"query": {"text": "q"}, "documents": ["x"]}),
    ("/rerank", {"query": "\ud800", "documents": ["x"]}),
    ("/rerank", {"query": "q\udfffq", "documents": ["x"]}),
    ("/v1/rerank", {"query": "q", "texts": "x"}),
    ("/v1/rerank", {"query": "q", "texts": {"0": "x"}}),
    ("/v1/rerank", {"query": "q", "documents": None}),
    ("/rerank", {"query": "q", "documents": ["x"], "top_k": "2"}),
    ("/rerank", {"query": "q", "documents": ["x"], "top_k": 2.5}),
    ("/rerank", {"query": "q", "documents": ["x"], "top_k": -1}),
    ("/rerank", {"query": "q", "documents": ["x"], "top_k": True}),
    ("/v1/rerank", {"query": "q", "documents": ["x"], "top_n": []}),
    ("/v1/rerank", {"query": "q", "documents": ["x"], "top_n": {}}),
    ("/v1/rerank", {"query": "q", "documents": ["x"], "model": 0}),
]


@pytest.mark.parametrize(("route", "body"), OTHER_FIELDS, ids=[f"{r} {sorted(b)}" for r, b in OTHER_FIELDS])
def test_wrong_fields_get_a_4xx(client: httpx.Client, route: str, body: dict[str, Any]) -> None:
    assert_json_4xx(post_json(client, route, body), route)


def test_well_formed_edge_cases_still_work(client: httpx.Client) -> None:
    """Not everything unusual is an error: NUL, astral characters (valid surrogate pairs), empty text."""
    texts = ["a\x00b", "emoji \U0001f600 and \u00e9", ""]
    answer = client.post("/embed_batch", json={"texts": texts[:2]})  # the MLX routes refuse empty text (422)
    assert answer.status_code == 200, answer.text
    assert np.allclose(answer.json()["embeddings"], HashedEmbedder().embed_documents(texts[:2]), atol=1e-6)
    openai = client.post("/v1/embeddings", json={"input": texts})  # the OpenAI routes take it
    assert openai.status_code == 200 and len(openai.json()["data"]) == 3
    ranked = client.post("/rerank", json={"query": "emoji \U0001f600", "documents": texts, "top_k": 10**30})
    assert ranked.status_code == 200 and ranked.json()["count"] == 3
    assert client.post("/v1/embeddings", json={"input": "x", "encoding_format": None}).status_code == 200


# -- the bearer key -----------------------------------------------------------------------------------

BAD_KEYS: dict[str, bytes | None] = {
    "non-ASCII (UTF-8)": "Bearer ключ".encode(),
    "non-ASCII (latin-1)": b"Bearer s3cr\xe9t",
    "the key and a non-ASCII byte": b"Bearer s3cret\xff",
    "a wrong key": b"Bearer nope",
    "no key": b"Bearer",
    "another scheme": b"Basic s3cret",
    "no header": None,
}


@pytest.mark.parametrize("case", list(BAD_KEYS))
@pytest.mark.parametrize("route", [*POST_ROUTES, "/v1/models", "/api/tags"])
def test_bad_bearer_keys_get_a_401(anonymous: httpx.Client, route: str, case: str) -> None:
    header = BAD_KEYS[case]
    headers = {"Authorization": header} if header is not None else {}
    method = "GET" if route in ("/v1/models", "/api/tags") else "POST"
    body = None if method == "GET" else body_for(route, ["x"])
    response = anonymous.request(method, route, headers=headers, json=body)
    assert_json_4xx(response, route, 401)


def test_the_right_key_works_and_health_stays_open(server: RunningServer) -> None:
    spaced = httpx.post(f"{server.url}/embed", headers={"Authorization": "bearer   s3cret"}, json={"text": "x"})
    assert spaced.status_code == 200, spaced.text
    assert httpx.get(f"{server.url}/health", headers={"Authorization": "Bearer ключ".encode()}).status_code == 200


# -- the per-request budget ---------------------------------------------------------------------------


def test_health_reports_the_limits(client: httpx.Client) -> None:
    health = client.get("/health").json()
    assert (health["max_batch_size"], health["max_text_chars"], health["max_request_chars"]) == (
        256, MAX_TEXT, MAX_REQUEST)


@pytest.mark.parametrize("route", POST_ROUTES[1:])
def test_too_many_characters_in_all_is_a_413(client: httpx.Client, server: RunningServer, route: str) -> None:
    """Each text is within --max-text-chars, together they are over --max-request-chars."""
    texts = ["word " * (MAX_TEXT // 5)] * 4  # 400,000 characters
    message = assert_json_4xx(client.post(route, json=body_for(route, texts)), route, 413)
    total = 400_000 + (len(body_for(route, [])["query"]) if route.endswith("rerank") else 0)
    assert f"{total:,} characters in all" in message and "the limit is 300,000" in message
    assert server.state()["calls"] == 0


def test_the_rerank_query_counts_toward_the_budget(client: httpx.Client) -> None:
    documents = ["d" * 90_000] * 3  # 270,000: within the budget alone
    assert client.post("/rerank", json={"query": "q", "documents": documents}).status_code == 200
    over = client.post("/rerank", json={"query": "q" * 40_000, "documents": documents})
    assert over.status_code == 413 and "310,000 characters in all" in over.json()["error"]


def test_big_requests_run_in_sub_batches_and_keep_their_order(client: httpx.Client, server: RunningServer) -> None:
    texts = [f"def handler_{i}(request): return retry_with_backoff(request, {i})" for i in range(70)]
    answer = client.post("/v1/embeddings", json={"input": texts})
    assert answer.status_code == 200
    vectors = [row["embedding"] for row in sorted(answer.json()["data"], key=lambda row: row["index"])]
    assert [row["index"] for row in answer.json()["data"]] == list(range(70))
    assert np.allclose(vectors, HashedEmbedder().embed_documents(texts), atol=1e-6)
    assert server.state()["call_sizes"] == [32, 32, 6]  # texts per sub-batch
    server.faults(reset_calls=True)
    at_the_limit = ["x" * MAX_TEXT] * 3  # 300,000 characters: allowed, in two sub-batches by size
    assert client.post("/embed_batch", json={"texts": at_the_limit}).status_code == 200
    assert server.state()["call_sizes"] == [2, 1]


# -- fair service ---------------------------------------------------------------------------------------


def wait_for_calls(server: RunningServer, at_least: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while int(server.state()["calls"]) < at_least:  # type: ignore[call-overload]
        assert time.monotonic() < deadline, "the big request never reached the model"
        time.sleep(0.01)


def test_a_small_request_is_served_between_a_big_ones_sub_batches(
    client: httpx.Client, server: RunningServer
) -> None:
    """While a 256-text request runs (8 sub-batches, each slowed to >= 0.15 s), a one-text request
    gets the next turn: it finishes first, and the model saw it before the big request's last sub-batch."""
    server.faults(slow_seconds=0.15, reset_calls=True)
    big = [f"def big_{i}(): return {i}" for i in range(256)]
    finished: list[str] = []
    answers: dict[str, httpx.Response] = {}

    def send_big() -> None:
        answers["big"] = client.post("/embed_batch", json={"texts": big})
        finished.append("big")

    worker = threading.Thread(target=send_big)
    worker.start()
    wait_for_calls(server, 1)  # the big request holds the model now
    answers["small"] = client.post("/embed", json={"text": "retry_with_backoff"})
    finished.append("small")
    worker.join(timeout=60)
    assert finished == ["small", "big"]
    assert answers["small"].status_code == answers["big"].status_code == 200
    sizes = server.state()["call_sizes"]
    assert sorted(sizes) == [1] + [32] * 8  # type: ignore[type-var]
    assert sizes.index(1) < len(sizes) - 1  # type: ignore[union-attr]
    expected = HashedEmbedder().embed_documents(big)
    assert np.allclose(answers["big"].json()["embeddings"], expected, atol=1e-6)  # order kept across turns


def test_an_abandoned_request_stops_using_the_model(server: RunningServer) -> None:
    """A client that gives up (a timeout; it would retry) does not leave its batch running to the end."""
    server.faults(slow_seconds=0.2, reset_calls=True)
    big = [f"text {i}" for i in range(256)]  # 8 sub-batches, >= 1.6 s
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(f"{server.url}/embed_batch", json={"texts": big}, timeout=0.5,
                   headers={"Authorization": f"Bearer {KEY}"})
    calls, quiet_since = -1, time.monotonic()
    while time.monotonic() - quiet_since < 0.7:  # until no model call for over three slowed calls' time
        now = int(server.state()["calls"])  # type: ignore[call-overload]
        if now != calls:
            calls, quiet_since = now, time.monotonic()
        time.sleep(0.02)
    assert 1 <= calls < 8


# -- the shipped app has no test switch ------------------------------------------------------------------


def test_the_shipped_server_has_no_fault_switch(tmp_path: Path) -> None:
    assert not hasattr(shipped, "Faults") and not hasattr(shipped, "FAULTS_ENV")
    assert "faults" not in inspect.signature(shipped.create_app).parameters
    env = {"AMANMCP_STATIC_MODEL": "hashed", "AMANMCP_EMBED_SERVER_FAULTS": "1"}  # the old switch, ignored
    with embed_server(tmp_path, "--backend", "static", env=env) as plain:
        for method, body in (("POST", {"fail_next": 5}), ("GET", None)):
            response = httpx.request(method, f"{plain.url}/_faults", json=body)
            assert response.status_code == 404 and "no such endpoint" in response.json()["error"]
        assert httpx.post(f"{plain.url}/embed", json={"text": "x"}).status_code == 200
        with pytest.raises(AssertionError, match="no fault switch"):
            plain.faults(fail_next=1)


def test_a_client_that_leaves_mid_body_is_not_a_server_error(server: RunningServer, client: httpx.Client) -> None:
    """Half a body, then the connection closes: nothing to answer, and nothing to log as a crash."""
    url = httpx.URL(server.url)
    for path in POST_ROUTES:
        with socket.create_connection((url.host, url.port)) as sock:
            sock.sendall(f"POST {path} HTTP/1.1\r\nHost: {url.host}\r\nAuthorization: Bearer {KEY}\r\n"
                         "Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n{\"text\": ".encode())
    time.sleep(0.2)  # the server notices the closed connections
    assert client.post("/embed", json={"text": "still serving"}).status_code == 200
    assert server.state()["calls"] == 1
