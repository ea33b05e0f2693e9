"""What the reliability suite shares: `amanmcp` run as a user runs it, on the quick hashed static backend.

The embedder does not matter to these attacks (crashes, kills, full disks, hostile names and input),
so every command runs with `AMANMCP_EMBEDDER=static AMANMCP_STATIC_MODEL=hashed`: no model to load,
thousands of chunks a second. The environment is built here, not inherited: module-scoped fixtures
run before conftest's per-test isolation, and the developer's own AMANMCP_* must never leak in.
"""

from __future__ import annotations

import functools
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

AMANMCP = [sys.executable, "-m", "amanmcp"]
SCRIPT = str(Path(sys.executable).parent / "amanmcp")  # the console script, for `serve` under an MCP client


@functools.cache
def _config_home() -> str:
    return tempfile.mkdtemp(prefix="amanmcp-reliability-xdg-")


def cli_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AMANMCP_")}
    env.update(
        AMANMCP_EMBEDDER="static", AMANMCP_STATIC_MODEL="hashed", HF_HUB_OFFLINE="1",
        XDG_CONFIG_HOME=_config_home(), PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


def amanmcp(*args: str, timeout: float = 180, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    kwargs.setdefault("env", cli_env())
    return subprocess.run([*AMANMCP, *args], capture_output=True, text=True, timeout=timeout, **kwargs)


def no_traceback(result: subprocess.CompletedProcess[str]) -> None:
    output = result.stdout + result.stderr
    assert "Traceback" not in output, output[-3000:]


def search_json(root: Path, query: str, *extra: str) -> dict[str, Any]:
    result = amanmcp("search", query, "--path", str(root), "--format", "json", *extra)
    no_traceback(result)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def live_db(root: Path) -> Path:
    name = (root / ".amanmcp" / "CURRENT").read_text().strip()
    return root / ".amanmcp" / name / "index.db"


def integrity(db: Path) -> str:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return "; ".join(row[0] for row in conn.execute("PRAGMA integrity_check"))
    finally:
        conn.close()


def query_db(db: Path, sql: str, *params: object) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def bulk_module(i: int, tag: str = "") -> str:
    """One small Python module: a function and a class, named after `i` (and `tag`, when edited)."""
    return (
        f'"""Module {i}{tag}."""\n\n\n'
        f"def bulk_function_{i:04d}{tag}(value):\n"
        f'    """Return value plus {i}."""\n'
        f"    return value + {i}\n\n\n"
        f"class BulkClass{i:04d}:\n"
        f"    def method_{i}(self):\n"
        f"        return {i}\n"
    )


def write_bulk(root: Path, files: int) -> list[Path]:
    paths = []
    for i in range(files):
        path = root / f"pkg{i // 100:02d}" / f"mod_{i:04d}.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(bulk_module(i))
        paths.append(path)
    return paths
