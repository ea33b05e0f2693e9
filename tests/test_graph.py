"""The code graph: extraction from real tree-sitter parses, resolution on a real SQLite index, the CLI."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from amanmcp.cli import app
from amanmcp.config import Settings
from amanmcp.errors import UsageError
from amanmcp.graph.extract import extract_file
from amanmcp.graph.service import GraphService
from amanmcp.indexer import Indexer


def refs(path: str, source: str) -> list[tuple[str, int, str, str | None, str | None]]:
    graph = extract_file(path, textwrap.dedent(source))
    assert graph is not None
    return [(r.name, r.line, r.kind, r.module, r.target) for r in graph.refs]


# -- extraction: pure, milliseconds -------------------------------------------------------------


def test_python_scopes_imports_self_and_locals() -> None:
    found = refs("pkg/sub/m.py", """\
        from .app import Flask as F
        import pkg.helpers as h

        class A(F):
            def f(self, app: F):
                self.g()
                app.route("/")
                h.url_for()
                g = 3
                return g

            def g(self):
                super().run()

        def use():
            a = A()
            a.f(None)
        """)
    own = "file:pkg/sub/m.py"
    assert ("Flask", 1, "import", "rel:pkg/sub/app", "Flask") in found
    assert ("g", 6, "call", own, "A.g") in found  # self.g -> the enclosing class
    assert ("route", 7, "call", "rel:pkg/sub/app", "Flask.route") in found  # annotated parameter
    assert ("url_for", 8, "call", "py:pkg.helpers", "url_for") in found
    assert ("run", 13, "call", "rel:pkg/sub/app", "Flask.run") in found  # super(): the base class
    assert ("f", 17, "call", own, "A.f") in found  # a = A(): a's attributes are A's
    assert not [r for r in found if r[0] == "g" and r[1] in (9, 10)]  # a local variable is no reference


def test_python_definitions_have_qualified_names_spans_and_docs() -> None:
    graph = extract_file("m.py", 'class K:\n    """Doc."""\n\n    @property\n    def p(self):\n        return 1\n')
    assert graph is not None
    by = {d.qname: d for d in graph.defs}
    assert by["K"].kind == "class" and by["K"].doc == "Doc." and (by["K"].start_line, by["K"].end_line) == (1, 6)
    assert by["K.p"].kind == "method" and by["K.p"].start_line == 4 and by["K.p"].line == 5
    assert by["K.p"].signature == "def p(self):"


def test_javascript_imports_exports_and_this() -> None:
    source = """\
        import def0, { a as b } from './x';
        import * as ns from '../y';
        export { q as r } from './z';
        export default foo;
        class K { f() { this.g(); ns.h(); b(); } g() {} }
        function foo() {}
        """
    graph = extract_file("src/a.js", textwrap.dedent(source))
    assert graph is not None
    imports = {(i.local, i.module, i.name) for i in graph.imports}
    assert {("def0", "rel:src/x", "default"), ("b", "rel:src/x", "a"), ("ns", "rel:y", ""),
            ("r", "rel:src/z", "q"), ("default", "file:src/a.js", "foo")} <= imports
    found = refs("src/a.js", source)
    assert ("g", 5, "call", "file:src/a.js", "K.g") in found
    assert ("h", 5, "call", "rel:y", "h") in found
    assert ("b", 5, "call", "rel:src/x", "a") in found


def test_go_packages_and_rust_uses() -> None:
    go = refs("cmd/main.go", 'package main\n\nimport "example.com/m/util"\n\nfunc main() { util.Do(); helper() }\n')
    assert ("Do", 5, "call", "go:example.com/m/util", "Do") in go
    assert ("helper", 5, "call", "dir:cmd", "helper") in go  # same package: same folder
    rust = refs("src/lib.rs", "mod net;\nuse crate::net::{Client, connect};\n\n"
                              "fn run() { connect(); Client::new(); }\n")
    assert ("connect", 4, "call", "rs:crate::net", "connect") in rust
    assert ("new", 4, "call", "rs:crate::net", "Client.new") in rust


# -- the index: real SQLite, real indexer ---------------------------------------------------------

PROJECT = {
    "pkg/__init__.py": "from .app import Flask\nfrom .helpers import url_for\n",
    "pkg/scaffold.py": '''\
        class Scaffold:
            """Common base."""

            def route(self, rule):
                """Decorate a view function."""
                def decorator(f):
                    self.add_url_rule(rule, f)
                    return f
                return decorator

            def add_url_rule(self, rule, f):
                raise NotImplementedError
        ''',
    "pkg/app.py": '''\
        from .scaffold import Scaffold
        from . import helpers


        class Flask(Scaffold):
            def add_url_rule(self, rule, f):
                helpers.url_for(rule)

            def run(self):
                self.route("/")
                url_for = 3  # a local: not the helper
                return url_for
        ''',
    "pkg/helpers.py": "def url_for(endpoint):\n    return endpoint\n",
    "tests/test_app.py": '''\
        from pkg import Flask, url_for


        def test_route():
            app = Flask()
            app.route("/x")
            url_for("a")  # url_for in a comment is not a reference
        ''',
    "README.md": "# Demo\n\nCall `url_for` to build a URL.\n\n## Details\n\n`url_for` " + "builds links. " * 300 + "\n",
}


def write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))


@pytest.fixture
def graph_project(tmp_path: Path, embedder) -> Path:
    root = tmp_path / "demo"
    write(root, PROJECT)
    Indexer(root, Settings(), embedder).run()
    return root


def locations(answer) -> set[tuple[str, int, str, str | None]]:
    return {(r.path, r.start_line, r.kind, r.confidence) for r in answer.results}


def test_find_references_through_reexports_and_scopes(graph_project: Path) -> None:
    graph = GraphService(graph_project)
    answer = graph.query("url_for")
    assert answer.resolution == "resolved" and answer.subject.path == "pkg/helpers.py"
    assert locations(answer) == {
        ("pkg/helpers.py", 1, "definition", "exact"),
        ("pkg/__init__.py", 2, "import", "exact"),
        ("pkg/app.py", 7, "call", "exact"),  # helpers.url_for: a module imported from the package
        ("tests/test_app.py", 1, "import", "exact"),  # through the package's re-export
        ("tests/test_app.py", 7, "call", "exact"),
    }  # app.py 11-12 is a local variable of the same name: not listed
    call = next(r for r in answer.results if r.path == "pkg/app.py")
    assert call.symbol == "Flask.add_url_rule" and call.content == "helpers.url_for(rule)"
    assert call.start_line == call.end_line


def test_subjects_disambiguation_and_near_misses(graph_project: Path) -> None:
    graph = GraphService(graph_project)
    ambiguous = graph.query("add_url_rule")
    assert ambiguous.resolution == "disambiguation_required" and ambiguous.results == []
    assert {(c.symbol, c.path, c.start_line) for c in ambiguous.candidates} == {
        ("Flask.add_url_rule", "pkg/app.py", 6), ("Scaffold.add_url_rule", "pkg/scaffold.py", 11)}
    missing = graph.query("Flsk")
    assert missing.resolution == "subject_not_found" and missing.results == []
    assert missing.candidates[0].symbol == "Flask"
    assert graph.query("Scaffold.add_url_rule").subject.path == "pkg/scaffold.py"
    assert graph.query("pkg/app.py:add_url_rule").subject.symbol == "Flask.add_url_rule"
    assert graph.query("pkg/app.py:10").subject.symbol == "Flask.run"
    with pytest.raises(UsageError, match="mode must be one of"):
        graph.query("Flask", mode="who_calls")
    with pytest.raises(UsageError, match="max_depth must be"):
        graph.query("Flask", mode="callers", max_depth=0)


def test_callers_callees_explain_and_impact(graph_project: Path) -> None:
    graph = GraphService(graph_project)
    callers = graph.query("Scaffold.route", mode="callers")
    assert {(r.path, r.start_line, r.symbol) for r in callers.results} == {
        ("pkg/app.py", 10, "Flask.run"),  # self.route: inherited from Scaffold
        ("tests/test_app.py", 6, "test_route"),  # app = Flask(); app.route
    }
    callees = graph.query("Scaffold.route", mode="callees")
    assert [(r.start_line, r.target) for r in callees.results] == [(7, "pkg/scaffold.py:11 Scaffold.add_url_rule")]
    deep = graph.query("url_for", mode="callers", max_depth=2)
    assert {(r.symbol, r.depth) for r in deep.results} == {("Flask.add_url_rule", 1), ("test_route", 1)}
    explained = graph.query("Flask", mode="explain_symbol")
    assert explained.details is not None
    assert [m.symbol for m in explained.details.members] == ["Flask.add_url_rule", "Flask.run"]
    assert explained.details.bases == ["Scaffold (pkg/scaffold.py:1)"] and explained.details.references == 3
    assert explained.details.tests == ["tests/test_app.py:1", "tests/test_app.py:5 test_route"]  # test links
    impact = graph.query("pkg/helpers.py", mode="impact_analysis")
    assert ("pkg/app.py", 2, "import", "exact") in locations(impact)  # from . import helpers
    assert ("tests/test_app.py", 7, "call", "exact") in locations(impact)


def test_expand_context_roles_and_budget(graph_project: Path) -> None:
    graph = GraphService(graph_project)
    pack = graph.context("url_for", max_tokens=4000)
    roles = {(i.role, i.path) for i in pack.items}
    assert ("implementation", "pkg/helpers.py") in roles
    assert ("caller", "pkg/app.py") in roles and ("test", "tests/test_app.py") in roles
    assert ("doc", "README.md") in roles
    assert pack.used_tokens <= 4000 and all(i.via[0] == "url_for" for i in pack.items)
    small = graph.context("url_for", max_tokens=500)
    assert small.used_tokens <= 500 and len(small.items) < len(pack.items) and small.omitted_items > 0
    assert graph.context("add_url_rule").resolution == "disambiguation_required"


def test_incremental_edit_updates_callers(graph_project: Path, embedder) -> None:
    graph = GraphService(graph_project)
    assert len(graph.query("Flask.run", mode="callers").results) == 0
    (graph_project / "pkg/helpers.py").write_text(
        "from .app import Flask\n\n\ndef url_for(endpoint):\n    return endpoint\n\n\n"
        "def start():\n    Flask().run()\n")
    report = Indexer(graph_project, Settings(), embedder).run()
    assert not report.full_rebuild and report.files_changed == 1
    callers = graph.query("Flask.run", mode="callers")
    assert [(r.path, r.start_line, r.symbol) for r in callers.results] == [("pkg/helpers.py", 9, "start")]
    (graph_project / "pkg/helpers.py").unlink()
    Indexer(graph_project, Settings(), embedder).run()
    assert graph.query("url_for").resolution == "subject_not_found"  # the removed file's graph went with it


def test_cli_json_is_the_service_answer(graph_project: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["graph", "Scaffold.route", "--mode", "callers", "--path", str(graph_project),
                                 "--format", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    expected = GraphService(graph_project).query("Scaffold.route", "callers").model_dump(mode="json")
    data.pop("took_ms"), expected.pop("took_ms")
    assert data == expected
    result = runner.invoke(app, ["context", "url_for", "--path", str(graph_project), "--format", "json"])
    assert result.exit_code == 0 and json.loads(result.stdout)["items"][0]["role"] == "implementation"
    result = runner.invoke(app, ["graph", "add_url_rule", "--path", str(graph_project)])
    assert result.exit_code == 1 and "Scaffold.add_url_rule" in result.stdout


def test_javascript_locals_keys_and_interface_methods_are_not_references() -> None:
    source = """\
        export function load(config) { return config; }
        function run(load) { return load(1); }
        const table = { load: 1 };
        const { load: renamed } = table;
        export interface Store { load(): void }
        """
    graph = extract_file("src/a.ts", textwrap.dedent(source))
    assert graph is not None
    assert ("Store.load", "method", 5) in {(d.qname, d.kind, d.line) for d in graph.defs}
    occurrences = [(r.name, r.line) for r in graph.refs if r.name == "load"]
    assert occurrences == []  # a parameter, its use, an object key and a destructured key


SNIPPETS = {
    "A.java": ("class A {\n  void run() { helper(); }\n  void helper() {}\n}\n", "A.helper"),
    "a.c": ("static int helper(void) { return 1; }\nint run(void) { return helper(); }\n", "helper"),
    "a.cpp": ("namespace n {\nint helper() { return 1; }\nint run() { return helper(); }\n}\n", "helper"),
    "A.cs": ("class A {\n  void Run() { Helper(); }\n  void Helper() {}\n}\n", "A.Helper"),
    "a.rb": ("class A\n  def run\n    helper\n  end\n  def helper\n  end\nend\n", "A.helper"),
    "a.php": ("<?php\nfunction helper() { return 1; }\nfunction run() { return helper(); }\n", "helper"),
    "a.kt": ("fun helper() = 1\nfun run() = helper()\n", "helper"),
    "a.swift": ("func helper() -> Int { 1 }\nfunc run() -> Int { helper() }\n", "helper"),
    "a.scala": ("object A {\n  def helper() = 1\n  def run() = helper()\n}\n", "helper"),
    "a.lua": ("local function helper() return 1 end\nfunction run() return helper() end\n", "helper"),
    "a.sh": ("helper() { echo 1; }\nrun() { helper; }\n", "helper"),
    "a.ex": ("defmodule A do\n  def helper, do: 1\n  def run, do: helper()\nend\n", "helper"),
    "a.hs": ("helper :: Int\nhelper = 1\nrun :: Int\nrun = helper\n", "helper"),
    "a.zig": ("fn helper() i32 { return 1; }\npub fn run() i32 { return helper(); }\n", "helper"),
}


@pytest.mark.parametrize("path", sorted(SNIPPETS))
def test_every_chunked_language_has_definitions_and_a_reference(path: str) -> None:
    source, defined = SNIPPETS[path]
    graph = extract_file(path, source)
    assert graph is not None
    qnames = {d.qname for d in graph.defs}
    assert any(q == defined or q.endswith("." + defined.rsplit(".", 1)[-1]) for q in qnames), qnames
    name = defined.rsplit(".", 1)[-1]
    assert any(r.name == name for r in graph.refs), graph.refs  # the call in run


def test_fit_graph_drops_results_from_the_end_and_says_so() -> None:
    from amanmcp.graph.query import GraphAnswer, GraphItem
    from amanmcp.graph.service import fit_graph

    items = [GraphItem(path=f"pkg/m{i}.py", start_line=i, end_line=i, symbol="f", symbol_type="function",
                       kind="call", confidence="exact", content="value = compute(value) + " * 4) for i in range(300)]
    answer = GraphAnswer(query="compute", mode="callers", resolution="resolved", subject=None, results=items,
                         candidates=[], warnings=[])
    fitted = fit_graph(answer, 2000)
    assert 0 < len(fitted.results) < 300 and fitted.truncated
    assert fitted.results == items[: len(fitted.results)]
    assert f"{300 - len(fitted.results)} more results left out to fit max_tokens 2000" in fitted.warnings
    assert fit_graph(answer, 200_000) is answer


def test_an_index_without_the_graph_says_how_to_get_one(graph_project: Path) -> None:
    from amanmcp.errors import AmanError
    from amanmcp.store import IndexLayout, IndexStore

    store = IndexStore(IndexLayout(graph_project).current())
    store.set_meta("schema_version", 7)
    store.commit()
    store.close()
    with pytest.raises(AmanError, match=r"older amanmcp \(schema 7, not 8\).*amanmcp index"):
        GraphService(graph_project).query("url_for")


def test_impl_blocks_and_overloads_are_one_symbol(tmp_path: Path, embedder) -> None:
    root = tmp_path / "crate"
    write(root, {
        "src/lib.rs": "mod codec;\n",
        "src/codec.rs": "pub struct Lines {}\n\nimpl Lines {\n    pub fn new() -> Lines { Lines {} }\n}\n",
        "src/other.rs": ("use crate::codec::Lines;\n\nimpl Clone for Lines {\n"
                         "    fn clone(&self) -> Lines { Lines::new() }\n}\n"),
        "web/a.ts": "export function f(x: string): string;\nexport function f(x: any) { return x; }\nf('a');\n",
    })
    Indexer(root, Settings(), embedder).run()
    graph = GraphService(root)
    answer = graph.query("Lines")
    assert answer.resolution == "resolved" and (answer.subject.kind, answer.subject.path) == ("struct", "src/codec.rs")
    assert ("src/other.rs", 4, "reference", "exact") in locations(answer)  # `-> Lines`, through the use
    calls = graph.query("Lines.new", mode="callers")
    assert [(r.path, r.start_line) for r in calls.results] == [("src/other.rs", 4)]
    overloads = graph.query("f")
    assert overloads.resolution == "resolved"
    assert {(r.start_line, r.kind) for r in overloads.results} == {(1, "definition"), (2, "definition"), (3, "call")}


def test_a_file_is_referenced_by_its_importers(graph_project: Path) -> None:
    answer = GraphService(graph_project).query("pkg/helpers.py")
    assert answer.subject.kind == "file"
    assert {(r.path, r.start_line, r.kind) for r in answer.results} == {
        ("pkg/__init__.py", 2, "import"), ("pkg/app.py", 2, "import"), ("pkg/app.py", 7, "call"),
        ("tests/test_app.py", 1, "import"), ("tests/test_app.py", 7, "call")}


def test_typescript_members_of_typed_values() -> None:
    source = """\
        import { Store } from './store';
        const shared = new Store();
        class View {
          constructor(private store: Store, other: Store) {}
          render(s: Store) { s.load(); this.store.load(); shared.load(); }
          local() { const s = 3; return s.load(); }
        }
        """
    graph = extract_file("src/view.ts", textwrap.dedent(source))
    assert graph is not None
    loads = [(r.line, r.module, r.target) for r in graph.refs if r.name == "load"]
    assert loads == [(5, "rel:src/store", "Store.load"), (5, "file:src/view.ts", "View.store.load"),
                     (5, "rel:src/store", "Store.load"), (6, None, None)]
    assert ("View.store", "rel:src/store", "Store") in {(i.local, i.module, i.name) for i in graph.imports}
