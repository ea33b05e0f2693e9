"""Nearest-neighbour search over chunk vectors: exact NumPy below a threshold, usearch HNSW above.

The files here are a cache of the vectors held in SQLite, stamped with the database's
`vectors_version`; a stale or missing cache is rebuilt from SQLite instead of trusted.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

MATRIX, IDS, HNSW, STAMP = "vectors.npy", "vector_ids.npy", "vectors.usearch", "vectors.json"


def _atomic_save_npy(path: Path, array: np.ndarray) -> None:
    tmp = path.with_suffix(".tmp.npy")
    np.save(tmp, array)
    os.replace(tmp, path)


class VectorIndex:
    def __init__(self, ids: np.ndarray, matrix: np.ndarray, hnsw: object | None = None) -> None:
        self.ids = ids  # sorted ascending
        self.matrix = matrix
        self.hnsw = hnsw

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def kind(self) -> str:
        return "hnsw" if self.hnsw is not None else "exact"

    @classmethod
    def build(cls, directory: Path, ids: np.ndarray, matrix: np.ndarray, version: int, exact_max: int) -> VectorIndex:
        """Write the cache files for this version and return the ready index."""
        (directory / STAMP).unlink(missing_ok=True)
        _atomic_save_npy(directory / MATRIX, matrix)
        _atomic_save_npy(directory / IDS, ids)
        hnsw = None
        if len(ids) > exact_max:
            from usearch.index import Index

            hnsw = Index(ndim=matrix.shape[1], metric="cos", dtype="f32")
            hnsw.add(ids, matrix)
            tmp = directory / (HNSW + ".tmp")
            hnsw.save(str(tmp))
            os.replace(tmp, directory / HNSW)
        else:
            (directory / HNSW).unlink(missing_ok=True)
        stamp = {"version": version, "count": len(ids), "hnsw": hnsw is not None}
        (directory / STAMP).write_text(json.dumps(stamp))
        return cls(ids, matrix, hnsw)

    @classmethod
    def load(cls, directory: Path, version: int) -> VectorIndex | None:
        """The cached index if it matches `version`, else None."""
        try:
            stamp = json.loads((directory / STAMP).read_text())
            if stamp["version"] != version:
                return None
            matrix = np.load(directory / MATRIX, mmap_mode="r")
            ids = np.load(directory / IDS)
            hnsw = None
            if stamp["hnsw"]:
                from usearch.index import Index

                hnsw = Index.restore(str(directory / HNSW), view=True)
        except (OSError, ValueError, KeyError):
            return None
        if len(ids) != stamp["count"] or matrix.shape[0] != len(ids):
            return None
        return cls(ids, matrix, hnsw)

    def search(self, query: np.ndarray, k: int, allowed: np.ndarray | None = None) -> list[tuple[int, float]]:
        """(chunk id, cosine similarity) best first; `allowed` restricts to those chunk ids."""
        if len(self.ids) == 0 or k <= 0:
            return []
        if allowed is not None:
            return self._exact(query, k, np.nonzero(np.isin(self.ids, allowed))[0])
        if self.hnsw is not None:
            matches = self.hnsw.search(query, min(k, len(self.ids)))  # type: ignore[attr-defined]
            return [(int(key), 1.0 - float(dist)) for key, dist in zip(matches.keys, matches.distances, strict=True)]
        return self._exact(query, k, None)

    def _exact(self, query: np.ndarray, k: int, positions: np.ndarray | None) -> list[tuple[int, float]]:
        matrix = self.matrix if positions is None else self.matrix[positions]
        ids = self.ids if positions is None else self.ids[positions]
        if len(ids) == 0:
            return []
        scores = np.asarray(matrix @ query.astype(np.float32))
        k = min(k, len(ids))
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top])]
        return [(int(ids[i]), float(scores[i])) for i in top]

