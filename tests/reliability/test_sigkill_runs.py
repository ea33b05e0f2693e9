"""SIGKILL at seeded random points of full (`index --force`) and incremental `index` runs.

After every kill: the live generation passes `PRAGMA integrity_check`, an incremental run's edits
are in the index all or none, `amanmcp search` answers (from the previous index, or the new one
if it was published before the kill), and the next `index` completes and leaves one generation.
"""

from __future__ import annotations

import random
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest
from attack import (
    AMANMCP,
    amanmcp,
    bulk_module,
    cli_env,
    integrity,
    live_db,
    no_traceback,
    query_db,
    search_json,
    write_bulk,
)

FILES = 1000
EDITED = 300  # files rewritten before each incremental run
FULL_RUNS, INCREMENTAL_RUNS = 14, 6
SEED = 20261130


def timed(*args: str) -> float:
    started = time.perf_counter()
    result = amanmcp(*args)
    assert result.returncode == 0, result.stderr[-2000:]
    return time.perf_counter() - started


def edit(paths: list[Path], rng: random.Random, tag: str) -> list[str]:
    """Rewrite EDITED files so each defines a function named with `tag`; answers their relative names."""
    chosen = rng.sample(range(100, FILES), EDITED)  # pkg00 stays as it is: the probe query's file
    for i in chosen:
        paths[i].write_text(bulk_module(i, tag))
    return [f"pkg{i // 100:02d}/mod_{i:04d}.py" for i in chosen]


def tagged(root: Path, tag: str) -> int:
    """How many indexed files define the function tagged `tag` (all or none: a run commits once)."""
    rows = query_db(live_db(root), "SELECT COUNT(DISTINCT path) FROM chunks WHERE instr(content, ?) > 0", tag)
    return int(rows[0][0])


@pytest.mark.slow
def test_sigkill_at_random_points(tmp_path: Path) -> None:
    root = tmp_path / "bulk"
    paths = write_bulk(root, FILES)
    assert amanmcp("index", str(root)).returncode == 0
    durations = {"full": timed("index", str(root), "--force")}
    rng = random.Random(SEED)
    edit(paths, rng, "_warm")
    durations["incremental"] = timed("index", str(root))
    base = root / ".amanmcp"

    kinds = ["full"] * FULL_RUNS + ["incremental"] * INCREMENTAL_RUNS
    rng.shuffle(kinds)
    outcomes: Counter[str] = Counter()
    intact = 0
    for run, kind in enumerate(kinds):
        tag = f"_kill{run}"
        edited = edit(paths, rng, tag) if kind == "incremental" else []
        before = (base / "CURRENT").read_text()
        # From just after start-up (~0.3 s of imports) to just past the run's measured end.
        delay = rng.uniform(0.25, 1.05) * durations[kind]
        args = ["index", str(root), *(["--force"] if kind == "full" else [])]
        proc = subprocess.Popen([*AMANMCP, *args], env=cli_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                text=True)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        _, stderr = proc.communicate(timeout=60)
        assert "Traceback" not in stderr, stderr[-2000:]
        if proc.returncode == 0:
            outcome = "finished before the kill"
        elif kind == "full":
            outcome = "killed, new index published" if (base / "CURRENT").read_text() != before else "killed, old index"
        else:
            count = tagged(root, tag)
            assert count in (0, len(edited)), f"run {run}: {count} of {len(edited)} edits committed: not atomic"
            outcome = "killed, edits committed" if count else "killed, old index"
        outcomes[f"{kind}: {outcome}"] += 1

        db = live_db(root)
        found = search_json(root, "bulk_function_0042", "-n", "3")
        assert found["results"] and found["results"][0]["path"] == "pkg00/mod_0042.py", (run, kind, delay)
        assert integrity(db) == "ok", (run, kind, delay)

        after = amanmcp("index", str(root))
        no_traceback(after)
        assert after.returncode == 0, (run, after.stderr[-2000:])
        assert len(list(base.glob("gen-*"))) == 1  # what the killed run left behind is cleaned up
        if edited:
            assert tagged(root, tag) == len(edited)  # the next run completed the interrupted one
        intact += 1

    total = FULL_RUNS + INCREMENTAL_RUNS
    print(f"\nSIGKILL runs leaving an intact, searchable index: {intact}/{total} "
          f"(full ~{durations['full']:.2f}s, incremental ~{durations['incremental']:.2f}s); outcomes:")
    for outcome, count in sorted(outcomes.items()):
        print(f"  {count:>2} × {outcome}")
    assert intact == total
