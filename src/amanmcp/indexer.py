"""scan → chunk → embed → store → vector index, full or incremental, reporting progress as events.

A full build goes into a new generation folder published by one atomic rename; an incremental run
changes the live database in one transaction. Either way a crash leaves a searchable index.
A progressive first build (for `serve`) is published at once and grows a commit at a time.

Safety rails: a damaged index (`IndexDamagedError`) is rebuilt in full, never patched; a full rebuild
that finds nothing to index never replaces an index that holds chunks unless asked (`allow_empty`);
files skipped when read (`undecodable`, `minified`, a `secret` by content) leave the index; secrets
inside files are replaced before chunking (`scan.redact_secrets`), and the index counts them
(`skipped["redacted_secrets"]`, the total over the files it holds).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from amanmcp.chunk import chunk_file, detect_language
from amanmcp.config import Settings
from amanmcp.embed.base import Embedder, EmbedderIdentity
from amanmcp.errors import AmanError, IndexDamagedError
from amanmcp.graph.extract import extract_file
from amanmcp.graph.model import FileGraph
from amanmcp.models import Chunk
from amanmcp.ranking.features import features
from amanmcp.scan import ScannedFile, Scanner, ScanResult, looks_minified, read_text, redact_secrets, secret_content
from amanmcp.store import IndexLayout, IndexStore, VectorIndex, load_meta, read_meta
from amanmcp.store.db import SCHEMA_VERSION, FileRecord
from amanmcp.store.layout import write_failure
from amanmcp.store.meta import IndexMeta
from amanmcp.store.vectors import STAMP

log = logging.getLogger(__name__)
EMBED_GROUP = 256  # chunks per progress step; the embedder batches inside it


@dataclass(frozen=True, slots=True)
class IndexEvent:
    stage: str  # scan | chunk | embed | store | index (timings also have load: model start-up)
    done: int
    total: int


@dataclass(slots=True)
class IndexReport:
    root: Path
    full_rebuild: bool
    reason: str
    files_total: int = 0
    files_changed: int = 0
    files_removed: int = 0
    chunks_total: int = 0
    chunks_embedded: int = 0
    chunks_reused: int = 0  # unchanged chunks of changed files keep their vectors
    skipped: dict[str, int] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    identity: EmbedderIdentity | None = None

    def tally(self, counts: dict[str, int], changed: int, removed: int, chunks: int, embedded: int,
              skipped: Counter[str]) -> IndexReport:
        """Fill in what a finished run did (the same for every store) and return the report."""
        self.files_total, self.chunks_total = counts["files"], counts["chunks"]
        self.files_changed, self.files_removed = changed, removed
        self.chunks_embedded, self.chunks_reused = embedded, chunks - embedded
        self.skipped = dict(skipped)
        return self

    @property
    def chunks_per_second(self) -> float:
        """Embedding throughput: chunks embedded per second of the embed stage."""
        seconds = self.timings.get("embed", 0.0)
        return self.chunks_embedded / seconds if seconds > 0 else 0.0


def embed_text(chunk: Chunk) -> str:
    """What the model sees: where the chunk lives and what it is named, then the code."""
    head = f"{chunk.path} {chunk.symbol}" if chunk.symbol else chunk.path
    return f"{head}\n{chunk.content}"


class Indexer:
    def __init__(
        self,
        root: Path,
        settings: Settings,
        embedder: Embedder,
        on_event: Callable[[IndexEvent], None] | None = None,
    ) -> None:
        self.root = root
        self.settings = settings
        self.embedder = embedder
        self.layout = IndexLayout(root)
        self.on_event = on_event or (lambda event: None)

    def indexed(self) -> IndexMeta | None:
        """What the index this indexer writes records now; None when there is none (or it is damaged:
        the next run rebuilds it). `serve` reads it before a run (first build? another embedder?)."""
        current = self.layout.current()
        if current is None:
            return None
        try:
            return load_meta(current)
        except IndexDamagedError:
            return None

    def run(self, force: bool = False, *, progressive: bool = False, allow_empty: bool = False) -> IndexReport:
        """Bring the index up to date with the tree (full or incremental, as needed).

        `progressive`: while there is no complete index, publish the new one at once and commit
        it a group of files at a time, so searches see it grow and an interrupted build resumes
        where it stopped. Rebuilds of a complete index stay atomic: the old one answers until the
        swap. `allow_empty`: let a full rebuild that finds no chunks replace an index that holds
        some (otherwise that is refused with an AmanError and the old index stays).
        """
        try:
            with self.layout.write_lock():
                return self._run(force, progressive, allow_empty)
        except OSError as exc:  # a full disk, a read-only index folder: the run stops, the old index stays live
            raise write_failure(self.layout.base, exc) from exc

    def _run(self, force: bool, progressive: bool, allow_empty: bool) -> IndexReport:
        timings: dict[str, float] = {"embed": 0.0, "store": 0.0, "index": 0.0}
        identity = self.embedder.identity
        current = self.layout.current()
        full, reason, damaged = self._needs_full(current, identity, force)
        grow = progressive and (
            current is None or damaged or (not full and not load_meta(current).complete)
        )
        held = 0 if current is None or damaged or not full else _chunk_count(current)
        report = IndexReport(self.root, full, reason, identity=identity, timings=timings)

        scan, skipped = self._scan(timings)

        self.layout.remove_stale(keep=current)  # leftovers of a run that was killed
        if full:
            target = self.layout.new_generation()
        else:
            assert current is not None
            target = current
        store = IndexStore(target)
        published = not full
        try:
            if full and grow:  # searchable from the first group on
                self._commit(store, identity, skipped, False, timings)
                self.layout.publish(target)
                published = True
            previous = store.file_states()
            changed, dropped = self._changed_files(scan.files, previous, skipped, store)
            removed = (set(previous) - {f.path for f in scan.files}) | (dropped & set(previous))

            t = time.perf_counter()
            per_file: list[tuple[FileRecord, list[Chunk]]] = []
            graphs: dict[str, FileGraph | None] = {}
            timings["graph"] = 0.0
            for i, (file, text, redactions) in enumerate(changed, 1):
                chunks = self._chunk(file, text, skipped)
                if chunks is not None:
                    per_file.append((self._record(file, text, redactions), chunks))
                    graphs[file.path] = self._graph(file.path, text, timings)
                self.on_event(IndexEvent("chunk", i, len(changed)))
            timings["chunk"] = time.perf_counter() - t - timings["graph"]
            if held and not allow_empty and not any(chunks for _, chunks in per_file):
                left_out = ", ".join(f"{k} {v}" for k, v in sorted(skipped.items())) or "nothing skipped"
                raise AmanError(
                    f"the rebuild of {self.root} found nothing to index ({len(scan.files)} files scanned; "
                    f"{left_out}), so the current index ({held} chunks) was kept. Check the folder, "
                    "`.gitignore` and `index.exclude`, or pass --allow-empty to replace it with an empty index"
                )

            known = [r.path for r, _ in per_file if r.path in previous]
            reuse = {} if full else {embed_text(c): v for c, v in store.stored_vectors(known)}
            all_chunks = [c for _, chunks in per_file for c in chunks]
            to_embed = sum(1 for c in all_chunks if embed_text(c) not in reuse)
            if to_embed:  # model start-up is not embedding speed: time it apart
                t = time.perf_counter()
                self.embedder.embed_documents(["warm up"])
                timings["load"] = time.perf_counter() - t
                self.on_event(IndexEvent("embed", 0, to_embed))  # the bar and its clock start now

            store.delete_files(removed)
            embedded = stored = 0
            for group in _groups(per_file, EMBED_GROUP) if grow else [per_file]:
                t = time.perf_counter()
                vectors, count = self._embed([c for _, cs in group for c in cs], reuse, embedded, to_embed)
                embedded += count
                timings["embed"] += time.perf_counter() - t

                t = time.perf_counter()
                offset = 0
                for record, chunks in group:
                    traits = [features(c.content) for c in chunks]
                    store.put_file(record, chunks, vectors[offset : offset + len(chunks)], traits)
                    store.put_graph(record.path, graphs.get(record.path))
                    offset += len(chunks)
                    stored += 1
                    self.on_event(IndexEvent("store", stored, len(per_file)))
                timings["store"] += time.perf_counter() - t
                if grow and stored < len(per_file):
                    self._commit(store, identity, skipped, False, timings)

            redacted = store.redactions()
            if redacted:
                skipped["redacted_secrets"] = redacted
            # Nothing changed (a rescan under `serve`, a repeated `index`): stamp, keep the vector cache.
            unchanged = not full and not per_file and not removed and _cache_matches(store)
            self._commit(store, identity, skipped, True, timings, vectors=not unchanged)
            self.on_event(IndexEvent("index", 1, 1))

            counts = store.counts()
            store.close()
            if not published:
                self.layout.publish(target)
                published = True
        finally:
            store.close()
            if not published:
                self.layout.remove_stale(keep=current)

        return report.tally(counts, len(per_file), len(removed), len(all_chunks), embedded, skipped)

    def _scan(self, timings: dict[str, float]) -> tuple[ScanResult, Counter[str]]:
        """The tree as the settings see it, and what was left out by reason (timed as `scan`)."""
        t = time.perf_counter()
        cfg = self.settings.index
        scan = Scanner(self.root, max_file_size=cfg.max_file_size, exclude=cfg.exclude).scan()
        self.on_event(IndexEvent("scan", len(scan.files), len(scan.files)))
        timings["scan"] = time.perf_counter() - t
        return scan, Counter(scan.skipped)

    def _commit(
        self, store: IndexStore, identity: EmbedderIdentity, skipped: Counter[str], complete: bool,
        timings: dict[str, float], *, vectors: bool = True,
    ) -> None:
        """Stamp and commit (store time), then rebuild the vector cache from SQLite (index time).
        `vectors=False`: no chunk changed, the cache (and its version) stays as it is."""
        t = time.perf_counter()
        version = read_meta(store).vectors_version + (1 if vectors else 0)
        store.set_meta("schema_version", SCHEMA_VERSION)
        store.set_meta("embedder", identity.to_dict())
        store.set_meta("vectors_version", version)
        store.set_meta("last_indexed", time.time())
        store.set_meta("skipped", dict(skipped))
        store.set_meta("complete", complete)
        store.set_meta("graph", self.settings.index.graph)
        store.commit()
        timings["store"] += time.perf_counter() - t
        if not vectors:
            return
        t = time.perf_counter()
        ids, matrix = store.vectors(identity.dimensions)
        VectorIndex.build(store.directory, ids, matrix, version, self.settings.index.exact_search_max,
                          paths=store.paths_of(ids))
        timings["index"] += time.perf_counter() - t

    def _needs_full(
        self, current: Path | None, identity: EmbedderIdentity, force: bool
    ) -> tuple[bool, str, bool]:
        """(full rebuild?, why, is the current index damaged?)."""
        if current is None:
            return True, "no index yet", False
        try:
            meta = load_meta(current)
        except IndexDamagedError as exc:
            log.warning("%s", exc)
            return True, "the index was damaged: rebuilt from scratch", True
        if force:
            return True, "--force", False
        if not meta.current_schema:
            return True, f"index schema {meta.schema_version} is not {SCHEMA_VERSION}", False
        if meta.identity != identity:
            old = meta.identity.label() if meta.identity else "unknown"
            return True, f"embedder changed ({old} → {identity.label()}): re-embedding every chunk", False
        return False, "content hashes decide what is re-embedded", False

    def _changed_files(
        self,
        files: list[ScannedFile],
        previous: dict[str, tuple[str, float, int]],
        skipped: Counter[str],
        store: IndexStore,
    ) -> tuple[list[tuple[ScannedFile, str, int]], set[str]]:
        """Files whose content differs from the index, with their text (secrets redacted) and how
        many secrets it lost; and the files skipped on reading, which must leave the index.
        Same mtime+size: not read."""
        changed: list[tuple[ScannedFile, str, int]] = []
        dropped: set[str] = set()
        for file in files:
            prev = previous.get(file.path)
            if prev and prev[1] == file.mtime and prev[2] == file.size:
                continue
            try:
                text = read_text(file.abspath)
            except OSError:
                text, reason = None, "unreadable"
            else:
                reason = "undecodable" if text is None else None
            if text is not None and secret_content(text):
                reason = "secret"
            elif text is not None and looks_minified(text):
                reason = "minified"
            if reason is not None or text is None:
                skipped[reason or "undecodable"] += 1
                dropped.add(file.path)
                continue
            text, redactions = redact_secrets(text)
            if prev and prev[0] == _hash(text):
                store.touch_file(file.path, file.mtime)
                continue
            changed.append((file, text, redactions))
        return changed, dropped

    def _record(self, file: ScannedFile, text: str, redactions: int = 0) -> FileRecord:
        language = detect_language(file.path) or "text"
        return FileRecord(file.path, _hash(text), file.mtime, file.size, language, redactions)

    def _chunk(self, file: ScannedFile, text: str, skipped: Counter[str]) -> list[Chunk] | None:
        cfg = self.settings.index
        try:
            return chunk_file(
                file.path,
                text,
                max_chunk_lines=cfg.max_chunk_lines,
                max_chunk_chars=cfg.max_chunk_chars,
                window_lines=cfg.window_lines,
                window_overlap=cfg.window_overlap,
                notes=skipped,
            )
        except Exception as exc:  # a hostile file must not stop the index
            log.warning("skipping %s: chunking failed: %s", file.path, exc)
            skipped["chunk_error"] += 1
            return None

    def _graph(self, path: str, text: str, timings: dict[str, float]) -> FileGraph | None:
        """The file's code graph from the parse chunking just made (graph time); None when off or failed."""
        if not self.settings.index.graph:
            return None
        t = time.perf_counter()
        try:
            return extract_file(path, text)
        except Exception as exc:  # a file the graph cannot read keeps its chunks
            log.warning("%s: no code graph: %s", path, exc)
            return None
        finally:
            timings["graph"] += time.perf_counter() - t

    def _embed(
        self, chunks: list[Chunk], reuse: dict[str, bytes], done: int, total: int
    ) -> tuple[np.ndarray, int]:
        """Vectors for `chunks` and how many the model made: a chunk whose text was embedded
        before keeps its vector (an edit re-embeds only what changed). Longest texts first, so
        batches pad little and the ETA is pessimistic, not optimistic."""
        texts = [embed_text(c) for c in chunks]
        out = np.zeros((len(chunks), self.embedder.dimensions), dtype=np.float32)
        todo = []
        for i, text in enumerate(texts):
            if text in reuse:
                out[i] = np.frombuffer(reuse[text], dtype=np.float32)
            else:
                todo.append(i)
        order = sorted(todo, key=lambda i: -len(texts[i]))
        for start in range(0, len(order), EMBED_GROUP):
            group = order[start : start + EMBED_GROUP]
            out[group] = self.embedder.embed_documents([texts[i] for i in group])
            self.on_event(IndexEvent("embed", done + start + len(group), total))
        return out, len(order)


def _groups(
    per_file: list[tuple[FileRecord, list[Chunk]]], size: int
) -> Iterator[list[tuple[FileRecord, list[Chunk]]]]:
    """Consecutive files holding about `size` chunks each (a big file is never split)."""
    group: list[tuple[FileRecord, list[Chunk]]] = []
    count = 0
    for item in per_file:
        group.append(item)
        count += len(item[1])
        if count >= size:
            yield group
            group, count = [], 0
    if group:
        yield group


def _cache_matches(store: IndexStore) -> bool:
    """Whether the vector cache beside a complete index was built for its current version."""
    meta = read_meta(store)
    try:
        stamp = json.loads((store.directory / STAMP).read_text())
    except (OSError, ValueError):
        return False
    return meta.complete and isinstance(stamp, dict) and stamp.get("version") == meta.vectors_version


def _chunk_count(generation: Path) -> int:
    """Chunks in a generation (0 when it cannot be read: a damaged index is never worth keeping)."""
    try:
        store = IndexStore(generation, readonly=True)
    except AmanError:
        return 0
    try:
        return store.counts()["chunks"]
    except AmanError:
        return 0
    finally:
        store.close()


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
