"""Every chunk respects the size limit whatever the line length; minified files are skipped with a reason."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

from amanmcp.chunk import MAX_LINE_PARTS, chunk_file
from amanmcp.config import Settings
from amanmcp.indexer import Indexer
from amanmcp.scan import looks_minified
from amanmcp.search import Searcher


def minified_js(chars: int) -> str:
    unit = "function a(b,c){return b.map(function(d){return d+c})};var x=1,y=[1,2,3];"
    return unit * (chars // len(unit))


def test_long_line_in_each_kind_of_file_is_cut_to_the_limit() -> None:
    blob = "x" * 12_000  # 13 pieces of 1,000: under MAX_LINE_PARTS
    for path, text in [
        ("data.py", f'def f():\n    return "{blob}"\n'),
        ("notes.md", f"# Title\n\n{blob}\n"),
        ("dump.txt", f"{blob}\n"),
        ("app.go", f'package main\n\nvar s = "{blob}"\n'),
    ]:
        chunks = chunk_file(path, text, max_chunk_chars=1000)
        assert chunks, path
        assert all(len(c.content) <= 1000 for c in chunks), path
        parts = [c for c in chunks if c.symbol_type == "part"]
        assert parts and all(c.start_line == c.end_line for c in parts), path
        line = text.splitlines()[parts[0].start_line - 1]
        assert "".join(c.content for c in parts) == line  # the pieces are the line, in order


def test_parts_keep_the_enclosing_symbol_and_break_between_words() -> None:
    words = " ".join(f"word{i}" for i in range(3000))
    chunks = chunk_file("m.py", f'def holder():\n    return "{words}"\n', max_chunk_chars=500)
    parts = [c for c in chunks if c.symbol_type == "part"]
    assert {c.symbol for c in parts} == {"holder"}
    assert all(c.content.endswith(" ") for c in parts[:-1])  # cut after a space, never inside a word


def test_a_line_yields_at_most_max_line_parts() -> None:
    notes: Counter[str] = Counter()
    huge = "y" * 1000 * (MAX_LINE_PARTS + 10)
    chunks = chunk_file("blob.txt", f"start\n{huge}\nend\n", max_chunk_chars=1000, notes=notes)
    assert sum(1 for c in chunks if c.start_line == 2) == MAX_LINE_PARTS
    assert [c.content for c in chunks if c.start_line != 2] == ["start", "end"]
    assert notes["clipped_long_lines"] == 1


def test_minified_detection() -> None:
    assert looks_minified(minified_js(2_000_000))
    assert looks_minified(minified_js(50_000) + "\n" + minified_js(50_000))
    assert not looks_minified(minified_js(10_000))  # small: cheap to index as a few parts
    assert not looks_minified("def f():\n    return 1\n" * 5000)
    assert not looks_minified("x = 1\n" * 100 + "data = '" + "z" * 100_000 + "'\n" + "y = 2\n" * 100)


def test_minified_file_skipped_and_long_line_file_bounded(project: Path, settings: Settings, embedder) -> None:
    (project / "static").mkdir()
    (project / "static" / "bundle.js").write_text(minified_js(2_000_000))
    long_line = "ZEBRA_CONSTANT_TABLE = [" + ", ".join(f"'entry{i}'" for i in range(3000)) + "]"
    helpers = "".join(f"\n\ndef helper_{i}(x):\n    return x + {i}\n" for i in range(20))  # code: not minified
    (project / "tables.py").write_text(f"'''Lookup tables.'''\n\n{long_line}\n{helpers}")
    report = Indexer(project, settings, embedder).run()
    assert report.skipped["minified"] == 1
    searcher = Searcher(project, settings, embedder)
    try:
        results = searcher.search("ZEBRA_CONSTANT_TABLE entry2999", limit=10).results
        assert all(len(r.content) <= settings.index.max_chunk_chars for r in results)
        parts = [r for r in results if r.path == "tables.py" and r.symbol_type == "part"]
        assert parts and all(r.start_line == r.end_line == 3 for r in parts)
        assert not any(r.path == "static/bundle.js" for r in searcher.search("function map return", limit=20).results)
    finally:
        searcher.close()


def test_cli_answer_size_is_bounded(project: Path) -> None:
    """The issue's case: a one-line 2 MB file made a `-n 1` JSON answer of 2 MB."""
    (project / "one_line.txt").write_text("alpha beta gamma delta " * 700 + "\n")  # 16 KB, one line: 3 parts
    (project / "big.min.txt").write_text(minified_js(2_000_000))
    amanmcp = [sys.executable, "-m", "amanmcp"]
    result = subprocess.run([*amanmcp, "index", str(project)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "minified 1" in result.stdout
    out = subprocess.run([*amanmcp, "search", "alpha beta gamma", "--path", str(project), "--format", "json",
                          "-n", "1"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["results"][0]["path"] == "one_line.txt" and doc["results"][0]["symbol_type"] == "part"
    assert len(out.stdout) < 10_000
