import subprocess
import sys

import numpy as np
import pytest

from amanmcp.embed.base import Embedder, EmbedderError, EmbedderIdentity
from amanmcp.embed.local import LocalEmbedder

TEXTS = [
    "def retry_with_backoff(func, attempts=3):\n    for attempt in range(attempts): ...",
    "Install with pip and run the setup wizard.",
    "x",
    "class HTTPAdapter:\n    def send(self, request): return self.pool.urlopen(request)" * 20,
]


def test_identity_and_protocol(embedder: LocalEmbedder) -> None:
    assert isinstance(embedder, Embedder)
    assert embedder.identity == EmbedderIdentity("local", "all-MiniLM-L6-v2", 384, True, "")


def test_documents_are_normalised_and_meaningful(embedder: LocalEmbedder) -> None:
    vectors = embedder.embed_documents(TEXTS)
    assert vectors.shape == (4, 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    query = embedder.embed_query("how are failed calls retried")
    scores = vectors @ query
    assert int(np.argmax(scores)) == 0


def test_numpy_query_path_matches_sentence_transformers(embedder: LocalEmbedder) -> None:
    """Queries skip torch; they must land in the same vector space as the documents."""
    torch_vectors = embedder.embed_documents(TEXTS)
    numpy_vectors = np.stack([embedder.embed_query(t) for t in TEXTS])
    assert np.min(np.sum(torch_vectors * numpy_vectors, axis=1)) > 0.9999


def test_query_path_does_not_import_torch() -> None:
    code = (
        "import sys; from amanmcp.embed.local import LocalEmbedder; "
        "v = LocalEmbedder().embed_query('where are retries handled'); "
        "print(v.shape[0], 'torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["384", "False"]


def test_unknown_local_directory_model_fails_clearly(tmp_path) -> None:
    (tmp_path / "config.json").write_text('{"model_type": "gpt2", "hidden_size": 8}')
    emb = LocalEmbedder(str(tmp_path))
    with pytest.raises(EmbedderError):
        emb._embed_numpy(["x"])
