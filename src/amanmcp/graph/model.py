"""What the graph holds for one file: definitions, references (call sites included) and imports.

Facts are file-local so that an incremental run replaces one file's rows and nothing else; names
that come from other files are recorded as a *target* (`module` spec + qualified name) and
resolved to a definition when a query asks (`graph.resolve`).

Module specs (how a file names another module, kept as written so no index-time lookup goes stale):
`file:PATH` this very file, `rel:STEM` a path stem relative to the project root (Python relative
imports, JS/TS `./x`, Rust `mod x;`), `py:a.b` an absolute Python module, `go:import/path`,
`dir:DIR` a Go package by folder, `rs:a::b` a Rust path, `ext:NAME` a package outside the project.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Definition:
    qname: str  # "Router.add": enclosing definitions joined by dots
    name: str  # "route"
    kind: str  # function, method, class, struct, interface, ...
    start_line: int  # 1-based, inclusive: the whole definition (decorators included)
    end_line: int
    line: int  # the line of its name
    parent: str | None = None  # qualified name of the enclosing definition
    bases: tuple[tuple[str, str], ...] = ()  # (module spec, qualified name) of each base class
    signature: str = ""
    doc: str = ""


@dataclass(frozen=True, slots=True)
class Reference:
    """One occurrence of a name that is not its definition."""

    name: str
    line: int  # 1-based
    kind: str  # call | ref | import
    scope: str | None  # qualified name of the enclosing definition (None: module level)
    module: str | None = None  # where the name was found to come from; None: only the name is known
    target: str | None = None  # qualified name inside `module`
    member: bool = False  # reached through an object (`x.name`): may only be a member of something


@dataclass(frozen=True, slots=True)
class Import:
    """A module-level binding made by an import (or a re-export): what `local` means in this file."""

    local: str  # bound name; "*" for a star import/re-export; "default" for `export default x`
    module: str  # module spec
    name: str  # qualified name in that module; "" for the module itself
    line: int


@dataclass(slots=True)
class FileGraph:
    defs: list[Definition] = field(default_factory=list)
    refs: list[Reference] = field(default_factory=list)
    imports: list[Import] = field(default_factory=list)
