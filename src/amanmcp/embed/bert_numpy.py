"""A BERT encoder in plain NumPy, so queries never import torch.

Loading torch costs seconds on a cold CLI start; one query through six small layers costs
milliseconds. This runs any BERT-family sentence-transformers model stored as safetensors
(mean pooling), and gives the same vectors as sentence-transformers to ~1e-6.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np


def _erf(x: np.ndarray) -> np.ndarray:
    """Abramowitz-Stegun 7.1.26 (|error| < 1.5e-7): exact-GELU without scipy."""
    sign = np.sign(x)
    a = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * a)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    return sign * (1.0 - poly * np.exp(-a * a))


def _gelu(x: np.ndarray) -> np.ndarray:
    return 0.5 * x * (1.0 + _erf(x * np.float32(0.7071067811865476)))


def _layer_norm(x: np.ndarray, w: np.ndarray, b: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(-1, keepdims=True)
    centred = x - mean
    var = (centred * centred).mean(-1, keepdims=True)
    return centred / np.sqrt(var + eps) * w + b


@dataclass(slots=True)
class _Layer:
    qkv_w: np.ndarray  # (hidden, 3*hidden), pre-transposed
    qkv_b: np.ndarray
    out_w: np.ndarray
    out_b: np.ndarray
    ln1_w: np.ndarray
    ln1_b: np.ndarray
    up_w: np.ndarray
    up_b: np.ndarray
    down_w: np.ndarray
    down_b: np.ndarray
    ln2_w: np.ndarray
    ln2_b: np.ndarray


class NumpyBert:
    """Token ids in, mean-pooled sentence vectors out."""

    def __init__(self, model_dir: Path) -> None:
        from safetensors.numpy import load_file

        config = json.loads((model_dir / "config.json").read_text())
        if config.get("model_type") != "bert":
            raise ValueError(f"NumPy runtime supports BERT models only, not {config.get('model_type')!r}")
        self.heads: int = config["num_attention_heads"]
        self.eps: float = config["layer_norm_eps"]
        w = load_file(str(model_dir / "model.safetensors"))
        w = {k.removeprefix("bert."): v for k, v in w.items()}
        self.word = w["embeddings.word_embeddings.weight"]
        self.position = w["embeddings.position_embeddings.weight"]
        self.token_type = w["embeddings.token_type_embeddings.weight"]
        self.emb_ln = (w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
        self.layers: list[_Layer] = []
        for i in range(config["num_hidden_layers"]):
            p = f"encoder.layer.{i}."
            att = p + "attention."
            self.layers.append(
                _Layer(
                    qkv_w=np.ascontiguousarray(
                        np.concatenate([w[f"{att}self.{n}.weight"] for n in ("query", "key", "value")]).T
                    ),
                    qkv_b=np.concatenate([w[f"{att}self.{n}.bias"] for n in ("query", "key", "value")]),
                    out_w=np.ascontiguousarray(w[att + "output.dense.weight"].T),
                    out_b=w[att + "output.dense.bias"],
                    ln1_w=w[att + "output.LayerNorm.weight"],
                    ln1_b=w[att + "output.LayerNorm.bias"],
                    up_w=np.ascontiguousarray(w[p + "intermediate.dense.weight"].T),
                    up_b=w[p + "intermediate.dense.bias"],
                    down_w=np.ascontiguousarray(w[p + "output.dense.weight"].T),
                    down_b=w[p + "output.dense.bias"],
                    ln2_w=w[p + "output.LayerNorm.weight"],
                    ln2_b=w[p + "output.LayerNorm.bias"],
                )
            )

    def encode(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """ids, mask: (batch, seq) int arrays. Returns (batch, hidden) mean-pooled float32."""
        b, s = ids.shape
        x = self.word[ids] + self.position[:s][None] + self.token_type[0]
        x = _layer_norm(x, *self.emb_ln, self.eps)
        hidden = x.shape[-1]
        d = hidden // self.heads
        bias = ((1.0 - mask[:, None, None, :].astype(np.float32)) * np.float32(-1e9)).astype(np.float32)
        scale = np.float32(1.0 / np.sqrt(d))
        for layer in self.layers:
            flat = x.reshape(b * s, hidden)
            qkv = (flat @ layer.qkv_w + layer.qkv_b).reshape(b, s, 3, self.heads, d)
            q = qkv[:, :, 0].transpose(0, 2, 1, 3)
            k = qkv[:, :, 1].transpose(0, 2, 3, 1)
            v = qkv[:, :, 2].transpose(0, 2, 1, 3)
            scores = (q @ k) * scale + bias
            scores -= scores.max(-1, keepdims=True)
            np.exp(scores, out=scores)
            scores /= scores.sum(-1, keepdims=True)
            ctx = (scores @ v).transpose(0, 2, 1, 3).reshape(b * s, hidden)
            att = ctx @ layer.out_w + layer.out_b
            flat = _layer_norm(att + flat, layer.ln1_w, layer.ln1_b, self.eps)
            up = _gelu(flat @ layer.up_w + layer.up_b)
            flat = _layer_norm(up @ layer.down_w + layer.down_b + flat, layer.ln2_w, layer.ln2_b, self.eps)
            x = flat.reshape(b, s, hidden)
        m = mask[:, :, None].astype(np.float32)
        return ((x * m).sum(1) / np.maximum(m.sum(1), 1e-9)).astype(np.float32)
