"""File and folder names that are not UTF-8: skipped with a reason, never fatal, and `serve` keeps following edits."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from amanmcp.config import Settings
from amanmcp.embed.factory import Selection
from amanmcp.embed.local import LocalEmbedder
from amanmcp.indexer import Indexer
from amanmcp.scan import Scanner
from amanmcp.search import Searcher
from amanmcp.store import IndexLayout
from amanmcp.watch import LiveIndex
from conftest import wait_for

AMANMCP = [sys.executable, "-m", "amanmcp"]


def add_bad_names(root: Path) -> None:
    """One file and one folder (holding a file) whose names are Latin-1, not UTF-8."""
    base = os.fsencode(root)
    with open(base + b"/caf\xe9_notes.py", "wb") as fh:
        fh.write(b"def undecodable_named_function():\n    return 1\n")
    os.mkdir(base + b"/r\xe9sum\xe9")
    with open(base + b"/r\xe9sum\xe9/inner.py", "wb") as fh:
        fh.write(b"def inside_undecodable_folder():\n    return 2\n")




def found(root: Path, settings: Settings, embedder: LocalEmbedder, query: str, n: int = 5) -> list[str]:
    searcher = Searcher(root, settings, embedder)
    try:
        return [r.path for r in searcher.search(query, limit=n).results]
    finally:
        searcher.close()


def test_scan_skips_undecodable_names_with_a_reason(project: Path) -> None:
    add_bad_names(project)
    result = Scanner(project).scan()
    assert result.skipped["undecodable_name"] == 2  # the file, and the folder (not entered)
    assert all(p.encode("utf-8") for p in (f.path for f in result.files))  # every path is valid text
    assert "src/payments/retry.py" in {f.path for f in result.files}


def test_index_and_search_around_undecodable_names(project: Path, settings: Settings, embedder) -> None:
    add_bad_names(project)
    report = Indexer(project, settings, embedder).run()
    assert report.skipped["undecodable_name"] == 2 and report.files_total == 8
    assert found(project, settings, embedder, "retry_with_backoff", 1) == ["src/payments/retry.py"]
    assert not {"undecodable_named_function", "inside_undecodable_folder"} & {
        r.symbol for r in Searcher(project, settings, embedder).search("undecodable folder function").results
    }


def test_cli_index_with_undecodable_names_exits_0(project: Path) -> None:
    add_bad_names(project)
    result = subprocess.run([*AMANMCP, "index", str(project)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert "undecodable_name 2" in result.stdout


class FlakyEmbedder:
    """The real model, but document batches fail while `failing` is positive (counting down)."""

    def __init__(self, inner: LocalEmbedder, failing: int = 0) -> None:
        self.inner, self.dimensions, self.identity = inner, inner.dimensions, inner.identity
        self.failing = failing

    def embed_documents(self, texts: list[str]):
        if self.failing > 0 and texts != ["warm up"]:
            self.failing -= 1
            raise RuntimeError("embedding backend hiccup")
        return self.inner.embed_documents(texts)

    def embed_query(self, text: str):
        return self.inner.embed_query(text)


def start_live(project: Path, settings: Settings, embedder) -> LiveIndex:
    live = LiveIndex(project, settings, Selection(embedder, "local", "local", False, "test"),
                     debounce_ms=200, step_ms=50)
    live.retry_delays = (0.2, 0.2, 0.2)
    live.poll_seconds, live.rewatch_seconds = 0.3, 60
    live.start()
    return live


def test_serve_keeps_watching_after_undecodable_names(project: Path, settings: Settings, embedder) -> None:
    """watchfiles gives up on a path it cannot decode (and cannot watch a tree holding a folder so
    named): the tree is polled instead, said so in the progress, and every edit is still followed."""
    with IndexLayout(project).write_lock():
        live = start_live(project, settings, embedder)
        try:
            wait_for(lambda: live.progress().state == "watching", what="start-up run")
            add_bad_names(project)
            with open(os.fsencode(project) + b"/r\xe9sum\xe9/inner.py", "ab") as fh:
                fh.write(b"# touched\n")
            time.sleep(1.0)
            retry = project / "src/payments/retry.py"
            retry.write_text(retry.read_text() + "\n\ndef watcher_survived_bad_names():\n    return True\n")
            wait_for(lambda: found(project, settings, embedder, "watcher_survived_bad_names", 1)
                     == ["src/payments/retry.py"], what="the edit after the bad names")
            (project / "later.py").write_text("def edited_much_later():\n    return 3\n")
            wait_for(lambda: "polling the tree" in (live.progress().last_error or ""), what="polling reported")
            time.sleep(1.0)  # well into polling, after the restarts
            (project / "later.py").write_text("def edited_much_later():\n    return 3\n")
            wait_for(lambda: found(project, settings, embedder, "edited_much_later", 1) == ["later.py"],
                     what="a second edit")
            # polling may be in the middle of a (no-op) run: wait for it rather than read one instant
            wait_for(lambda: live.progress().state == "watching"
                     and "Unable to decode path" in (live.progress().last_error or ""), what="watching again")
            assert all(t.is_alive() for t in live._threads)  # neither the watcher nor the worker died
        finally:
            live.stop()


def test_failing_batch_is_retried_and_reported(project: Path, settings: Settings, embedder) -> None:
    flaky = FlakyEmbedder(embedder)
    with IndexLayout(project).write_lock():
        live = start_live(project, settings, flaky)
        errors: list[str] = []
        try:
            wait_for(lambda: live.progress().state == "watching", what="start-up run")
            flaky.failing = 2  # the next two attempts fail, the third works
            (project / "new_module.py").write_text("def retried_after_hiccups():\n    return 1\n")
            while found(project, settings, embedder, "retried_after_hiccups", 1) != ["new_module.py"]:
                if live.progress().last_error:
                    errors.append(live.progress().last_error or "")
                assert live.failures <= 2
                time.sleep(0.02)
            wait_for(lambda: live.progress().state == "watching", what="recovery")
            assert live.failures == 2
            assert any("embedding backend hiccup" in e and "attempt" in e for e in errors), errors
            assert live.progress().last_error is None

            flaky.failing = 100  # every attempt fails: the batch is dropped, watching goes on
            (project / "doomed.py").write_text("def never_indexed_while_broken():\n    return 1\n")
            wait_for(lambda: "gave up" in (live.progress().last_error or ""), what="giving up")
            assert live.progress().state == "error" and live.failures == 2 + 4
            flaky.failing = 0
            (project / "after.py").write_text("def indexed_once_fixed():\n    return 1\n")
            wait_for(lambda: found(project, settings, embedder, "indexed_once_fixed", 1) == ["after.py"],
                     what="the next change after giving up")
            assert found(project, settings, embedder, "never_indexed_while_broken", 1) == ["doomed.py"]
            assert live.progress().state == "watching"
        finally:
            live.stop()


@pytest.mark.parametrize("kind", ["file", "folder"])
def test_scan_of_only_undecodable_names_is_empty_not_fatal(tmp_path: Path, kind: str) -> None:
    base = os.fsencode(tmp_path)
    if kind == "file":
        (tmp_path / "x").mkdir()
        with open(base + b"/x/\xff\xfe.md", "wb") as fh:
            fh.write(b"# heading\n")
    else:
        os.makedirs(base + b"/\xff/\xfe")
    result = Scanner(tmp_path).scan()
    assert result.files == [] and result.skipped == {"undecodable_name": 1}
