"""Ranking behaviours users feel, end to end on small fixture projects in several languages:
real scanner, tree-sitter, model, SQLite and vectors. Each project is shaped like a real repository
(README and docs, tests, copies, big files) and each assertion names what a user would see go wrong.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from amanmcp.config import load_config
from amanmcp.embed.local import LocalEmbedder
from amanmcp.indexer import Indexer
from amanmcp.ranking import RankingOptions
from amanmcp.search import Searcher


def make(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(textwrap.dedent(text).lstrip("\n"))
    return root


def searcher(root: Path, embedder: LocalEmbedder, ranking: RankingOptions | None = None) -> Searcher:
    settings = load_config(root, env={}).settings
    Indexer(root, settings, embedder).run()
    return Searcher(root, settings, embedder, ranking=ranking)


def impl_block(name: str) -> str:
    return f"""
        use crate::codec::Decoder;

        pub struct {name} {{
            max: usize,
        }}

        impl Decoder for {name} {{
            type Item = Vec<u8>;
            type Error = std::io::Error;

            fn decode(&mut self, buf: &mut Vec<u8>) -> Result<Option<Vec<u8>>, std::io::Error> {{
                let n = buf.len().min(self.max);
                Ok(Some(buf.drain(..n).collect()))
            }}
        }}
    """


@pytest.fixture(scope="module")
def rust_codecs(tmp_path_factory: pytest.TempPathFactory, embedder: LocalEmbedder) -> Searcher:
    files = {f"src/codec/{n.lower()}.rs": impl_block(n) for n in ("Lines", "Bytes", "Frames", "Chunks", "Length",
                                                                   "Json", "Csv", "Varint", "Zigzag", "Delimited")}
    files["src/codec/decoder.rs"] = """
        /// Turns a buffer of bytes into frames, one at a time.
        pub trait Decoder {
            /// The frame this decoder produces.
            type Item;
            /// The error a malformed frame gives.
            type Error;

            /// Decode one frame from the front of the buffer, if a whole one is there.
            fn decode(&mut self, buf: &mut Vec<u8>) -> Result<Option<Self::Item>, Self::Error>;
        }
    """
    files["tests/decoder_tests.rs"] = """
        use codecs::codec::Decoder;

        #[test]
        fn every_decoder_handles_an_empty_buffer() {
            let mut d = codecs::Lines { max: 8 };
            assert!(d.decode(&mut Vec::new()).unwrap().is_some());
        }
    """
    return searcher(make(tmp_path_factory.mktemp("codecs"), files), embedder)


def test_a_trait_name_returns_the_trait_definition_first(rust_codecs: Searcher) -> None:
    top = rust_codecs.search("Decoder").results[0]
    assert (top.path, top.symbol, top.symbol_type) == ("src/codec/decoder.rs", "Decoder", "trait")


def test_associated_types_are_not_one_line_results(rust_codecs: Searcher) -> None:
    for query in ("Decoder", "type Item of a decoder", "decode a frame from a buffer"):
        for r in rust_codecs.search(query).results:
            assert r.end_line - r.start_line >= 2, (query, r.path, r.start_line, r.content)


README = "# Fetcher\n\nA small HTTP fetcher.\n\n" + "".join(
    f"## {title}\n\nFetcher retries failed requests: {text} The retry policy and backoff between attempts "
    f"are explained here, with the limits on retries and timeouts.\n\n"
    for title, text in [
        ("Retries", "a request that fails with a connection error is sent again."),
        ("Backoff", "the wait doubles after each failed attempt."),
        ("Limits", "after the last attempt the error is raised to the caller."),
        ("Timeouts", "a request that takes too long counts as failed and is retried."),
        ("Configuration", "set the number of retries and the base delay in the config file."),
        ("FAQ", "why was my request retried? because it failed with a transient error."),
    ]
)


@pytest.fixture(scope="module")
def fetcher(tmp_path_factory: pytest.TempPathFactory, embedder: LocalEmbedder) -> Searcher:
    files = {
        "README.md": README,
        "docs/retries.md": README.replace("# Fetcher", "# Retry guide"),
        "fetcher/retry.py": '''
            """Send a request again when it fails."""

            import time


            def send_with_retries(send, request, attempts=3, base_delay=0.5):
                """Call send(request); on a connection error wait and try again, doubling the wait."""
                for attempt in range(attempts):
                    try:
                        return send(request)
                    except ConnectionError:
                        time.sleep(base_delay * 2**attempt)
                raise RuntimeError("request failed after retries")
        ''',
        "fetcher/client.py": '''
            from fetcher.retry import send_with_retries


            class Client:
                """Fetches URLs over HTTP."""

                def get(self, url):
                    return send_with_retries(self._send, {"method": "GET", "url": url})

                def _send(self, request):
                    raise ConnectionError(request["url"])
        ''',
        "tests/test_retry.py": '''
            from fetcher.retry import send_with_retries


            def test_failed_requests_are_retried_with_backoff():
                calls = []

                def send(request):
                    calls.append(request)
                    raise ConnectionError("down")

                try:
                    send_with_retries(send, {"url": "x"}, attempts=2, base_delay=0)
                except RuntimeError:
                    pass
                assert len(calls) == 2
        ''',
    }
    root = make(tmp_path_factory.mktemp("fetcher"), files)
    copy = root / "build" / "lib" / "fetcher"  # a stale build copy: the same code twice
    copy.mkdir(parents=True)
    for name in ("retry.py", "client.py"):
        (copy / name).write_text((root / "fetcher" / name).read_text())
    (root / "fetcher" / "status_table.py").write_text(  # one huge literal: ~30 windows of 60 lines
        "RETRY_ON_STATUS = {\n" + "".join(
            f"    {400 + i}: 'retry the failed request after a delay',  # status {400 + i}\n" for i in range(1800)
        ) + "}\n"
    )
    return searcher(root, embedder)


def test_a_code_question_in_a_repo_with_a_long_readme_returns_code(fetcher: Searcher) -> None:
    results = fetcher.search("how are failed requests retried").results
    assert results[0].content_type == "code" and results[0].path.endswith("retry.py")
    assert sum(r.content_type == "docs" for r in results[:5]) <= 2


def test_a_docs_question_still_returns_the_docs(fetcher: Searcher) -> None:
    top = fetcher.search("where does the README explain the retry configuration").results[0]
    assert top.content_type == "docs"


def test_identical_copies_appear_once(fetcher: Searcher) -> None:
    results = fetcher.search("send_with_retries", limit=20).results
    contents = [r.content.strip() for r in results]
    assert len(contents) == len(set(contents))
    assert any(r.path == "fetcher/retry.py" for r in results[:2])


def test_a_test_file_does_not_beat_its_implementation(fetcher: Searcher) -> None:
    paths = [r.path for r in fetcher.search("retry failed requests with backoff").results]
    assert paths.index("fetcher/retry.py") < paths.index("tests/test_retry.py") if "tests/test_retry.py" in paths \
        else "fetcher/retry.py" in paths[:2]
    asked = [r.path for r in fetcher.search("tests for failed requests being retried").results]
    assert asked[0] == "tests/test_retry.py"


def test_one_big_file_does_not_crowd_out_the_others(fetcher: Searcher) -> None:
    paths = [r.path for r in fetcher.search("retry the failed request after a delay").results]
    assert paths[:5].count("fetcher/status_table.py") <= 2 and "fetcher/retry.py" in paths[:3]
    again = [r.path for r in fetcher.search("retry the failed request after a delay").results]
    assert again == paths  # stable: the same query gives the same answer


def test_without_the_ranking_signals_the_readme_and_the_copy_crowd_in(
    fetcher: Searcher, embedder: LocalEmbedder
) -> None:
    """The behaviours above come from the ranking, not from luck: with fusion alone they fail."""
    flags = {name: False for name in RankingOptions.__dataclass_fields__}
    bare = Searcher(fetcher.root, fetcher.settings, embedder, ranking=RankingOptions(**flags))
    results = bare.search("how are failed requests retried").results
    contents = [r.content.strip() for r in bare.search("send_with_retries", limit=20).results]
    assert results[0].content_type == "docs" or len(contents) != len(set(contents))


@pytest.fixture(scope="module")
def js_helpers(tmp_path_factory: pytest.TempPathFactory, embedder: LocalEmbedder) -> Searcher:
    files = {
        "lib/utils.js": """
            const utils = {};

            /**
             * Combine several objects into a fresh one; keys of later objects override earlier ones.
             */

            utils.merge = function merge(...objects) {
              return Object.assign({}, ...objects);
            };

            /**
             * Is this value a plain object (not an array, not null)?
             */

            utils.isPlainObject = function isPlainObject(value) {
              return value !== null && typeof value === 'object' && !Array.isArray(value);
            };

            export default utils;
        """,
        "lib/config.js": """
            import utils from './utils.js';

            export function mergeConfig(defaults, overrides) {
              return utils.merge(defaults, overrides);
            }
        """,
        "lib/defaults.js": """
            import utils from './utils.js';

            export default {
              transformRequest: (data) => {
                return utils.isPlainObject(data) ? JSON.stringify(data) : data;
              },
            };
        """,
    }
    return searcher(make(tmp_path_factory.mktemp("jshelpers"), files), embedder)


def test_a_js_doc_comment_above_a_blank_line_stays_with_its_function(js_helpers: Searcher) -> None:
    top = js_helpers.search("combine objects so that keys of later ones override earlier ones").results[0]
    assert top.symbol == "utils.merge" and "keys of later objects override" in top.content


def test_a_dotted_query_puts_that_definition_first(js_helpers: Searcher) -> None:
    top = js_helpers.search("utils.isPlainObject").results[0]
    assert (top.path, top.symbol) == ("lib/utils.js", "utils.isPlainObject")


@pytest.mark.slow
def test_the_readme_demo_query_finds_the_fusion_on_this_repository(tmp_path: Path, embedder: LocalEmbedder) -> None:
    """The README's own first command must show the function that fuses BM25 and vectors."""
    import shutil

    repo = Path(__file__).resolve().parents[1]
    copy = tmp_path / "amanmcp"
    for part in ("src", "tests", "benchmarks", "README.md", "pyproject.toml"):
        source = repo / part
        if source.is_dir():
            shutil.copytree(source, copy / part, ignore=shutil.ignore_patterns("__pycache__", ".amanmcp"))
        else:
            shutil.copy2(source, copy / part)
    results = searcher(copy, embedder).search("where are BM25 and vector results fused", limit=15).results
    hits = [(r.path, r.symbol) for r in results]
    assert ("src/amanmcp/ranking/fusion.py", "fuse") in hits[:5], hits
