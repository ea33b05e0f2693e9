"""Property-based fuzzing of a real `amanmcp embed-server` (hashed static model, a bearer key set).

Any method to every route (and to paths that are none), with random headers (the right key, a wrong
one, none, non-ASCII bytes), and bodies that are any JSON value, request-shaped JSON with hostile
fields, deep nesting, or raw bytes: never a 5xx, and every answer is JSON (but for the redirect of a
trailing slash to its route). Afterwards the server
still answers a real request.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from embed_helpers import RunningServer, embed_server

KEY = "fuzz-key-\u00e9"  # non-ASCII: compared as bytes
ROUTES = ["/health", "/embed", "/embed_batch", "/v1/models", "/v1/embeddings", "/api/tags", "/api/embed",
          "/rerank", "/v1/rerank"]
PATHS = st.one_of(st.sampled_from(ROUTES), st.sampled_from(
    ["/", "/nope", "/embed/", "/v1", "/v1/embeddings/x", "/%00", "/..%2f..%2fetc/passwd", "/embed?x=1&x=2",
     "/api/embed?" + "a=" * 500, "//embed", "/EMBED"]))
METHODS = st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"])
TEXT = st.characters(codec="utf-8")
JSON_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(2**80), 2**80), st.floats(allow_nan=False, allow_infinity=False),
              st.text(TEXT, max_size=40)),
    lambda inner: st.one_of(st.lists(inner, max_size=5),
                            st.dictionaries(st.text(TEXT, max_size=10), inner, max_size=5)),
    max_leaves=15,
)
TEXTS = st.one_of(st.text(TEXT, max_size=200), st.sampled_from(["", " ", "\x00", "x" * 6000, "retry " * 1000]))
FIELD_VALUES = st.one_of(JSON_VALUES, TEXTS, st.lists(TEXTS, max_size=20), st.lists(JSON_VALUES, max_size=5))
SHAPED = st.fixed_dictionaries({}, optional={
    "text": FIELD_VALUES, "texts": FIELD_VALUES, "input": FIELD_VALUES, "query": FIELD_VALUES,
    "documents": st.one_of(FIELD_VALUES, st.lists(st.fixed_dictionaries({"text": FIELD_VALUES}), max_size=4)),
    "model": st.one_of(st.sampled_from([None, "hashed-identifiers-v1", ""]), JSON_VALUES),
    "encoding_format": st.sampled_from([None, "float", "base64", 1]), "top_k": JSON_VALUES, "top_n": JSON_VALUES,
})
RAW = st.one_of(
    st.binary(max_size=300),
    st.sampled_from([b"", b"{", b"[" * 50_000 + b"]" * 50_000, b'{"texts": ["\\ud800"]}', b'{"input": "\\udfff x"}',
                     b'{"text": "a"}' * 3, b"\xff\xfe{}", b'{"texts": [' + b'"a",' * 300 + b'"a"]}',
                     b'{"top_k": 1' + b"0" * 5000 + b"}", b"null", b"1e999999"]),
)
BODIES = st.one_of(SHAPED.map(lambda d: json.dumps(d).encode()),
                   SHAPED.map(lambda d: json.dumps(d, ensure_ascii=False).encode("utf-8", "surrogatepass")),
                   JSON_VALUES.map(lambda v: json.dumps(v).encode()), RAW)
HEADER_NAME = st.from_regex(r"\A[A-Za-z][A-Za-z0-9-]{0,20}\Z")
HEADER_VALUE = st.binary(max_size=60).map(lambda b: bytes(c for c in b if c >= 0x20 and c != 0x7F).strip())
AUTH = st.one_of(st.just(f"Bearer {KEY}".encode()), st.just(b"Bearer fuzz-key-\xe9"), st.just(b"bearer   wrong"),
                 HEADER_VALUE, st.none())
CONTENT_TYPES = st.sampled_from([None, b"application/json", b"text/plain", b"application/json; charset=latin-1",
                                 b"multipart/form-data; boundary=x", b"\xff"])
HYPOTHESIS = {"deadline": None, "derandomize": True, "database": None,
              "suppress_health_check": [HealthCheck.function_scoped_fixture, HealthCheck.too_slow]}
STATUSES: dict[int, int] = {}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningServer, httpx.Client]]:
    cwd = tmp_path_factory.mktemp("embedfuzz")
    env = {"AMANMCP_STATIC_MODEL": "hashed", "AMANMCP_EMBED_SERVER_API_KEY": KEY}
    with embed_server(Path(cwd), "--backend", "static", "--max-batch", "16", "--max-text-chars", "5000",
                      env=env) as running, httpx.Client(base_url=running.url, timeout=30) as client:
        yield running, client
        assert running.process.poll() is None, "the embed-server died"
        assert "Traceback" not in "".join(running.stderr), "".join(running.stderr)[-3000:]
    print(f"\nembed-server fuzzing: {sum(STATUSES.values())} requests, statuses {dict(sorted(STATUSES.items()))}")


POST_ROUTES = [r for r in ROUTES if r not in ("/health", "/v1/models", "/api/tags")]
EXTRA = st.lists(st.tuples(HEADER_NAME, HEADER_VALUE), max_size=4)
# Anything anywhere; and (as often) what a confused client sends: a POST with the right key to a real route.
WILD = st.tuples(METHODS, PATHS, BODIES, AUTH, CONTENT_TYPES, EXTRA)
AIMED = st.tuples(st.just("POST"), st.sampled_from(POST_ROUTES), BODIES,
                  st.integers(0, 3).flatmap(lambda i: st.just(f"Bearer {KEY}".encode()) if i else AUTH),
                  st.sampled_from([b"application/json", None]),
                  EXTRA)


@pytest.mark.slow
@settings(max_examples=500, **HYPOTHESIS)
@given(request=st.one_of(WILD, AIMED))
def test_any_request(server: tuple[RunningServer, httpx.Client],
                     request: tuple[str, str, bytes, bytes | None, bytes | None, list[tuple[str, bytes]]]) -> None:
    method, path, body, auth, content_type, extra = request
    _, client = server
    headers: list[tuple[bytes, bytes]] = [
        (name.encode(), value) for name, value in extra
        if name.lower() not in ("host", "content-length", "transfer-encoding", "connection", "expect")
    ]
    if auth is not None:
        headers.append((b"Authorization", auth))
    if content_type is not None:
        headers.append((b"Content-Type", content_type))
    response = client.request(method, path, content=None if method in ("GET", "HEAD") else body, headers=headers)
    STATUSES[response.status_code] = STATUSES.get(response.status_code, 0) + 1
    assert response.status_code < 500, (response.status_code, response.text[:500])
    if response.is_redirect:  # Starlette's trailing-slash redirect (`/embed/` -> `/embed`), to a real route
        assert httpx.URL(response.headers["location"]).path in ROUTES, response.headers
    elif method != "HEAD":
        answer = response.json()  # JSON always, errors included
        if response.status_code >= 400:
            assert "error" in answer, answer


@pytest.mark.slow
def test_still_serving_after_fuzzing(server: tuple[RunningServer, httpx.Client]) -> None:
    running, client = server
    headers = {"Authorization": f"Bearer {KEY}".encode()}
    answer = client.post("/embed_batch", json={"texts": ["def retry(): pass", "class Invoice"]}, headers=headers)
    assert answer.status_code == 200 and len(answer.json()["embeddings"]) == 2
    assert len(answer.json()["embeddings"][0]) == running.dimensions
    assert client.get("/health").json()["status"] == "healthy"
