"""Static embeddings: one vector per token, averaged. Thousands of chunks/s on any CPU.

Two kinds, both backend `static`:
- model2vec: by default a static model *distilled here* from the in-process model (each
  vocabulary token run once through BERT, PCA to 256 dimensions, Zipf/SIF weighting, as
  model2vec's own distiller does) and cached under the user cache dir, so it needs no download,
  no torch and about as long as one small index. A model2vec model the user names (a folder, or
  a hub name they chose) is loaded instead.
- `hashed`: a dependency-free bag of code identifiers (whole, split into parts, and character
  trigrams) hashed into 512 signed buckets. Weak but never unavailable: the last step of auto.
"""

from __future__ import annotations

import logging
import math
import re
import shutil
import tempfile
import threading
import zlib
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from amanmcp.embed.base import EmbedderError, EmbedderIdentity, l2_normalize
from amanmcp.embed.local import DEFAULT_MODEL, has_module, is_bert_safetensors, resolve_model
from amanmcp.tokens import STOPWORDS, index_words

log = logging.getLogger(__name__)
DISTILLED = "distilled"
HASHED = "hashed"
PCA_DIMS = 256
SIF_COEFFICIENT = 1e-4
DISTILL_VERSION = "1"  # bump when the recipe changes: cached models are keyed by it
_SKIP_TOKEN = re.compile(r"\[unused\d+\]")


# -- model2vec -----------------------------------------------------------------------------------


def distilled_name(source_name: str) -> str:
    return f"{source_name}-m2v{PCA_DIMS}"


def distilled_path(model_dir: Path, source_name: str) -> Path:
    from amanmcp.embed.onnx_bert import cache_dir, model_fingerprint

    return cache_dir() / "static" / f"{distilled_name(source_name)}-{model_fingerprint(model_dir)}-v{DISTILL_VERSION}"


def _token_vectors(model_dir: Path, name: str, ids: list[int], cls: int, sep: int) -> np.ndarray:
    """Mean-pooled BERT output of `[CLS] token [SEP]` for every token id (onnxruntime if present)."""
    encoder: Any
    if has_module("onnxruntime") and has_module("onnx"):
        from amanmcp.embed.onnx_bert import OnnxBert, ensure_onnx_model

        encoder = OnnxBert(ensure_onnx_model(model_dir, name, quantize=False))  # the local backend's graph
    else:
        from amanmcp.embed.bert_numpy import NumpyBert

        encoder = NumpyBert(model_dir)
    batches = [np.array([[cls, i, sep] for i in ids[start : start + 512]], dtype=np.int64)
               for start in range(0, len(ids), 512)]
    inputs = [(batch, np.ones_like(batch)) for batch in batches]
    if hasattr(encoder, "encode_each"):
        parts = encoder.encode_each(inputs)
    else:
        parts = [encoder.encode(*pair) for pair in inputs]
    return np.nan_to_num(np.concatenate(parts, axis=0)) if parts else np.zeros((0, 0), dtype=np.float32)


def _pca(x: np.ndarray, dims: int) -> np.ndarray:
    """Project onto the top principal components, signs fixed so results are deterministic."""
    centred = x - x.mean(axis=0)
    cov = (centred.T @ centred) / max(len(x) - 1, 1)
    _, vectors = np.linalg.eigh(cov.astype(np.float64))
    components = vectors[:, ::-1][:, : min(dims, x.shape[1])]
    scores = centred @ components
    signs = np.sign(scores[np.argmax(np.abs(scores), axis=0), np.arange(scores.shape[1])])
    return (scores * signs).astype(np.float32)


def distill(model_dir: Path, source_name: str) -> Path:
    """Build the static model once and cache it; later calls return the cached folder."""
    target = distilled_path(model_dir, source_name)
    if (target / "model.safetensors").is_file():
        return target
    if not is_bert_safetensors(model_dir):
        raise EmbedderError(f"cannot distil a static model from {source_name}: it is not a BERT safetensors model")
    from model2vec import StaticModel
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    vocab = sorted(tokenizer.get_vocab().items(), key=lambda kv: kv[1])
    if [i for _, i in vocab] != list(range(len(vocab))):
        raise EmbedderError(f"cannot distil {source_name}: its vocabulary ids are not contiguous")
    cls, sep = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    if cls is None or sep is None:
        raise EmbedderError(f"cannot distil {source_name}: its tokenizer has no [CLS]/[SEP] tokens")
    kept = [i for token, i in vocab if not _SKIP_TOKEN.fullmatch(token)]
    vectors = _pca(_token_vectors(model_dir, source_name, kept, cls, sep), PCA_DIMS)
    proba = 1.0 / np.arange(2, len(kept) + 2)
    proba /= proba.sum()
    vectors *= (SIF_COEFFICIENT / (SIF_COEFFICIENT + proba))[:, None].astype(np.float32)
    table = np.zeros((len(vocab), vectors.shape[1]), dtype=np.float32)  # unused tokens: zero rows
    table[kept] = vectors
    config = {"model_type": "model2vec", "architectures": ["StaticModel"], "tokenizer_name": source_name,
              "apply_pca": PCA_DIMS, "sif_coefficient": SIF_COEFFICIENT, "hidden_dim": int(table.shape[1]),
              "normalize": True, "pooling": "mean", "distilled_by": f"amanmcp v{DISTILL_VERSION}"}
    model = StaticModel(table, tokenizer, config=config, normalize=True, base_model_name=source_name, max_length=None)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=target.name + ".tmp"))
    try:
        model.save_pretrained(tmp)
        try:
            tmp.rename(target)
        except OSError:  # another process finished first: theirs is as good as ours
            if not (target / "model.safetensors").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


class StaticEmbedder:
    """A model2vec static model: distilled from the local default, or one the user names."""

    def __init__(self, model: str = DISTILLED, *, source_model: str = DEFAULT_MODEL) -> None:
        self.requested = model
        self.source_model = source_model
        self._model: Any = None
        self._lock = threading.Lock()
        if model == DISTILLED:
            self.source_name, self.source_dir = resolve_model(source_model)
            if not is_bert_safetensors(self.source_dir):
                raise EmbedderError(
                    f"the static model is distilled from a local BERT model; {source_model} is not one. "
                    "Name a model2vec model in `static.model`, or set `static.model: hashed`"
                )
            self.model_name = distilled_name(self.source_name)
        else:
            self.source_name, self.source_dir = model, None
            self.model_name = Path(model).name if Path(model).expanduser().is_dir() else model
        if not has_module("model2vec"):
            raise EmbedderError(
                "static embeddings need model2vec: `pip install model2vec`, or set `static.model: hashed`"
            )

    def _load(self) -> Any:
        with self._lock:
            if self._model is None:
                from model2vec import StaticModel

                if self.requested == DISTILLED:
                    assert self.source_dir is not None
                    path: str | Path = distill(self.source_dir, self.source_name)
                else:
                    path = Path(self.requested).expanduser()
                    path = path if path.is_dir() else self.requested  # a hub name the user chose
                try:
                    self._model = StaticModel.from_pretrained(path, force_download=False, max_length=None)
                except Exception as exc:  # model2vec raises many kinds; all mean "cannot load"
                    raise EmbedderError(f"cannot load the static model {self.model_name!r}: {exc}") from exc
            return self._model

    @property
    def dimensions(self) -> int:
        if self.requested == DISTILLED:
            return PCA_DIMS
        return int(self._load().dim)

    @property
    def identity(self) -> EmbedderIdentity:
        return EmbedderIdentity("static", self.model_name, self.dimensions, True, "")

    def describe(self) -> str:
        how = f"distilled locally from {self.source_name}" if self.requested == DISTILLED else "model2vec"
        return f"{self.model_name} ({how})"

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimensions), dtype=np.float32)
        vectors = self._load().encode(texts, use_multiprocessing=False, normalize=True)
        return l2_normalize(np.asarray(vectors, dtype=np.float32))  # a text with no known token stays zero

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed_documents([text])[0]


# -- the quick tier of a first build --------------------------------------------------------------

TIER_MIN = 1000  # chunks left to embed below which a first build's own vectors come soon enough (~15 s, 2 cores)
TIER_DISTIL_MIN = 5000  # chunks left to embed for which distilling the static model first (once, ~20 s) pays


def tier_embedder(source_model: str, pending: int | None = None) -> StaticEmbedder | None:
    """The static model a first build answers with while its own vectors are built, or None.

    Only the model distilled here from the build's own local model (so its words mean the same):
    used when it is at hand (distilled before) and `pending` chunks are left to embed (None: for a
    search, which only loads it), and distilled now (once per machine and model) only when so many
    chunks are left that the wait pays. Never a download.
    """
    if pending is not None and pending < TIER_MIN:
        return None
    name, directory = resolve_model(source_model, fetch=False)
    if directory is None or not is_bert_safetensors(directory) or not has_module("model2vec"):
        return None
    ready = (distilled_path(directory, name) / "model.safetensors").is_file()
    if not ready and (pending is None or pending < TIER_DISTIL_MIN):
        return None
    return StaticEmbedder(DISTILLED, source_model=source_model)


# -- hashed bag of identifiers ---------------------------------------------------------------------


class HashedEmbedder:
    """Signed feature hashing of code identifiers: `parseHTTPArgs` → parse_http_args, parse, http, args, trigrams."""

    MODEL = "hashed-identifiers-v1"
    DIMS = 512

    @property
    def dimensions(self) -> int:
        return self.DIMS

    @property
    def identity(self) -> EmbedderIdentity:
        return EmbedderIdentity("static", self.MODEL, self.DIMS, True, "")

    def describe(self) -> str:
        return f"{self.MODEL} (dependency-free bag of identifiers)"

    def _features(self, text: str) -> Counter[str]:
        features: Counter[str] = Counter()
        for word in index_words(text):
            if word in STOPWORDS or word.isdigit():
                continue
            features["w:" + word] += 1
            if len(word) >= 5 and "_" not in word:
                padded = f"<{word}>"
                for i in range(len(padded) - 2):
                    features["g:" + padded[i : i + 3]] += 0.25
        return features

    def _vector(self, text: str) -> np.ndarray:
        vector = np.zeros(self.DIMS, dtype=np.float32)
        for feature, count in self._features(text).items():
            h = zlib.crc32(feature.encode("utf-8"))
            weight = (1.0 + math.log(count)) if count >= 1 else count
            vector[h % self.DIMS] += weight if (h >> 31) & 1 else -weight
        return vector

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.DIMS), dtype=np.float32)
        return l2_normalize(np.stack([self._vector(t) for t in texts]))

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed_documents([text])[0]
