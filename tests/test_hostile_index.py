"""A damaged index is detected and named, every command says how to rebuild it, and `index`/`serve` rebuild it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from amanmcp.config import load_config
from amanmcp.embed.factory import Selection
from amanmcp.errors import IndexDamagedError
from amanmcp.models import Chunk
from amanmcp.search import Searcher
from amanmcp.status import index_status
from amanmcp.store import IndexLayout, IndexStore
from amanmcp.store.db import FileRecord, Filters
from amanmcp.watch import LiveIndex

AMANMCP = [sys.executable, "-m", "amanmcp"]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*AMANMCP, *args], capture_output=True, text=True, timeout=300)


def damage(db: Path, how: str) -> None:
    for leftover in (db.with_name("index.db-wal"), db.with_name("index.db-shm")):
        leftover.unlink(missing_ok=True)  # the damage is in the main file, as after a bad copy or disk
    if how == "truncated":
        os.truncate(db, db.stat().st_size * 2 // 5)
    elif how == "zero_bytes":
        os.truncate(db, 0)
    elif how == "garbage_header":
        with db.open("r+b") as fh:
            fh.write(b"this is not an sqlite file at all, sorry" * 3)
    else:
        raise ValueError(how)


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from conftest import write_project

    root = tmp_path_factory.mktemp("pristine") / "shop"
    root.mkdir()
    write_project(root)
    result = run("index", str(root))
    assert result.returncode == 0, result.stderr
    return root


@pytest.fixture
def copy(pristine: Path, tmp_path: Path) -> Path:
    root = tmp_path / "copy" / "shop"
    shutil.copytree(pristine, root, symlinks=True)
    return root


@pytest.mark.parametrize("how", ["truncated", "zero_bytes", "garbage_header"])
def test_every_command_names_the_damage_and_index_rebuilds(copy: Path, how: str) -> None:
    db = IndexLayout(copy).current() / "index.db"
    damage(db, how)
    for args in (["status", "--path", str(copy)], ["search", "retry", "--path", str(copy)],
                 ["search", "retry", "--path", str(copy), "--format", "json"]):
        result = run(*args)
        assert result.returncode == 1, (args, result.stdout, result.stderr)
        assert "Traceback" not in result.stderr + result.stdout, args
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, (args, result.stderr)
        assert lines[0].startswith(f"error: the index at {db} is damaged (")
        assert lines[0].endswith(f"run `amanmcp index --force {copy}` to rebuild it")

    doctor = run("doctor", "--path", str(copy), "--json")  # one failed check among the others
    assert doctor.returncode == 1 and "Traceback" not in doctor.stderr
    checks = {c["name"]: c for c in json.loads(doctor.stdout)["checks"]}
    assert checks["index"]["level"] == "fail" and f"the index at {db} is damaged" in checks["index"]["detail"]
    assert "amanmcp index --force" in checks["index"]["fix"] and "embedder" in checks

    rebuilt = run("index", str(copy))  # no --force needed: a damaged index is rebuilt, not patched
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert "full rebuild (the index was damaged" in rebuilt.stdout
    found = run("search", "retry_with_backoff", "--path", str(copy), "--format", "json", "-n", "1")
    assert found.returncode == 0 and json.loads(found.stdout)["results"][0]["path"] == "src/payments/retry.py"
    assert run("status", "--path", str(copy)).returncode == 0
    assert len(list((copy / ".amanmcp").glob("gen-*"))) == 1  # the damaged generation is gone


def synthetic_store(directory: Path) -> Path:
    """An index big enough (a few hundred pages) that damage can sit away from the tables' first pages."""
    store = IndexStore(directory)
    rng = np.random.default_rng(0)
    for i in range(300):
        chunks = [Chunk(f"f{i}.py", 3 * j + 1, 3 * j + 3, f"def func_{i}_{j}(x):\n    return x * {j}  # words",
                        "python", "code", f"func_{i}_{j}", "function") for j in range(10)]
        store.put_file(FileRecord(f"f{i}.py", "h", 0.0, 1, "python"), chunks,
                       rng.standard_normal((10, 64)).astype(np.float32))
    store.commit()
    store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    store.close()
    return directory / "index.db"


def test_damage_found_later_is_index_damaged_too(tmp_path: Path) -> None:
    """Pages scribbled over in the middle: caught on open, or by the first query that reads them;
    either way IndexDamagedError, never a raw sqlite3 error. Some spans pass the open-time probe, so
    the query-time conversion is exercised too."""
    caught_later = 0
    for n, span in enumerate([(0.2, 0.4), (0.5, 0.7), (0.3, 0.5), (0.6, 0.8)]):
        directory = tmp_path / f"gen-{n}"
        directory.mkdir()
        db = synthetic_store(directory)
        data = bytearray(db.read_bytes())
        pages = len(data) // 4096
        for page in range(int(pages * span[0]), int(pages * span[1])):
            data[page * 4096 + 8 : (page + 1) * 4096] = b"\xab" * (4096 - 8)
        db.write_bytes(data)
        try:
            store = IndexStore(directory, readonly=True)
        except IndexDamagedError as exc:
            assert "is damaged (" in str(exc)
            continue
        caught_later += 1
        try:
            with pytest.raises(IndexDamagedError, match="is damaged"):
                store.counts()
            with pytest.raises(IndexDamagedError, match="is damaged"):
                store.bm25(["func"], 10, Filters())
            with pytest.raises(IndexDamagedError, match="is damaged"):
                store.vectors(64)
        finally:
            store.close()
    assert caught_later >= 1


def test_searcher_and_status_raise_index_damaged(copy: Path, embedder) -> None:
    settings = load_config(copy, env={}).settings
    damage(IndexLayout(copy).current() / "index.db", "garbage_header")
    with pytest.raises(IndexDamagedError, match="amanmcp index --force"):
        Searcher(copy, settings, embedder).search("retry")
    with pytest.raises(IndexDamagedError):
        index_status(copy, settings)


def test_serve_rebuilds_a_damaged_index(copy: Path, embedder) -> None:
    settings = load_config(copy, env={}).settings
    damage(IndexLayout(copy).current() / "index.db", "truncated")
    with IndexLayout(copy).write_lock():
        live = LiveIndex(copy, settings, Selection(embedder, "local", "local", False, "test"), watch=False)
        live.start()
        try:
            deadline = time.monotonic() + 60
            while live.runs == 0 and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            live.stop()
    progress = live.progress()
    assert progress.state == "watching" and progress.last_error is None, progress
    assert "full build" in progress.last_run
    searcher = Searcher(copy, settings, embedder)
    assert searcher.search("retry_with_backoff", limit=1).results[0].path == "src/payments/retry.py"
    searcher.close()


def test_garbage_pointer_is_no_index_and_index_rebuilds(copy: Path, embedder) -> None:
    from amanmcp.indexer import Indexer
    from amanmcp.search import NoIndexError

    settings = load_config(copy, env={}).settings
    (copy / ".amanmcp" / "CURRENT").write_bytes(b"\xff\xfe../../etc\n")
    with pytest.raises(NoIndexError, match="no index yet"):
        Searcher(copy, settings, embedder).search("retry")
    report = Indexer(copy, settings, embedder).run()
    assert report.full_rebuild and report.chunks_total > 0
    assert IndexLayout(copy).current() is not None
