"""Generations on disk: a full rebuild is written aside and swapped in with one rename.

`<root>/.amanmcp/CURRENT` names the live generation folder. Writing a new one never touches the
old, and `os.replace` of CURRENT is atomic, so a crash at any point leaves a searchable index.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator
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

    @property
    def repo_file(self) -> Path:
        return self.base / "repo.json"

    def remembered_repo(self) -> str | None:
        """The repository name this folder was last indexed as in a shared store (`index --repo`), if any."""
        try:
            name = json.loads(self.repo_file.read_text(encoding="utf-8")).get("repo")
        except (OSError, ValueError, AttributeError):  # none yet, or garbage: the folder's name applies
            return None
        return name if isinstance(name, str) and name else None

    def remember_repo(self, name: str) -> None:
        """Record the name, so `search`, `status`, `graph` and `serve` here find the same repository."""
        self._make_base()
        tmp = self.base / "repo.json.tmp"
        tmp.write_text(json.dumps({"repo": name}) + "\n", encoding="utf-8")
        os.replace(tmp, self.repo_file)

    def _make_base(self) -> None:
        """The index folder, which ignores itself in git."""
        self.base.mkdir(parents=True, exist_ok=True)
        (self.base / ".gitignore").write_text("*\n")

    def new_generation(self) -> Path:
        self._make_base()
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
    def write_lock(self, purpose: str = "") -> Iterator[None]:
        """One writer per index, across processes.

        Re-entrant within a process: `serve` holds the lock for its lifetime, and its own index
        runs (which take it again) go through. Within the process, the caller serialises writers.
        `purpose` ("serve") is written beside the pid, so that a refused writer can say who holds it.
        """
        key = self._lock_key()
        with _held_lock:
            nested = key in _held
            if nested:
                _held[key] += 1
        if nested:
            try:
                yield
            finally:
                with _held_lock:
                    if key in _held:  # gone if the outer holder let go first (a stop that timed out)
                        _held[key] -= 1
            return
        release = self._acquire(key, purpose, refuse=True)
        assert release is not None
        try:
            yield
        finally:
            release()

    def try_write_lock(self, purpose: str = "") -> Callable[[], None] | None:
        """Take the write lock without waiting, for as long as the caller wants: the function that
        releases it, or None while anyone else holds it (another process, or another holder in this
        one: unlike `write_lock`, this is not re-entrant). `serve` polls it to take the writer role."""
        key = self._lock_key()
        with _held_lock:
            if key in _held:
                return None
        return self._acquire(key, purpose, refuse=False)

    def lock_holder(self) -> tuple[int | None, str]:
        """(pid, purpose) written by the holder of the write lock, if any (a hint: read without the lock)."""
        try:
            return _parse_holder((self.base / "lock").read_text(encoding="utf-8", errors="replace"))
        except OSError:
            return None, ""

    def _lock_key(self) -> str:
        try:
            self.base.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise write_failure(self.base, exc) from exc
        return str(self.base.resolve())

    def _acquire(self, key: str, purpose: str, *, refuse: bool) -> Callable[[], None] | None:
        try:
            fh = (self.base / "lock").open("a+")
        except OSError as exc:
            raise write_failure(self.base, exc) from exc
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            pid, holder = _parse_holder(fh.read())
            fh.close()
            if not refuse:
                return None
            raise IndexLockedError(_locked_message(self.base, pid, holder)) from None
        except BaseException:
            fh.close()
            raise
        with contextlib.suppress(OSError):  # the pid only names the holder; a full disk must not stop us here
            os.ftruncate(fh.fileno(), 0)
            os.write(fh.fileno(), f"{os.getpid()} {purpose}".strip().encode())
        with _held_lock:
            _held[key] = 1

        def release() -> None:
            with _held_lock:
                _held.pop(key, None)
            with contextlib.suppress(OSError):
                os.ftruncate(fh.fileno(), 0)
            with contextlib.suppress(OSError):
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
            fh.close()

        return release


def _parse_holder(text: str) -> tuple[int | None, str]:
    """The lock file's text: '12345 serve' -> (12345, 'serve'); '12345' -> (12345, ''); else (None, '')."""
    pid, _, purpose = text.strip().partition(" ")
    return (int(pid), purpose.strip()) if pid.isdigit() else (None, "")


def _locked_message(base: Path, pid: int | None, purpose: str) -> str:
    if purpose == "serve":
        return (
            f"`amanmcp serve`{f' (pid {pid})' if pid else ''} is keeping the index in {base} up to date: it "
            "follows every edit, so there is nothing to run. Searches work meanwhile (`amanmcp search`, or the "
            "MCP tools); to rebuild from scratch, close the MCP clients running `amanmcp serve` on this project, "
            "then run `amanmcp index --force`"
        )
    return (
        f"another amanmcp process{f' (pid {pid})' if pid else ''} is writing the index in {base} (an `index` run "
        "or `serve`); wait for it or stop it"
    )


_held: dict[str, int] = {}  # index folders whose write lock this process holds -> nesting depth
_held_lock = threading.Lock()
