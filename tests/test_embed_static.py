"""Static embeddings: model2vec distilled locally from the default model, and the hashed floor."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import numpy as np
import pytest

from amanmcp.embed.base import Embedder, EmbedderError, EmbedderIdentity
from amanmcp.embed.static import HashedEmbedder, StaticEmbedder, distilled_path

DOCS = [
    "def retry_with_backoff(func, attempts=3):\n    for attempt in range(attempts): time.sleep(2 ** attempt)",
    "## Installation\n\nInstall the package with pip and run the setup wizard.",
    "class ShoppingCart:\n    def total_price(self): return sum(item.price for item in self.items)",
    "func parseConfigFile(path string) (*Config, error) { return loadYAML(path) }",
]
QUERIES = ["retry a failed call with backoff", "how do I install it", "sum of item prices in the cart",
           "load the config file from disk"]


@pytest.fixture(scope="module")
def distilled() -> StaticEmbedder:
    return StaticEmbedder()


def test_hashed_is_a_working_dependency_free_floor() -> None:
    emb = HashedEmbedder()
    assert isinstance(emb, Embedder)
    assert emb.identity == EmbedderIdentity("static", "hashed-identifiers-v1", 512, True, "")
    docs = emb.embed_documents(DOCS)
    assert docs.shape == (4, 512) and np.allclose(np.linalg.norm(docs, axis=1), 1.0, atol=1e-5)
    assert np.array_equal(docs, HashedEmbedder().embed_documents(DOCS))  # stable across processes (crc32)
    # identifiers are found by their parts, whatever the casing style
    query = emb.embed_query("parse config file")
    assert int(np.argmax(docs @ query)) == 3
    assert int(np.argmax(docs @ emb.embed_query("RetryWithBackoff"))) == 0
    assert emb.embed_documents([]).shape == (0, 512)


def test_distilled_model_is_built_locally_and_cached(distilled: StaticEmbedder) -> None:
    assert distilled.identity == EmbedderIdentity("static", "all-MiniLM-L6-v2-m2v256", 256, True, "")
    docs = distilled.embed_documents(DOCS)
    assert docs.shape == (4, 256) and docs.dtype == np.float32
    assert np.allclose(np.linalg.norm(docs, axis=1), 1.0, atol=1e-5)
    assert distilled.source_dir is not None
    folder = distilled_path(distilled.source_dir, "all-MiniLM-L6-v2")
    assert (folder / "model.safetensors").is_file() and str(folder).startswith(os.environ["XDG_CACHE_HOME"])
    started = time.perf_counter()
    again = StaticEmbedder().embed_documents(DOCS)  # loads the cached model: no second distillation
    assert time.perf_counter() - started < 5 and np.allclose(again, docs, atol=1e-6)


def test_distilled_model_understands_meaning(distilled: StaticEmbedder) -> None:
    docs = distilled.embed_documents(DOCS)
    queries = np.stack([distilled.embed_query(q) for q in QUERIES])
    assert list(np.argmax(queries @ docs.T, axis=1)) == [0, 1, 2, 3]


def test_static_queries_need_no_torch(distilled: StaticEmbedder) -> None:
    distilled.embed_documents(["warm the cache"])
    code = (
        "import sys; from amanmcp.embed.static import StaticEmbedder; "
        "v = StaticEmbedder().embed_query('where are retries handled'); print(v.shape[0], 'torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["256", "False"]


def test_static_is_fast(distilled: StaticEmbedder) -> None:
    texts = [DOCS[i % 4] * 8 for i in range(2000)]  # ~1,000-char chunks
    distilled.embed_documents(texts[:10])
    started = time.perf_counter()
    distilled.embed_documents(texts)
    assert 2000 / (time.perf_counter() - started) > 300  # thousands/s on an idle CPU; loose for loaded CI


def test_a_named_model2vec_folder(distilled: StaticEmbedder, tmp_path) -> None:
    assert distilled.source_dir is not None
    folder = distilled_path(distilled.source_dir, "all-MiniLM-L6-v2")
    named = StaticEmbedder(str(folder))
    assert named.identity.model == folder.name and named.dimensions == 256
    assert np.allclose(named.embed_documents(DOCS), distilled.embed_documents(DOCS), atol=1e-6)
    with pytest.raises(EmbedderError, match="cannot load the static model"):
        StaticEmbedder(str(tmp_path)).embed_documents(["x"])
