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
FILES, FILE_PATHS = "file_vectors.npy", "file_paths.json"  # one centroid per file: its chunks' mean direction
TIER = "tier"  # a first build's static vectors (the same files, in this sub-folder) while its own are built


def _atomic_save_npy(path: Path, array: np.ndarray) -> None:
    tmp = path.with_suffix(".tmp.npy")
    np.save(tmp, array)
    os.replace(tmp, path)


class VectorIndex:
    def __init__(
        self, ids: np.ndarray, matrix: np.ndarray, hnsw: object | None = None,
        files: tuple[list[str], np.ndarray] | None = None,
    ) -> None:
        self.ids = ids  # sorted ascending
        self.matrix = matrix
        self.hnsw = hnsw
        self.files = files  # (paths, centroids), or None when the cache predates them

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def kind(self) -> str:
        return "hnsw" if self.hnsw is not None else "exact"

    @classmethod
    def build(
        cls, directory: Path, ids: np.ndarray, matrix: np.ndarray, version: int, exact_max: int,
        paths: list[str] | None = None,
    ) -> VectorIndex:
        """Write the cache files for this version and return the ready index.

        `paths` (each vector's file) adds the file centroids that `file_ranks` searches.
        """
        (directory / STAMP).unlink(missing_ok=True)
        _atomic_save_npy(directory / MATRIX, matrix)
        _atomic_save_npy(directory / IDS, ids)
        files = file_centroids(paths, matrix) if paths is not None else None
        if files is not None:
            _atomic_save_npy(directory / FILES, files[1])
            tmp = directory / (FILE_PATHS + ".tmp")
            tmp.write_text(json.dumps(files[0]))
            os.replace(tmp, directory / FILE_PATHS)
        else:
            (directory / FILES).unlink(missing_ok=True)
            (directory / FILE_PATHS).unlink(missing_ok=True)
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
        stamp = {"version": version, "count": len(ids), "hnsw": hnsw is not None, "files": files is not None}
        (directory / STAMP).write_text(json.dumps(stamp))
        return cls(ids, matrix, hnsw, files)

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
            files = None
            if stamp.get("files"):
                files = (json.loads((directory / FILE_PATHS).read_text()), np.load(directory / FILES))
        except (OSError, ValueError, KeyError):
            return None
        if len(ids) != stamp["count"] or matrix.shape[0] != len(ids):
            return None
        if files is not None and len(files[0]) != files[1].shape[0]:
            files = None
        return cls(ids, matrix, hnsw, files)

    def file_ranks(self, query: np.ndarray, limit: int) -> dict[str, int]:
        """Files by the similarity of their centroid to the query: path -> rank (1 = closest)."""
        if self.files is None or not self.files[0]:
            return {}
        paths, centroids = self.files
        scores = centroids @ query.astype(np.float32)
        k = min(limit, len(paths))
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top])]
        return {paths[i]: rank for rank, i in enumerate(top, 1)}

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


def file_centroids(paths: list[str], matrix: np.ndarray) -> tuple[list[str], np.ndarray]:
    """(sorted paths, unit-length mean vector of each file's chunks).

    A mean, not a sum: a big file's many windows do not make it closer to every query.
    """
    names = sorted(set(paths))
    if not names:
        return [], np.zeros((0, matrix.shape[1] if matrix.ndim == 2 else 0), dtype=np.float32)
    index = {p: i for i, p in enumerate(names)}
    rows = np.fromiter((index[p] for p in paths), dtype=np.int64, count=len(paths))
    sums = np.zeros((len(names), matrix.shape[1]), dtype=np.float64)
    np.add.at(sums, rows, matrix)
    norms = np.linalg.norm(sums, axis=1, keepdims=True)
    return names, (sums / np.where(norms > 0, norms, 1.0)).astype(np.float32)
