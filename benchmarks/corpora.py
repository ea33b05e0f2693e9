"""The bench corpora, ready to index: pip wheels unpacked once, vendored folders copied to a scratch cache.

`shared/bench/corpora.json` names pinned pip packages (the package folder inside the wheel);
`shared/bench/corpora-multilang.json` names folders under `shared/bench/corpora/` by `path`.
`shared/` is read-only (in CI too), and an index is written inside the folder it indexes, so a
vendored folder is copied to the cache before indexing; a changed source is copied afresh.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from dataclasses import dataclass, replace
from pathlib import Path

SHARED_BENCH = Path(__file__).resolve().parents[2] / "shared" / "bench"
CACHE = Path(os.environ.get("AMANMCP_BENCH_CACHE", Path.home() / ".cache" / "amanmcp-bench"))
FILES = ("corpora.json", "corpora-multilang.json")


@dataclass(frozen=True, slots=True)
class Corpus:
    name: str
    root_name: str  # the folder name query targets start with
    queries: Path
    language: str
    pip: str | None = None  # "flask==3.1.2": the wheel's `root_name` folder
    vendored: Path | None = None  # a folder under shared/bench
    sdist: bool = False  # the whole source distribution of `pip`: docs, tests, examples around the package

    def prepare(self) -> Path:
        """The folder to index, fetched or copied on first use."""
        if self.pip is not None and self.sdist:
            return unpack_sdist(self.pip)
        if self.pip is not None:
            return unpack(self.pip, self.root_name)
        assert self.vendored is not None
        return copy_vendored(self.vendored, self.name, self.root_name)


def corpora() -> list[Corpus]:
    """Every corpus of both bench files, pip ones first."""
    out = []
    for name in FILES:
        file = SHARED_BENCH / name
        if not file.is_file():
            continue
        for entry in json.loads(file.read_text()):
            out.append(Corpus(
                name=entry["name"], root_name=entry["root"], queries=SHARED_BENCH / entry["queries"],
                language=entry.get("language", "python"), pip=entry.get("pip"),
                vendored=SHARED_BENCH / entry["path"] if "path" in entry else None,
            ))
    return out


def whole_repositories() -> list[Corpus]:
    """The pip corpora as whole repositories: each package's sdist (docs, tests, examples) at its root.

    The same graded queries apply (targets match by path suffix: `flask/app.py` is found as
    `src/flask/app.py`), so the gap between a corpus and its whole-repo twin measures how much the
    files around the code cost: the situation of a user indexing their repository at its root.
    """
    return [replace(c, name=f"{c.name}-repo", sdist=True) for c in corpora() if c.pip is not None]


def _fingerprint(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        stat = path.stat()
        digest.update(f"{path.relative_to(folder)}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def copy_vendored(source: Path, name: str, root_name: str) -> Path:
    """A writable copy of `source` at CACHE/vendored/NAME/ROOT (its index, if any, kept when unchanged)."""
    target = CACHE / "vendored" / name / root_name
    stamp = target.parent / "source.sha256"
    fingerprint = _fingerprint(source)
    if target.is_dir() and stamp.is_file() and stamp.read_text() == fingerprint:
        return target
    shutil.rmtree(target.parent, ignore_errors=True)
    target.parent.mkdir(parents=True)
    shutil.copytree(source, target, symlinks=True)
    for path in [target, *target.rglob("*")]:  # shared/ is read-only: the copy must not be
        path.chmod(path.stat().st_mode | 0o200)
    stamp.write_text(fingerprint)
    return target


def _download(requirement: str, folder: Path, kind: str) -> Path:
    """`pip download` one pinned distribution (a wheel or an sdist, by `kind`) into `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", kind, "-d", str(folder),
                    requirement], check=True)
    return folder


def unpack(requirement: str, package_root: str) -> Path:
    """Folder of `package_root` inside the wheel of `requirement` (e.g. "flask==3.1.2", "flask")."""
    target = CACHE / requirement.replace("==", "-")
    root = target / package_root
    if root.is_dir():
        return root
    wheels = _download(requirement, target / "wheels", "--only-binary=:all:")
    for wheel in wheels.glob("*.whl"):
        with zipfile.ZipFile(wheel) as zf:
            zf.extractall(target / "unpacked")
    (target / "unpacked" / package_root).rename(root)
    return root


def unpack_sdist(requirement: str) -> Path:
    """The unpacked source distribution of `requirement` (its top folder, e.g. flask-3.1.2)."""
    target = CACHE / "sdist" / requirement.replace("==", "-")
    done = [p for p in target.glob("*") if p.is_dir() and p.name != "archives"] if target.is_dir() else []
    if done:
        return done[0]
    archives = _download(requirement, target / "archives", "--no-binary=:all:")
    for archive in archives.glob("*.tar.gz"):
        with tarfile.open(archive) as tf:
            tf.extractall(target, filter="data")
    return next(p for p in target.glob("*") if p.is_dir() and p.name != "archives")
