"""The shared team store on a real PostgreSQL with pgvector (pgserver): one server per session, a
fresh database per test."""

from __future__ import annotations

import json
import shutil
import tempfile
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from amanmcp.cli import app
from amanmcp.config import Settings, load_config
from amanmcp.embed.factory import select_embedder
from amanmcp.errors import AmanError, UsageError
from amanmcp.indexer import Indexer
from amanmcp.search import NoIndexError, Searcher, SearchError
from amanmcp.store.pg import STORE_SCHEMA, PgStore
from amanmcp.team import make_indexer, make_searcher
from conftest import write_project

pgserver = pytest.importorskip("pgserver")
psycopg = pytest.importorskip("psycopg")

QUERIES = ["retry with backoff", "invoice pdf", "parseConfigFile", "database locked", "cart total", "tokenize"]
OTHER = {"lib/queue.py": "def drain_message_queue(queue):\n    \"\"\"Empty the queue, one message at a time.\"\"\"\n"
         "    while queue:\n        queue.pop()\n"}


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    folder = tempfile.mkdtemp(prefix="pg", dir="/tmp")  # short: the socket path must fit 107 bytes
    server = pgserver.get_server(folder, cleanup_mode="stop")
    yield server.get_uri()
    server.cleanup()
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def pg_url(pg_server: str) -> str:
    name = "t" + uuid.uuid4().hex[:12]
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return pg_server.replace("/postgres?", f"/{name}?", 1)


def on_store(settings: Settings, url: str) -> Settings:
    return settings.model_copy(update={"store": settings.store.model_copy(update={"url": url})})


def top(response, n: int = 5) -> list[tuple[str, int]]:
    return [(r.path, r.start_line) for r in response.results[:n]]


def rows(url: str, sql: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(sql).fetchall()


def test_same_results_as_sqlite(project: Path, settings: Settings, embedder, pg_url: str) -> None:
    Indexer(project, settings, embedder).run()
    report = make_indexer(project, on_store(settings, pg_url), embedder).run()
    assert report.full_rebuild and report.chunks_total > 0
    local = Searcher(project, settings, embedder)
    shared = make_searcher(project, on_store(settings, pg_url), embedder)
    for query in QUERIES:
        a, b = local.search(query), shared.search(query)
        assert top(a) == top(b), query
        assert b.search_quality.mode == a.search_quality.mode == "hybrid"
        assert {r.repo for r in b.results} == {"shop"} and {r.repo for r in a.results} == {None}
    approximate = settings.model_copy(update={"store": settings.store.model_copy(update={"exact_search_max": 0})})
    hnsw = make_searcher(project, on_store(approximate, pg_url), embedder)  # pgvector's HNSW index answers
    for query in QUERIES:
        assert top(hnsw.search(query), 3) == top(local.search(query), 3), query
    filtered = shared.search("retry", language="python", scope=["src"])
    assert top(filtered) == top(local.search("retry", language="python", scope=["src"]))
    assert rows(pg_url, "SELECT version FROM amanmcp_schema") == [(STORE_SCHEMA,)]
    with psycopg.connect(pg_url, autocommit=True) as conn:  # the server drops the searcher's connection
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                     "WHERE datname = current_database() AND pid <> pg_backend_pid()")
    assert top(shared.search(QUERIES[0])) == top(local.search(QUERIES[0]))  # it reconnects


def test_incremental_and_atomic_rebuild(project: Path, settings: Settings, embedder, pg_url: str,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    pg = on_store(settings, pg_url)
    make_indexer(project, pg, embedder).run()
    searcher = make_searcher(project, pg, embedder)
    before = top(searcher.search("retry with backoff"))
    chunks = rows(pg_url, "SELECT count(*) FROM chunks")[0][0]

    calls = {"n": 0}
    original = PgStore.put_file

    def failing(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError("disk gone mid-run")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(PgStore, "put_file", failing)
    with pytest.raises(OSError):
        make_indexer(project, pg, embedder).run(force=True)
    assert top(searcher.search("retry with backoff")) == before  # the old generation still answers
    assert rows(pg_url, "SELECT count(*) FROM chunks")[0][0] == chunks
    assert rows(pg_url, "SELECT count(*) FROM generations")[0][0] == 1  # nothing of the failed run is left

    monkeypatch.setattr(PgStore, "put_file", original)
    (project / "src/payments/retry.py").write_text("def exponential_jitter_sleep():\n    return 1\n")

    def broken_finish(self, dims):
        raise OSError("connection lost after the file was written")

    with monkeypatch.context() as patch:  # an incremental run that fails after writing changes nothing either
        patch.setattr(PgStore, "finish", broken_finish)
        with pytest.raises(OSError):
            make_indexer(project, pg, embedder).run()
    assert "exponential_jitter_sleep" not in searcher.search("exponential_jitter_sleep").results[0].content
    report = make_indexer(project, pg, embedder).run()
    assert not report.full_rebuild and report.files_changed == 1
    hit = searcher.search("exponential_jitter_sleep").results[0]
    assert (hit.path, hit.repo) == ("src/payments/retry.py", "shop") and "exponential_jitter_sleep" in hit.content
    report = make_indexer(project, pg, embedder).run(force=True)
    assert report.full_rebuild
    assert rows(pg_url, "SELECT count(*) FROM generations")[0][0] == 1  # the old generation is gone


def test_repositories_alone_and_together(tmp_path: Path, embedder, pg_url: str) -> None:
    roots = {}
    gamma = {"lib/queue.py": OTHER["lib/queue.py"].replace("queue.pop()", "queue.popleft()")}
    for name, files in (("alpha", None), ("beta", OTHER), ("gamma", gamma)):
        roots[name] = write_project(tmp_path / name, files) if files else write_project(tmp_path / name)
    settings = on_store(load_config(roots["alpha"], env={}).settings, pg_url)
    errors: list[BaseException] = []

    def index(name: str) -> None:
        try:
            make_indexer(roots[name], settings, embedder).run()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=index, args=(name,)) for name in roots]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert rows(pg_url, "SELECT name FROM repos ORDER BY name") == [("alpha",), ("beta",), ("gamma",)]

    alone = make_searcher(roots["alpha"], settings, embedder).search("drain message queue")
    assert {r.repo for r in alone.results} == {"alpha"}
    assert all(r.path != "lib/queue.py" for r in alone.results)
    both = make_searcher(roots["alpha"], settings, embedder, repos=["alpha", "beta"]).search("drain message queue")
    assert (both.results[0].repo, both.results[0].path) == ("beta", "lib/queue.py")
    assert {r.repo for r in both.results} == {"alpha", "beta"}
    every = make_searcher(roots["alpha"], settings, embedder, all_repos=True).search("drain_message_queue")
    assert {r.repo for r in every.results[:2]} == {"beta", "gamma"}
    with pytest.raises(SearchError, match=r"delta.*alpha, beta, gamma"):
        make_searcher(roots["alpha"], settings, embedder, repos=["delta"]).search("queue")

    result = CliRunner().invoke(app, ["search", "drain queue", "--path", str(roots["beta"]), "--store", pg_url,
                                      "--repo", "alpha", "--repo", "beta", "--format", "json"])
    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout)
    assert answer["results"][0]["repo"] == "beta" and answer["search_quality"]["bm25_only_repos"] is None


def test_other_embedder_repo_is_bm25_only(tmp_path: Path, embedder, pg_url: str) -> None:
    mine, theirs = write_project(tmp_path / "mine"), write_project(tmp_path / "theirs", OTHER)
    settings = on_store(load_config(mine, env={}).settings, pg_url)
    make_indexer(mine, settings, embedder).run()
    hashed = settings.model_copy(update={"static": settings.static.model_copy(update={"model": "hashed"})})
    make_indexer(theirs, settings, select_embedder(hashed, "static").embedder).run()
    answer = make_searcher(mine, settings, embedder, all_repos=True).search("drain message queue", explain=True)
    quality = answer.search_quality
    assert quality.mode == "hybrid" and quality.degraded and quality.bm25_only_repos == ["theirs"]
    assert "theirs" in quality.reason
    found = [r for r in answer.results if r.repo == "theirs"]
    assert [(r.path, r.explain.bm25_rank, r.explain.vector_rank) for r in found] == [("lib/queue.py", 1, None)]



def test_sqlite_refuses_repo_options(project: Path, settings: Settings, embedder) -> None:
    with pytest.raises(SearchError, match="postgresql://"):
        make_searcher(project, settings, embedder, repos=["x"])


def test_clear_errors_and_nothing_written(project: Path, settings: Settings, embedder, pg_server: str,
                                          pg_url: str) -> None:
    with pytest.raises(UsageError, match="not a PostgreSQL URL"):  # never silently the project's own index
        make_searcher(project, on_store(settings, "mysql://db/code"), embedder)
    with pytest.raises(UsageError, match="malformed"):
        make_indexer(project, on_store(settings, "postgresql://u:p@host:notaport/db"), embedder)
    with pytest.raises(AmanError, match="user and password"):
        make_indexer(project, on_store(settings, pg_url.replace("postgres:@", "nobody:secret@")), embedder)
    missing = pg_server.replace("/postgres?", "/no_such_db?", 1)
    with pytest.raises(AmanError, match="create the database"):
        make_indexer(project, on_store(settings, missing), embedder)

    with psycopg.connect(pg_url, autocommit=True) as conn:  # a role that may not create the extension
        conn.execute("CREATE ROLE weak LOGIN")
        conn.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
    weak = pg_url.replace("postgres:@", "weak:@")
    with pytest.raises(AmanError, match="nothing was written"):
        make_indexer(project, on_store(settings, weak), embedder)
    assert rows(pg_url, "SELECT to_regclass('amanmcp_schema')") == [(None,)]

    pg = on_store(settings, pg_url)
    with pytest.raises(NoIndexError, match="no repositories yet"):  # an empty store: index first
        make_searcher(project, pg, embedder).search("retry")
    make_indexer(project, pg, embedder).run()
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("UPDATE amanmcp_schema SET version = %s", (STORE_SCHEMA + 1,))
    with pytest.raises(AmanError, match=r"newer amanmcp.*upgrade"):
        make_indexer(project, pg, embedder).run(force=True)
    assert rows(pg_url, "SELECT count(*) FROM generations")[0][0] == 1


def test_both_stores_fill_the_seam() -> None:
    import inspect

    from amanmcp.store import IndexStore
    from amanmcp.store.base import GraphStore, Store

    wanted = [(proto, n) for proto in (Store, GraphStore) for n, v in vars(proto).items()
              if inspect.isfunction(v) and not n.startswith("_")]
    assert len(wanted) > 20 and (GraphStore, "graph_refs") in wanted
    for impl in (IndexStore, PgStore):
        for proto, name in wanted:
            params = list(inspect.signature(getattr(proto, name)).parameters)
            assert list(inspect.signature(getattr(impl, name)).parameters) == params, (impl.__name__, name)


def test_mcp_search_repos_and_index_status(tmp_path: Path, embedder, pg_url: str) -> None:
    import anyio

    from test_mcp_server import call, connect

    shop, other = write_project(tmp_path / "shop"), write_project(tmp_path / "other", OTHER)
    (shop / ".amanmcp.yaml").write_text(f"store:\n  url: '{pg_url}'\n")
    settings = load_config(shop, env={}).settings
    for root in (shop, other):
        make_indexer(root, settings, embedder).run()
    from amanmcp.status import index_status

    status = index_status(shop, settings)
    assert status.indexed and status.vector_index == "pgvector" and status.chunks > 0
    assert [(r.name, r.embedder_matches) for r in status.repos or []] == [("other", True), ("shop", True)]

    async def scenario() -> None:
        async with connect(shop) as client:
            mine = await call(client, "search", query="drain message queue", limit=5)
            assert {r["repo"] for r in mine["results"]} == {"shop"}
            both = await call(client, "search", query="drain message queue", limit=5, repos=["shop", "other"])
            assert (both["results"][0]["repo"], both["results"][0]["path"]) == ("other", "lib/queue.py")
            every = await call(client, "search", query="drain message queue", limit=5, repos=["*"])
            assert every["results"][0]["repo"] == "other"
            listed = await call(client, "index_status")
            assert [r["name"] for r in listed["repos"]] == ["other", "shop"]
            bad = await client.call_tool("search", {"query": "queue", "repos": ["nowhere"]})
            assert bad.is_error and "nowhere" in bad.content[0].text  # type: ignore[union-attr]
            graph = await call(client, "graph_query", query="Invoice", mode="explain_symbol")  # from the store
            assert graph["resolution"] == "resolved" and graph["subject"]["path"].endswith(".py")
            pack = await call(client, "expand_context", seed="render_invoice_pdf", max_tokens=2000)
            assert pack["items"][0]["role"] == "implementation"

    anyio.run(scenario)


def test_config_show_hides_the_store_password(tmp_path: Path) -> None:
    loaded = load_config(tmp_path, env={"AMANMCP_STORE_URL": "postgresql://team:s3cret@db:5432/code"})
    assert loaded.settings.store.url == "postgresql://team:s3cret@db:5432/code"
    shown = {key: (value, source) for key, value, source in loaded.items()}
    assert shown["store.url"] == ("postgresql://team:***@db:5432/code", "AMANMCP_STORE_URL")


VOCAB = ("request response session cookie token retry backoff parse config cache lock queue worker thread pool "
         "socket stream buffer encode decode schema model field query index search rank score vector").split()


def write_words_project(root: Path, files: int = 30, per_file: int = 12, seed: int = 3) -> Path:
    """Many short functions over a small Zipf-like vocabulary: long posting lists, many ties."""
    import random

    rng = random.Random(seed)
    weights = [1 / (i + 1) for i in range(len(VOCAB))]
    for f in range(files):
        lines = []
        for i in range(per_file):
            a, b = rng.choices(VOCAB, weights, k=2)
            body = " ".join(rng.choices(VOCAB, weights, k=rng.randint(3, 30)))
            lines += [f"def {a}{b.title()}_{f}_{i}(value):", f'    """{body}."""', f"    return {a}_value(value)",
                      "", ""]
        target = root / f"pkg{f % 3}" / f"mod{f}.py"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text("\n".join(lines))
    return root


WORD_QUERIES = ["request", "retry backoff", "session cookie token", "request response", "vector score rank",
                "queue worker thread pool socket", "model", "parse config cache", "lock lock", "requestSession",
                "vector request", "rank request response", "index token"]


def bm25_keys(store, words: list[str], limit: int, filters) -> list[tuple[str, int]]:
    ids = store.bm25(words, limit, filters)
    rows = store.chunks_with_features(ids)
    return [(rows[i][0].path, rows[i][0].start_line) for i in ids]


def test_bm25_postings_rank_as_fts5(tmp_path: Path, pg_url: str) -> None:
    """BM25 over postings gives FTS5's order (ties included) for rare, common and repeated words, filtered,
    and after incremental runs moved the average length away from the reference one."""
    from amanmcp.store import IndexLayout, IndexStore
    from amanmcp.store.db import Filters
    from amanmcp.tokens import query_words

    root = write_words_project(tmp_path / "words")
    settings = load_config(root, env={}).settings
    settings = settings.model_copy(update={"static": settings.static.model_copy(update={"model": "hashed"})})
    hashed = select_embedder(settings, "static").embedder
    pg = on_store(settings, pg_url)

    def compare() -> None:
        local = IndexStore(IndexLayout(root).current(), readonly=True)  # type: ignore[arg-type]
        searcher = make_searcher(root, pg, hashed)
        shared = searcher.store()
        try:
            for query in WORD_QUERIES:
                words = query_words(query)
                for limit, filters in ((1, Filters()), (7, Filters()), (40, Filters()),
                                       (10, Filters(scope=("pkg1",))), (500, Filters())):
                    assert bm25_keys(shared, words, limit, filters) == bm25_keys(local, words, limit, filters), \
                        (query, limit, filters)
        finally:
            local.close()
            searcher._close_store()

    Indexer(root, settings, hashed).run()
    make_indexer(root, pg, hashed).run()
    compare()

    write_words_project(root, files=4, per_file=40, seed=9)  # longer files replace four: the average moves
    (root / "pkg2" / "mod2.py").unlink()
    Indexer(root, settings, hashed).run()
    report = make_indexer(root, pg, hashed).run()
    assert not report.full_rebuild and report.files_removed == 1
    bm25 = rows(pg_url, "SELECT value FROM meta WHERE key = 'bm25'")[0][0]
    assert bm25["reference_length"] != bm25["average_length"]  # the bound allows for the drift
    compare()
    # the postings and document frequencies follow every change, in the same transaction
    assert rows(pg_url, "SELECT count(*) FROM postings p LEFT JOIN chunks c ON c.id = p.chunk WHERE c.id IS NULL") \
        == [(0,)]
    assert rows(pg_url, "SELECT count(*) FROM terms t FULL JOIN (SELECT generation, term, count(*) AS n FROM postings "
                        "GROUP BY 1, 2) p USING (generation, term) WHERE t.df IS DISTINCT FROM p.n") == [(0,)]


def test_schema_1_store_is_migrated(project: Path, settings: Settings, embedder, pg_url: str) -> None:
    """A store written by schema 1 (BM25 over a tsvector column, no graph) gets postings from its tsvectors, in
    place, and the graph tables (the next run rebuilds a repository to fill them)."""
    pg = on_store(settings, pg_url)
    make_indexer(project, pg, embedder).run()
    searcher = make_searcher(project, pg, embedder)
    before = {q: top(searcher.search(q)) for q in QUERIES}
    searcher._close_store()
    with psycopg.connect(pg_url) as conn:  # back to schema 1: each word's weighted count as tsvector positions
        conn.execute("ALTER TABLE chunks ADD COLUMN words tsvector")
        conn.execute("UPDATE chunks c SET words = coalesce((SELECT string_agg(format('%L', p.term) || ':' || "
                     "(SELECT string_agg(i::text, ',') FROM generate_series(1, p.tf) i), ' ') "
                     "FROM postings p WHERE p.chunk = c.id)::tsvector, '')")
        conn.execute("CREATE INDEX chunks_words ON chunks USING gin(words)")
        conn.execute("UPDATE meta SET value = value - 'reference_length' - 'tokens' WHERE key = 'bm25'")
        conn.execute("DROP TABLE postings, terms, graph_defs, graph_refs, graph_imports")
        conn.execute("DELETE FROM meta WHERE key = 'graph'")
        conn.execute("UPDATE amanmcp_schema SET version = 1")
    after = make_searcher(project, pg, embedder)
    assert {q: top(after.search(q)) for q in QUERIES} == before
    assert rows(pg_url, "SELECT version FROM amanmcp_schema") == [(STORE_SCHEMA,)]
    assert rows(pg_url, "SELECT count(*) FROM information_schema.columns WHERE column_name = 'words'") == [(0,)]
    report = make_indexer(project, pg, embedder).run()  # the graph is built once, then runs are incremental
    assert report.full_rebuild and "code graph" in report.reason
    assert not make_indexer(project, pg, embedder).run().full_rebuild
    assert {q: top(after.search(q)) for q in QUERIES} == before


GRAPH_QUESTIONS = [("url_for", "find_references"), ("add_url_rule", "find_references"), ("Flsk", "find_references"),
                   ("Scaffold.route", "callers"), ("Scaffold.route", "callees"), ("url_for", "callers"),
                   ("Flask", "explain_symbol"), ("pkg/helpers.py", "impact_analysis"), ("pkg/app.py:10", "callees"),
                   ("pkg/app.py:add_url_rule", "find_references"), ("Flask.run", "callers")]


def graph_answers(service) -> list[dict]:
    out = []
    for query, mode in GRAPH_QUESTIONS:
        answer = service.query(query, mode).model_dump(mode="json")
        answer.pop("took_ms")
        out.append(answer)
    for seed, budget in (("url_for", 4000), ("url_for", 500), ("Scaffold", 3000), ("pkg/app.py", 3000)):
        pack = service.context(seed, max_tokens=budget).model_dump(mode="json")
        pack.pop("took_ms")
        out.append(pack)
    return out


def test_graph_from_the_shared_store(tmp_path: Path, embedder, pg_url: str) -> None:
    """graph_query and expand_context answer from a repository of the shared store as from SQLite."""
    from amanmcp.graph.service import GraphService
    from test_graph import PROJECT, write

    root = tmp_path / "demo"
    write(root, PROJECT)
    settings = load_config(root, env={}).settings
    Indexer(root, settings, embedder).run()
    make_indexer(root, on_store(settings, pg_url), embedder).run()
    local, shared = GraphService(root), GraphService(root, pg_url, "demo")
    expected = graph_answers(local)
    assert expected[0]["resolution"] == "resolved" and len(expected[0]["results"]) == 5
    assert graph_answers(shared) == expected

    (root / "pkg/helpers.py").write_text("from .app import Flask\n\n\ndef url_for(endpoint):\n    return endpoint\n\n\n"
                                         "def start():\n    Flask().run()\n")
    Indexer(root, settings, embedder).run()
    assert not make_indexer(root, on_store(settings, pg_url), embedder).run().full_rebuild
    callers = shared.query("Flask.run", mode="callers")  # the same service follows the incremental run
    assert [(r.path, r.start_line, r.symbol) for r in callers.results] == [("pkg/helpers.py", 9, "start")]
    assert graph_answers(shared) == graph_answers(local)
    make_indexer(root, on_store(settings, pg_url), embedder).run(force=True)  # and a new generation
    assert graph_answers(shared) == graph_answers(local)

    result = CliRunner().invoke(app, ["graph", "Scaffold.route", "--mode", "callers", "--path", str(root),
                                      "--store", pg_url, "--format", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    data.pop("took_ms")
    assert data == graph_answers(local)[3]
    missing = GraphService(root, pg_url, "elsewhere")
    with pytest.raises(AmanError, match=r"'elsewhere' is not in the store.*index --repo elsewhere"):
        missing.query("url_for")
    local.close(), shared.close(), missing.close()
    with psycopg.connect(pg_url, autocommit=True) as conn:  # a repository indexed before the store kept graphs
        conn.execute("DELETE FROM meta WHERE key = 'graph'")
    with pytest.raises(AmanError, match="no code graph"):
        GraphService(root, pg_url, "demo").query("url_for")
    report = make_indexer(root, on_store(settings, pg_url), embedder).run()
    assert report.full_rebuild and "code graph" in report.reason
    assert GraphService(root, pg_url, "demo").query("url_for").resolution == "resolved"


def test_status_and_the_remembered_repository_name(tmp_path: Path, embedder, pg_url: str) -> None:
    """`index --repo NAME` in a folder makes NAME that folder's repository for later commands without --repo."""
    root = write_project(tmp_path / "alpha")
    runner = CliRunner()
    result = runner.invoke(app, ["index", str(root), "--store", pg_url, "--repo", "svc-a", "--backend", "local"])
    assert result.exit_code == 0, result.output
    assert json.loads((root / ".amanmcp" / "repo.json").read_text()) == {"repo": "svc-a"}
    assert (root / ".amanmcp" / ".gitignore").read_text() == "*\n"  # never shows in `git status`

    found = runner.invoke(app, ["search", "retry with backoff", "--path", str(root), "--store", pg_url,
                                "--format", "json"])
    assert found.exit_code == 0, found.output
    assert {r["repo"] for r in json.loads(found.stdout)["results"]} == {"svc-a"}
    graph = runner.invoke(app, ["graph", "retry_with_backoff", "--path", str(root), "--store", pg_url,
                                "--format", "json"])
    assert graph.exit_code == 0 and json.loads(graph.stdout)["resolution"] == "resolved", graph.output

    shown = runner.invoke(app, ["status", "--path", str(root), "--store", pg_url, "--format", "json"])
    assert shown.exit_code == 0, shown.output
    info = json.loads(shown.stdout)
    assert (info["repo"], info["indexed"], info["stale_files"], info["vector_index"]) == ("svc-a", True, 0, "pgvector")
    assert info["files"] > 0 and [r["name"] for r in info["repos"]] == ["svc-a"]
    (root / "src" / "payments" / "retry.py").write_text("def changed():\n    return 1\n")
    info = json.loads(runner.invoke(app, ["status", "--path", str(root), "--store", pg_url, "-f", "json"]).stdout)
    assert info["stale_files"] == 1
    text = runner.invoke(app, ["status", "--path", str(root), "--store", pg_url])
    assert text.exit_code == 0 and "svc-a (this" in text.stdout and "stale files" in text.stdout, text.output
    other = runner.invoke(app, ["status", "--path", str(root), "--store", pg_url, "--repo", "svc-b"])
    assert other.exit_code == 1 and "not indexed yet as repository 'svc-b'" in " ".join(other.stdout.split())
    assert "svc-a" in other.stdout  # the store's repositories are listed all the same
    for command in (["status"], ["graph", "retry_with_backoff"], ["context", "retry_with_backoff"]):
        refused = runner.invoke(app, [*command, "--path", str(root), "--repo", "svc-a"])  # --repo needs a store
        assert refused.exit_code != 0 and "postgresql://" in refused.output, command
    pack = runner.invoke(app, ["context", "retry_with_backoff", "--path", str(root), "--store", pg_url, "-f", "json"])
    assert pack.exit_code == 0 and json.loads(pack.stdout)["items"][0]["role"] == "implementation", pack.output

    again = runner.invoke(app, ["index", str(root), "--store", pg_url, "--backend", "local"])  # no --repo: svc-a
    assert again.exit_code == 0, again.output
    assert rows(pg_url, "SELECT name FROM repos") == [("svc-a",)]


def test_serve_keeps_the_repository_up_to_date(project: Path, settings: Settings, embedder, pg_url: str) -> None:
    """`serve`'s writer (LiveIndex) indexes into the shared store when one is set, then follows edits there."""
    from amanmcp.embed.factory import Selection
    from amanmcp.store import IndexLayout
    from amanmcp.watch import LiveIndex
    from conftest import wait_for

    pg = on_store(settings, pg_url)
    searcher = make_searcher(project, pg, embedder)

    def found(query: str) -> list[tuple[str | None, str]]:
        try:
            return [(r.repo, r.path) for r in searcher.search(query, limit=3).results]
        except NoIndexError:
            return []

    with IndexLayout(project).write_lock():
        live = LiveIndex(project, pg, Selection(embedder, "local", "local", False, "test"), debounce_ms=300,
                         step_ms=50)
        live.start()
        try:
            wait_for(lambda: live.progress().state == "watching", what="start-up run")
            assert found("retry with backoff")[0] == ("shop", "src/payments/retry.py")
            retry = project / "src/payments/retry.py"
            retry.write_text(retry.read_text() + "\n\ndef circuit_breaker_trip(threshold):\n    return threshold > 5\n")
            (project / "web/cart.js").unlink()
            wait_for(lambda: found("circuit_breaker_trip")[:1] == [("shop", "src/payments/retry.py")], what="edit")
            wait_for(lambda: all(p != "web/cart.js" for _, p in found("addItemToCart")), what="deletion")
        finally:
            live.stop()
    assert live.failures == 0 and live.runs >= 2
    assert IndexLayout(project).current() is None  # nothing indexed beside the store
    assert rows(pg_url, "SELECT count(*) FROM generations") == [(1,)]  # incremental runs: one generation
