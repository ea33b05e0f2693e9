"""What the `amanmcp` command prints about the user's data: literally (no markup), secrets masked,
stale results flagged, and its version. Real subprocesses on real files."""

from __future__ import annotations

import importlib.metadata
import json
import os
import tomllib
from pathlib import Path

import pytest

from conftest import write_project
from test_cli import run

HEADING = "Use [/bold] and [red]"  # rich markup: a closing tag that opens nothing crashes a markup print
BRACKETS = {
    "app/[slug]/page.tsx": "export default function SlugPage({ params }) {\n  return <h1>{params.slug}</h1>;\n}\n",
    "docs/markup.md": f"# {HEADING}\n\nBrackets in headings :tada: stay text, like [link] and [/dim].\n",
}
WIDE = {**os.environ, "COLUMNS": "400"}  # one line per table row, whatever the temp path's length


@pytest.fixture(scope="module")
def bracket_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cli-out") / "shop[dim]"  # even the root's name holds markup
    root.mkdir()
    write_project(root, BRACKETS)
    result = run("index", str(root), env=WIDE)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr + result.stdout and "MarkupError" not in result.stderr
    return root


def test_paths_and_headings_print_literally(bracket_project: Path) -> None:
    root = str(bracket_project)
    text = run("search", "SlugPage", "--path", root, "-n", "3", env=WIDE)
    assert text.returncode == 0, text.stderr
    assert "app/[slug]/page.tsx:1-3" in text.stdout and "SlugPage (function)" in text.stdout
    for args in (["-t", "docs"], ["-t", "docs", "--explain"]):
        docs = run("search", "use bold and red", "--path", root, *args, env=WIDE)
        assert docs.returncode == 0 and "Traceback" not in docs.stderr, docs.stderr
        assert f"docs/markup.md:1-3  {HEADING} (section)" in docs.stdout
        assert f"# {HEADING}" in docs.stdout and ":tada: stay text, like [link] and [/dim]." in docs.stdout
    assert "bm25 rank" in docs.stdout
    doc = json.loads(run("search", "SlugPage", "--path", root, "--format", "json", "-n", "1").stdout)
    assert doc["results"][0]["path"] == "app/[slug]/page.tsx"

    status = run("status", "--path", root, env=WIDE)
    assert status.returncode == 0, status.stderr
    assert f"amanmcp index of {root}" in status.stdout
    assert "tsx 1" in status.stdout and "markdown 1" in status.stdout


def test_language_must_be_one_the_index_holds(bracket_project: Path) -> None:
    result = run("search", "SlugPage", "--path", str(bracket_project), "-l", "cobol")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "language must be one of this index's languages: markdown, tsx, not 'cobol'" in result.stderr
    ok = run("search", "SlugPage", "--path", str(bracket_project), "-l", "TSX", "--format", "json")
    assert ok.returncode == 0 and {r["language"] for r in json.loads(ok.stdout)["results"]} == {"tsx"}


def test_config_show_masks_every_api_key(tmp_path: Path) -> None:
    sections = ("mlx", "ollama", "openai", "reranker")
    (tmp_path / ".amanmcp.yaml").write_text(
        "".join(f"{s}:\n  api_key: sk-{s}-secret-value\n" for s in sections)
    )
    shown = run("config", "show", "--path", str(tmp_path), "--json")
    assert shown.returncode == 0, shown.stderr
    assert "secret-value" not in shown.stdout + shown.stderr
    values = json.loads(shown.stdout)
    assert {values[f"{s}.api_key"]["value"] for s in sections} == {"***"}
    table = run("config", "show", "--path", str(tmp_path), env=WIDE)
    assert table.returncode == 0 and "secret-value" not in table.stdout + table.stderr


def test_stale_results_and_status(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    write_project(root, {
        "calc.py": "def add_numbers(a, b):\n    return a + b\n",
        "text.py": "def shout_text(s):\n    return s.upper()\n",
        "gone.py": "def vanishing_helper():\n    return None\n",
    })
    assert run("index", str(root)).returncode == 0

    def stale(query: str) -> dict[str, bool]:
        result = run("search", query, "--path", str(root), "--format", "json", "-n", "10")
        assert result.returncode == 0, result.stderr
        return {r["path"]: r["stale"] for r in json.loads(result.stdout)["results"]}

    def stale_files() -> int:
        return json.loads(run("status", "--path", str(root), "--format", "json").stdout)["stale_files"]

    assert stale("add_numbers shout_text vanishing_helper") == {"calc.py": False, "text.py": False, "gone.py": False}
    assert stale_files() == 0
    (root / "calc.py").write_text("def add_numbers(a, b):\n    return a + b  # now longer\n")
    (root / "gone.py").unlink()
    assert stale("add_numbers shout_text vanishing_helper") == {"calc.py": True, "text.py": False, "gone.py": True}
    assert stale_files() == 2
    text = run("search", "add_numbers", "--path", str(root), "-n", "1")
    assert "calc.py:1-2" in text.stdout and "changed on disk since indexed" in text.stdout
    assert "stale files" in run("status", "--path", str(root), env=WIDE).stdout

    same_size = (root / "text.py").read_text().replace("upper", "lower")  # same size, new mtime
    (root / "text.py").write_text(same_size)
    st = (root / "text.py").stat()
    os.utime(root / "text.py", ns=(st.st_atime_ns, st.st_mtime_ns + 2_000_000_000))
    assert stale("shout_text")["text.py"] is True

    assert run("index", str(root)).returncode == 0  # re-indexed: nothing is stale any more
    assert set(stale("add_numbers shout_text vanishing_helper").values()) == {False}
    assert stale_files() == 0


def test_version_comes_from_the_package_metadata() -> None:
    result = run("--version")
    assert result.returncode == 0, result.stderr
    declared = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())["project"]["version"]
    assert result.stdout.strip() == f"amanmcp {importlib.metadata.version('amanmcp')}"
    assert importlib.metadata.version("amanmcp") == declared
