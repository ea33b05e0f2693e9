"""Keep an index fresh while `serve` runs: a watcher queues changes, one worker applies them.

The watcher thread (watchfiles: inotify/FSEvents, debounced) only collects changed paths. The
worker thread owns every write: the start-up run (a progressive first build, or catching up with
edits made while nothing was running), then one incremental run per batch of changes, committed
to SQLite and the vector cache, so an edit is searchable about a second later and a restart
starts from the updated index. Every run rescans the tree, so `.gitignore` edits take effect the
same way; an `.amanmcp.yaml` edit also reloads the settings (a new embedder means a full
rebuild, during which the old index keeps answering).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from pathlib import Path

import watchfiles

from amanmcp.config import INDEX_DIR, PROJECT_FILE, Settings, load_config
from amanmcp.embed.factory import Selection, select_embedder
from amanmcp.indexer import Indexer, IndexEvent, IndexReport
from amanmcp.scan import DEFAULT_EXCLUDES
from amanmcp.status import IndexProgress
from amanmcp.store import IndexLayout, load_meta

log = logging.getLogger(__name__)


class Cancelled(Exception):
    """The live index is stopping; the run in progress gives up at its next step."""


class _Filter(watchfiles.DefaultFilter):
    """watchfiles' defaults (editor droppings), our index folder and the folders scan never indexes."""

    ignore_dirs = tuple(
        {*watchfiles.DefaultFilter.ignore_dirs, INDEX_DIR, *(d[:-1] for d in DEFAULT_EXCLUDES if d.endswith("/"))}
    )


class LiveIndex:
    """The writer side of `serve`. The caller holds the index write lock for its lifetime."""

    def __init__(
        self,
        root: Path,
        settings: Settings,
        selection: Selection,
        *,
        watch: bool = True,
        debounce_ms: int = 1000,
        step_ms: int = 100,
    ) -> None:
        self.root = root
        self.settings = settings
        self.selection = selection
        self.watch = watch
        self.debounce_ms = debounce_ms
        self.step_ms = step_ms
        self.layout = IndexLayout(root)
        self.config_version = 0  # bumped when `.amanmcp.yaml` changes the settings
        self.runs = 0  # finished index runs, failed ones included
        self._stop = threading.Event()
        self._watching = threading.Event()
        self._changes: queue.Queue[set[str]] = queue.Queue()
        self._lock = threading.Lock()
        self._progress = IndexProgress(state="starting")
        self._threads: list[threading.Thread] = []
        self._filter = _Filter()

    # -- life cycle -----------------------------------------------------------------------------

    def start(self) -> None:
        if self.watch:
            self._spawn(self._watch_loop, "amanmcp-watch")
        self._spawn(self._work_loop, "amanmcp-index")

    def stop(self, timeout: float = 10.0) -> None:
        """Ask both threads to end; a run in progress stops at its next step (committed work stays)."""
        self._stop.set()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def _spawn(self, target: Callable[[], None], name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)  # never blocks the process exit
        thread.start()
        self._threads.append(thread)

    # -- what the tools read --------------------------------------------------------------------

    def progress(self) -> IndexProgress:
        with self._lock:
            return self._progress.model_copy()

    # -- threads --------------------------------------------------------------------------------

    def _watch_loop(self) -> None:
        try:
            for changes in watchfiles.watch(
                self.root,
                watch_filter=self._accept,
                debounce=self.debounce_ms,
                step=self.step_ms,
                stop_event=self._stop,
                rust_timeout=250,
                yield_on_timeout=True,  # an (empty) yield after a quiet spell: the watches are in place
                raise_interrupt=False,
                ignore_permission_denied=True,
            ):
                self._watching.set()  # a timeout: the watches are in place
                if changes:
                    self._changes.put({path for _, path in changes})
        except Exception as exc:  # no watching is a degraded server, not a dead one
            log.error("watching %s failed, the index will not follow edits: %s", self.root, exc)
            self._update(last_error=f"file watching failed: {exc}")
        finally:
            self._watching.set()

    def _accept(self, change: watchfiles.Change, path: str) -> bool:
        # Any event at all (even our own, in .amanmcp/) also proves that the watches are in place:
        # readers touch the index's WAL files, so a busy server may never see a quiet timeout.
        self._watching.set()
        return self._filter(change, path)

    def _work_loop(self) -> None:
        try:
            self._warm_queries()
            if self.watch:  # changes made during the first run must not slip between scan and watch
                self._watching.wait(timeout=30)
            self._run("start-up")
            self._warm_documents()
            while not self._stop.is_set():
                try:
                    paths = self._changes.get(timeout=0.2)
                except queue.Empty:
                    continue
                while True:  # one run for everything that piled up meanwhile
                    try:
                        paths |= self._changes.get_nowait()
                    except queue.Empty:
                        break
                config = str(self.root / PROJECT_FILE)
                if config in paths and not self._reload_settings() and paths == {config}:
                    continue  # a broken config changes nothing: keep the old settings and the error
                self._run(f"{len(paths)} changed path(s)")
        except Cancelled:
            log.info("index worker stopped")

    def _run(self, why: str) -> None:
        current = self.layout.current()
        refusal = self._fallback_would_replace(current)
        if refusal:
            log.warning("%s", refusal)
            self._update(state="error", building=False, last_error=refusal, last_run_at=time.time())
            with self._lock:
                self.runs += 1
            return
        building = current is None or not load_meta(current).complete
        self._update(state="indexing", building=building, stage="scan", done=0, total=0, started_at=time.time())
        log.info("indexing %s (%s)", self.root, why)
        started = time.perf_counter()
        try:
            indexer = Indexer(self.root, self.settings, self.selection.embedder, self._on_event)
            report = indexer.run(progressive=True)
        except Cancelled:
            raise
        except Exception as exc:
            log.exception("indexing %s failed", self.root)
            self._update(state="error", building=False, last_error=str(exc), last_run_at=time.time())
        else:
            line = _summary(report, time.perf_counter() - started)
            log.info("%s", line)
            self._update(state="watching", building=False, stage="", done=0, total=0, started_at=None,
                         last_run=line, last_run_at=time.time(), last_error=None)
        with self._lock:
            self.runs += 1

    def _fallback_would_replace(self, current: Path | None) -> str | None:
        """A fallback embedder (its preferred backend is down for now) must not re-embed an index
        built by another one: that is minutes of work to destroy a good index. Search it BM25-only."""
        if current is None or not self.selection.fallback:
            return None
        recorded = load_meta(current).identity
        identity = self.selection.embedder.identity
        if recorded is None or recorded == identity:
            return None
        return (
            f"not updating the index: it was built with {recorded.label()}, and the "
            f"embedder now is a fallback ({identity.label()}: {self.selection.reason}). Start that backend and "
            "restart `serve`, or run `amanmcp index --force` to rebuild with the fallback"
        )

    def _on_event(self, event: IndexEvent) -> None:
        if self._stop.is_set():
            raise Cancelled
        self._update(stage=event.stage, done=event.done, total=event.total)

    def _update(self, **changes: object) -> None:
        with self._lock:
            self._progress = self._progress.model_copy(update=changes)

    def _reload_settings(self) -> bool:
        """Apply an edited `.amanmcp.yaml`; a broken one is reported (False) and the old settings kept."""
        try:
            settings = load_config(self.root).settings
            selection = self.selection
            if settings.model_dump(exclude={"search", "index", "log_level"}) != self.settings.model_dump(
                exclude={"search", "index", "log_level"}
            ):
                selection = select_embedder(settings)
        except Exception as exc:  # ConfigError, EmbedderError, or a backend that will not start
            log.error("ignoring the edited %s: %s", PROJECT_FILE, exc)
            self._update(last_error=f"{PROJECT_FILE}: {exc}")
            return False
        with self._lock:
            self.settings, self.selection = settings, selection
            self.config_version += 1
        log.info("settings reloaded from %s (embedder: %s)", PROJECT_FILE, selection.backend)
        return True

    def _warm_queries(self) -> None:
        """Load the query path first, so searches answer while the document model loads."""
        try:
            self.selection.embedder.embed_query("warm up")
        except Exception as exc:
            log.warning("query embedder not ready: %s", exc)

    def _warm_documents(self) -> None:
        """Load the document model now, so the first edit is not the one that waits for it."""
        if self._stop.is_set():
            raise Cancelled
        try:
            self.selection.embedder.embed_documents(["warm up"])
        except Exception as exc:
            log.warning("document embedder not ready: %s", exc)


def _summary(report: IndexReport, seconds: float) -> str:
    kind = "full build" if report.full_rebuild else "update"
    return (
        f"{kind} in {seconds:.2f}s: {report.files_changed} file(s) (re)indexed, {report.files_removed} removed, "
        f"{report.chunks_embedded} chunk(s) embedded; {report.files_total} files, {report.chunks_total} chunks"
    )
