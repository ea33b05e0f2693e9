"""Walk a project root and decide, file by file, what may be indexed and why not.

Rules: `.gitignore` files at every level, default excludes, no symlink that leaves the root,
no binaries, no files over the size limit, no undecodable text, and never a secret.
Every skip is counted by reason so the index summary can say what was left out.
"""

from __future__ import annotations

import fnmatch
import os
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pathspec

DEFAULT_EXCLUDES: tuple[str, ...] = (
    ".git/", ".hg/", ".svn/", ".amanmcp/", "node_modules/", "vendor/", "__pycache__/", "dist/",
    "build/", ".venv/", "venv/", ".tox/", ".mypy_cache/", ".pytest_cache/", ".ruff_cache/",
    "*.min.js", "*.min.css", "*.map", "*.lock", "package-lock.json", "yarn.lock", "pnpm-lock.yaml",
    "poetry.lock", "Cargo.lock", "go.sum", "uv.lock", "composer.lock", "Gemfile.lock", "*.pyc",
    ".gitignore", ".gitattributes", ".DS_Store",
)
SECRET_PATTERNS: tuple[str, ...] = (
    ".env", ".env.*", "*.env", "*.pem", "*.key", "*.p12", "*.pfx", "*.keystore", "*.jks",
    "id_rsa*", "id_dsa*", "id_ecdsa*", "id_ed25519*", ".netrc", ".npmrc", ".pypirc", ".htpasswd",
    "credentials", "credentials.*", "*credentials*.json", "secrets.*", "*.secret", "service-account*.json",
    ".amanmcp.yaml", ".mcp.json",  # our settings and MCP client config: both may hold API keys
)
BINARY_SNIFF_BYTES = 8192


@dataclass(frozen=True, slots=True)
class ScannedFile:
    path: str  # relative, forward slashes
    abspath: Path
    size: int
    mtime: float


@dataclass(slots=True)
class ScanResult:
    files: list[ScannedFile] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)


_SECRET = re.compile("|".join(fnmatch.translate(p) for p in SECRET_PATTERNS))  # one match a file, not 25


def is_secret(name: str) -> bool:
    return _SECRET.match(name.lower()) is not None


def read_text(path: Path) -> str | None:
    """Decoded content, or None for a binary or undecodable file."""
    data = path.read_bytes()
    if b"\x00" in data[:BINARY_SNIFF_BYTES]:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def sniff_skip_reason(path: Path, size: int, max_file_size: int) -> str | None:
    """Cheap checks on one file's bytes; the full decode happens at chunk time."""
    if size > max_file_size:
        return "too_large"
    with path.open("rb") as fh:
        head = fh.read(BINARY_SNIFF_BYTES)
    if b"\x00" in head:
        return "binary"
    return None


class Scanner:
    def __init__(self, root: Path, *, max_file_size: int = 2 * 1024 * 1024, exclude: list[str] | None = None):
        self.root = root.resolve()
        self.max_file_size = max_file_size
        self.excludes = pathspec.GitIgnoreSpec.from_lines([*DEFAULT_EXCLUDES, *(exclude or [])])

    def scan(self) -> ScanResult:
        result = ScanResult()
        for rel, abspath, st in self._walk():
            name = rel.rsplit("/", 1)[-1]
            if is_secret(name):
                result.skipped["secret"] += 1
                continue
            try:
                reason = sniff_skip_reason(abspath, st.st_size, self.max_file_size)
            except OSError:
                reason = "unreadable"
            if reason:
                result.skipped[reason] += 1
                continue
            result.files.append(ScannedFile(rel, abspath, st.st_size, st.st_mtime))
        result.files.sort(key=lambda f: f.path)
        return result

    def _walk(self) -> Iterator[tuple[str, Path, os.stat_result]]:
        """Yield (relative path, absolute path, stat) of regular files not ignored."""
        stack: list[tuple[Path, str, list[tuple[str, pathspec.GitIgnoreSpec]]]] = [(self.root, "", [])]
        while stack:
            directory, rel_dir, specs = stack.pop()
            specs = specs + self._gitignore(directory, rel_dir)
            try:
                entries = sorted(os.scandir(directory), key=lambda e: e.name)
            except OSError:
                continue
            for entry in entries:
                rel = f"{rel_dir}{entry.name}"
                try:
                    is_dir = entry.is_dir(follow_symlinks=True)
                    is_link = entry.is_symlink()
                except OSError:
                    continue
                probe = rel + "/" if is_dir else rel
                if self.excludes.match_file(probe) or _ignored(specs, probe):
                    continue
                if is_link and not self._inside_root(Path(entry.path)):
                    continue
                if is_dir:
                    if is_link:  # a link to a folder inside the root is indexed under its real path
                        continue
                    stack.append((Path(entry.path), rel + "/", specs))
                    continue
                try:
                    st = os.stat(entry.path)
                except OSError:
                    continue
                if entry.is_file(follow_symlinks=True):
                    yield rel, Path(entry.path), st

    def _gitignore(self, directory: Path, rel_dir: str) -> list[tuple[str, pathspec.GitIgnoreSpec]]:
        gi = directory / ".gitignore"
        if not gi.is_file():
            return []
        try:
            lines = gi.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            return []
        return [(rel_dir, pathspec.GitIgnoreSpec.from_lines(lines))]

    def _inside_root(self, path: Path) -> bool:
        try:
            return path.resolve().is_relative_to(self.root)
        except OSError:
            return False


def _ignored(specs: list[tuple[str, pathspec.GitIgnoreSpec]], rel: str) -> bool:
    """A path is ignored if the nearest .gitignore that has an opinion says so (last match wins)."""
    ignored = False
    for base, spec in specs:
        if not rel.startswith(base):
            continue
        res = spec.check_file(rel[len(base):])
        if res.include is not None:
            ignored = res.include
    return ignored
