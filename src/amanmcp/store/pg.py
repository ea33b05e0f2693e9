"""A shared index on PostgreSQL + pgvector: many named repositories in one database.

Each repository points at one generation (a number from a sequence); every row of files, chunks,
postings, meta, file centroids and the code graph carries its generation, so a read names the generations it sees and a
write never disturbs them. A run (full or incremental) is one transaction: a full rebuild writes a
new generation, flips the repository to it and deletes the old one before it commits, so readers
see the old index or the new one, never a mix, and a crash leaves the old one. psycopg and
pgvector are imported only here and only when a `postgresql://` store is used (extra `team`).

BM25 follows SQLite's FTS5 `bm25()` (k1 1.2, b 0.75, name column weight 4, IDF floored at 1e-6)
over the same code-aware words (`tokens.py`), folded and Porter-stemmed in Python as FTS5's
`porter unicode61` tokenizer does. The words live in a postings table, one row per (chunk, word)
with its weighted count and an *impact*: the word's BM25 share in that chunk at the generation's
reference length, and `terms` keeps each word's document frequency. A query reads only the
postings of its words from one index (term, impact): a sum of impacts over its stronger words,
then an exact FTS5 score for the few chunks that can still place once the weaker words and any
drift of the average length since the impacts were written are allowed for (see `bm25`), so the
order is FTS5's, not an approximation. Differences from FTS5: the Porter stemmer is the snowball
one (not SQLite's C code; a few words stem differently), and diacritics are folded for every
script, not only Latin.
"""

from __future__ import annotations

import contextlib
import functools
import math
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import numpy as np

from amanmcp.errors import AmanError, UsageError
from amanmcp.models import Chunk
from amanmcp.store.db import (
    CHUNK_SPAN_COLUMNS,
    GRAPH_DEF_COLUMNS,
    GRAPH_REF_COLUMNS,
    FileRecord,
    Filters,
    fts_name,
    graph_def_where,
    graph_ref_where,
    mention_where,
    symbol_name,
)
from amanmcp.tokens import index_words

if TYPE_CHECKING:
    import psycopg

    from amanmcp.graph.model import FileGraph

GRAPH_TABLES = ("graph_defs", "graph_refs", "graph_imports")

STORE_SCHEMA = 3  # the tables below; bump with a migration in _MIGRATIONS
NAME_WEIGHT = 4.0  # FTS5's bm25(chunks_fts, 4.0, 1.0): a word in the name counts four times
K1, B = 1.2, 0.75  # FTS5's bm25 constants
MINOR = 0.1  # the weakest words stay out of the pass while they can add at most this share of the cut
TIE = 1e-9  # relative slack for sums of the same doubles added in another order (candidates only)
MIN_IDF = 1e-6  # FTS5 floors the IDF of a word in more than half the chunks here
_LOCK = 0x616D616E  # advisory lock key for schema changes ("aman")

_MIGRATIONS: dict[int, str] = {
    1: """
CREATE TABLE repos(name text PRIMARY KEY, root text NOT NULL, generation bigint, indexed_at timestamptz);
CREATE TABLE generations(id bigserial PRIMARY KEY, repo text NOT NULL);
CREATE TABLE meta(generation bigint NOT NULL, key text NOT NULL, value jsonb NOT NULL,
    PRIMARY KEY(generation, key));
CREATE TABLE files(generation bigint NOT NULL, path text NOT NULL, hash text NOT NULL,
    mtime double precision NOT NULL, size bigint NOT NULL, language text NOT NULL, chunks integer NOT NULL,
    redactions integer NOT NULL DEFAULT 0, PRIMARY KEY(generation, path));
CREATE TABLE chunks(id bigserial PRIMARY KEY, generation bigint NOT NULL, path text NOT NULL,
    start_line integer NOT NULL, end_line integer NOT NULL, symbol text, symbol_type text,
    language text NOT NULL, content_type text NOT NULL, content text NOT NULL,
    name text, digest text, traits bigint,
    words tsvector NOT NULL,  -- schema 1 only: name words weighted A, body words D (now `postings`)
    length integer NOT NULL,  -- words in name and body: BM25's document length
    dims integer, embedding vector);
CREATE INDEX chunks_path ON chunks(generation, path);
CREATE INDEX chunks_name ON chunks(generation, name);
CREATE INDEX chunks_words ON chunks USING gin(words);
CREATE TABLE file_vectors(generation bigint NOT NULL, path text NOT NULL, centroid vector NOT NULL,
    PRIMARY KEY(generation, path));
""",
    2: """
CREATE TABLE postings(generation bigint NOT NULL, chunk bigint NOT NULL, term text NOT NULL,
    tf integer NOT NULL,  -- weighted occurrences: NAME_WEIGHT per name word, 1 per body word
    impact double precision NOT NULL,  -- tf's BM25 share at the generation's reference length
    PRIMARY KEY(generation, chunk, term));
CREATE TABLE terms(generation bigint NOT NULL, term text NOT NULL, df integer NOT NULL,
    PRIMARY KEY(generation, term));
CREATE TEMP TABLE reference ON COMMIT DROP AS
    SELECT generation, greatest(avg(length), 1e-9)::float8 AS a FROM chunks GROUP BY generation;
INSERT INTO postings(generation, chunk, term, tf, impact)
    SELECT c.generation, c.id, u.lexeme, t.tf, t.tf * 2.2 / (t.tf + 1.2 * (0.25 + 0.75 * c.length / r.a))
    FROM chunks c JOIN reference r USING (generation), unnest(c.words) u,
    LATERAL (SELECT 4 * cardinality(array_positions(u.weights, 'A'))
                 + cardinality(array_positions(u.weights, 'D')) AS tf) t;
INSERT INTO terms(generation, term, df) SELECT generation, term, count(*) FROM postings GROUP BY generation, term;
UPDATE meta m SET value = m.value || jsonb_build_object('reference_length', r.a)
    FROM reference r WHERE m.generation = r.generation AND m.key = 'bm25';
ALTER TABLE chunks DROP COLUMN words;
CREATE INDEX postings_impact ON postings(generation, term, impact DESC, chunk);
""",
    3: """
CREATE TABLE graph_defs(id bigserial PRIMARY KEY, generation bigint NOT NULL, path text NOT NULL,
    qname text NOT NULL, name text NOT NULL, kind text NOT NULL, start_line integer NOT NULL,
    end_line integer NOT NULL, line integer NOT NULL, parent text, bases text NOT NULL, signature text NOT NULL,
    doc text NOT NULL);
CREATE INDEX graph_defs_name ON graph_defs(generation, name);
CREATE INDEX graph_defs_path ON graph_defs(generation, path, qname);
CREATE TABLE graph_refs(id bigserial PRIMARY KEY, generation bigint NOT NULL, path text NOT NULL,
    line integer NOT NULL, name text NOT NULL, kind text NOT NULL, scope text, module text, target text,
    member integer NOT NULL DEFAULT 0);
CREATE INDEX graph_refs_name ON graph_refs(generation, name);
CREATE INDEX graph_refs_path ON graph_refs(generation, path, line);
CREATE TABLE graph_imports(id bigserial PRIMARY KEY, generation bigint NOT NULL, path text NOT NULL,
    local text NOT NULL, module text NOT NULL, name text NOT NULL, line integer NOT NULL);
CREATE INDEX graph_imports_path ON graph_imports(generation, path, local);
""",
}


def is_store_url(url: str | None) -> bool:
    return bool(url) and str(url).startswith(("postgresql://", "postgres://"))


def describe(url: str) -> str:
    """The URL without its password, for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


def _fold(word: str) -> str:
    if word.isascii():
        return word
    return "".join(ch for ch in unicodedata.normalize("NFD", word) if not unicodedata.combining(ch))


@functools.cache
def _stemmer() -> Any:
    import snowballstemmer

    return snowballstemmer.stemmer("porter")


@functools.lru_cache(maxsize=200_000)
def lexeme(word: str) -> str:
    """One word as FTS5's `porter unicode61` stores it: diacritics folded, ASCII words of 3-64 letters stemmed."""
    word = _fold(word)
    if 3 <= len(word) <= 64 and word.isascii() and word.isalpha():
        return _stemmer().stemWord(word)
    return word


def term_counts(name_words: Sequence[str], body_words: Sequence[str]) -> dict[str, int]:
    """Each lexeme's weighted count in a chunk: what FTS5's bm25 sums over the two columns."""
    counts: Counter[str] = Counter()
    for word in name_words:
        counts[lexeme(word)] += int(NAME_WEIGHT)
    for word in body_words:
        counts[lexeme(word)] += 1
    return counts


def chunk_length(chunk: Chunk) -> int:
    """Words in a chunk's name and body columns: BM25's document length."""
    return len(fts_name(chunk).split()) + len(index_words(chunk.content))


def tf_share(tf: float, length: float, average: float) -> float:
    """A word's BM25 share before IDF, as FTS5 computes it (same operation order, same doubles)."""
    return (tf * (K1 + 1.0)) / (tf + K1 * (1 - B + B * length / average))


def idf(chunks: float, df: float) -> float:
    value = math.log((chunks - df + 0.5) / (df + 0.5))
    return value if value > 0.0 else MIN_IDF


def _where(filters: Filters) -> tuple[str, list[Any]]:
    where, args = filters.sql()
    return ("TRUE" if where == "1" else where.replace("?", "%s")), args


class PgDatabase:
    """A connection string checked, the schema created or migrated, and connections handed out."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._check_url()
        conn = self.connect()
        try:
            self._prepare(conn)
        finally:
            conn.close()

    def _check_url(self) -> None:
        if not is_store_url(self.url):
            raise UsageError(f"store URL {self.url!r} is not a PostgreSQL URL: use postgresql://USER:PASSWORD@HOST:PORT/"
                             "DATABASE (store.url, AMANMCP_STORE_URL or --store)")
        try:
            parts = urlsplit(self.url)
            parts.port  # noqa: B018 -- raises on a port that is not a number
        except ValueError as exc:
            raise UsageError(f"store URL {describe(self.url)} is malformed ({exc}): use "
                             "postgresql://USER:PASSWORD@HOST:PORT/DATABASE") from None

    def connect(self, *, autocommit: bool = False) -> psycopg.Connection:
        try:
            import psycopg
            from pgvector.psycopg import register_vector
        except ImportError:
            raise AmanError("a postgresql:// store needs the `team` extra: pip install 'amanmcp[team]'") from None
        try:
            conn = psycopg.connect(self.url, autocommit=autocommit, connect_timeout=10)
        except psycopg.OperationalError as exc:
            raise AmanError(_connect_failure(describe(self.url), str(exc))) from None
        except psycopg.ProgrammingError as exc:  # an unknown URL parameter
            raise UsageError(f"store URL {describe(self.url)} is invalid: {exc}") from None
        with contextlib.suppress(psycopg.ProgrammingError):  # no vector type yet: the schema step creates it
            register_vector(conn)
        return conn

    def _prepare(self, conn: psycopg.Connection) -> None:
        """Create or migrate the schema, under a lock, in one transaction; refuse a newer one before writing."""
        import psycopg
        from pgvector.psycopg import register_vector

        where = describe(self.url)
        try:
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK,))
                found = conn.execute("SELECT to_regclass('amanmcp_schema') IS NOT NULL").fetchone()
                version = conn.execute("SELECT version FROM amanmcp_schema").fetchone()[0] if found[0] else 0
                if version > STORE_SCHEMA:
                    raise AmanError(f"the store at {where} has schema version {version}, written by a newer amanmcp "
                                    f"(this one knows version {STORE_SCHEMA}): upgrade amanmcp "
                                    "(pip install -U amanmcp); nothing was written")
                if version == STORE_SCHEMA:
                    return
                if not conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'vector'").fetchone():
                    if not conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'").fetchone():
                        raise AmanError(f"the PostgreSQL server at {where} has no pgvector extension: install pgvector "
                                        "on the server (https://github.com/pgvector/pgvector) or use a server that "
                                        "has it; nothing was written")
                    conn.execute("CREATE EXTENSION vector")
                if version == 0:
                    conn.execute("CREATE TABLE amanmcp_schema(version integer NOT NULL)")
                    conn.execute("INSERT INTO amanmcp_schema VALUES (0)")
                for step in range(version + 1, STORE_SCHEMA + 1):
                    conn.execute(_MIGRATIONS[step])
                conn.execute("UPDATE amanmcp_schema SET version = %s", (STORE_SCHEMA,))
        except psycopg.errors.InsufficientPrivilege as exc:
            raise AmanError(f"the store at {where} refused to create amanmcp's tables ({exc}): connect as a role "
                            "that may create tables and the vector extension (or have an admin run "
                            "`CREATE EXTENSION vector` once); nothing was written") from None
        except psycopg.Error as exc:
            raise AmanError(f"the store at {where} could not be prepared: {exc}") from None
        register_vector(conn)

    # -- repositories -----------------------------------------------------------------------------

    def summaries(self) -> list[dict[str, Any]]:
        """Each repository with its counts, embedder and last indexing time (one query)."""
        with self.reader() as conn:
            rows = conn.execute(
                "SELECT r.name, r.root, r.generation, "
                "(SELECT count(*) FROM files f WHERE f.generation = r.generation), "
                "(SELECT count(*) FROM chunks c WHERE c.generation = r.generation), "
                "(SELECT count(embedding) FROM chunks c WHERE c.generation = r.generation), "
                "(SELECT value FROM meta m WHERE m.generation = r.generation AND m.key = 'embedder'), "
                "(SELECT value FROM meta m WHERE m.generation = r.generation AND m.key = 'last_indexed'), "
                "(SELECT coalesce(jsonb_object_agg(language, n), '{}') FROM (SELECT language, count(*) AS n "
                "  FROM files f WHERE f.generation = r.generation GROUP BY language) l) "
                "FROM repos r ORDER BY r.name").fetchall()
        keys = ("name", "root", "generation", "files", "chunks", "vectors", "embedder", "last_indexed", "languages")
        return [dict(zip(keys, row, strict=True)) for row in rows]

    @contextmanager
    def reader(self) -> Iterator[psycopg.Connection]:
        conn = self.connect(autocommit=True)
        try:
            yield conn
        finally:
            conn.close()

    def ensure_dims_index(self, dims: int) -> None:
        """An HNSW index (cosine) over the vectors of this dimension; one per dimension in the store.

        Called before a run writes anything: building it waits for other writers' transactions."""
        name = f"chunks_hnsw_{int(dims)}"
        with self.reader() as conn:
            if conn.execute("SELECT to_regclass(%s) IS NOT NULL", (name,)).fetchone()[0]:
                return
        with self.reader() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK,))
            conn.execute(f"CREATE INDEX IF NOT EXISTS {name} ON chunks USING hnsw "
                         f"((embedding::vector({int(dims)})) vector_cosine_ops) WHERE dims = {int(dims)}")


def _connect_failure(where: str, detail: str) -> str:
    first = " ".join(line.strip() for line in detail.splitlines() if line.strip()) or "no answer"
    lowered = detail.lower()
    if "password authentication failed" in lowered or "no password supplied" in lowered or "role" in lowered:
        fix = "check the user and password in the URL (or PGPASSWORD / ~/.pgpass)"
    elif "does not exist" in lowered and "database" in lowered:
        fix = "create the database (createdb NAME) or fix its name in the URL"
    else:
        fix = "check that the server runs and that host and port in the URL are right"
    return f"cannot connect to the store at {where}: {first}; {fix}"


class PgStore:
    """The `IndexStore` calls the indexer and searcher make, over some generations of a PostgreSQL store.

    A writer sees one generation and holds one transaction until `commit`; a reader may see the
    live generations of several repositories at once (each chunk id is unique in the store).
    """

    def __init__(self, db: PgDatabase, generations: dict[int, str], *, write: bool = False) -> None:
        self.db = db
        self.generations = generations  # generation -> repository name
        self.gens = list(generations)
        self.write = write
        self.conn = db.connect(autocommit=not write)
        # no server-side prepared statements: a generic plan for `= ANY(array)` of unknown size can
        # pick the wrong index (a 4 ms lookup took 80 ms); planning these costs well under a millisecond
        self.conn.prepare_threshold = None
        self._reference: float | None = None  # the written generation's reference length (BM25 impacts)
        self._df: Counter[str] = Counter()  # document-frequency changes of this run, written by `finish`

    def view(self, generations: dict[int, str]) -> None:
        """Read these generations from now on (a reader follows the repositories' live generations)."""
        self.generations = generations
        self.gens = list(generations)

    def lock_repo(self, repo: str) -> None:
        """One writer per repository across machines: a session advisory lock, refused at once when held."""
        if not self._rows("SELECT pg_try_advisory_lock(hashtextextended(%s, 0))", (f"amanmcp repo {repo}",))[0][0]:
            raise AmanError(f"repository {repo!r} in the store at {describe(self.db.url)} is being indexed by "
                            "another amanmcp right now: wait for it to finish, then run this again")

    def live_generations(self) -> dict[str, tuple[str, int | None]]:
        """name -> (root, live generation) of every repository."""
        return {n: (r, g) for n, r, g in self._rows("SELECT name, root, generation FROM repos ORDER BY name")}

    def start_generation(self, repo: str) -> int:
        """A new, empty generation for a full rebuild of `repo` (visible only once published)."""
        gen = self._rows("INSERT INTO generations(repo) VALUES (%s) RETURNING id", (repo,))[0][0]
        self.view({gen: repo})
        self._reference = None
        self._df.clear()
        return gen

    @property
    def generation(self) -> int:
        assert len(self.gens) == 1, "a write sees exactly one generation"
        return self.gens[0]

    def close(self) -> None:
        if not self.conn.closed:
            self.conn.close()

    def _rows(self, sql: str, args: Sequence[Any] | dict[str, Any] = ()) -> list[tuple[Any, ...]]:
        import psycopg

        try:
            return self.conn.execute(sql, args).fetchall()
        except psycopg.OperationalError as exc:
            raise AmanError(f"the store at {describe(self.db.url)} stopped answering: {exc}") from None

    def _exec(self, sql: str, args: Sequence[Any] = ()) -> None:
        self.conn.execute(sql, args)

    # -- meta -------------------------------------------------------------------------------------

    def meta_items(self) -> dict[str, Any]:
        return dict(self._rows("SELECT key, value FROM meta WHERE generation = %s", (self.gens[0],)))

    def meta_by_generation(self) -> dict[int, dict[str, Any]]:
        out: dict[int, dict[str, Any]] = {g: {} for g in self.gens}
        for gen, key, value in self._rows("SELECT generation, key, value FROM meta WHERE generation = ANY(%s)",
                                          (self.gens,)):
            out[gen][key] = value
        return out

    def set_meta(self, key: str, value: Any) -> None:
        from psycopg.types.json import Jsonb

        self._exec("INSERT INTO meta(generation, key, value) VALUES (%s, %s, %s) "
                   "ON CONFLICT (generation, key) DO UPDATE SET value = EXCLUDED.value",
                   (self.generation, key, Jsonb(value)))

    # -- writes (one transaction until commit) -----------------------------------------------------

    def file_states(self) -> dict[str, tuple[str, float, int]]:
        return {p: (h, m, s) for p, h, m, s in
                self._rows("SELECT path, hash, mtime, size FROM files WHERE generation = %s", (self.generation,))}

    def stored_vectors(self, paths: Iterable[str]) -> list[tuple[Chunk, bytes]]:
        rows = self._rows(
            "SELECT path, start_line, end_line, content, language, content_type, symbol, symbol_type, embedding "
            "FROM chunks WHERE generation = %s AND path = ANY(%s) AND embedding IS NOT NULL",
            (self.generation, list(paths)),
        )
        return [(Chunk(*r[:8]), np.asarray(r[8].to_numpy(), dtype=np.float32).tobytes()) for r in rows]

    def touch_file(self, path: str, mtime: float) -> None:
        self._exec("UPDATE files SET mtime = %s WHERE generation = %s AND path = %s", (mtime, self.generation, path))

    def delete_files(self, paths: Iterable[str]) -> None:
        paths = list(paths)
        if paths:
            gone = self._rows("DELETE FROM postings p USING chunks c WHERE c.generation = %s AND c.path = ANY(%s) "
                              "AND p.generation = c.generation AND p.chunk = c.id RETURNING p.term",
                              (self.generation, paths))
            self._df.subtract(term for (term,) in gone)
            for table in ("chunks", "files", "file_vectors", *GRAPH_TABLES):
                self._exec(f"DELETE FROM {table} WHERE generation = %s AND path = ANY(%s)", (self.generation, paths))

    def set_reference_length(self, chunks: Sequence[Chunk]) -> None:
        """A full rebuild's reference length (the average of `chunks`), fixed before its postings are written.

        Impacts are computed against it for the generation's life; incremental runs keep it, and the
        search's bound allows for the drift of the true average since."""
        lengths = [chunk_length(c) for c in chunks]
        self._reference = max(sum(lengths) / len(lengths), 1e-9) if lengths else 1.0

    def _reference_length(self, chunks: Sequence[Chunk]) -> float:
        if self._reference is None:  # an incremental run: the generation's own; a new one: this first file's
            bm25 = self.meta_items().get("bm25") or {}
            reference = bm25.get("reference_length") or bm25.get("average_length")
            if not reference:
                self.set_reference_length(chunks)
            else:
                self._reference = float(reference)
        assert self._reference is not None
        return self._reference

    def put_file(
        self, record: FileRecord, chunks: Sequence[Chunk], vectors: np.ndarray | None,
        features: Sequence[tuple[str, int]] | None = None,
    ) -> None:
        """Replace one file's chunks (and vectors, content features and postings), ids in insertion order
        like SQLite's rowids (BM25's ties go to the lower id in both stores)."""
        gen = self.generation
        self.delete_files([record.path])
        self._exec("INSERT INTO files(generation, path, hash, mtime, size, language, chunks, redactions) "
                   "VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                   (gen, record.path, record.hash, record.mtime, record.size, record.language, len(chunks),
                    record.redactions))
        if not chunks:
            return
        reference = self._reference_length(chunks)
        ids = [r[0] for r in self._rows("SELECT nextval(pg_get_serial_sequence('chunks', 'id')) "
                                         "FROM generate_series(1, %s) ORDER BY 1", (len(chunks),))]
        rows, postings = [], []
        for i, (cid, chunk) in enumerate(zip(ids, chunks, strict=True)):
            name_words = fts_name(chunk).split()
            body_words = index_words(chunk.content)
            length = len(name_words) + len(body_words)
            counts = term_counts(name_words, body_words)
            self._df.update(counts.keys())
            postings.extend((gen, cid, term, tf, tf_share(tf, length, reference)) for term, tf in counts.items())
            vector = vectors[i].astype(np.float32) if vectors is not None else None
            digest, traits = features[i] if features is not None else (None, None)
            rows.append((cid, gen, chunk.path, chunk.start_line, chunk.end_line, chunk.symbol, chunk.symbol_type,
                         chunk.language, chunk.content_type, chunk.content, symbol_name(chunk.symbol), digest, traits,
                         length, None if vector is None else len(vector), vector))
        with self.conn.cursor() as cur:  # COPY: several times faster than one INSERT per row
            with cur.copy("COPY chunks(id, generation, path, start_line, end_line, symbol, symbol_type, language, "
                          "content_type, content, name, digest, traits, length, dims, embedding) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            with cur.copy("COPY postings(generation, chunk, term, tf, impact) FROM STDIN") as copy:
                for posting in postings:
                    copy.write_row(posting)

    def put_graph(self, path: str, graph: FileGraph | None) -> None:
        """One file's code graph, beside its chunks and in the same transaction (after `put_file`)."""
        if graph is None:
            return
        import json

        gen = self.generation
        with self.conn.cursor() as cur:
            with cur.copy(f"COPY graph_defs(generation, {GRAPH_DEF_COLUMNS}) FROM STDIN") as copy:
                for d in graph.defs:
                    copy.write_row((gen, path, d.qname, d.name, d.kind, d.start_line, d.end_line, d.line, d.parent,
                                    json.dumps([list(b) for b in d.bases]), d.signature, d.doc))
            with cur.copy(f"COPY graph_refs(generation, {GRAPH_REF_COLUMNS}) FROM STDIN") as copy:
                for r in graph.refs:
                    copy.write_row((gen, path, r.line, r.name, r.kind, r.scope, r.module, r.target, int(r.member)))
            with cur.copy("COPY graph_imports(generation, path, local, module, name, line) FROM STDIN") as copy:
                for i in graph.imports:
                    copy.write_row((gen, path, i.local, i.module, i.name, i.line))

    def finish(self, dims: int) -> None:
        """What a commit derives: per-file centroids (the file-level vector signal), the document frequency
        of each word the run touched, and BM25's corpus stats."""
        gen = self.generation
        self._exec("DELETE FROM file_vectors WHERE generation = %s", (gen,))
        self._exec("INSERT INTO file_vectors(generation, path, centroid) SELECT generation, path, avg(embedding) "
                   "FROM chunks WHERE generation = %s AND dims = %s GROUP BY generation, path", (gen, dims))
        delta = {term: n for term, n in self._df.items() if n}
        if delta:
            self._exec("INSERT INTO terms(generation, term, df) SELECT %s, t, d FROM unnest(%s::text[], %s::int[]) "
                       "AS x(t, d) ON CONFLICT (generation, term) DO UPDATE SET df = terms.df + EXCLUDED.df",
                       (gen, list(delta), list(delta.values())))
            self._exec("DELETE FROM terms WHERE generation = %s AND term = ANY(%s) AND df <= 0", (gen, list(delta)))
        self._df.clear()
        count, tokens, vectors = self._rows(
            "SELECT count(*), coalesce(sum(length), 0), count(*) FILTER (WHERE dims = %s) FROM chunks "
            "WHERE generation = %s", (dims, gen))[0]
        self.set_meta("vectors", {"dims": dims, "count": int(vectors)})  # what a search reads, not counts
        reference = self._reference_length([])
        self.set_meta("bm25", {"chunks": int(count), "tokens": int(tokens),
                               "average_length": float(tokens) / count if count else 0.0,
                               "reference_length": reference})

    def publish(self, repo: str, root: str) -> None:
        """Point the repository at this generation and drop its others (inside the run's transaction)."""
        gen = self.generation
        self._exec("INSERT INTO repos(name, root, generation, indexed_at) VALUES (%s, %s, %s, now()) "
                   "ON CONFLICT (name) DO UPDATE SET root = EXCLUDED.root, generation = EXCLUDED.generation, "
                   "indexed_at = now()", (repo, root, gen))
        old = [r[0] for r in self._rows("SELECT id FROM generations WHERE repo = %s AND id <> %s", (repo, gen))]
        if old:
            for table in ("postings", "terms", "chunks", "files", "meta", "file_vectors", *GRAPH_TABLES):
                self._exec(f"DELETE FROM {table} WHERE generation = ANY(%s)", (old,))
            self._exec("DELETE FROM generations WHERE id = ANY(%s)", (old,))

    def commit(self) -> None:
        self.conn.commit()

    def rollback(self) -> None:
        if not self.conn.closed:
            self.conn.rollback()

    # -- reads ------------------------------------------------------------------------------------

    def bm25(self, words: Sequence[str], limit: int, filters: Filters) -> list[int]:
        """Chunk ids, best first, by FTS5's bm25 formula; several repositories count as one corpus.

        One SQL pass sums each chunk's impacts over the postings of the query's *essential* words
        (all but the commonest, which can add little: MaxScore) and keeps every chunk that could
        still reach the top `limit` once the other words and the drift of the average length since
        the impacts were written are allowed for. Those few are then scored exactly over every word,
        in FTS5's order of operations, so the answer is FTS5's, not an approximation.
        """
        if not words or limit <= 0 or not self.gens:
            return []
        terms = [lexeme(w) for w in words]  # one entry per query word: FTS5 counts a repeated one again
        stats = self._bm25_stats(list(dict.fromkeys(terms)))
        if stats is None:
            return []
        chunks, average, references, df = stats
        idfs = {t: idf(chunks, sum(df[t].values())) for t in dict.fromkeys(terms) if df.get(t)}
        if not idfs:
            return []
        weight = {t: idfs[t] * terms.count(t) for t in idfs}
        # exact share / impact lies in [low, high] (see tf_share: the bound of a changed average length)
        low = min(min(1.0, average / r) for r in references.values())
        high = max(max(1.0, average / r) for r in references.values())
        # MaxScore's split: the words that can add least stay out of the pass (they widen the
        # candidates by what they can add at most, and break ties): words in over half the chunks
        # (FTS5 floors their IDF), then the next weakest while together they can add at most MINOR
        # of a lower bound of the cut (the `limit`-th best chunk of the strongest word alone)
        ceiling = {t: weight[t] * (K1 + 1.0) for t in weight}
        essential, slack = sorted(weight, key=lambda t: (ceiling[t], t)), 0.0
        while len(essential) > 1 and idfs[essential[0]] <= MIN_IDF:
            slack += ceiling[essential.pop(0)]
        if len(essential) > 1:
            strongest = essential[-1]
            floor = self._kth_impact(strongest, limit, filters) * weight[strongest] * low
            while len(essential) > 1 and slack + ceiling[essential[0]] <= MINOR * floor:
                slack += ceiling[essential.pop(0)]
        if len(weight) == 1 and low == high == 1.0:  # one word, impacts exact: the list's order is the answer
            return self._top_of_list(terms[0], limit, filters)
        found, cut = self._candidates(essential, weight, limit, low, high, filters, slack)
        if slack and (cut is None or cut * low <= slack):  # a chunk without an essential word might place
            found, _ = self._candidates(list(weight), weight, limit, low, high, filters, 0.0)
        scores = self._exact_scores(found, terms, idfs, average)
        ranked = sorted(scores.items(), key=lambda item: (-item[1], item[0]))
        return [cid for cid, _ in ranked[:limit]]

    def _kth_impact(self, term: str, limit: int, filters: Filters) -> float:
        """The `limit`-th best impact of one word over the generations (0 when fewer chunks hold it)."""
        where, args = _where(filters)
        join = f"JOIN chunks c ON c.id = p.chunk AND {where} " if filters.active else ""
        rows = self._rows(
            "SELECT x.impact FROM unnest(%s::bigint[]) AS g(gen) CROSS JOIN LATERAL (SELECT p.impact "
            f"FROM postings p {join}WHERE p.generation = g.gen AND p.term = %s ORDER BY p.impact DESC LIMIT %s) x "
            "ORDER BY 1 DESC LIMIT 1 OFFSET %s", (self.gens, *args, term, limit, limit - 1))
        return float(rows[0][0]) if rows else 0.0

    def _top_of_list(self, term: str, limit: int, filters: Filters) -> list[int]:
        where, args = _where(filters)
        join = f"JOIN chunks c ON c.id = p.chunk AND {where} " if filters.active else ""
        return [r[0] for r in self._rows(
            "SELECT x.chunk FROM unnest(%s::bigint[]) AS g(gen) CROSS JOIN LATERAL (SELECT p.chunk, p.impact "
            f"FROM postings p {join}WHERE p.generation = g.gen AND p.term = %s ORDER BY p.impact DESC, p.chunk "
            "LIMIT %s) x ORDER BY x.impact DESC, x.chunk LIMIT %s", (self.gens, *args, term, limit, limit))]

    def _candidates(self, words: list[str], weight: dict[str, float], limit: int, low: float, high: float,
                    filters: Filters, slack: float) -> tuple[list[int], float | None]:
        """Every chunk whose weighted impact sum over `words`, widened by [low, high] and `slack` (what
        the other words may add), could reach the `limit`-th best, and that sum of the `limit`-th (None
        when fewer hold a word); read from the postings index alone."""
        where, args = _where(filters)
        join = f"JOIN chunks c ON c.id = p.chunk AND {where} " if filters.active else ""
        if len(words) == 1:  # one list: its index order is the order; read the top and its ties only
            rows = self._rows(
                "WITH cut AS (SELECT x.impact AS s FROM unnest(%s::bigint[]) AS g(gen) CROSS JOIN LATERAL "
                f"(SELECT p.impact FROM postings p {join}WHERE p.generation = g.gen AND p.term = %s "
                "ORDER BY p.impact DESC LIMIT %s) x ORDER BY 1 DESC LIMIT 1 OFFSET %s) "
                f"SELECT p.chunk, (SELECT s FROM cut) FROM postings p {join}WHERE p.generation = ANY(%s) "
                "AND p.term = %s AND p.impact >= coalesce((SELECT s FROM cut) * %s - %s, '-infinity')",
                (self.gens, *args, words[0], limit, limit - 1, *args, self.gens, words[0], low / high * (1 - TIE),
                 slack / (weight[words[0]] * high)))
            cut = rows[0][1] if rows else None
            return [r[0] for r in rows], (None if cut is None else cut * weight[words[0]])
        weights = " ".join("WHEN %s THEN %s::float8" for _ in words)
        agg = (f"SELECT p.chunk, sum(p.impact * CASE p.term {weights} END) AS s FROM postings p {join}"
               "WHERE p.generation = ANY(%s) AND p.term = ANY(%s) GROUP BY p.chunk")
        agg_args = [*(x for t in words for x in (t, weight[t])), *args, self.gens, words]
        # usually the top 2 x limit hold every chunk that can place: one top-N sort, nothing kept
        top = self._rows(f"{agg} ORDER BY s DESC LIMIT %s", (*agg_args, 2 * limit))
        cut = top[limit - 1][1] if len(top) >= limit else None
        if cut is None or len(top) < 2 * limit or top[-1][1] * high + slack < cut * low * (1 - TIE):
            return [c for c, s in top if cut is None or s * high + slack >= cut * low * (1 - TIE)], cut
        rows = self._rows(  # ties (or a drifted length) reach further down: all that can place
            f"WITH agg AS MATERIALIZED ({agg}), cut AS (SELECT s FROM agg ORDER BY s DESC LIMIT 1 OFFSET %s) "
            "SELECT chunk, (SELECT s FROM cut) FROM agg WHERE s * %s + %s >= (SELECT s * %s FROM cut)",
            (*agg_args, limit - 1, high, slack, low * (1 - TIE)))
        return [r[0] for r in rows], (rows[0][1] if rows else None)

    def _bm25_stats(
        self, terms: list[str]
    ) -> tuple[int, float, dict[int, float], dict[str, dict[int, int]]] | None:
        """(chunks, average length, each generation's reference length, term -> generation -> df)."""
        rows = self._rows("SELECT generation, value FROM meta WHERE key = 'bm25' AND generation = ANY(%s)",
                          (self.gens,))
        chunks = sum(int(v.get("chunks", 0)) for _, v in rows)
        if not chunks:
            return None
        tokens = sum(v.get("tokens", v.get("chunks", 0) * v.get("average_length", 0.0)) for _, v in rows)
        references = {g: float(v.get("reference_length") or v.get("average_length") or 1.0) for g, v in rows}
        df: dict[str, dict[int, int]] = {}
        for gen, term, n in self._rows("SELECT generation, term, df FROM terms WHERE generation = ANY(%s) "
                                       "AND term = ANY(%s)", (self.gens, terms)):
            df.setdefault(term, {})[gen] = n
        return chunks, max(tokens / chunks, 1e-9), references, df

    def _exact_scores(self, ids: Sequence[int], terms: list[str], idfs: dict[str, float],
                      average: float) -> dict[int, float]:
        """Each chunk's BM25 over every query word, summed in query order as FTS5 does."""
        if not ids:
            return {}
        tf: dict[int, dict[str, int]] = {}
        length: dict[int, int] = {}
        for cid, term, n, size in self._rows(
                "SELECT p.chunk, p.term, p.tf, c.length FROM postings p JOIN chunks c ON c.id = p.chunk "
                "WHERE p.generation = ANY(%s) AND p.chunk = ANY(%s) AND p.term = ANY(%s)",
                (self.gens, list(ids), list(idfs))):
            tf.setdefault(cid, {})[term] = n
            length[cid] = size
        out = {}
        for cid, counts in tf.items():
            score = 0.0
            for t in terms:
                if t in counts:
                    score += idfs[t] * tf_share(counts[t], length[cid], average)
            out[cid] = score
        return out

    def by_name(self, names: Sequence[str], limit: int, filters: Filters) -> list[tuple[int, str, str, str | None]]:
        if not names:
            return []
        where, args = _where(filters)
        return self._rows(  # type: ignore[return-value]
            "SELECT c.id, c.path, c.symbol, c.symbol_type FROM chunks c WHERE c.generation = ANY(%s) "
            f"AND c.name = ANY(%s) AND {where} ORDER BY c.path, c.start_line, c.id LIMIT %s",
            (self.gens, list(names), *args, limit),
        )

    def filtered_ids(self, filters: Filters) -> np.ndarray:
        where, args = _where(filters)
        rows = self._rows(f"SELECT c.id FROM chunks c WHERE c.generation = ANY(%s) AND {where}", (self.gens, *args))
        return np.fromiter((r[0] for r in rows), np.int64, count=len(rows))

    def chunks_with_features(self, ids: Sequence[int]) -> dict[int, tuple[Chunk, str | None, int | None]]:
        if not ids:
            return {}
        rows = self._rows(
            "SELECT id, path, start_line, end_line, content, language, content_type, symbol, symbol_type, digest, "
            "traits FROM chunks WHERE id = ANY(%s)", (list(ids),))
        return {r[0]: (Chunk(*r[1:9]), r[9], r[10]) for r in rows}

    def repo_of(self, ids: Sequence[int]) -> dict[int, str]:
        """The repository of each chunk id."""
        rows = self._rows("SELECT id, generation FROM chunks WHERE id = ANY(%s)", (list(ids),))
        return {cid: self.generations[gen] for cid, gen in rows}

    def counts(self) -> dict[str, int]:
        files = self._rows("SELECT count(*) FROM files WHERE generation = ANY(%s)", (self.gens,))[0][0]
        chunks, vectors = self._rows("SELECT count(*), count(embedding) FROM chunks WHERE generation = ANY(%s)",
                                     (self.gens,))[0]
        return {"files": files, "chunks": chunks, "vectors": vectors}

    def redactions(self) -> int:
        return int(self._rows("SELECT coalesce(sum(redactions), 0) FROM files WHERE generation = ANY(%s)",
                              (self.gens,))[0][0])

    def languages(self) -> dict[str, int]:
        return dict(self._rows("SELECT language, count(*) FROM files WHERE generation = ANY(%s) GROUP BY language "
                               "ORDER BY 2 DESC", (self.gens,)))

    def file_stats(self, paths: Iterable[str] | None = None) -> dict[str, tuple[int, float]]:
        if paths is None:
            rows = self._rows("SELECT path, size, mtime FROM files WHERE generation = ANY(%s)", (self.gens,))
        else:
            rows = self._rows("SELECT path, size, mtime FROM files WHERE generation = ANY(%s) AND path = ANY(%s)",
                              (self.gens, list(paths)))
        return {p: (s, m) for p, s, m in rows}

    def file_stats_by_repo(self, pairs: Iterable[tuple[str, str]]) -> dict[tuple[str, str], tuple[int, float]]:
        """(repo, path) -> (size, mtime) as indexed."""
        by_name = {name: gen for gen, name in self.generations.items()}
        wanted = [(by_name[r], p) for r, p in pairs if r in by_name]
        if not wanted:
            return {}
        rows = self._rows("SELECT generation, path, size, mtime FROM files WHERE (generation, path) IN "
                          "(SELECT * FROM unnest(%s::bigint[], %s::text[]))",
                          ([g for g, _ in wanted], [p for _, p in wanted]))
        return {(self.generations[g], p): (s, m) for g, p, s, m in rows}

    # -- the code graph: one repository's generation (graph.query and graph.context read it) ------

    def _graph_rows(self, sql: str, args: Sequence[Any]) -> list[tuple[Any, ...]]:
        """A graph query written with `?` marks for both stores, run on the one generation viewed."""
        return self._rows(sql.replace("?", "%s"), (self.generation, *args))

    def graph_version(self) -> object:
        """The repository's generation and last indexing time: an incremental run changes the second."""
        gen = self.generation
        return gen, self._rows("SELECT indexed_at FROM repos WHERE generation = %s", (gen,))

    def graph_defs(
        self, *, path: str | None = None, name: str | None = None, qname: str | None = None,
        parent: str | None = None, top_level: bool = False, line: int | None = None,
    ) -> list[tuple[Any, ...]]:
        where, args = graph_def_where(path, name, qname, parent, top_level, line)
        return self._graph_rows(f"SELECT {GRAPH_DEF_COLUMNS} FROM graph_defs WHERE generation = ? AND {where} "
                                "ORDER BY path, start_line, id", args)

    def graph_def_names(self) -> list[str]:
        return [r[0] for r in self._graph_rows("SELECT DISTINCT name FROM graph_defs WHERE generation = ? "
                                               "ORDER BY name", ())]

    def graph_name_count(self, name: str) -> int:
        return int(self._graph_rows("SELECT count(*) FROM graph_defs WHERE generation = ? AND name = ?", (name,))[0][0])

    def graph_refs(
        self, *, name: str | None = None, path: str | None = None, lines: tuple[int, int] | None = None,
        kind: str | None = None,
    ) -> list[tuple[Any, ...]]:
        where, args = graph_ref_where(name, path, lines, kind)
        return self._graph_rows(f"SELECT {GRAPH_REF_COLUMNS} FROM graph_refs WHERE generation = ? AND {where} "
                                "ORDER BY path, line, id", args)

    def graph_imports(self, path: str | None = None) -> list[tuple[str, str, str, str, int]]:
        where, args = ("path = ?", [path]) if path is not None else ("TRUE", [])
        return self._graph_rows(  # type: ignore[return-value]
            f"SELECT path, local, module, name, line FROM graph_imports WHERE generation = ? AND {where} ORDER BY id",
            args)

    def chunk_spans(self, path: str, start: int | None = None, end: int | None = None) -> list[tuple[Any, ...]]:
        return self._graph_rows(
            f"SELECT {CHUNK_SPAN_COLUMNS} FROM chunks WHERE generation = ? AND path = ? AND end_line >= ? "
            "AND start_line <= ? ORDER BY start_line, id",
            (path, start if start is not None else -1, end if end is not None else 1 << 62))

    def mentions(self, word: str, limit: int, content_type: str | None = None,
                 languages: Sequence[str] | None = None) -> list[tuple[Any, ...]]:
        """Chunks holding the word, best BM25 first (one word: impact order). Unlike FTS5's `body:`
        match, a word only in the chunk's name counts too; the caller checks the text."""
        where, args = mention_where(content_type, languages)
        cols = ", ".join(f"c.{c}" for c in CHUNK_SPAN_COLUMNS.split(", "))
        return self._graph_rows(
            f"SELECT {cols} FROM postings p JOIN chunks c ON c.id = p.chunk WHERE p.generation = ? AND p.term = ? "
            f"AND {where} ORDER BY p.impact DESC, p.chunk LIMIT ?", (lexeme(word), *args, limit))


class PgVectors:
    """Nearest chunks and files from pgvector, over the generations whose embedder matches the query's.

    Exact (a scan in cosine order) up to `exact_max` vectors (`store.exact_search_max`); above it
    the HNSW index of that dimension answers. `total`: the vectors of those generations, when their
    meta says (else counted here, a scan of their rows).
    """

    def __init__(self, store: PgStore, generations: list[int], dims: int, exact_max: int,
                 total: int | None = None) -> None:
        self.store = store
        self.gens = generations
        self.dims = int(dims)
        if total is None:
            total = store._rows("SELECT count(*) FROM chunks WHERE generation = ANY(%s) AND dims = %s",
                                (generations, self.dims))[0][0]
        self.approximate = total > exact_max

    def search(self, query: np.ndarray, k: int, allowed: np.ndarray | None = None) -> list[tuple[int, float]]:
        if k <= 0 or not self.gens:
            return []
        q = np.asarray(query, dtype=np.float32)
        if allowed is not None:
            rows = self.store._rows(
                "SELECT id, 1 - (embedding <=> %s) FROM chunks WHERE id = ANY(%s) AND dims = %s "
                "ORDER BY embedding <=> %s, id LIMIT %s", (q, allowed.tolist(), self.dims, q, k))
        elif self.approximate:
            d = self.dims
            with self.store.conn.transaction():
                self.store._exec(f"SET LOCAL hnsw.ef_search = {max(40, min(1000, 2 * k))}")
                rows = self.store._rows(
                    f"SELECT id, 1 - (embedding::vector({d}) <=> %s::vector({d})) FROM chunks "
                    f"WHERE dims = {d} AND generation = ANY(%s) "
                    f"ORDER BY embedding::vector({d}) <=> %s::vector({d}) LIMIT %s", (q, self.gens, q, k))
        else:
            rows = self.store._rows(
                "SELECT id, 1 - (embedding <=> %s) FROM chunks WHERE generation = ANY(%s) AND dims = %s "
                "ORDER BY embedding <=> %s, id LIMIT %s", (q, self.gens, self.dims, q, k))
        return [(int(i), float(s)) for i, s in rows]

    def file_ranks(self, query: np.ndarray, limit: int) -> dict[str, int]:
        q = np.asarray(query, dtype=np.float32)
        rows = self.store._rows("SELECT path FROM file_vectors WHERE generation = ANY(%s) "
                                "ORDER BY centroid <=> %s, path LIMIT %s", (self.gens, q, limit))
        out: dict[str, int] = {}
        for rank, (path,) in enumerate(rows, 1):
            out.setdefault(path, rank)
        return out


def repo_name(root: Path, repo: str | None) -> str:
    """The repository a project is in a shared store: `--repo`, else the name it was last indexed as from
    this folder (`.amanmcp/repo.json`), else the folder's name."""
    from amanmcp.store.layout import IndexLayout

    return valid_repo(repo or IndexLayout(root).remembered_repo() or root.resolve().name)


def valid_repo(name: str) -> str:
    """A repository name: letters, digits, `.`, `_`, `-`; refused otherwise with the rule."""
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}", name or ""):
        raise UsageError(f"repository name {name!r} is not valid: use 1-100 letters, digits, '.', '_' or '-' "
                         "(starting with a letter or digit)")
    return name
