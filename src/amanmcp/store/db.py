"""SQLite (WAL) holding files, chunks with their vectors, and an FTS5 table for BM25.

A damaged database (truncated, zero bytes, a garbage header, unreadable) is detected when a store
is opened (a cheap probe of the header and each table; `PRAGMA quick_check` when the file is
shorter than its header says) and whenever a query hits damage later: either way the caller gets
`IndexDamagedError`, whose message says how to rebuild. Other SQLite failures (a full disk, a
read-only folder, a lock held too long) become a plain `AmanError`; nothing leaks a raw sqlite3
exception.
"""

from __future__ import annotations

import functools
import json
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from amanmcp.errors import AmanError, IndexDamagedError
from amanmcp.models import Chunk
from amanmcp.tokens import index_words

if TYPE_CHECKING:  # rows only: the store does not depend on the graph package at run time
    from amanmcp.graph.model import FileGraph

# Bump when the tables, the chunking, the stored words or ranking.features change: old indexes are rebuilt.
# 7: Unicode words and CJK bigrams, over-long lines cut into parts, secrets redacted, files.redactions.
# 8: the code graph (graph_defs, graph_refs, graph_imports), written with each file's chunks.
SCHEMA_VERSION = 8

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS files(
    path TEXT PRIMARY KEY, hash TEXT NOT NULL, mtime REAL NOT NULL, size INTEGER NOT NULL,
    language TEXT NOT NULL, chunks INTEGER NOT NULL,
    redactions INTEGER NOT NULL DEFAULT 0);  -- secrets replaced in this file's stored text
CREATE TABLE IF NOT EXISTS chunks(
    id INTEGER PRIMARY KEY, path TEXT NOT NULL, start_line INTEGER NOT NULL, end_line INTEGER NOT NULL,
    symbol TEXT, symbol_type TEXT, language TEXT NOT NULL, content_type TEXT NOT NULL,
    content TEXT NOT NULL, vector BLOB,
    name TEXT,  -- the symbol's own name, lowercased: `Session.send` -> `send`
    digest TEXT, traits INTEGER);  -- content features for ranking (amanmcp.ranking.features)
CREATE INDEX IF NOT EXISTS chunks_path ON chunks(path);
CREATE INDEX IF NOT EXISTS chunks_name ON chunks(name);
CREATE VIRTUAL TABLE IF NOT EXISTS chunks_fts USING fts5(
    name, body, tokenize = "porter unicode61 tokenchars '_'");
CREATE TABLE IF NOT EXISTS graph_defs(
    path TEXT NOT NULL, qname TEXT NOT NULL, name TEXT NOT NULL, kind TEXT NOT NULL,
    start_line INTEGER NOT NULL, end_line INTEGER NOT NULL, line INTEGER NOT NULL, parent TEXT,
    bases TEXT NOT NULL, signature TEXT NOT NULL, doc TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS graph_defs_name ON graph_defs(name);
CREATE INDEX IF NOT EXISTS graph_defs_path ON graph_defs(path, qname);
CREATE TABLE IF NOT EXISTS graph_refs(
    path TEXT NOT NULL, line INTEGER NOT NULL, name TEXT NOT NULL, kind TEXT NOT NULL, scope TEXT,
    module TEXT, target TEXT,  -- module + target: where the name was found to come from (graph.model)
    member INTEGER NOT NULL DEFAULT 0);  -- reached through an object: `x.name`
CREATE INDEX IF NOT EXISTS graph_refs_name ON graph_refs(name);
CREATE INDEX IF NOT EXISTS graph_refs_path ON graph_refs(path, line);
CREATE TABLE IF NOT EXISTS graph_imports(
    path TEXT NOT NULL, local TEXT NOT NULL, module TEXT NOT NULL, name TEXT NOT NULL, line INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS graph_imports_path ON graph_imports(path, local);
"""


GRAPH_DEF_COLUMNS = "path, qname, name, kind, start_line, end_line, line, parent, bases, signature, doc"
GRAPH_REF_COLUMNS = "path, line, name, kind, scope, module, target, member"
CHUNK_SPAN_COLUMNS = "id, path, start_line, end_line, symbol, symbol_type, content"


def graph_def_where(
    path: str | None = None, name: str | None = None, qname: str | None = None, parent: str | None = None,
    top_level: bool = False, line: int | None = None,
) -> tuple[str, list[Any]]:
    """The WHERE clause (`?` marks) of a definitions lookup; both stores build theirs from it."""
    clauses, args = [], []
    for column, value in (("path", path), ("name", name), ("qname", qname), ("parent", parent)):
        if value is not None:
            clauses.append(f"{column} = ?")
            args.append(value)
    if top_level:
        clauses.append("parent IS NULL")
    if line is not None:
        clauses.append("start_line <= ? AND end_line >= ?")
        args += [line, line]
    return " AND ".join(clauses) or "1 = 1", args


def graph_ref_where(
    name: str | None = None, path: str | None = None, lines: tuple[int, int] | None = None, kind: str | None = None,
) -> tuple[str, list[Any]]:
    """The WHERE clause (`?` marks) of a references lookup."""
    clauses, args = [], []
    for column, value in (("name", name), ("path", path), ("kind", kind)):
        if value is not None:
            clauses.append(f"{column} = ?")
            args.append(value)
    if lines is not None:
        clauses.append("line BETWEEN ? AND ?")
        args += list(lines)
    return " AND ".join(clauses) or "1 = 1", args


def mention_where(content_type: str | None, languages: Sequence[str] | None) -> tuple[str, list[Any]]:
    clauses, args = [], []
    if content_type is not None:
        clauses.append("c.content_type = ?")
        args.append(content_type)
    if languages:
        clauses.append(f"c.language IN ({','.join('?' * len(languages))})")
        args += list(languages)
    return " AND ".join(clauses) or "1 = 1", args


@dataclass(frozen=True, slots=True)
class FileRecord:
    path: str
    hash: str
    mtime: float
    size: int
    language: str
    redactions: int = 0  # secrets replaced by markers in the stored text


@dataclass(frozen=True, slots=True)
class Filters:
    content_type: str | None = None  # "code" | "docs"
    language: str | None = None
    scope: tuple[str, ...] = ()  # path prefixes, relative, no leading/trailing slash
    symbol_type: str | None = None

    @property
    def active(self) -> bool:
        return bool(self.content_type or self.language or self.scope or self.symbol_type)

    def sql(self, alias: str = "c") -> tuple[str, list[Any]]:
        clauses: list[str] = []
        args: list[Any] = []
        if self.content_type:
            clauses.append(f"{alias}.content_type = ?")
            args.append(self.content_type)
        if self.language:
            clauses.append(f"{alias}.language = ?")
            args.append(self.language.lower())
        if self.symbol_type:
            clauses.append(f"{alias}.symbol_type = ?")
            args.append(self.symbol_type)
        if self.scope:
            ors = []
            for prefix in self.scope:
                escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
                ors.append(f"({alias}.path = ? OR {alias}.path LIKE ? ESCAPE '\\')")
                args.extend([prefix, escaped + "/%"])
            clauses.append("(" + " OR ".join(ors) + ")")
        return (" AND ".join(clauses) or "1"), args


def symbol_name(symbol: str | None) -> str | None:
    """`Session.send` -> `send`; markdown heading paths keep only the last heading."""
    if not symbol:
        return None
    return symbol.rsplit(" > ", 1)[-1].rsplit(".", 1)[-1].rsplit("::", 1)[-1].lower()


def fts_name(chunk: Chunk) -> str:
    return " ".join(index_words(f"{chunk.symbol or ''} {chunk.path}"))


_HEADER = b"SQLite format 3\x00"
# SQLite result codes that mean the file itself cannot be trusted or read.
_DAMAGE_CODES = ("SQLITE_CORRUPT", "SQLITE_NOTADB", "SQLITE_CANTOPEN", "SQLITE_IOERR_READ", "SQLITE_IOERR_SHORT_READ",
                 "SQLITE_FORMAT")
F = TypeVar("F", bound=Callable[..., Any])


def is_damage(exc: sqlite3.Error) -> bool:
    """Whether an SQLite error says the database file is damaged or unreadable (not busy, full, read-only)."""
    name = getattr(exc, "sqlite_errorname", "") or ""
    if name.startswith(_DAMAGE_CODES) or type(exc) is sqlite3.DatabaseError:
        return True
    message = str(exc)
    return message.startswith(("no such table", "no such column")) or "malformed" in message


def _root_of(directory: Path) -> Path | None:
    """The project root of a generation folder `<root>/.amanmcp/gen-*`, when it is laid out so."""
    from amanmcp.config import INDEX_DIR

    return directory.parent.parent if directory.parent.name == INDEX_DIR else None


def damaged(directory: Path, reason: str) -> IndexDamagedError:
    root = _root_of(directory)
    command = f"amanmcp index --force {root}" if root is not None else "amanmcp index --force"
    return IndexDamagedError(
        f"the index at {directory / 'index.db'} is damaged ({reason}): run `{command}` to rebuild it"
    )


def _guarded(method: F) -> F:
    """SQLite failures of a store method become IndexDamagedError (damage) or AmanError (the rest)."""

    @functools.wraps(method)
    def wrapper(self: IndexStore, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except (sqlite3.IntegrityError, sqlite3.ProgrammingError, sqlite3.InterfaceError):
            raise  # our own bug, not the file's: keep the traceback
        except sqlite3.Error as exc:
            raise self._failure(exc) from exc

    return wrapper  # type: ignore[return-value]


class IndexStore:
    """One generation's database. Writers hold the layout's write lock; readers never block (WAL)."""

    def __init__(self, directory: Path, *, readonly: bool = False) -> None:
        self.directory = directory
        self.path = directory / "index.db"
        conn: sqlite3.Connection | None = None
        try:
            if readonly:
                if not self.path.is_file():
                    raise damaged(directory, "index.db is missing")
                conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, check_same_thread=False)
                self.conn = conn
            else:
                conn = sqlite3.connect(self.path, check_same_thread=False)
                self.conn = conn
                self.conn.execute("PRAGMA journal_mode=WAL")
                self.conn.execute("PRAGMA synchronous=NORMAL")
                self.conn.executescript(_SCHEMA)
                if self.get_meta("schema_version") is None:
                    self.set_meta("schema_version", SCHEMA_VERSION)
                    self.conn.commit()
            self.conn.execute("PRAGMA busy_timeout=5000")
            self._probe()
        except (sqlite3.Error, AmanError) as exc:
            if conn is not None:
                conn.close()
            if isinstance(exc, AmanError):
                raise
            raise self._failure(exc) from exc

    def _failure(self, exc: sqlite3.Error) -> AmanError:
        if is_damage(exc):
            return damaged(self.directory, str(exc))
        return AmanError(f"the index at {self.path} could not be used: {exc}")

    def _probe(self) -> None:
        """Fail now, not in the middle of a search, on a file that is not (all) there.

        Reads the header, then one row of each table (their root pages); a file shorter than its
        header's page count (truncated) gets a `PRAGMA quick_check` to confirm, since a checkpoint
        in progress may extend the file a moment after the header says so."""
        try:
            with self.path.open("rb") as fh:
                header = fh.read(100)
            size = self.path.stat().st_size
        except OSError as exc:
            raise damaged(self.directory, f"unreadable: {exc.strerror or exc}") from None
        if len(header) < 100 or not header.startswith(_HEADER):
            raise damaged(self.directory, "empty file" if not header else "not an SQLite database")
        page_size = int.from_bytes(header[16:18], "big")
        page_size = 65536 if page_size == 1 else page_size
        pages = int.from_bytes(header[28:32], "big")
        valid = header[24:28] == header[92:96]  # the page count is trustworthy only then
        for table in ("meta", "files", "chunks", "chunks_fts"):
            self.conn.execute(f"SELECT * FROM {table} LIMIT 1").fetchall()
        if valid and pages * page_size > size:
            verdict = self.conn.execute("PRAGMA quick_check(1)").fetchone()
            if not verdict or verdict[0] != "ok":
                raise damaged(self.directory, f"truncated: {verdict[0] if verdict else 'no answer'}")

    def close(self) -> None:
        self.conn.close()

    # -- meta -----------------------------------------------------------------------------------

    @_guarded
    def get_meta(self, key: str) -> Any:
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    @_guarded
    def meta_items(self) -> dict[str, Any]:
        """Every meta key with its decoded value; `store.meta.read_meta` gives the typed view."""
        return {key: json.loads(value) for key, value in self.conn.execute("SELECT key, value FROM meta")}

    @_guarded
    def set_meta(self, key: str, value: Any) -> None:
        self.conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, json.dumps(value)))

    # -- writes (callers commit) ----------------------------------------------------------------

    @_guarded
    def file_states(self) -> dict[str, tuple[str, float, int]]:
        return {p: (h, m, s) for p, h, m, s in self.conn.execute("SELECT path, hash, mtime, size FROM files")}

    @_guarded
    def stored_vectors(self, paths: Iterable[str]) -> list[tuple[Chunk, bytes]]:
        """These files' chunks with their vectors, so an edit re-embeds only the chunks it changed."""
        out = []
        for path in paths:
            rows = self.conn.execute(
                "SELECT path, start_line, end_line, content, language, content_type, symbol, symbol_type, vector "
                "FROM chunks WHERE path = ? AND vector IS NOT NULL",
                (path,),
            )
            out.extend((Chunk(*r[:8]), r[8]) for r in rows)
        return out

    @_guarded
    def embedding_inputs(self, *, missing: bool) -> list[tuple[int, Chunk]]:
        """(id, chunk) by id: `missing`, those with no vector yet (a first build's vector stage fills
        them in); otherwise all (its static tier embeds every chunk)."""
        rows = self.conn.execute(
            "SELECT id, path, start_line, end_line, content, language, content_type, symbol, symbol_type "
            f"FROM chunks {'WHERE vector IS NULL ' if missing else ''}ORDER BY id")
        return [(r[0], Chunk(*r[1:])) for r in rows]

    @_guarded
    def set_vectors(self, ids: Sequence[int], vectors: np.ndarray) -> None:
        self.conn.executemany("UPDATE chunks SET vector = ? WHERE id = ?",
                              [(v.astype(np.float32).tobytes(), cid) for cid, v in zip(ids, vectors, strict=True)])

    @_guarded
    def touch_file(self, path: str, mtime: float) -> None:
        self.conn.execute("UPDATE files SET mtime = ? WHERE path = ?", (mtime, path))

    @_guarded
    def delete_files(self, paths: Iterable[str]) -> None:
        for path in paths:
            ids = [r[0] for r in self.conn.execute("SELECT id FROM chunks WHERE path = ?", (path,))]
            self.conn.executemany("DELETE FROM chunks_fts WHERE rowid = ?", [(i,) for i in ids])
            self.conn.execute("DELETE FROM chunks WHERE path = ?", (path,))
            self.conn.execute("DELETE FROM files WHERE path = ?", (path,))
            for table in ("graph_defs", "graph_refs", "graph_imports"):
                self.conn.execute(f"DELETE FROM {table} WHERE path = ?", (path,))

    @_guarded
    def put_file(
        self, record: FileRecord, chunks: Sequence[Chunk], vectors: np.ndarray | None,
        features: Sequence[tuple[str, int]] | None = None,
    ) -> None:
        """Replace one file's chunks (and vectors and content features, one row per chunk)."""
        self.delete_files([record.path])
        self.conn.execute(
            "INSERT INTO files(path, hash, mtime, size, language, chunks, redactions) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (record.path, record.hash, record.mtime, record.size, record.language, len(chunks), record.redactions),
        )
        for i, chunk in enumerate(chunks):
            blob = vectors[i].astype(np.float32).tobytes() if vectors is not None else None
            digest, traits = features[i] if features is not None else (None, None)
            cur = self.conn.execute(
                "INSERT INTO chunks(path, start_line, end_line, symbol, symbol_type, language, content_type,"
                " content, vector, name, digest, traits) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (chunk.path, chunk.start_line, chunk.end_line, chunk.symbol, chunk.symbol_type,
                 chunk.language, chunk.content_type, chunk.content, blob, symbol_name(chunk.symbol), digest, traits),
            )
            self.conn.execute(
                "INSERT INTO chunks_fts(rowid, name, body) VALUES (?, ?, ?)",
                (cur.lastrowid, fts_name(chunk), " ".join(index_words(chunk.content))),
            )

    @_guarded
    def put_graph(self, path: str, graph: FileGraph | None) -> None:
        """One file's code graph, beside its chunks and in the same transaction (after `put_file`)."""
        if graph is None:
            return
        self.conn.executemany(
            "INSERT INTO graph_defs(path, qname, name, kind, start_line, end_line, line, parent, bases, signature, doc)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(path, d.qname, d.name, d.kind, d.start_line, d.end_line, d.line, d.parent,
              json.dumps([list(b) for b in d.bases]), d.signature, d.doc) for d in graph.defs],
        )
        self.conn.executemany(
            "INSERT INTO graph_refs(path, line, name, kind, scope, module, target, member)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [(path, r.line, r.name, r.kind, r.scope, r.module, r.target, r.member) for r in graph.refs],
        )
        self.conn.executemany(
            "INSERT INTO graph_imports(path, local, module, name, line) VALUES (?, ?, ?, ?, ?)",
            [(path, i.local, i.module, i.name, i.line) for i in graph.imports],
        )

    @_guarded
    def commit(self) -> None:
        self.conn.commit()

    # -- reads ----------------------------------------------------------------------------------

    @_guarded
    def bm25(self, words: Sequence[str], limit: int, filters: Filters) -> list[int]:
        """Chunk ids, best first. Words are quoted, so no query can inject FTS5 syntax."""
        if not words:
            return []
        match = " OR ".join('"' + w.replace('"', '""') + '"' for w in words)
        if not filters.active:  # no join: ranking thousands of OR matches costs a third without it
            rows = self.conn.execute(
                "SELECT rowid FROM chunks_fts WHERE chunks_fts MATCH ? "
                "ORDER BY bm25(chunks_fts, 4.0, 1.0), rowid LIMIT ?",
                (match, limit),
            )
            return [r[0] for r in rows]
        where, args = filters.sql()
        rows = self.conn.execute(
            "SELECT c.id FROM chunks_fts JOIN chunks c ON c.id = chunks_fts.rowid "
            f"WHERE chunks_fts MATCH ? AND {where} ORDER BY bm25(chunks_fts, 4.0, 1.0), c.id LIMIT ?",
            (match, *args, limit),
        )
        return [r[0] for r in rows]

    @_guarded
    def by_name(self, names: Sequence[str], limit: int, filters: Filters) -> list[tuple[int, str, str, str | None]]:
        """(id, path, symbol, symbol_type) of chunks whose symbol is named one of `names` (lowercase)."""
        if not names:
            return []
        where, args = filters.sql()
        marks = ",".join("?" * len(names))
        rows = self.conn.execute(
            f"SELECT c.id, c.path, c.symbol, c.symbol_type FROM chunks c WHERE c.name IN ({marks}) AND {where} "
            "ORDER BY c.path, c.start_line LIMIT ?",
            (*names, *args, limit),
        )
        return list(rows)

    @_guarded
    def filtered_ids(self, filters: Filters) -> np.ndarray:
        where, args = filters.sql()
        return np.fromiter((r[0] for r in self.conn.execute(f"SELECT id FROM chunks c WHERE {where}", args)), np.int64)

    @_guarded
    def chunks_with_features(self, ids: Sequence[int]) -> dict[int, tuple[Chunk, str | None, int | None]]:
        """Chunks by id with their stored (digest, traits): what ranking reads of each candidate."""
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        rows = self.conn.execute(
            "SELECT id, path, start_line, end_line, content, language, content_type, symbol, symbol_type, digest, "
            f"traits FROM chunks WHERE id IN ({marks})",
            list(ids),
        )
        return {r[0]: (Chunk(*r[1:9]), r[9], r[10]) for r in rows}

    @_guarded
    def vectors(self, dimensions: int) -> tuple[np.ndarray, np.ndarray]:
        """(ids, matrix) of every chunk that has a vector: the source of truth for the vector index."""
        ids: list[int] = []
        blobs: list[bytes] = []
        for cid, blob in self.conn.execute("SELECT id, vector FROM chunks WHERE vector IS NOT NULL ORDER BY id"):
            ids.append(cid)
            blobs.append(blob)
        matrix = np.frombuffer(b"".join(blobs), dtype=np.float32).reshape(len(ids), dimensions)
        return np.asarray(ids, dtype=np.int64), matrix

    # -- the code graph (graph.query and graph.context read it through these) ----------------------

    @_guarded
    def graph_version(self) -> object:
        """Changes whenever another connection wrote: the graph's caches are dropped then."""
        return self.conn.execute("PRAGMA data_version").fetchone()[0]

    @_guarded
    def graph_defs(
        self, *, path: str | None = None, name: str | None = None, qname: str | None = None,
        parent: str | None = None, top_level: bool = False, line: int | None = None,
    ) -> list[tuple[Any, ...]]:
        """Definition rows (GRAPH_DEF_COLUMNS) matching every given field, by path and start line."""
        where, args = graph_def_where(path, name, qname, parent, top_level, line)
        return self.conn.execute(f"SELECT {GRAPH_DEF_COLUMNS} FROM graph_defs WHERE {where} "
                                 "ORDER BY path, start_line, rowid", args).fetchall()

    @_guarded
    def graph_def_names(self) -> list[str]:
        return [r[0] for r in self.conn.execute("SELECT DISTINCT name FROM graph_defs ORDER BY name")]

    @_guarded
    def graph_name_count(self, name: str) -> int:
        return int(self.conn.execute("SELECT COUNT(*) FROM graph_defs WHERE name = ?", (name,)).fetchone()[0])

    @_guarded
    def graph_refs(
        self, *, name: str | None = None, path: str | None = None, lines: tuple[int, int] | None = None,
        kind: str | None = None,
    ) -> list[tuple[Any, ...]]:
        """Reference rows (GRAPH_REF_COLUMNS) matching every given field, by path and line."""
        where, args = graph_ref_where(name, path, lines, kind)
        return self.conn.execute(f"SELECT {GRAPH_REF_COLUMNS} FROM graph_refs WHERE {where} "
                                 "ORDER BY path, line, rowid", args).fetchall()

    @_guarded
    def graph_imports(self, path: str | None = None) -> list[tuple[str, str, str, str, int]]:
        """(path, local, module, name, line) of imports, in the order they were written."""
        if path is None:
            return self.conn.execute("SELECT path, local, module, name, line FROM graph_imports "
                                     "ORDER BY rowid").fetchall()
        return self.conn.execute("SELECT path, local, module, name, line FROM graph_imports WHERE path = ? "
                                 "ORDER BY rowid", (path,)).fetchall()

    @_guarded
    def chunk_spans(self, path: str, start: int | None = None, end: int | None = None) -> list[tuple[Any, ...]]:
        """Rows (CHUNK_SPAN_COLUMNS) of a file's chunks overlapping lines start..end (all when not given)."""
        return self.conn.execute(
            f"SELECT {CHUNK_SPAN_COLUMNS} FROM chunks WHERE path = ? AND end_line >= ? AND start_line <= ? "
            "ORDER BY start_line, id", (path, start if start is not None else -1,
                                        end if end is not None else 1 << 62)).fetchall()

    @_guarded
    def mentions(self, word: str, limit: int, content_type: str | None = None,
                 languages: Sequence[str] | None = None) -> list[tuple[Any, ...]]:
        """Rows (CHUNK_SPAN_COLUMNS) whose text holds `word` (one index word), best BM25 first."""
        where, args = mention_where(content_type, languages)
        cols = ", ".join(f"c.{c}" for c in CHUNK_SPAN_COLUMNS.split(", "))
        return self.conn.execute(
            f"SELECT {cols} FROM chunks_fts JOIN chunks c ON c.id = chunks_fts.rowid WHERE chunks_fts MATCH ? "
            f"AND {where} ORDER BY bm25(chunks_fts, 4.0, 1.0) LIMIT ?",
            ('body:"' + word.replace('"', '""') + '"', *args, limit)).fetchall()

    def contents(self) -> Iterator[str]:
        """Every chunk's content, for work done ahead of queries (counting answer tokens)."""
        for (content,) in self.conn.execute("SELECT content FROM chunks"):
            yield content

    @_guarded
    def paths_of(self, ids: np.ndarray) -> list[str]:
        """The file of each chunk id, in the order given."""
        paths = dict(self.conn.execute("SELECT id, path FROM chunks"))
        return [paths[int(i)] for i in ids]

    @_guarded
    def counts(self) -> dict[str, int]:
        files = self.conn.execute("SELECT COUNT(*) FROM files").fetchone()[0]
        chunks, vectors = self.conn.execute("SELECT COUNT(*), COUNT(vector) FROM chunks").fetchone()
        return {"files": files, "chunks": chunks, "vectors": vectors}

    @_guarded
    def redactions(self) -> int:
        """Secrets replaced by markers across the stored text of every file."""
        return int(self.conn.execute("SELECT COALESCE(SUM(redactions), 0) FROM files").fetchone()[0])

    @_guarded
    def languages(self) -> dict[str, int]:
        return dict(self.conn.execute("SELECT language, COUNT(*) FROM files GROUP BY language ORDER BY 2 DESC"))

    def file_stats(self, paths: Iterable[str] | None = None) -> dict[str, tuple[int, float]]:
        """path -> (size, mtime) as indexed, for these paths (all files when None): the stale-result check."""
        if paths is None:
            return {p: (s, m) for p, s, m in self.conn.execute("SELECT path, size, mtime FROM files")}
        wanted, out = list(paths), {}
        for i in range(0, len(wanted), 500):  # stay under SQLite's bound-variable limit
            batch = wanted[i : i + 500]
            marks = ",".join("?" * len(batch))
            rows = self.conn.execute(f"SELECT path, size, mtime FROM files WHERE path IN ({marks})", batch)
            out.update({p: (s, m) for p, s, m in rows})
        return out
