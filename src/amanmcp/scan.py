"""Walk a project root and decide, file by file, what may be indexed and why not.

Rules: `.gitignore` files at every level, default excludes, no symlink that leaves the root,
no binaries, no files over the size limit, no undecodable text, and never a secret.
Every skip is counted by reason so the index summary can say what was left out:

- `secret`: a credential file by name or place (`SECRET_PATTERNS`, `SECRET_PATH_PATTERNS`), or by
  content (a cloud service-account key);
- `undecodable_name`: a file or folder whose name is not valid UTF-8 (a folder counts once; what
  is inside it is not visited). Such a name cannot be stored, shown or searched faithfully;
- `broken_link`: a symlink inside the root that leads nowhere (dangling, or a loop such as a -> b -> a);
- `binary`, `too_large`, `unreadable` here; `undecodable` (content not UTF-8) and `minified`
  (`looks_minified`) when the indexer reads the text.

Secrets inside ordinary files (cloud keys, tokens, private-key blocks, JWTs) are replaced in the
text before it is chunked, embedded or stored (`redact_secrets`); each line keeps its place.
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
    # gettext catalogues: every message once per language, data rather than code. In an
    # internationalised project they were 45% of the chunks (60% of the text), slowing the
    # index and crowding results. `index.exclude: ["!*.po"]` brings them back.
    "*.po", "*.pot",
)
SECRET_PATTERNS: tuple[str, ...] = (
    ".env", ".env.*", "*.env", "*.pem", "*.key", "*.p12", "*.pfx", "*.keystore", "*.jks",
    "id_rsa*", "id_dsa*", "id_ecdsa*", "id_ed25519*", ".netrc", ".npmrc", ".pypirc", ".htpasswd",
    "credentials", "credentials.*", "*credentials*.json", "secrets.*", "*.secret", "service-account*.json",
    ".amanmcp.yaml", ".mcp.json",  # our settings and MCP client config: both may hold API keys
    ".envrc", ".git-credentials", ".pgpass", ".boto", ".s3cfg", "*.tfvars", "*.tfvars.json", "*.tfstate",
    "*.tfstate.*", "kubeconfig", "kubeconfig.*", "*.kubeconfig", "*.ovpn", "*.ppk", "*.gpg", "secring.*",
)
# Credential files known by their place, not their name alone (matched against the relative path).
SECRET_PATH_PATTERNS: tuple[str, ...] = (
    ".kube/config", "*/.kube/config", ".docker/config.json", "*/.docker/config.json", ".aws/config",
    "*/.aws/config", ".ssh/*", "*/.ssh/*", ".gnupg/*", "*/.gnupg/*",
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
_SECRET_PATH = re.compile("|".join(fnmatch.translate(p) for p in SECRET_PATH_PATTERNS))


def is_secret(path: str) -> bool:
    """Whether a file (a name, or a relative path with forward slashes) is a credential file."""
    lowered = path.lower()
    return _SECRET.match(lowered.rsplit("/", 1)[-1]) is not None or _SECRET_PATH.match(lowered) is not None


def name_is_utf8(name: str) -> bool:
    """False for a name that was not valid UTF-8 on disk (Python keeps its bytes as lone surrogates)."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


# -- secrets inside ordinary files --------------------------------------------------------------

# (label, pattern, cheap substring that must be present for the pattern to be worth running).
# A pattern's group "keep", when present, is kept: only the value after it is replaced.
# Each pattern starts with its literal prefix (fast to find) and then looks behind it for a word
# character, so `xAKIA...` or `my_ghp_...` inside a longer word is left alone.
_TOKEN_PATTERNS: tuple[tuple[str, re.Pattern[str], str | None], ...] = (
    ("aws-access-key-id", re.compile(r"(?:AKIA|ASIA)(?<![A-Za-z0-9]....)[0-9A-Z]{16}(?![A-Za-z0-9])"), "IA"),
    ("aws-secret-key", re.compile(
        r"(?i)(?P<keep>aws_?secret_?access_?key[\"']?\s*(?::=|=>|[:=])\s*[\"']?)"
        r"[A-Za-z0-9/+=]{40}(?![A-Za-z0-9/+=])"), None),
    ("github-token", re.compile(r"gh[pousr]_(?<![A-Za-z0-9_]..._)[A-Za-z0-9]{36,255}(?![A-Za-z0-9_])"), "gh"),
    ("github-token", re.compile(r"github_pat_(?<![A-Za-z0-9_]github_pat_)[A-Za-z0-9_]{22,255}"), "github_pat_"),
    ("gitlab-token", re.compile(r"glpat-(?<![A-Za-z0-9_]glpat-)[A-Za-z0-9_-]{20,}"), "glpat-"),
    ("slack-token", re.compile(r"xox[abposr]-(?<![A-Za-z0-9_]....-)[A-Za-z0-9-]{10,}"), "xox"),
    ("google-api-key", re.compile(r"AIza(?<![A-Za-z0-9_]AIza)[0-9A-Za-z_-]{35}(?![A-Za-z0-9_-])"), "AIza"),
    ("stripe-key", re.compile(r"[sr]k_live_(?<![A-Za-z0-9_].k_live_)[0-9A-Za-z]{20,}"), "k_live_"),
    ("npm-token", re.compile(r"npm_(?<![A-Za-z0-9_]npm_)[A-Za-z0-9]{36}(?![A-Za-z0-9])"), "npm_"),
    ("jwt", re.compile(r"eyJ(?<![A-Za-z0-9_-]eyJ)[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*"), "eyJ"),
)
_KEY_BEGIN = re.compile(r"-----BEGIN ((?:[A-Z0-9]+ )*)PRIVATE KEY( BLOCK)?-----")
_KEY_BODY_LINE = re.compile(r"[\s\"'`,;+]*(?:[A-Za-z0-9+/=]{8,}|[A-Za-z-]+: .*)[\s\"'`,;+\\n]*")


def _marker(label: str) -> str:
    return f"[REDACTED:{label}]"


def _redact_key_blocks(text: str) -> tuple[str, int]:
    """Private-key blocks: the BEGIN and END lines stay, every line between them becomes a marker
    (so line numbers do not move); a block written on one line (`\\n` escapes) is redacted within
    it. A block without its END line loses the key-looking lines that follow its BEGIN line."""
    out: list[str] = []
    count = 0
    pos = 0
    while (begin := _KEY_BEGIN.search(text, pos)) is not None:
        end_marker = f"-----END {begin.group(1)}PRIVATE KEY{begin.group(2) or ''}-----"
        end = text.find(end_marker, begin.end())
        out.append(text[pos : begin.end()])
        count += 1
        if end >= 0:
            inner = text[begin.end() : end]
            out.append("\n".join(_marker("private-key") if seg.strip() else seg for seg in inner.split("\n")))
            out.append(end_marker)
            pos = end + len(end_marker)
            continue
        # No END: redact the rest of the BEGIN line and the following lines that look like key material.
        line_end = text.find("\n", begin.end())
        line_end = len(text) if line_end < 0 else line_end
        if text[begin.end() : line_end].strip():
            out.append(_marker("private-key"))
        pos = line_end
        while pos < len(text):
            nxt = text.find("\n", pos + 1)
            nxt = len(text) if nxt < 0 else nxt
            line = text[pos + 1 : nxt]
            if not line.strip() or not _KEY_BODY_LINE.fullmatch(line):
                break
            out.append("\n" + _marker("private-key"))
            pos = nxt
    out.append(text[pos:])
    return "".join(out), count


def redact_secrets(text: str) -> tuple[str, int]:
    """`text` with each embedded secret replaced by `[REDACTED:<kind>]`, and how many were replaced.

    Lines never move: a replacement keeps the text around it, and a multi-line private key keeps its
    line count. Kinds: aws-access-key-id, aws-secret-key, github-token, gitlab-token, slack-token,
    google-api-key, stripe-key, npm-token, jwt, private-key.
    """
    count = 0
    if "PRIVATE KEY" in text:
        text, count = _redact_key_blocks(text)
    for label, pattern, needle in _TOKEN_PATTERNS:
        if needle is not None and needle not in text:
            continue

        def replace(m: re.Match[str], label: str = label) -> str:
            keep = m.groupdict().get("keep") or ""
            return keep + _marker(label)

        text, n = pattern.subn(replace, text)
        count += n
    return text, count


_SERVICE_ACCOUNT = re.compile(r'"type"\s*:\s*"service_account"')


def secret_content(text: str) -> bool:
    """Files that are credentials whatever their name: a cloud service-account key (JSON)."""
    return '"private_key"' in text and _SERVICE_ACCOUNT.search(text) is not None


# -- minified files -----------------------------------------------------------------------------

MINIFIED_MIN_CHARS = 20_000  # smaller files are cheap to index whatever their shape
MINIFIED_AVG_LINE = 2_000  # characters per non-blank line; hand-written code and prose stay far below


def looks_minified(text: str) -> bool:
    """Bundled or minified output (one huge line, or a few): noise to a search, and a lot of chunks.

    Judged on the decoded text: at least MINIFIED_MIN_CHARS long with an average non-blank line over
    MINIFIED_AVG_LINE characters. (`*.min.js`, `*.min.css` and `*.map` are already excluded by name.)
    """
    if len(text) < MINIFIED_MIN_CHARS:
        return False
    lines = sum(1 for line in text.splitlines() if line.strip())
    return len(text) / max(lines, 1) > MINIFIED_AVG_LINE


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
        for rel, abspath, st in self._walk(result.skipped):
            if is_secret(rel):
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

    def _walk(self, skipped: Counter[str]) -> Iterator[tuple[str, Path, os.stat_result]]:
        """Yield (relative path, absolute path, stat) of regular files not ignored.

        Names that are not UTF-8 are counted in `skipped` and never yielded nor entered."""
        stack: list[tuple[Path, str, list[tuple[str, pathspec.GitIgnoreSpec]]]] = [(self.root, "", [])]
        while stack:
            directory, rel_dir, specs = stack.pop()
            specs = specs + self._gitignore(directory, rel_dir)
            try:
                entries = sorted(os.scandir(directory), key=lambda e: e.name)
            except OSError:
                continue
            for entry in entries:
                if not name_is_utf8(entry.name):
                    skipped["undecodable_name"] += 1
                    continue
                rel = f"{rel_dir}{entry.name}"
                try:
                    is_dir = entry.is_dir(follow_symlinks=True)
                    is_link = entry.is_symlink()
                except OSError:  # a symlink loop (ELOOP), or an entry gone since it was listed
                    if os.path.islink(entry.path):
                        skipped["broken_link"] += 1
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
                except OSError:  # a dangling symlink, or a file gone since it was listed
                    if is_link:
                        skipped["broken_link"] += 1
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
        except (OSError, RuntimeError):  # RuntimeError: a symlink loop, on Python < 3.13
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
