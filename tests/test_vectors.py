"""The vector cache: exact and file-centroid search, written and read back from disk."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from amanmcp.store.vectors import VectorIndex, file_centroids


def unit(*values: float) -> np.ndarray:
    v = np.asarray(values, dtype=np.float32)
    return v / np.linalg.norm(v)


def test_a_file_centroid_is_the_mean_direction_not_the_sum() -> None:
    paths = ["big.py"] * 3 + ["small.py"]
    matrix = np.stack([unit(1, 0.1, 0), unit(1, 0, 0.1), unit(0.9, 0.2, 0), unit(0, 1, 0)])
    names, centroids = file_centroids(paths, matrix)
    assert names == ["big.py", "small.py"]
    assert np.allclose(np.linalg.norm(centroids, axis=1), 1.0)  # three windows do not make it longer
    assert centroids[1] == pytest.approx(unit(0, 1, 0))


def test_file_ranks_survive_a_round_trip_through_disk(tmp_path: Path) -> None:
    ids = np.arange(1, 5, dtype=np.int64)
    matrix = np.stack([unit(1, 0, 0), unit(0.9, 0.1, 0), unit(0, 1, 0), unit(0, 0, 1)])
    built = VectorIndex.build(tmp_path, ids, matrix, version=3, exact_max=100,
                              paths=["a.py", "a.py", "b.py", "c.py"])
    loaded = VectorIndex.load(tmp_path, 3)
    assert loaded is not None and loaded.files is not None
    query = unit(0, 1, 0.2)
    assert loaded.file_ranks(query, 10) == built.file_ranks(query, 10)
    assert list(loaded.file_ranks(query, 10)) == ["b.py", "c.py", "a.py"]
    assert list(loaded.file_ranks(query, 1)) == ["b.py"]
    assert VectorIndex.load(tmp_path, 4) is None  # another version: rebuilt from SQLite instead


def test_an_index_without_paths_has_no_file_ranks(tmp_path: Path) -> None:
    index = VectorIndex.build(tmp_path, np.arange(1, 3, dtype=np.int64), np.stack([unit(1, 0), unit(0, 1)]), 1, 100)
    assert index.files is None and index.file_ranks(unit(1, 0), 5) == {}
    assert VectorIndex.load(tmp_path, 1).file_ranks(unit(1, 0), 5) == {}
