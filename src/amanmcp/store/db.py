"""SQLite (WAL) holding files, chunks with their vectors, and an FTS5 table for BM25."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from amanmcp.models import Chunk
from amanmcp.tokens import index_words

SCHEMA_VERSION = 6  # bump when the tables, the chunking or ranking.features change: old indexes are rebuilt

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS files(
    path TEXT PRIMARY KEY, hash TEXT NOT NULL, mtime REAL NOT NULL, size INTEGER NOT NULL,
    language TEXT NOT NULL, chunks INTEGER NOT NULL);
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
"""


@dataclass(frozen=True, slots=True)
class FileRecord:
    path: str
    hash: str
    mtime: float
    size: int
    language: str


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


class IndexStore:
    """One generation's database. Writers hold the layout's write lock; readers never block (WAL)."""

    def __init__(self, directory: Path, *, readonly: bool = False) -> None:
        self.directory = directory
        self.path = directory / "index.db"
        if readonly:
            self.conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, check_same_thread=False)
        else:
            self.conn = sqlite3.connect(self.path, check_same_thread=False)
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=NORMAL")
            self.conn.executescript(_SCHEMA)
            if self.get_meta("schema_version") is None:
                self.set_meta("schema_version", SCHEMA_VERSION)
                self.conn.commit()
        self.conn.execute("PRAGMA busy_timeout=5000")

    def close(self) -> None:
        self.conn.close()

    # -- meta -----------------------------------------------------------------------------------

    def get_meta(self, key: str) -> Any:
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def meta_items(self) -> dict[str, Any]:
        """Every meta key with its decoded value; `store.meta.read_meta` gives the typed view."""
        return {key: json.loads(value) for key, value in self.conn.execute("SELECT key, value FROM meta")}

    def set_meta(self, key: str, value: Any) -> None:
        self.conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, json.dumps(value)))

    # -- writes (callers commit) ----------------------------------------------------------------

    def file_states(self) -> dict[str, tuple[str, float, int]]:
        return {p: (h, m, s) for p, h, m, s in self.conn.execute("SELECT path, hash, mtime, size FROM files")}

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

    def touch_file(self, path: str, mtime: float) -> None:
        self.conn.execute("UPDATE files SET mtime = ? WHERE path = ?", (mtime, path))

    def delete_files(self, paths: Iterable[str]) -> None:
        for path in paths:
            ids = [r[0] for r in self.conn.execute("SELECT id FROM chunks WHERE path = ?", (path,))]
            self.conn.executemany("DELETE FROM chunks_fts WHERE rowid = ?", [(i,) for i in ids])
            self.conn.execute("DELETE FROM chunks WHERE path = ?", (path,))
            self.conn.execute("DELETE FROM files WHERE path = ?", (path,))

    def put_file(
        self, record: FileRecord, chunks: Sequence[Chunk], vectors: np.ndarray | None,
        features: Sequence[tuple[str, int]] | None = None,
    ) -> None:
        """Replace one file's chunks (and vectors and content features, one row per chunk)."""
        self.delete_files([record.path])
        self.conn.execute(
            "INSERT INTO files(path, hash, mtime, size, language, chunks) VALUES (?, ?, ?, ?, ?, ?)",
            (record.path, record.hash, record.mtime, record.size, record.language, len(chunks)),
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

    def commit(self) -> None:
        self.conn.commit()

    # -- reads ----------------------------------------------------------------------------------

    def bm25(self, words: Sequence[str], limit: int, filters: Filters) -> list[int]:
        """Chunk ids, best first. Words are quoted, so no query can inject FTS5 syntax."""
        if not words:
            return []
        match = " OR ".join('"' + w.replace('"', '""') + '"' for w in words)
        where, args = filters.sql()
        rows = self.conn.execute(
            "SELECT c.id FROM chunks_fts JOIN chunks c ON c.id = chunks_fts.rowid "
            f"WHERE chunks_fts MATCH ? AND {where} ORDER BY bm25(chunks_fts, 4.0, 1.0) LIMIT ?",
            (match, *args, limit),
        )
        return [r[0] for r in rows]

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

    def filtered_ids(self, filters: Filters) -> np.ndarray:
        where, args = filters.sql()
        return np.fromiter((r[0] for r in self.conn.execute(f"SELECT id FROM chunks c WHERE {where}", args)), np.int64)

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

    def vectors(self, dimensions: int) -> tuple[np.ndarray, np.ndarray]:
        """(ids, matrix) of every chunk that has a vector: the source of truth for the vector index."""
        ids: list[int] = []
        blobs: list[bytes] = []
        for cid, blob in self.conn.execute("SELECT id, vector FROM chunks WHERE vector IS NOT NULL ORDER BY id"):
            ids.append(cid)
            blobs.append(blob)
        matrix = np.frombuffer(b"".join(blobs), dtype=np.float32).reshape(len(ids), dimensions)
        return np.asarray(ids, dtype=np.int64), matrix

    def paths_of(self, ids: np.ndarray) -> list[str]:
        """The file of each chunk id, in the order given."""
        paths = dict(self.conn.execute("SELECT id, path FROM chunks"))
        return [paths[int(i)] for i in ids]

    def counts(self) -> dict[str, int]:
        files = self.conn.execute("SELECT COUNT(*) FROM files").fetchone()[0]
        chunks, vectors = self.conn.execute("SELECT COUNT(*), COUNT(vector) FROM chunks").fetchone()
        return {"files": files, "chunks": chunks, "vectors": vectors}

    def languages(self) -> dict[str, int]:
        return dict(self.conn.execute("SELECT language, COUNT(*) FROM files GROUP BY language ORDER BY 2 DESC"))
