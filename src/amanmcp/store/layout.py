"""Generations on disk: a full rebuild is written aside and swapped in with one rename.

`<root>/.amanmcp/CURRENT` names the live generation folder. Writing a new one never touches the
old, and `os.replace` of CURRENT is atomic, so a crash at any point leaves a searchable index.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from amanmcp.config import INDEX_DIR
from amanmcp.errors import AmanError


class IndexLockedError(AmanError):
    """Another process is writing this index."""


def write_failure(base: Path, exc: OSError) -> AmanError:
    """A write to the index folder failed (a full disk, a read-only folder): one plain sentence."""
    where = f" ({exc.filename})" if exc.filename else ""
    return AmanError(f"cannot write the index in {base}: {exc.strerror or exc}{where}; searches keep answering "
                     "from the last complete index")


class IndexLayout:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.base = root / INDEX_DIR

    @property
    def pointer(self) -> Path:
        return self.base / "CURRENT"

    def current(self) -> Path | None:
        try:
            name = self.pointer.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError):  # missing or garbage: no index, rebuilt by the next `index`
            return None
        if not name.startswith("gen-") or "/" in name or "\\" in name:
            return None
        path = self.base / name
        return path if (path / "index.db").is_file() else None

    def new_generation(self) -> Path:
        self.base.mkdir(parents=True, exist_ok=True)
        (self.base / ".gitignore").write_text("*\n")
        path = self.base / f"gen-{time.time_ns()}"
        path.mkdir()
        return path

    def publish(self, generation: Path) -> None:
        """Make `generation` live, then remove every other generation."""
        tmp = self.base / "CURRENT.tmp"
        tmp.write_text(generation.name + "\n")
        with tmp.open("rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, self.pointer)
        self.remove_stale(keep=generation)

    def remove_stale(self, keep: Path | None) -> None:
        for path in self.base.glob("gen-*"):
            if keep is None or path.name != keep.name:
                shutil.rmtree(path, ignore_errors=True)

    @contextlib.contextmanager
    def write_lock(self) -> Iterator[None]:
        """One writer per index, across processes.

        Re-entrant within a process: `serve` holds the lock for its lifetime, and its own index
        runs (which take it again) go through. Within the process, the caller serialises writers.
        """
        try:
            self.base.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise write_failure(self.base, exc) from exc
        key = str(self.base.resolve())
        with _held_lock:
            if key in _held:
                _held[key] += 1
                nested = True
            else:
                nested = False
        if nested:
            try:
                yield
            finally:
                with _held_lock:
                    _held[key] -= 1
            return
        try:
            fh = (self.base / "lock").open("a+")
        except OSError as exc:
            raise write_failure(self.base, exc) from exc
        with fh:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                fh.seek(0)
                holder = fh.read().strip()
                raise IndexLockedError(
                    f"another amanmcp process{f' (pid {holder})' if holder.isdigit() else ''} is writing the "
                    f"index in {self.base} (an `index` run or `serve`); wait for it or stop it"
                ) from None
            with contextlib.suppress(OSError):  # the pid only names the holder; a full disk must not stop us here
                os.ftruncate(fh.fileno(), 0)
                os.write(fh.fileno(), str(os.getpid()).encode())
            with _held_lock:
                _held[key] = 1
            try:
                yield
            finally:
                with _held_lock:
                    del _held[key]
                with contextlib.suppress(OSError):
                    os.ftruncate(fh.fileno(), 0)
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


_held: dict[str, int] = {}  # index folders whose write lock this process holds -> nesting depth
_held_lock = threading.Lock()
