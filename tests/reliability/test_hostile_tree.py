"""A generated hostile tree holding every case of issue 9 at once, indexed and searched by the real CLI.

Names that are not UTF-8, brackets read as markup, Cyrillic and CJK, a 2 MB one-line bundle, credential files and tokens
inside ordinary files, binaries, a 50 MB file, symlink loops, 200-deep nesting and 10,000 tiny files:
`index` exits 0 without a traceback, every file left out is counted under a reason in `status`, no
secret is findable, and a `-n 1` answer stays small.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from attack import amanmcp, live_db, no_traceback, query_db, search_json

TINY_FILES = 10_000
DEPTH = 200
# Made-up credentials, shaped like the real thing (the scanner's patterns must recognise them).
AWS_KEY = "AKIA" + "Q7RELIABILITY2ZX"
AWS_SECRET = ("wJalrXUtnFEMI/K7MDENG/bPxRfiCY" + "RELIABILITYKEYEXAMPLE")[:40]
GITHUB_TOKEN = "ghp_" + ("R3liab1l1tyT0ken" * 3)[:36]
SECRET_FILES = {
    ".envrc": "export DATABASE_PASSWORD=envrc-hostile-secret-41\n",
    ".git-credentials": "https://alice:gitcred-hostile-secret-42@github.com\n",
    ".pgpass": "db.internal:5432:app:alice:pgpass-hostile-secret-43\n",
    "infra/terraform.tfvars": 'db_password = "tfvars-hostile-secret-44"\n',
}
SECRET_WORDS = [
    "envrc-hostile-secret-41", "gitcred-hostile-secret-42", "pgpass-hostile-secret-43", "tfvars-hostile-secret-44",
    AWS_KEY, AWS_SECRET, GITHUB_TOKEN,
]


# Every file-like entry the builder writes that the scan meets: indexed, or skipped under a reason. Not
# counted: what sits inside a folder whose name is not UTF-8 (the folder counts once) and links to
# folders inside the root (indexed under their real path).
ENTRIES = 8 + 1 + 4 + 3 + 1 + 2 + 3 + TINY_FILES  # text, bundle, credentials, binaries, 50 MB, bad names, loops
INDEXED = 8 + TINY_FILES  # ok, page, markup, ru, zh, table, settings, leaf and the tiny files


def build_hostile_tree(root: Path) -> dict[str, int]:
    """Write the tree; answers the count expected under each skip reason."""
    def write(rel: str, text: str) -> None:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)

    write("src/ok.py", "def ordinary_function_marker(x):\n    return x * 2\n")
    # A name that is not UTF-8 (Latin-1 bytes), a file and a folder.
    base = os.fsencode(root)
    with open(base + b"/caf\xe9_hostile.py", "wb") as fh:
        fh.write(b"def latin1_named_file_function():\n    return 1\n")
    os.mkdir(base + b"/r\xe9pertoire")
    with open(base + b"/r\xe9pertoire/inside.py", "wb") as fh:
        fh.write(b"def inside_latin1_folder():\n    return 2\n")
    # Brackets that rich would read as markup.
    write("app/[slug]/page.tsx", "export default function SlugBracketPage() {\n  return null;\n}\n")
    write("docs/markup.md", "# Styles\n\n## Colours [/bold] and [red]warnings[/red]\n\nBracketed heading prose "
                            "about colour markup.\n")
    # Cyrillic and CJK words.
    write("docs/ru.md", "# Поиск кода\n\nПоиск по смыслу и по имени функции.\n")
    write("docs/zh.md", "# 代码搜索\n\n按含义搜索代码和文档。\n")
    # A 2 MB single-line bundle (minified: skipped), and a source file with one 90,000-character line
    # among ordinary ones (indexed, the line split to the chunk size).
    write("static/bundle.js", "var a=1;" * 250_000)
    ordinary = "".join(f"def helper_{i}(x):\n    return x + {i}\n\n\n" for i in range(60))
    write("data/table.py", "def table_lookup_marker():\n    return TABLE\n\n\nTABLE = [" + "1234567, " * 10_000
          + "]\n\n\n" + ordinary)
    # Credential files, and tokens inside an ordinary file.
    for rel, text in SECRET_FILES.items():
        write(rel, text)
    write("src/settings.py", f'AWS_ACCESS_KEY_ID = "{AWS_KEY}"\nAWS_SECRET_ACCESS_KEY = "{AWS_SECRET}"\n'
                             f'GITHUB_TOKEN = "{GITHUB_TOKEN}"\n\n\ndef settings_loader_marker():\n'
                             "    return AWS_ACCESS_KEY_ID\n")
    # Binaries.
    (root / "assets").mkdir()
    (root / "assets/logo.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 8)
    (root / "bin").mkdir()
    (root / "bin/tool").write_bytes(b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 64 + os.urandom(4096))
    (root / "assets/archive.zip").write_bytes(b"PK\x03\x04\x14\x00\x00\x00" + b"\x00" * 1024)
    # A 50 MB file (over the 2 MiB limit: judged by its size, never read); text at its start, the rest sparse.
    with (root / "dump.sql").open("wb") as fh:
        fh.write(b"INSERT INTO t VALUES (1);\n" * 40_000)
        fh.truncate(50 * 1024 * 1024)
    # Symlink loops: a -> b -> a, a link to itself, and a folder linking to its parent.
    os.symlink("loop_b", root / "loop_a")
    os.symlink("loop_a", root / "loop_b")
    os.symlink("self_link", root / "self_link")
    (root / "nested").mkdir()
    os.symlink("..", root / "nested/parent")
    os.symlink(".", root / "nested/here")
    # 200-deep nesting.
    deep = root.joinpath("deep", *(["d"] * DEPTH))
    deep.mkdir(parents=True)
    (deep / "leaf.py").write_text("def deepest_leaf_function():\n    return 'bottom'\n")
    # 10,000 tiny files (a few bytes each).
    for i in range(TINY_FILES):
        folder = root / "tiny" / f"t{i // 500:02d}"
        if i % 500 == 0:
            folder.mkdir(parents=True)
        (folder / f"f{i:05d}.txt").write_text(f"tiny{i}\n")
    return {"undecodable_name": 2, "minified": 1, "secret": 4, "redacted_secrets": 3, "binary": 3,
            "too_large": 1, "broken_link": 3}


@pytest.mark.slow
def test_hostile_tree(tmp_path: Path) -> None:
    root = tmp_path / "hostile"
    root.mkdir()
    started = time.perf_counter()
    expected = build_hostile_tree(root)
    built = time.perf_counter() - started

    started = time.perf_counter()
    result = amanmcp("index", str(root))
    indexed = time.perf_counter() - started
    no_traceback(result)
    assert result.returncode == 0, result.stderr[-3000:]

    status = amanmcp("status", "--path", str(root), "--format", "json")
    no_traceback(status)
    info = json.loads(status.stdout)
    skipped = info["skipped"]
    assert skipped == expected, skipped
    assert info["files"] == INDEXED and info["indexed"] and info["complete"]
    # Every entry is accounted for: indexed, or counted under a reason (redactions count secrets, not files).
    assert info["files"] + sum(n for reason, n in skipped.items() if reason != "redacted_secrets") == ENTRIES
    print(f"\nhostile tree: built in {built:.1f}s, indexed in {indexed:.1f}s; {info['files']} files, "
          f"{info['chunks']} chunks; skipped {skipped}")

    db = live_db(root)
    paths = {p for (p,) in query_db(db, "SELECT path FROM files")}
    assert "app/[slug]/page.tsx" in paths and "src/ok.py" in paths
    assert "deep/" + "d/" * DEPTH + "leaf.py" in paths
    assert not {p for p in paths if p.startswith(("static/", "bin/", "assets/", "nested/parent", "loop_"))}
    assert "dump.sql" not in paths and not {p for p in paths if "caf" in p or "pertoire" in p}
    # No secret is stored anywhere, nor found by a search.
    for word in SECRET_WORDS:
        assert query_db(db, "SELECT COUNT(*) FROM chunks WHERE instr(content, ?) > 0", word) == [(0,)], word
        found = search_json(root, word, "-n", "20")
        assert not [r["path"] for r in found["results"] if word in r["content"]], word
    # Bracketed paths and headings come out as they are.
    text = amanmcp("search", "SlugBracketPage", "--path", str(root), "-n", "1")
    no_traceback(text)
    assert text.returncode == 0 and "app/[slug]/page.tsx" in text.stdout
    heading = amanmcp("search", "colour markup warnings", "--path", str(root), "-n", "3")
    no_traceback(heading)
    assert heading.returncode == 0 and "docs/markup.md" in heading.stdout and "[/bold]" in heading.stdout
    # The long line is split to the chunk size (6,000 characters), so a one-result answer stays small.
    (longest,) = query_db(db, "SELECT MAX(LENGTH(content)) FROM chunks")[0]
    assert longest <= 6000, longest
    for query in ("table_lookup_marker", "1234567", "TABLE"):
        answer = amanmcp("search", query, "--path", str(root), "-n", "1", "--format", "json")
        assert answer.returncode == 0 and len(answer.stdout) < 20_000, (query, len(answer.stdout))
    assert search_json(root, "deepest_leaf_function", "-n", "1")["results"][0]["path"].endswith("d/leaf.py")
    assert search_json(root, "поиск", "-n", "1")["results"][0]["path"] == "docs/ru.md"
    assert search_json(root, "代码搜索", "-n", "1")["results"][0]["path"] == "docs/zh.md"
    prose = search_json(root, "colour markup warnings", "-n", "1")["results"][0]
    assert {"symbol", "symbol_type", "stale"} <= set(prose)  # every key, null when unknown
    assert search_json(root, "settings_loader_marker", "-n", "1")["results"][0]["path"] == "src/settings.py"

    # A second run (incremental) over the same tree: still clean, nothing re-indexed.
    again = amanmcp("index", str(root))
    no_traceback(again)
    assert again.returncode == 0 and "0 files (re)indexed" in again.stdout
