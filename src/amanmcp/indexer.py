"""scan → chunk → embed → store → vector index, full or incremental, reporting progress as events.

A full build goes into a new generation folder published by one atomic rename; an incremental run
changes the live database in one transaction. Either way a crash leaves a searchable index.
A first build (no complete index yet) is tiered: its text is published at once and BM25 answers
within seconds; the vectors follow, committed a group at a time, and searches use them once all
are in.

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
import shutil
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from amanmcp.chunk import chunk_file, detect_language
from amanmcp.config import Settings
from amanmcp.embed.base import Embedder, EmbedderIdentity
from amanmcp.embed.static import tier_embedder
from amanmcp.errors import AmanError, IndexDamagedError
from amanmcp.graph.extract import extract_file
from amanmcp.graph.model import FileGraph
from amanmcp.models import Chunk
from amanmcp.ranking.features import features
from amanmcp.scan import ScannedFile, Scanner, ScanResult, looks_minified, read_text, redact_secrets, secret_content
from amanmcp.store import IndexLayout, IndexStore, VectorIndex, load_meta, read_meta
from amanmcp.store.db import SCHEMA_VERSION, FileRecord
from amanmcp.store.layout import write_failure
from amanmcp.store.meta import IndexMeta, Upgrade
from amanmcp.store.vectors import STAMP, TIER

log = logging.getLogger(__name__)
EMBED_GROUP = 256  # chunks per progress step and per commit of a tiered build's vectors; batches inside it
COMMIT_SECONDS = 2.0  # a tiered build commits its text this often: a big project is searchable as it grows


@dataclass(frozen=True, slots=True)
class IndexEvent:
    stage: str  # scan | chunk | embed | store | index | searchable (a tiered build's text is all in; vectors next)
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
        self.chunks_embedded, self.chunks_reused = embedded, max(chunks - embedded, 0)
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

    def run(self, force: bool = False, *, allow_empty: bool = False) -> IndexReport:
        """Bring the index up to date with the tree (full or incremental, as needed).

        With no complete index to protect (none yet, a damaged one, or a first build that was
        interrupted) the build is tiered: every file's text is stored and published first, so BM25
        answers within seconds, then the vectors are built in groups, each committed as it comes (an
        interrupted build resumes there). Searches use vectors only once all are in, so they never
        see part of a vector space. Rebuilds of a complete index stay atomic: the old one answers
        until the swap. `allow_empty`: let a full rebuild that finds no chunks replace an index that
        holds some (otherwise that is refused with an AmanError and the old index stays).
        """
        try:
            with self.layout.write_lock():
                return self._run(force, allow_empty)
        except OSError as exc:  # a full disk, a read-only index folder: the run stops, the old index stays live
            raise write_failure(self.layout.base, exc) from exc

    def _run(self, force: bool, allow_empty: bool) -> IndexReport:
        timings: dict[str, float] = {"embed": 0.0, "store": 0.0, "index": 0.0}
        identity = self.embedder.identity
        current = self.layout.current()
        full, reason, damaged = self._needs_full(current, identity, force)
        tiered = current is None or damaged or (not full and not load_meta(current).complete)
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
            if full and tiered:  # nothing complete to protect: searchable from the first commit on
                self._commit(store, identity, skipped, False, timings, vectors=False)
                self.layout.publish(target)
                published = True
            previous = store.file_states()
            changed, dropped = self._changed_files(scan.files, previous, skipped, store)
            removed = (set(previous) - {f.path for f in scan.files}) | (dropped & set(previous))

            timings["chunk"] = timings["graph"] = 0.0
            store.delete_files(removed)
            files = self._chunked(changed, skipped, timings)
            checkpoint = (lambda: self._commit(store, identity, skipped, False, timings, vectors=False)) if tiered \
                else None
            if tiered and identity.backend != "static":  # text first, file by file: committed parts answer at once
                per_file = self._store(store, files, None, timings, len(changed), checkpoint)
                all_chunks = [c for _, chunks in per_file for c in chunks]
                embedded = self._upgrade(store, identity, skipped, timings)
            else:  # vectors with the text: an index to protect, or a static model quicker than a second pass
                chunked = list(files)
                if held and not allow_empty and not any(chunks for _, chunks, _ in chunked):
                    left_out = ", ".join(f"{k} {v}" for k, v in sorted(skipped.items())) or "nothing skipped"
                    raise AmanError(
                        f"the rebuild of {self.root} found nothing to index ({len(scan.files)} files scanned; "
                        f"{left_out}), so the current index ({held} chunks) was kept. Check the folder, "
                        "`.gitignore` and `index.exclude`, or pass --allow-empty to replace it with an empty index"
                    )
                all_chunks = [c for _, chunks, _ in chunked for c in chunks]
                known = [r.path for r, _, _ in chunked if r.path in previous]
                reuse = {} if full else {embed_text(c): v for c, v in store.stored_vectors(known)}
                to_embed = sum(1 for c in all_chunks if embed_text(c) not in reuse)
                if to_embed:
                    self._load_model(timings, to_embed)
                t = time.perf_counter()
                vectors, embedded = self._embed(all_chunks, reuse, 0, to_embed)
                timings["embed"] += time.perf_counter() - t
                per_file = self._store(store, chunked, vectors, timings, len(chunked), checkpoint)
                if tiered:  # publishes (BM25 and vectors are in) and embeds what an earlier run left without
                    embedded += self._upgrade(store, identity, skipped, timings)

            redacted = store.redactions()
            if redacted:
                skipped["redacted_secrets"] = redacted
            # Nothing changed (a rescan under `serve`, a repeated `index`): stamp, keep the vector cache.
            unchanged = not full and not tiered and not per_file and not removed and _cache_matches(store)
            self._commit(store, identity, skipped, True, timings, vectors=not unchanged)
            if tiered:  # the build's own vectors answer now
                shutil.rmtree(store.directory / TIER, ignore_errors=True)
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

    def _load_model(self, timings: dict[str, float], to_embed: int) -> None:
        """Start the model apart from embedding (start-up is not embedding speed), then start the bar."""
        t = time.perf_counter()
        self.embedder.embed_documents(["warm up"])
        timings["load"] = time.perf_counter() - t
        self.on_event(IndexEvent("embed", 0, to_embed))  # the bar and its clock start now

    def _chunked(
        self, changed: list[tuple[ScannedFile, str, int]], skipped: Counter[str], timings: dict[str, float]
    ) -> Iterator[tuple[FileRecord, list[Chunk], FileGraph | None]]:
        """Each changed file's record, chunks and code graph, as it is read (chunk and graph time)."""
        for i, (file, text, redactions) in enumerate(changed, 1):
            t = time.perf_counter()
            graph_before = timings["graph"]
            chunks = self._chunk(file, text, skipped)
            graph = self._graph(file.path, text, timings) if chunks is not None else None
            timings["chunk"] += time.perf_counter() - t - (timings["graph"] - graph_before)
            self.on_event(IndexEvent("chunk", i, len(changed)))
            if chunks is not None:
                yield self._record(file, text, redactions), chunks, graph

    def _store(
        self, store: IndexStore, files: Iterable[tuple[FileRecord, list[Chunk], FileGraph | None]],
        vectors: np.ndarray | None, timings: dict[str, float], total: int, checkpoint: Callable[[], None] | None,
    ) -> list[tuple[FileRecord, list[Chunk]]]:
        """Write each file's chunks (with `vectors`, or none yet), content features and graph; what was
        written. `checkpoint` (a tiered build) commits every COMMIT_SECONDS, so a big first build is
        searchable as it grows and resumes where it stopped."""
        last = time.perf_counter()
        offset = 0
        written: list[tuple[FileRecord, list[Chunk]]] = []
        for stored, (record, chunks, graph) in enumerate(files, 1):
            t = time.perf_counter()
            traits = [features(c.content) for c in chunks]
            part = vectors[offset : offset + len(chunks)] if vectors is not None else None
            store.put_file(record, chunks, part, traits)
            store.put_graph(record.path, graph)
            offset += len(chunks)
            written.append((record, chunks))
            timings["store"] += time.perf_counter() - t
            self.on_event(IndexEvent("store", stored, total))
            if checkpoint is not None and time.perf_counter() - last > COMMIT_SECONDS:
                checkpoint()
                last = time.perf_counter()
        return written

    def _upgrade(
        self, store: IndexStore, identity: EmbedderIdentity, skipped: Counter[str], timings: dict[str, float]
    ) -> int:
        """The vector stage of a tiered build: publish the text (BM25 answers from here on), then embed
        every chunk that has no vector, longest first (batches pad little and the ETA errs long),
        committing with the progress that `status` and `search_quality` report."""
        pending = store.embedding_inputs(missing=True)
        upgrade = Upgrade(total=len(pending), started=time.time())
        self._commit(store, identity, skipped, False, timings, vectors=False, upgrade=upgrade)
        counts = store.counts()
        self.on_event(IndexEvent("searchable", counts["chunks"], counts["chunks"]))
        if not pending:
            return 0
        tier = self._static_tier(store, pending, counts["chunks"], timings)
        if tier is not None:
            self._commit(store, identity, skipped, False, timings, vectors=False,
                         upgrade=replace(upgrade, tier=tier))
        self._load_model(timings, len(pending))
        texts = {cid: embed_text(chunk) for cid, chunk in pending}
        order = sorted(texts, key=lambda cid: -len(texts[cid]))
        upgrade = Upgrade(total=len(pending), started=time.time(), tier=tier)
        last = time.perf_counter()
        for start in range(0, len(order), EMBED_GROUP):
            group = order[start : start + EMBED_GROUP]
            t = time.perf_counter()
            vectors = self.embedder.embed_documents([texts[cid] for cid in group])
            timings["embed"] += time.perf_counter() - t
            t = time.perf_counter()
            store.set_vectors(group, vectors)
            timings["store"] += time.perf_counter() - t
            upgrade = upgrade.advanced(len(group))
            # The first group at once (progress and a rate to tell), then every COMMIT_SECONDS: a fast
            # embedder would otherwise spend its time committing. The last commit comes from the caller.
            if start == 0 or time.perf_counter() - last > COMMIT_SECONDS:
                self._commit(store, identity, skipped, False, timings, vectors=False, upgrade=upgrade)
                last = time.perf_counter()
            self.on_event(IndexEvent("embed", upgrade.done, upgrade.total))
        return len(order)

    def _static_tier(
        self, store: IndexStore, pending: list[tuple[int, Chunk]], total: int, timings: dict[str, float]
    ) -> EmbedderIdentity | None:
        """Static vectors of every chunk, in the generation's TIER folder: searches use them (with BM25)
        until the build's own vectors are all in, and the last commit deletes them. None (BM25 alone
        meanwhile) when the build's embedder is static itself or no static model is at hand
        (`embed.static.tier_embedder`); a failure costs only the tier."""
        if self.embedder.identity.backend == "static":
            return None
        t = time.perf_counter()
        try:
            tier = tier_embedder(self.settings.embeddings.model, len(pending))
            if tier is None:
                return None
            rows = pending if len(pending) == total else store.embedding_inputs(missing=False)  # every chunk
            matrix = tier.embed_documents([embed_text(chunk) for _, chunk in rows])
            folder = store.directory / TIER
            folder.mkdir(exist_ok=True)
            VectorIndex.build(folder, np.array([cid for cid, _ in rows], dtype=np.int64), matrix, 0,
                              self.settings.index.exact_search_max, paths=[chunk.path for _, chunk in rows])
            timings["tier"] = time.perf_counter() - t
            return tier.identity
        except Exception as exc:  # the tier is a courtesy: BM25 answers without it
            log.warning("no static vectors while this first build's own are built: %s", exc)
            return None

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
        timings: dict[str, float], *, vectors: bool = True, upgrade: Upgrade | None = None,
    ) -> None:
        """Stamp and commit (store time), then rebuild the vector cache from SQLite (index time).
        `vectors=False`: the cache (and its version) stays as it is: no chunk changed, or searches do
        not use vectors yet (a tiered build before its last commit). `upgrade`: a tiered build's
        vector stage, in progress."""
        t = time.perf_counter()
        version = read_meta(store).vectors_version + (1 if vectors else 0)
        store.set_meta("schema_version", SCHEMA_VERSION)
        store.set_meta("embedder", identity.to_dict())
        store.set_meta("vectors_version", version)
        store.set_meta("last_indexed", time.time())
        store.set_meta("skipped", dict(skipped))
        store.set_meta("complete", complete)
        store.set_meta("graph", self.settings.index.graph)
        store.set_meta("upgrade", upgrade.to_dict() if upgrade is not None else None)
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
