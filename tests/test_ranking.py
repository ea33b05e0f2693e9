"""Ranking as pure functions, on made-up candidates: each signal proven to move what it should."""

from __future__ import annotations

from dataclasses import replace

import pytest

from amanmcp.ranking import Candidate, RankingOptions, analyze, rank, source_weights
from amanmcp.ranking.fusion import dedupe, fuse, select
from amanmcp.ranking.paths import path_role, path_terms
from amanmcp.ranking.signals import apply_priors, boost_definitions, boost_path_matches

WEIGHTS = {"bm25": 1.0, "vector": 1.0, "symbol": 1.0}
_ids = iter(range(1, 1_000_000))


def cand(path: str, *, bm25: int | None = None, vector: int | None = None, symbol_rank: int | None = None,
         symbol: str | None = None, kind: str | None = None, content: str | None = None, lines: int = 10,
         content_type: str | None = None) -> Candidate:
    words = ("open", "read", "parse", "check", "close", "send", "wait", "merge", "store", "emit", "load", "sort")
    body = content if content is not None else "\n".join(
        f"{words[i % len(words)]}_{i}({path!r}, {symbol!r}) if ready else {words[(i * 5) % len(words)]}()"
        for i in range(lines))
    if content_type is None:
        content_type = "docs" if path.endswith((".md", ".rst", ".txt")) else "code"
    return Candidate(id=next(_ids), path=path, start_line=1, end_line=body.count("\n") + 1, content=body,
                     content_type=content_type, symbol=symbol, symbol_type=kind, bm25_rank=bm25, vector_rank=vector,
                     symbol_rank=symbol_rank)


def paths(ranked: list[Candidate]) -> list[str]:
    return [c.path for c in ranked]


# --- query profile ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("query", "shape", "names"), [
    ("HTTPAdapter", "identifier", ("HTTPAdapter",)),
    ("Scaffold.route", "identifier", ("Scaffold.route",)),
    ("std::sync::Mutex", "identifier", ("std::sync::Mutex",)),
    ("get_user()", "identifier", ("get_user",)),
    ("echo", "identifier", ("echo",)),
    ("src/app/views.py", "path", ()),
    ("where are retries handled", "sentence", ()),
    ("why does parseConfig fail on empty files", "sentence", ("parseConfig",)),
    ("QuerySet filter", "sentence", ("QuerySet",)),
])
def test_query_shapes(query: str, shape: str, names: tuple[str, ...]) -> None:
    profile = analyze(query)
    assert (profile.shape, profile.names) == (shape, names)


def test_query_words_split_identifiers_and_drop_stopwords() -> None:
    assert analyze("how does parseHTTPArgs handle the errors").words == (
        "parsehttpargs", "parse", "http", "args", "handle", "errors")


def test_query_intents() -> None:
    assert analyze("how do I install it").docs and not analyze("how is the install script run").tests
    assert analyze("unit tests for the session store").tests
    assert analyze("an example of a custom adapter").examples
    assert analyze("benchmark of the parser").benchmarks
    plain = analyze("where is the session cookie signed")
    assert not (plain.docs or plain.tests or plain.examples or plain.benchmarks)


def test_source_weights_follow_the_settings() -> None:
    assert source_weights(1.0, 0.5, 2.0) == {"bm25": 1.0, "vector": 0.5, "symbol": 2.0, "file": 0.5}


# --- path roles ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("path", "role"), [
    ("src/shop/app.py", "source"),
    ("src/pkg/testing.py", "source"),  # a library's test helpers are its implementation
    ("tests/test_app.py", "test"),
    ("pkg/app_test.py", "test"),
    ("conftest.py", "test"),
    ("cmd/root_test.go", "test"),
    ("lib/core/Client.test.js", "test"),
    ("src/__tests__/store.ts", "test"),
    ("src/test/java/com/acme/UserTest.java", "test"),
    ("spec/models/user_spec.rb", "test"),
    ("crates/x/tests/it.rs", "test"),
    ("examples/tutorial/app.py", "example"),
    ("docs_src/first_steps.py", "example"),
    ("benches/codec.rs", "benchmark"),
    ("third_party/zlib/inflate.c", "vendored"),
    ("api/v1/user.pb.go", "generated"),
    ("proto/user_pb2.py", "generated"),
    ("pkg/apis/zz_generated.deepcopy.go", "generated"),
    ("types/index.d.ts", "declaration"),
    ("src/contest/latest.py", "source"),
    ("CHANGELOG.md", "changelog"),
    ("docs/changes.rst", "changelog"),
    ("LICENSE", "changelog"),
    ("src/web/middleware/security.py", "source"),  # only prose files named so are release notes
    ("src/app/changes.py", "source"),
    (".github/workflows/ci.yml", "meta"),
    (".claude/skills/search/SKILL.md", "meta"),
])
def test_path_roles(path: str, role: str) -> None:
    assert path_role(path) == role


def test_path_terms_split_names_and_folder() -> None:
    assert path_terms("src/auth/tokenStore.ts") >= {"auth", "tokenstore", "token", "store"}


# --- fusion ----------------------------------------------------------------------------------------


def test_fusion_is_one_for_first_everywhere_and_bm25_only_keeps_the_scale() -> None:
    both = [cand("a.py", bm25=1, vector=1), cand("b.py", bm25=2, vector=3)]
    fuse(both, WEIGHTS, 60)
    assert both[0].score == pytest.approx(1.0) and 0 < both[1].score < 1
    alone = [cand("a.py", bm25=1)]
    fuse(alone, WEIGHTS, 60)
    assert alone[0].score == pytest.approx(1.0)


# --- definitions -----------------------------------------------------------------------------------


def test_a_trait_name_returns_the_trait_not_impl_fragments_that_mention_it() -> None:
    fragments = [
        cand(f"src/codec/c{i}.rs", bm25=i, vector=i, symbol=f"Codec{i}", kind="impl",
             content=f"impl Decoder for Codec{i} {{\n    type Item = Bytes;") for i in range(1, 12)
    ]
    trait = cand("src/codec/decoder.rs", bm25=14, vector=20, symbol_rank=1, symbol="Decoder", kind="trait",
                 content="/// Decodes frames.\npub trait Decoder {\n    type Item;\n    fn decode(&mut self);\n}")
    ranked = rank([*fragments, trait], analyze("Decoder"), 10, WEIGHTS)
    assert ranked[0] is trait


def test_a_dotted_query_puts_that_exact_definition_first() -> None:
    other = cand("lib/a.js", bm25=1, vector=1, symbol="client.request", kind="function")
    wanted = cand("lib/b.js", bm25=3, vector=5, symbol_rank=2, symbol="utils.request", kind="function")
    mention = cand("lib/c.js", bm25=2, vector=2, content="const r = utils.request(x);\nreturn r;")
    ranked = rank([other, wanted, mention], analyze("utils.request"), 3, WEIGHTS)
    assert ranked[0] is wanted


def test_only_the_first_window_of_a_big_definition_is_boosted() -> None:
    first = cand("big.py", bm25=5, symbol="Big", kind="class", content="class Big:\n    x = 1")
    later = replace(cand("big.py", bm25=1, symbol="Big", kind="class"), start_line=60, end_line=69)
    both = [first, later]
    fuse(both, WEIGHTS, 60)
    boost_definitions(both, analyze("Big"))
    assert "definition" in first.signals and "definition" not in later.signals


def test_a_definition_found_only_by_its_text_is_boosted_less_than_a_named_one() -> None:
    named = cand("a.go", bm25=2, symbol="Router", kind="struct")
    by_text = cand("b.go", bm25=1, content="// windows of a big file\ntype Router struct {\n\troutes []Route\n}")
    both = [named, by_text]
    fuse(both, WEIGHTS, 60)
    boost_definitions(both, analyze("Router"))
    assert named.signals["definition"] > by_text.signals["definition"] > 0


# --- priors ----------------------------------------------------------------------------------------


def test_a_code_question_prefers_code_over_a_long_readme() -> None:
    readme = [cand("README.md", bm25=i, vector=i, symbol=f"Guide > Part {i}", kind="section") for i in range(1, 6)]
    code = cand("src/retry.py", bm25=6, vector=6, symbol="retry_with_backoff", kind="function")
    ranked = rank([*readme, code], analyze("where are retries handled"), 5, WEIGHTS)
    assert ranked[0] is code


def test_a_docs_question_keeps_the_docs_first() -> None:
    readme = cand("README.md", bm25=1, vector=1, symbol="Install", kind="section")
    code = cand("setup.py", bm25=2, vector=2, symbol="install", kind="function")
    ranked = rank([readme, code], analyze("how do I install it"), 2, WEIGHTS)
    assert ranked[0] is readme


def test_words_only_prose_uses_do_not_demote_the_prose() -> None:
    notes = cand("notes.md", bm25=1, vector=2, symbol="Roadmap", kind="section")
    code = cand("src/invoice.py", vector=1, symbol="Invoice", kind="class")
    ranked = rank([notes, code], analyze("quarterly roadmap"), 2, WEIGHTS)
    assert ranked[0] is notes and "docs" not in notes.signals


def test_a_test_file_does_not_beat_its_implementation_unless_tests_are_asked_for() -> None:
    def pool() -> list[Candidate]:
        return [cand("tests/test_session.py", bm25=1, vector=1, symbol="test_cookie_is_signed", kind="function"),
                cand("src/session.py", bm25=2, vector=2, symbol="sign_cookie", kind="function")]

    assert paths(rank(pool(), analyze("where is the session cookie signed"), 2, WEIGHTS))[0] == "src/session.py"
    asked = rank(pool(), analyze("tests for the signed session cookie"), 2, WEIGHTS)
    assert paths(asked)[0] == "tests/test_session.py"


def test_import_lists_and_one_line_fragments_are_demoted() -> None:
    imports = cand("pkg/__init__.py", content="from .app import App\nfrom .config import Config\nimport os")
    line = cand("pkg/x.py", content="    retries = 3")
    body = cand("pkg/y.py", content="def go():\n    retries = 3\n    while retries:\n        retries -= 1")
    for c in (imports, line, body):
        c.score = 1.0
    apply_priors([imports, line, body], analyze("retries"))
    assert imports.signals["imports"] < 1 and line.signals["fragment"] < 1 and body.score == 1.0


def test_path_words_point_at_the_file() -> None:
    cands = [cand("src/sessions.py", vector=5), cand("src/helpers.py", vector=4)]
    fuse(cands, WEIGHTS, 60)
    boost_path_matches(cands, analyze("signed cookie session storage"))
    assert "path" in cands[0].signals and "path" not in cands[1].signals
    exact = [cand("src/app/views.py", bm25=9), cand("src/app/models.py", bm25=1)]
    assert paths(rank(exact, analyze("src/app/views.py"), 2, WEIGHTS))[0] == "src/app/views.py"


# --- de-duplication and diversity ------------------------------------------------------------------


def test_identical_copies_appear_once() -> None:
    body = "def load(path):\n    return open(path).read()"
    original = cand("src/io.py", bm25=2, vector=2, content=body)
    copy = cand("build/lib/src/io.py", bm25=1, vector=1, content=body + "\n")
    other = cand("src/other.py", bm25=3, vector=3)
    kept = dedupe([original, copy, other])
    assert len(kept) == 2 and other in kept
    assert len(rank([original, copy, other], analyze("load a file"), 10, WEIGHTS)) == 2


def test_one_big_file_does_not_crowd_out_the_others() -> None:
    windows = [replace(cand("big.go", bm25=i, vector=i, content=f"func part{i}() {{\n\tgo()\n\tstop()\n}}"),
                       start_line=i * 50, end_line=i * 50 + 3) for i in range(1, 10)]
    small = cand("small.go", bm25=10, vector=10)
    ranked = rank([*windows, small], analyze("handle the request"), 3, WEIGHTS)
    assert "small.go" in paths(ranked)
    flat = rank([*windows, small], analyze("handle the request"), 3, WEIGHTS, options=RankingOptions(diversity=False))
    assert "small.go" not in paths(flat)


def test_selection_is_stable_and_scores_descend() -> None:
    pool = [cand(f"f{i}.py", bm25=i) for i in range(1, 30)]
    fuse(pool, WEIGHTS, 60)
    ranked = select(pool, 10, 0.5)
    assert [c.score for c in ranked] == sorted((c.score for c in ranked), reverse=True)
    assert paths(ranked) == [f"f{i}.py" for i in range(1, 11)]


def test_tables_of_data_are_demoted_but_logic_is_not() -> None:
    rows = "".join(f"    {i}: 'retry the request',\n" for i in range(40))
    table = cand("codes.py", content="CODES = {\n" + rows + "}")
    logic = cand("retry.py", content="def retry(send):\n    for i in range(3):\n        try:\n"
                                     "            return send()\n        except OSError:\n"
                                     "            time.sleep(2 ** i)\n    raise TimeoutError\n    # unreachable\n"
                                     "    return None")
    for c in (table, logic):
        c.score = 1.0
    apply_priors([table, logic], analyze("retry the request"))
    assert table.signals.get("data") == pytest.approx(0.5) and "data" not in logic.signals


def test_release_notes_do_not_answer_a_bug_title_unless_asked() -> None:
    def pool() -> list[Candidate]:
        return [cand("CHANGELOG.md", bm25=1, vector=1, symbol="2.1.0", kind="section"),
                cand("src/flags.go", bm25=2, vector=2, symbol="validateFlagGroups", kind="function")]

    assert paths(rank(pool(), analyze("fix panic when a required flag group is missing"), 2, WEIGHTS))[0] == \
        "src/flags.go"
    assert paths(rank(pool(), analyze("what changed in the 2.1.0 release"), 2, WEIGHTS))[0] == "CHANGELOG.md"


def test_a_documented_definition_is_not_a_table_and_a_comment_is_not_a_definition() -> None:
    doc = "\n".join(f"/// Line {i} of the documentation, with `code` and [links]." for i in range(30))
    struct = cand("src/token.rs", bm25=5, vector=9, symbol_rank=1, symbol="Token", kind="struct",
                  content=doc + "\npub struct Token {\n    inner: Arc<Node>,\n}")
    banner = cand("src/token.rs", bm25=3, vector=8, content="pin_project! {\n    pub struct Waiter<'a> {\n"
                  "        token: &'a Token,\n    }\n}\n\n// ===== impl Token =====")
    ranked = rank([struct, banner], analyze("Token"), 2, WEIGHTS)
    assert ranked[0] is struct and "data" not in struct.signals and "definition" not in banner.signals


def test_a_file_near_the_query_lifts_its_chunks_without_raising_the_ceiling() -> None:
    near = cand("src/near.py", bm25=3, vector=3)
    far = cand("src/far.py", bm25=2, vector=2)
    near.file_rank, far.file_rank = 1, 40
    pool = [near, far]
    fuse(pool, {**WEIGHTS, "file": 1.0}, 60)
    assert near.score > far.score
    alone = [cand("a.py", bm25=1, vector=1)]
    alone[0].file_rank = 1
    fuse(alone, {**WEIGHTS, "file": 1.0}, 60)
    assert alone[0].score > 1.0  # a bonus on top of full agreement, not part of the 0-1 scale
    off = source_weights(1.0, 1.0, 1.0, RankingOptions(file_evidence=False))
    assert off["file"] == 0.0
