"""Keep an index fresh while `serve` runs: a watcher queues changes, one worker applies them.

Many `serve` processes may share one project (`ServeIndex`): one writer runs the LiveIndex below,
the others answer read-only and one of them takes over when the writer goes away.

The watcher thread (watchfiles: inotify/FSEvents, debounced) only collects changed paths. The
worker thread owns every write: the start-up run (a tiered first build, or catching up with
edits made while nothing was running), then one incremental run per batch of changes, committed
to SQLite and the vector cache, so an edit is searchable about a second later and a restart
starts from the updated index. Every run rescans the tree, so `.gitignore` edits take effect the
same way; an `.amanmcp.yaml` edit also reloads the settings (a new embedder means a full
rebuild, during which the old index keeps answering). With a shared store (`store.url`) the runs
write this project's repository there instead (`team.PgIndexer`: each run one transaction).

Nothing stops the watching for good, and nothing fails silently: a run that fails (start-up or a
batch of changes) is retried up to RETRIES times with a growing pause (RETRY_DELAYS), each failure
reported in the progress (`state: "error"`, `last_error` saying which attempt and what comes
next); after the last retry the batch is dropped but watching goes on, and the next change
triggers a fresh run (every run rescans the whole tree, so nothing is lost). A watcher that dies
(watchfiles gives up on a path that is not UTF-8, for one) is restarted after a pause (RETRY_DELAYS,
then every REWATCH_SECONDS); while it is down the tree is polled instead (a rescan every
`poll_seconds`), and `last_error` says so until watching works again. A damaged index is rebuilt by
the next run.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from pathlib import Path

import watchfiles

from amanmcp.config import INDEX_DIR, PROJECT_FILE, Settings, load_config
from amanmcp.embed.factory import Selection, select_embedder
from amanmcp.errors import AmanError
from amanmcp.indexer import IndexEvent, IndexReport
from amanmcp.scan import DEFAULT_EXCLUDES
from amanmcp.status import IndexProgress
from amanmcp.store import IndexLayout, load_meta
from amanmcp.store.meta import IndexMeta
from amanmcp.team import make_indexer

log = logging.getLogger(__name__)
RETRIES = 3  # further attempts at a failed run before its batch is dropped (watching goes on)
RETRY_DELAYS = (1.0, 4.0, 15.0)  # seconds before each retry
POLL_SECONDS = 10.0  # rescan period while the watcher is down
REWATCH_SECONDS = 300.0  # pause between attempts to watch again, once the RETRY_DELAYS are used up
WRITER_POLL_SECONDS = 0.5  # how often a reader `serve` tries to take the writer role


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
        self.failures = 0  # runs that failed (each retry counts)
        self.retry_delays = RETRY_DELAYS
        self.poll_seconds = POLL_SECONDS
        self.rewatch_seconds = REWATCH_SECONDS
        self._watch_problem: str | None = None  # why the tree is polled instead of watched
        self._stop = threading.Event()
        self._watching = threading.Event()
        self._changes: queue.Queue[set[str]] = queue.Queue()
        self._lock = threading.Lock()
        self._progress = IndexProgress(state="starting")
        self._threads: list[threading.Thread] = []
        self._filter = _Filter()
        self._watch_yielded = False
        self._rescan_due = False

    # -- life cycle -----------------------------------------------------------------------------

    def start(self) -> None:
        if self.watch:
            self._spawn(self._watch_loop, "amanmcp-watch")
        self._spawn(self._work_loop, "amanmcp-index")

    def stop(self, timeout: float = 10.0) -> bool:
        """Ask both threads to end; a run in progress stops at its next step (committed work stays).
        Whether both ended within `timeout`."""
        self._stop.set()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        return not any(thread.is_alive() for thread in self._threads)

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
        """Watch until stopped. A watcher that dies (watchfiles gives up on a path that is not UTF-8,
        a folder that vanished, ...) is restarted after a pause that grows with the failures in a row
        (no good yield between them), the tree polled meanwhile."""
        restarts = 0
        try:
            while not self._stop.is_set():
                self._watch_yielded = False
                try:
                    self._watch_once()
                    return  # stopped
                except Exception as exc:  # no watching is a degraded server, not a dead one
                    restarts = 1 if self._watch_yielded else restarts + 1
                    self._watching.set()  # the worker must not wait for watches that are not coming
                    delays = self.retry_delays
                    delay = delays[restarts - 1] if restarts <= len(delays) else self.rewatch_seconds
                    problem = (f"file watching failed ({exc}); polling the tree every {self.poll_seconds:g}s "
                               f"instead, watching again in {delay:g}s")
                    log.warning("watching %s: %s", self.root, problem)
                    self._set_watch_problem(problem)
                    self._rescan_due = True  # once watching again: whatever changed meanwhile
                    self._poll(delay)
        finally:
            self._watching.set()

    def _set_watch_problem(self, problem: str | None) -> None:
        with self._lock:
            self._watch_problem = problem
        if problem is not None:
            self._update(last_error=problem)

    def _poll(self, seconds: float) -> None:
        """Rescan now and every poll_seconds, for `seconds` (or until stopped)."""
        deadline = time.monotonic() + seconds
        self._changes.put(set())  # the batch that broke the watcher is caught by a rescan
        while not self._stop.is_set():
            left = deadline - time.monotonic()
            if left <= 0 or self._stop.wait(min(self.poll_seconds, left)):
                return
            if left > self.poll_seconds:
                self._changes.put(set())

    def _watch_once(self) -> None:
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
            self._watch_yielded = True
            if self._rescan_due:
                self._rescan_due = False
                self._set_watch_problem(None)
                self._changes.put(set())  # an empty batch: rescan the tree
            if changes:
                self._changes.put({path for _, path in changes})

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
            pending: str | None = "start-up"  # why a run is due; None: nothing to do
            attempt = 0  # failed attempts at the pending run
            retry_at = 0.0
            warmed = False
            while not self._stop.is_set():
                wait = max(0.0, retry_at - time.monotonic()) if pending else 0.2
                paths = self._collect(min(wait, 0.2) if pending else 0.2)
                if paths is not None:
                    config = str(self.root / PROJECT_FILE)
                    reloaded = config not in paths or self._reload_settings()
                    if reloaded or paths != {config}:  # a broken config alone changes nothing
                        why = f"{len(paths)} changed path(s)" if paths else "rescan: the watcher was restarted"
                        pending, attempt, retry_at = why, 0, 0.0
                if pending is None or time.monotonic() < retry_at:
                    continue
                error = self._run(pending if not attempt else f"{pending}, retry {attempt} of {RETRIES}")
                if not warmed:
                    self._warm_documents()
                    warmed = True
                if error is None:
                    pending, attempt = None, 0
                    continue
                attempt += 1
                if attempt > RETRIES:
                    self._update(last_error=f"{error} (gave up after {attempt} attempts; still watching: "
                                            "the next change starts a new run)")
                    log.error("indexing %s: gave up after %d attempts; still watching", self.root, attempt)
                    pending, attempt = None, 0
                    continue
                delay = self.retry_delays[min(attempt, len(self.retry_delays)) - 1]
                retry_at = time.monotonic() + delay
                self._update(last_error=f"{error} (attempt {attempt} of {RETRIES + 1}; retrying in {delay:g}s)")
        except Cancelled:
            log.info("index worker stopped")
        except Exception as exc:  # a bug of ours: say so where the tools look, do not die silently
            log.exception("the index worker of %s stopped", self.root)
            self._update(state="error", building=False, last_error=f"the index worker stopped: {exc}")

    def _collect(self, timeout: float) -> set[str] | None:
        """Every change queued now (after waiting up to `timeout` for the first), or None."""
        try:
            paths = self._changes.get(timeout=timeout) if timeout > 0 else self._changes.get_nowait()
        except queue.Empty:
            return None
        while True:  # one run for everything that piled up meanwhile
            try:
                paths |= self._changes.get_nowait()
            except queue.Empty:
                return paths

    def _run(self, why: str) -> str | None:
        """One index run; the error that stopped it, or None. A refusal (fallback embedder) is not
        retried: it is a decision, reported once."""
        try:
            # the project's own index, or its repository in the shared store the settings name
            indexer = make_indexer(self.root, self.settings, self.selection.embedder, self._on_event)
            meta = indexer.indexed()  # None: a first build (or a damaged index, rebuilt from scratch)
            refusal = self._fallback_would_replace(meta)
            if refusal:
                log.warning("%s", refusal)
                self._update(state="error", building=False, last_error=refusal, last_run_at=time.time())
                return None
            self._update(state="indexing", building=meta is None or meta.building, stage="scan", done=0,
                         total=0, started_at=time.time())
            log.info("indexing %s (%s)", self.root, why)
            started = time.perf_counter()
            report = indexer.run()
        except Cancelled:
            raise
        except Exception as exc:
            log.exception("indexing %s failed", self.root)
            with self._lock:
                self.failures += 1
            message = str(exc) or type(exc).__name__
            self._update(state="error", building=False, stage="", last_error=message, last_run_at=time.time())
            return message
        else:
            line = _summary(report, time.perf_counter() - started)
            log.info("%s", line)
            self._update(state="watching", building=False, stage="", done=0, total=0, started_at=None,
                         last_run=line, last_run_at=time.time(), last_error=self._watch_problem)
            return None
        finally:
            with self._lock:
                self.runs += 1

    def _fallback_would_replace(self, meta: IndexMeta | None) -> str | None:
        """A fallback embedder (its preferred backend is down for now) must not re-embed an index
        built by another one: that is minutes of work to destroy a good index. Search it BM25-only."""
        if meta is None or not self.selection.fallback:
            return None
        recorded = meta.identity
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
        if event.stage == "searchable":  # a tiered first build: all text is in, the vectors come next
            self._update(building=False, stage=event.stage, done=event.done, total=event.total)
            return
        self._update(stage=event.stage, done=event.done, total=event.total)

    def _update(self, **changes: object) -> None:
        with self._lock:
            self._progress = self._progress.model_copy(update=changes)

    def _reload_settings(self) -> bool:
        """Apply an edited `.amanmcp.yaml`; a broken one is reported (False) and the old settings kept."""
        try:
            settings, selection = reload_settings(self.root, self.settings, self.selection)
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


class ServeIndex:
    """One `serve` process's part in its project's index: the writer, or a reader.

    Any number of `serve` processes may run on one project (a second editor window, `claude mcp
    list` health checks). The one that holds the index write lock is the writer: it runs a
    LiveIndex (first build, watching, incremental runs) for as long as it lives. The others are
    readers: they answer from the same index read-only (SQLite WAL readers; the Searcher follows
    CURRENT and the vectors version, so they see each commit of the writer), never write, and poll
    the lock without waiting (every `poll_seconds`). When the writer exits or is killed, the kernel
    frees its lock and the first reader to poll takes it and becomes the writer: its LiveIndex's
    start-up run catches up with whatever changed meanwhile. A reader also reloads an edited
    `.amanmcp.yaml` (the writer rebuilds the index when the embedder changes; readers must query
    it with the same one).

    `start`, `stop`, `progress`, `settings`, `selection` and `config_version` are what `serve`'s
    tools use, whichever the role.
    """

    def __init__(
        self,
        root: Path,
        settings: Settings,
        selection: Selection,
        *,
        watch: bool = True,
        debounce_ms: int = 1000,
        step_ms: int = 100,
        poll_seconds: float = WRITER_POLL_SECONDS,
    ) -> None:
        self.root = root
        self.watch = watch
        self.debounce_ms = debounce_ms
        self.step_ms = step_ms
        self.poll_seconds = poll_seconds
        self.layout = IndexLayout(root)
        self.became_writer_at: float | None = None  # time.monotonic() when this process took the writer role
        self._settings = settings
        self._selection = selection
        self._reloads = 0  # settings reloaded as a reader
        self._config_stamp = _stat(root / PROJECT_FILE)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._live: LiveIndex | None = None
        self._release: Callable[[], None] | None = None
        self._threads: list[threading.Thread] = []
        self._writer_pid: int | None = None
        self._building = False  # as a reader: the index on disk is a first build still storing its text
        self._problem: str | None = None  # as a reader: why this process could not take the writer role

    # -- what the tools read --------------------------------------------------------------------

    @property
    def role(self) -> str:
        return "writer" if self._live is not None else "reader"

    @property
    def settings(self) -> Settings:
        live = self._live
        return live.settings if live is not None else self._settings

    @property
    def selection(self) -> Selection:
        live = self._live
        return live.selection if live is not None else self._selection

    @property
    def config_version(self) -> int:
        live = self._live
        return self._reloads + (live.config_version if live is not None else 0)

    def progress(self) -> IndexProgress:
        live = self._live
        if live is not None:
            return live.progress().model_copy(update={"role": "writer", "writer_pid": os.getpid()})
        with self._lock:
            return IndexProgress(state="following", role="reader", writer_pid=self._writer_pid,
                                 building=self._building, last_error=self._problem)

    # -- life cycle -----------------------------------------------------------------------------

    def start(self) -> None:
        """Take the writer role if it is free; otherwise follow the writer, ready to take over."""
        if self._take_writer_role():
            log.info("serving %s as the writer (pid %d): building, watching and updating the index",
                     self.root, os.getpid())
            return
        self._observe()
        log.info("another amanmcp serve (pid %s) writes the index of %s; this one (pid %d) answers from it "
                 "read-only and takes over when it exits", self._writer_pid or "?", self.root, os.getpid())
        self._spawn(self._warm, "amanmcp-warm")
        self._spawn(self._follow_loop, "amanmcp-follow")

    def stop(self, timeout: float = 10.0) -> None:
        """Stop following or writing. The write lock is released once the writer's threads have ended
        (a run that outlives `timeout` keeps it until the process exits, which frees it anyway)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            self._stop.set()
            live = self._live
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        if live is None:
            return
        if live.stop(max(0.0, deadline - time.monotonic())) and self._release is not None:
            self._release()
            self._release = None

    def _spawn(self, target: Callable[[], None], name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    # -- roles ----------------------------------------------------------------------------------

    def _take_writer_role(self) -> bool:
        try:
            release = self.layout.try_write_lock("serve")
        except AmanError as exc:  # a read-only or full index folder: stay a reader, say why
            with self._lock:
                if self._problem != str(exc):
                    log.warning("%s", exc)
                self._problem = f"cannot take the writer role: {exc}"
            return False
        if release is None:
            return False
        with self._lock:
            if self._stop.is_set():
                release()
                return False
            self._release = release
            live = LiveIndex(self.root, self._settings, self._selection, watch=self.watch,
                             debounce_ms=self.debounce_ms, step_ms=self.step_ms)
            live.start()
            self._live = live
            self.became_writer_at = time.monotonic()
            self._problem = None
        return True

    def _follow_loop(self) -> None:
        started = time.monotonic()
        while not self._stop.wait(self.poll_seconds):
            try:
                if self._take_writer_role():
                    log.info("the writer of %s went away: this serve (pid %d) is the writer now (after %.1fs as a "
                             "reader)", self.root, os.getpid(), time.monotonic() - started)
                    return
                self._observe()
                self._follow_settings()
            except Exception:  # a bug of ours must not end the following: log it, poll on
                log.exception("following the writer of %s", self.root)

    def _observe(self) -> None:
        """Who writes, and whether the index is a first build still growing (for the tools' answers)."""
        pid, _ = self.layout.lock_holder()
        building = False
        current = self.layout.current()
        if current is not None:
            try:
                building = load_meta(current).building
            except AmanError:
                building = False
        with self._lock:
            self._writer_pid, self._building = pid, building

    def _follow_settings(self) -> None:
        """Reload an edited `.amanmcp.yaml`, as the writer does (a broken one is reported, the old kept)."""
        stamp = _stat(self.root / PROJECT_FILE)
        if stamp == self._config_stamp:
            return
        self._config_stamp = stamp
        try:
            settings, selection = reload_settings(self.root, self._settings, self._selection)
        except Exception as exc:
            log.error("ignoring the edited %s: %s", PROJECT_FILE, exc)
            with self._lock:
                self._problem = f"{PROJECT_FILE}: {exc}"
            return
        with self._lock:
            self._settings, self._selection = settings, selection
            self._reloads += 1
            self._problem = None
        log.info("settings reloaded from %s (embedder: %s)", PROJECT_FILE, selection.backend)

    def _warm(self) -> None:
        try:
            self._selection.embedder.embed_query("warm up")
        except Exception as exc:
            log.warning("query embedder not ready: %s", exc)


def _stat(path: Path) -> tuple[int, int] | None:
    try:
        info = path.stat()
    except OSError:
        return None
    return info.st_mtime_ns, info.st_size


def reload_settings(root: Path, settings: Settings, selection: Selection) -> tuple[Settings, Selection]:
    """The settings of `root` as they are now, and the embedder for them (the same one unless an
    embedder setting changed). Raises what loading or selecting raises."""
    fresh = load_config(root).settings
    keep = {"search", "index", "log_level"}
    if fresh.model_dump(exclude=keep) != settings.model_dump(exclude=keep):
        selection = select_embedder(fresh)
    return fresh, selection


def _summary(report: IndexReport, seconds: float) -> str:
    kind = "full build" if report.full_rebuild else "update"
    return (
        f"{kind} in {seconds:.2f}s: {report.files_changed} file(s) (re)indexed, {report.files_removed} removed, "
        f"{report.chunks_embedded} chunk(s) embedded; {report.files_total} files, {report.chunks_total} chunks"
    )
