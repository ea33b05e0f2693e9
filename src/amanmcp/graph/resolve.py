"""Resolving the graph's recorded targets (`module` spec + qualified name) to definitions, at query time.

Resolution reads only the index (never the disk), follows re-exports (`from .app import Server` in a
package `__init__`, `export { x } from './x'`, `export default`), star imports, Python submodules
and base classes, and answers one of: a definition, `MISSING` (the module is known and holds no
such definition: a variable, a module), `EXTERNAL` (outside the project), or None (not known: only
the name can be matched). Caches live until the index changes (the store's `graph_version`).
"""

from __future__ import annotations

import json
import posixpath
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from amanmcp.chunk.languages import detect_language
from amanmcp.store.db import GRAPH_DEF_COLUMNS

if TYPE_CHECKING:
    from amanmcp.store.base import GraphStore

MAX_HOPS = 8
CLASS_KINDS = frozenset({"class", "struct", "interface", "trait", "impl", "enum"})
_JS_EXTS = (".ts", ".tsx", ".js", ".jsx", ".mjs", ".cjs", ".mts", ".cts", ".d.ts")
_FAMILY = {"typescript": "js", "tsx": "js", "javascript": "js", "c": "c", "cpp": "c"}


class _Sentinel:
    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


MISSING: Final = _Sentinel("MISSING")
EXTERNAL: Final = _Sentinel("EXTERNAL")


@dataclass(frozen=True, slots=True)
class Def:
    path: str
    qname: str
    name: str
    kind: str
    start_line: int
    end_line: int
    line: int
    parent: str | None
    bases: tuple[tuple[str, str], ...]
    signature: str
    doc: str

    @property
    def key(self) -> tuple[str, str]:
        return self.path, self.qname

    @property
    def is_member(self) -> bool:
        """Reached through an object (`x.name`): methods (Go's `T.M` too) and members of classes;
        a function nested in a function is called by its bare name."""
        return self.kind == "method" or (self.parent is not None and self.kind != "function")


DEF_COLUMNS = GRAPH_DEF_COLUMNS  # the order of a definition row, as `to_def` reads it


def to_def(row: tuple) -> Def:  # type: ignore[type-arg]
    bases = tuple((m, n) for m, n in json.loads(row[8]))
    return Def(row[0], row[1], row[2], row[3], row[4], row[5], row[6], row[7], bases, row[9], row[10])


def family(path: str) -> str:
    """Languages whose files may reference each other's names (JS and TS; C and C++)."""
    language = detect_language(path) or ""
    return _FAMILY.get(language, language)


Resolved = Def | _Sentinel | None


class Resolver:
    """One store's view of the graph, with caches until the index changes."""

    def __init__(self, store: GraphStore, root_name: str) -> None:
        self.store = store
        self.root_name = root_name
        self._version: int | None = None
        self._clear()

    def _clear(self) -> None:
        self._files: set[str] | None = None
        self._dirs: dict[str, list[str]] | None = None
        self._py_roots: list[str] | None = None
        self._modules: dict[str, tuple[str, ...]] = {}
        self._defs: dict[tuple[str, str], Def | None] = {}
        self._imports: dict[str, dict[str, tuple[str, str]]] = {}
        self._stars: dict[str, list[str]] = {}
        self._resolved: dict[tuple[str, str], Resolved] = {}
        self.name_counts: dict[str, int] = {}

    @property
    def version(self) -> int | None:
        """The store's `graph_version` the caches were filled at."""
        return self._version

    def refresh(self) -> None:
        """Drop the caches when the index was written since they were filled."""
        version = self.store.graph_version()
        if version != self._version:
            self._version = version
            self._clear()

    # -- files and modules --------------------------------------------------------------------

    @property
    def files(self) -> set[str]:
        if self._files is None:
            self._files = set(self.store.file_stats())
        return self._files

    def _dir_files(self) -> dict[str, list[str]]:
        if self._dirs is None:
            dirs: dict[str, list[str]] = {}
            for path in self.files:
                dirs.setdefault(posixpath.dirname(path), []).append(path)
            self._dirs = dirs
        return self._dirs

    def python_roots(self) -> list[str]:
        """Folders that hold top-level packages: where `import a.b` starts looking."""
        if self._py_roots is None:
            roots = {"", "src", "lib"}
            for path in self.files:
                if path.endswith("__init__.py"):
                    top = posixpath.dirname(path)
                    while top and posixpath.join(posixpath.dirname(top), "__init__.py") in self.files:
                        top = posixpath.dirname(top)
                    roots.add(posixpath.dirname(top))
            self._py_roots = sorted(roots, key=len)
        return self._py_roots

    def _stem_files(self, stem: str) -> tuple[str, ...]:
        files = self.files
        if stem in files and "." in posixpath.basename(stem):
            return (stem,)
        base = stem[:-3] if stem.endswith((".js", ".jsx")) else stem
        candidates = [f"{stem}.py", f"{stem}/__init__.py" if stem else "__init__.py", f"{stem}.pyi"]
        candidates += [base + ext for ext in _JS_EXTS] + [f"{stem}/index{ext}" for ext in _JS_EXTS]
        candidates += [f"{stem}.rs", f"{stem}/mod.rs"]
        for candidate in candidates:
            if candidate in files:
                return (candidate,)
        return ()

    def module_files(self, spec: str) -> tuple[str, ...]:
        if spec not in self._modules:
            self._modules[spec] = self._module_files(spec)
        return self._modules[spec]

    def _module_files(self, spec: str) -> tuple[str, ...]:
        kind, _, value = spec.partition(":")
        if kind == "file":
            return (value,) if value in self.files else ()
        if kind == "rel":
            return self._stem_files(value)
        if kind == "py":
            parts = value.split(".")
            if "__init__.py" in self.files and parts[0] == self.root_name:  # the project is the package
                found = self._stem_files("/".join(parts[1:]))
                if found:
                    return found
            for root in self.python_roots():
                found = self._stem_files(posixpath.join(root, *parts))
                if found:
                    return found
            return ()
        if kind == "dir":
            return tuple(sorted(p for p in self._dir_files().get(value, []) if p.endswith(".go")))
        if kind == "go":
            best = None
            for folder, paths in self._dir_files().items():
                if folder and ("/" + value).endswith("/" + folder) and any(p.endswith(".go") for p in paths) \
                        and (best is None or len(folder) > len(best)):
                    best = folder
            return self.module_files("dir:" + best) if best is not None else ()
        if kind == "rs":
            own_crate = self.root_name.replace("-", "_")  # `use my_crate::x` from the crate's tests and examples
            segments = [s for s in value.split("::") if s not in ("crate", "self", "super", "")]
            if len(segments) > 1 and segments[0] == own_crate:
                segments = segments[1:]
            if not segments:
                return ()
            tail = "/".join(segments)
            hits = sorted(p for p in self.files if p.endswith((f"/{tail}.rs", f"/{tail}/mod.rs"))
                          or p in (f"{tail}.rs", f"{tail}/mod.rs"))
            return tuple(hits[:1])
        return ()

    # -- rows -------------------------------------------------------------------------------------

    def def_at(self, path: str, qname: str) -> Def | None:
        key = (path, qname)
        if key not in self._defs:
            rows = self.store.graph_defs(path=path, qname=qname)
            self._defs[key] = to_def(rows[0]) if rows else None
        return self._defs[key]

    def imports_of(self, path: str) -> dict[str, tuple[str, str]]:
        if path not in self._imports:
            found: dict[str, tuple[str, str]] = {}
            stars: list[str] = []
            for _, local, module, name, _ in self.store.graph_imports(path):
                if local == "*":
                    stars.append(module)
                else:
                    found.setdefault(local, (module, name))
            self._imports[path] = found
            self._stars[path] = stars
        return self._imports[path]

    def count_name(self, name: str) -> int:
        if name not in self.name_counts:
            self.name_counts[name] = self.store.graph_name_count(name)
        return self.name_counts[name]

    # -- resolution ---------------------------------------------------------------------------------

    def resolve(self, module: str, target: str, hops: int = 0) -> Resolved:
        """The definition `target` names inside `module`, following imports; see the module doc."""
        if not target:
            return MISSING  # a module, not a definition
        key = (module, target)
        if key in self._resolved:
            return self._resolved[key]
        self._resolved[key] = None  # a cycle of re-exports resolves to "not known"
        found = self._resolve(module, target, hops) if hops < MAX_HOPS else None
        self._resolved[key] = found
        return found

    def _resolve(self, module: str, target: str, hops: int) -> Resolved:
        files = self.module_files(module)
        if not files:
            kind, _, value = module.partition(":")
            if kind == "py" and "." in value:  # `a.b` may be a name in package `a`
                head, _, last = value.rpartition(".")
                return self.resolve("py:" + head, f"{last}.{target}", hops + 1)
            if kind == "rs" and "::" in value.strip(":"):
                head, _, last = value.rpartition("::")
                return self.resolve("rs:" + head, f"{last}.{target}", hops + 1)
            if kind in ("ext", "py", "go", "rs"):
                return EXTERNAL
            return None
        answers = [self._resolve_in(path, target, hops) for path in files]
        for answer in answers:
            if isinstance(answer, Def):
                return answer
        return None if any(a is None for a in answers) else MISSING

    def _resolve_in(self, path: str, target: str, hops: int) -> Resolved:
        found = self.def_at(path, target)
        if found is not None:
            return found
        head, _, rest = target.partition(".")
        container = self.def_at(path, head) if rest else None
        if container is not None:
            return self.member(container, rest, hops + 1) if container.kind in CLASS_KINDS else MISSING
        imports = self.imports_of(path)
        if head in imports:
            module, name = imports[head]
            joined = ".".join(p for p in (name, rest) if p)
            if not name and rest:  # `import pkg.mod as m; m.f`
                return self.resolve(module, rest, hops + 1)
            return self.resolve(module, joined, hops + 1) if joined else MISSING
        if path.endswith("__init__.py"):  # a submodule of this package
            sub = "rel:" + posixpath.join(posixpath.dirname(path), head)
            if self.module_files(sub):
                return self.resolve(sub, rest, hops + 1) if rest else MISSING
        unknown = False
        for star in self._stars.get(path, []):
            answer = self.resolve(star, target, hops + 1)
            if isinstance(answer, Def):
                return answer
            unknown = unknown or answer is None
        return None if unknown else MISSING

    def member(self, cls: Def, attr: str, hops: int = 0) -> Resolved:
        """`attr` on class `cls`: its own member, else the first base that has it (depth first)."""
        found = self.def_at(cls.path, f"{cls.qname}.{attr}")
        if found is not None:
            return found
        if hops >= MAX_HOPS:
            return None
        head, _, rest = attr.partition(".")
        typed = self.imports_of(cls.path).get(f"{cls.qname}.{head}") if rest else None
        if typed is not None:  # `self.app.x` where `self.app` holds a Server
            return self.resolve(typed[0], f"{typed[1]}.{rest}", hops + 1)
        unknown = False
        for module, name in cls.bases:
            base = self.resolve(module, name, hops + 1)
            if isinstance(base, Def) and base.kind in CLASS_KINDS:
                answer = self.member(base, attr, hops + 1)
                if isinstance(answer, Def):
                    return answer
                unknown = unknown or answer is None
            elif base is None or base is EXTERNAL:
                unknown = True  # an attribute may come from a base we cannot see
        return None if unknown else MISSING
