"""A full disk and a read-only index folder, simulated for one `amanmcp` process.

Full disk: `RLIMIT_FSIZE` in the child (with SIGXFSZ ignored, so a write past the limit fails with
EFBIG as a write to a full disk fails with ENOSPC) at several points of the run. Read-only: the
`.amanmcp` folder chmod-ed to 0555; as root, where chmod does not stop writes, a read-only bind
mount in a private mount namespace (`unshare --mount`) instead: once with the folder's entries kept
writable (what chmod does), once wholly read-only (an index on a read-only mount). Either way the
command exits 1 with one plain `error:` line and no traceback, and the old index keeps serving the
same results.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from attack import AMANMCP, amanmcp, cli_env, integrity, live_db, no_traceback, query_db, search_json, write_bulk

from conftest import write_project

QUERIES = ("retry_with_backoff", "bulk_function_0042", "database is locked")


@pytest.fixture(scope="module")
def indexed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("disk") / "shop"
    root.mkdir()
    write_project(root)
    write_bulk(root / "bulk", 300)
    result = amanmcp("index", str(root))
    assert result.returncode == 0, result.stderr
    return root


@pytest.fixture(scope="module")
def baseline(indexed: Path) -> list[list[tuple[str, int, int]]]:
    """What the index answers before any attack; every check after one compares with it."""
    return answers(indexed)


def answer(root: Path, query: str) -> list[tuple[str, int, int]]:
    return [(r["path"], r["start_line"], r["end_line"]) for r in search_json(root, query, "-n", "5")["results"]]


def answers(root: Path) -> list[list[tuple[str, int, int]]]:
    return [answer(root, q) for q in QUERIES]


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    """Exit 1, no traceback, exactly one `error:` line and it is the last thing said."""
    no_traceback(result)
    assert result.returncode == 1, (result.returncode, result.stderr[-2000:])
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 1 and lines[-1] == errors[0], result.stderr[-2000:]
    return errors[0]


def file_size_limit(limit: int) -> Callable[[], None]:
    def apply() -> None:  # runs in the child between fork and exec
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails (EFBIG) instead of killing
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


@pytest.mark.slow
def test_full_disk_mid_run_keeps_the_old_index(indexed: Path, baseline: list[list[tuple[str, int, int]]]) -> None:
    before = baseline
    live = (indexed / ".amanmcp" / "CURRENT").read_text()
    size = live_db(indexed).stat().st_size
    # From "nothing can be written" to "most of the new index.db fits": the failure lands at the start
    # (lock file, SQLite's shared-memory file), early in the chunk rows, in their middle, and at the commit.
    limits = [0, size // 10, size // 2, size * 9 // 10]
    messages = []
    for i, limit in enumerate(limits):
        result = subprocess.run([*AMANMCP, "index", str(indexed), "--force"], capture_output=True, text=True,
                                env=cli_env(), timeout=120, preexec_fn=file_size_limit(limit))
        messages.append(one_error_line(result))
        assert "damaged" not in messages[-1]  # never a hint to rebuild an index that is fine
        assert (indexed / ".amanmcp" / "CURRENT").read_text() == live
        assert len(list((indexed / ".amanmcp").glob("gen-*"))) == 1  # the half-written generation is gone
        assert integrity(live_db(indexed)) == "ok"
        query = QUERIES[i % len(QUERIES)]
        assert answer(indexed, query) == before[i % len(QUERIES)], (limit, query)

    # An incremental run that cannot commit changes nothing; the next one with room completes it.
    retry = indexed / "src/payments/retry.py"
    original = retry.read_text()
    retry.write_text(original + "\n\ndef written_when_the_disk_was_full():\n    return 0\n")
    try:
        result = subprocess.run([*AMANMCP, "index", str(indexed)], capture_output=True, text=True, env=cli_env(),
                                timeout=120, preexec_fn=file_size_limit(4096))
        messages.append(one_error_line(result))
        marker = "written_when_the_disk_was_full"
        count = "SELECT COUNT(*) FROM chunks WHERE instr(content, ?) > 0"
        assert query_db(live_db(indexed), count, marker) == [(0,)]
        assert answer(indexed, QUERIES[0]) == before[0]
        after = amanmcp("index", str(indexed))
        assert after.returncode == 0, after.stderr
        assert query_db(live_db(indexed), count, marker) == [(1,)]
    finally:
        retry.write_text(original)
        assert amanmcp("index", str(indexed)).returncode == 0
    assert answers(indexed) == before
    print("\nfull disk: " + "\n  ".join(m[:160] for m in messages))


# `sh -c READ_ONLY_BIND sh FOLDER N ENTRY... COMMAND...`, inside `unshare --mount`: FOLDER read-only for COMMAND
# alone, but for its N ENTRIES (kept writable, as a chmod of the folder alone would leave them).
READ_ONLY_BIND = """
base=$1; n=$2; shift 2
mount --bind "$base" "$base" && mount -o remount,bind,ro "$base" || exit 97
while [ "$n" -gt 0 ]; do
    mount --bind "$1" "$1" && mount -o remount,bind,rw "$1" || exit 97
    shift; n=$((n - 1))
done
exec "$@"
"""


def read_only(base: Path, *args: str, writable: tuple[Path, ...] = ()) -> subprocess.CompletedProcess[str]:
    command = ["unshare", "--mount", "sh", "-c", READ_ONLY_BIND, "sh", str(base), str(len(writable)),
               *map(str, writable), *args]
    return subprocess.run(command, capture_output=True, text=True, env=cli_env(), timeout=120, stdin=subprocess.DEVNULL)


def _unshare_works(folder: Path) -> bool:
    if shutil.which("unshare") is None or shutil.which("mount") is None:
        return False
    return read_only(folder, "true").returncode == 0


@pytest.mark.slow
def test_read_only_index_folder_keeps_serving(indexed: Path, baseline: list[list[tuple[str, int, int]]]) -> None:
    base = indexed / ".amanmcp"
    before = baseline
    live = (base / "CURRENT").read_text()
    if os.geteuid() != 0:  # chmod stops writes for everyone but root
        base.chmod(0o555)
        try:
            failed = amanmcp("index", str(indexed), "--force")
            assert answers(indexed) == before  # searched while the folder is still read-only
        finally:
            base.chmod(0o755)
        messages = [one_error_line(failed)]
    else:
        if not _unshare_works(base):
            pytest.skip("running as root without `unshare --mount`: chmod cannot make the folder read-only")
        # As chmod 0555 would: the folder refuses new entries, what is in it stays writable.
        entries = tuple(sorted(base.iterdir()))
        messages = [one_error_line(read_only(base, *AMANMCP, "index", str(indexed), "--force", writable=entries))]
        assert "gen-" in messages[0]  # it got as far as the new generation's folder
        # A read-only mount: nothing in it can be written, not even the lock file.
        messages.append(one_error_line(read_only(base, *AMANMCP, "index", str(indexed), "--force")))
        # `serve` cannot take the write lock: it says so once and serves read-only (stdin is closed: it exits 0).
        served = read_only(base, *AMANMCP, "serve", str(indexed))
        no_traceback(served)
        assert served.returncode == 0, served.stderr[-2000:]
        warned = [line for line in served.stderr.splitlines() if "cannot write the index" in line]
        assert len(warned) == 1 and str(base) in warned[0] and "keep answering" in warned[0], served.stderr[-2000:]
        inside = read_only(base, *AMANMCP, "search", QUERIES[0], "--path", str(indexed), "--format", "json", "-n", "5")
        assert inside.returncode == 0, inside.stderr  # an index on a read-only mount still answers
        assert [r["path"] for r in json.loads(inside.stdout)["results"]] == [p for p, _, _ in before[0]]
    for message in messages:
        assert "cannot write the index" in message and str(base) in message
    assert (base / "CURRENT").read_text() == live and integrity(live_db(indexed)) == "ok"
    assert answers(indexed) == before
    print("\nread-only index folder: " + "\n  ".join(messages))
