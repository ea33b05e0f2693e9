import os
import subprocess
import sys
from pathlib import Path

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
    int8 = embedder.runtime == "onnx"  # the CPU default is int8; GPUs run fp32
    assert embedder.identity == EmbedderIdentity("local", "all-MiniLM-L6-v2" + ("+int8" if int8 else ""), 384, True, "")


def test_documents_are_normalised_and_meaningful(embedder: LocalEmbedder) -> None:
    vectors = embedder.embed_documents(TEXTS)
    assert vectors.shape == (4, 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    query = embedder.embed_query("how are failed calls retried")
    scores = vectors @ query
    assert int(np.argmax(scores)) == 0


def test_query_path_matches_document_path(embedder: LocalEmbedder) -> None:
    """Queries skip torch; they must land in the same vector space as the documents."""
    documents = embedder.embed_documents(TEXTS)
    queries = np.stack([embedder.embed_query(t) for t in TEXTS])
    assert np.min(np.sum(documents * queries, axis=1)) > 0.9999


def code_texts(limit: int = 48) -> list[str]:
    """Real chunks of this repository's code, as the indexer embeds them."""
    from amanmcp.bench import bench_texts
    from amanmcp.config import Settings

    return bench_texts(Path(__file__).resolve().parents[1] / "src", Settings(), limit)


def test_all_runtimes_give_sentence_transformers_vectors_on_real_code() -> None:
    """The ONNX graph is built by hand from the weights: hold it to sentence-transformers, and NumPy too."""
    texts = code_texts()
    assert len(texts) == 48 and max(len(t) for t in texts) > 1500  # some are truncated at 256 tokens
    torch_emb = LocalEmbedder(runtime="torch")
    onnx_emb = LocalEmbedder(runtime="onnx", quantize=False)
    reference = torch_emb.embed_documents(texts)
    assert (torch_emb.runtime, onnx_emb.runtime, onnx_emb.device) == ("torch", "onnx", "cpu")
    onnx_vectors = onnx_emb.embed_documents(texts)
    assert np.min(np.sum(reference * onnx_vectors, axis=1)) > 0.9999
    numpy_vectors = onnx_emb._embed_bucketed(onnx_emb._numpy_model(), texts)
    assert np.min(np.sum(reference * numpy_vectors, axis=1)) > 0.9999
    assert torch_emb.identity == onnx_emb.identity  # same vectors, same space: indexes are interchangeable

    int8 = LocalEmbedder(runtime="onnx", quantize=True)
    int8_vectors = int8.embed_documents(texts)
    assert np.mean(np.sum(reference * int8_vectors, axis=1)) > 0.98
    assert int8.identity.model == "all-MiniLM-L6-v2+int8"  # close, but another space: never mixed
    assert np.sum(int8.embed_query(texts[0]) * int8_vectors[0]) > 0.9999  # its queries use the int8 graph too


def test_batching_and_padding_do_not_change_vectors(embedder: LocalEmbedder) -> None:
    texts = code_texts(12)
    together = embedder.embed_documents(texts)
    alone = np.stack([embedder.embed_documents([t])[0] for t in texts])
    assert np.min(np.sum(together * alone, axis=1)) > 0.99999
    assert np.allclose(embedder.embed_documents(texts[::-1])[::-1], together, atol=1e-5)


def test_onnx_model_is_built_once_into_the_user_cache() -> None:
    from amanmcp.embed.local import packaged_model_dir
    from amanmcp.embed.onnx_bert import cache_dir, ensure_onnx_model

    model_dir = packaged_model_dir()
    assert model_dir is not None
    path = ensure_onnx_model(model_dir, "all-MiniLM-L6-v2")
    assert path.is_file() and path.parent == cache_dir() / "onnx"
    assert str(cache_dir()).startswith(os.environ["XDG_CACHE_HOME"])
    before = path.stat().st_mtime_ns
    assert ensure_onnx_model(model_dir, "all-MiniLM-L6-v2") == path and path.stat().st_mtime_ns == before
    assert not list(path.parent.glob("*.tmp*"))  # atomic writes leave nothing behind


def test_cpu_auto_runtime_is_onnx(embedder: LocalEmbedder) -> None:
    from amanmcp.embed.local import gpu_hint

    if gpu_hint() is not None:
        pytest.skip("a GPU is present: auto picks torch")
    assert (embedder.runtime, embedder.device) == ("onnx", "cpu")
    with pytest.raises(EmbedderError, match="unknown local runtime"):
        LocalEmbedder(runtime="tensorrt")


@pytest.mark.parametrize("quantize", ["false", "true"])
def test_query_path_does_not_import_torch(quantize: str) -> None:
    code = (
        "import sys; from amanmcp.config import load_config; from amanmcp.embed.factory import select_embedder; "
        "e = select_embedder(load_config(None).settings).embedder; v = e.embed_query('where are retries handled'); "
        "print(v.shape[0], e.identity.model, 'torch' in sys.modules)"
    )
    env = {**os.environ, "AMANMCP_EMBEDDINGS_QUANTIZE": quantize}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    model = "all-MiniLM-L6-v2" + ("+int8" if quantize == "true" else "")
    assert out.stdout.split() == ["384", model, "False"]


def test_unknown_local_directory_model_fails_clearly(tmp_path) -> None:
    (tmp_path / "config.json").write_text('{"model_type": "gpt2", "hidden_size": 8}')
    emb = LocalEmbedder(str(tmp_path))
    with pytest.raises(EmbedderError):
        emb.embed_documents(["x"])
    with pytest.raises(EmbedderError, match="BERT safetensors models only"):
        LocalEmbedder(str(tmp_path), runtime="onnx").embed_documents(["x"])
