"""graph_query: references, callers, callees, explain_symbol and impact_analysis over the stored graph.

A subject is a name (`Router`), a qualified name (`Router.add`), `path:name`, `path:line` or
(subject_type path, or auto when it names an indexed file) a file. The answer never guesses: one
definition is `resolved`; several are `disambiguation_required` with the candidates and no
results; none is `subject_not_found` with near misses.

Each reference is `exact` when its name was resolved to the subject through an import, a definition
in scope, `self`, a class or a module (`graph.resolve`), and `name` when it could not be resolved
at all and the subject is the only definition in the project with that name. Occurrences resolved
to something else are never listed; unresolved ones of a name defined more than once are counted
in `warnings`, not listed.
"""

from __future__ import annotations

import difflib
import posixpath
import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel

from amanmcp.errors import UsageError
from amanmcp.graph.resolve import Def, Resolver, family, to_def

if TYPE_CHECKING:
    from amanmcp.store.base import GraphStore

MODES = ("find_references", "callers", "callees", "explain_symbol", "impact_analysis")
SUBJECT_TYPES = ("auto", "symbol", "path")
MAX_DEPTH = 5
MAX_NODES = 500
_LINE_SUBJECT = re.compile(r"^(?P<path>.+):(?P<line>\d+)$")
_NAME_SUBJECT = re.compile(r"^(?P<path>[^:]+):(?P<name>[A-Za-z_$][\w$.]*)$")


_TEST_PATH = re.compile(r"(^|/)(tests?|__tests__|spec)/|(^|/)test_[^/]*$|_test\.\w+$|\.(test|spec)\.\w+$|Tests?\.\w+$")


def is_test_path(path: str) -> bool:
    """Test files by the conventions of the languages indexed (test_x.py, x_test.go, x.spec.ts, tests/)."""
    return bool(_TEST_PATH.search(path))


class GraphError(UsageError, ValueError):
    """A graph request that cannot be answered as asked (bad mode, depth, subject)."""


class Candidate(BaseModel):
    """A definition a subject may mean."""

    symbol: str  # qualified name
    kind: str
    path: str
    start_line: int
    end_line: int


class GraphItem(BaseModel):
    """One result: a definition, or an occurrence reported at its own line (start_line = end_line)."""

    path: str
    start_line: int
    end_line: int
    symbol: str | None  # the enclosing definition of an occurrence; the definition's own name otherwise
    symbol_type: str | None
    kind: str  # definition | reference | call | import | callee | member
    confidence: Literal["exact", "name"] | None = None
    depth: int = 1  # hops from the subject (callers/callees/impact); 0 for the subject itself
    content: str  # the line of the occurrence, or the definition's signature
    target: str | None = None  # callee/impact: the definition it reaches ("path:line symbol")


class SymbolDetails(BaseModel):
    signature: str
    doc: str
    members: list[Candidate]
    bases: list[str]
    callers: int
    callees: int
    references: int
    tests: list[str]  # test functions (or test files) that use it: "path:line symbol"


class GraphAnswer(BaseModel):
    query: str
    mode: str
    resolution: Literal["resolved", "disambiguation_required", "subject_not_found"]
    subject: Candidate | None
    results: list[GraphItem]
    candidates: list[Candidate]
    warnings: list[str]
    details: SymbolDetails | None = None
    truncated: bool = False  # results left out (max_nodes or max_tokens); warnings say which
    took_ms: float = 0.0


@dataclass(slots=True)
class _Occurrence:
    path: str
    line: int
    name: str
    kind: str
    scope: str | None
    confidence: str


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise GraphError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
    return mode


def check_subject_type(subject_type: str) -> str:
    if subject_type not in SUBJECT_TYPES:
        raise GraphError(f"subject_type must be one of {', '.join(SUBJECT_TYPES)}, not {subject_type!r}")
    return subject_type


def _bounded(name: str, value: int, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise GraphError(f"{name} must be a whole number between {low} and {high}, not {value!r}")
    return value


def distinct(defs: list[Def]) -> list[Def]:
    """One definition per symbol: overloads, a property's setter and Rust `impl` blocks are sites of
    the symbol they belong to, not other symbols (the first site that is not an `impl` stands for it)."""
    primary: dict[tuple[str, str], Def] = {}
    for d in defs:
        held = primary.get(d.key)
        if held is None or (held.kind == "impl" and d.kind != "impl"):
            primary[d.key] = d
    out = list(primary.values())
    real = [d for d in out if d.kind != "impl"]
    return real if real and len({d.qname for d in out}) == 1 else out


def candidate(d: Def) -> Candidate:
    return Candidate(symbol=d.qname, kind=d.kind, path=d.path, start_line=d.start_line, end_line=d.end_line)


class GraphEngine:
    """Answers graph questions on one open index (read-only), through the store seam."""

    def __init__(self, store: GraphStore, root_name: str) -> None:
        self.store = store
        self.resolver = Resolver(store, root_name)
        self._lines: dict[str, dict[int, str]] = {}
        self._names: list[str] | None = None

    def refresh(self) -> None:
        version = self.resolver.version
        self.resolver.refresh()
        if self.resolver.version != version:
            self._lines.clear()
            self._names = None

    # -- subjects ---------------------------------------------------------------------------------

    def _defs(self, **where: Any) -> list[Def]:
        return [to_def(r) for r in self.store.graph_defs(**where)]

    def subject(self, query: str, subject_type: str) -> tuple[str, list[Def], str | None]:
        """(kind of subject, matching definitions, the file when the subject is a path)."""
        kind, defs, path = self._subject(query, subject_type)
        return kind, (distinct(defs) if kind == "symbol" else defs), path

    def _subject(self, query: str, subject_type: str) -> tuple[str, list[Def], str | None]:
        text = query.strip().replace("\\", "/")
        files = self.resolver.files
        if subject_type in ("auto", "path"):
            path = text.lstrip("./") if text.startswith("./") else text
            if path in files:
                return "path", self._defs(path=path, top_level=True), path
            if subject_type == "path":
                folder = path.rstrip("/") + "/"
                inside = sorted(p for p in files if p.startswith(folder))
                if inside:
                    return "path", [d for p in inside for d in self._defs(path=p, top_level=True)], path
                return "path", [], None
        match = _LINE_SUBJECT.match(text)
        if match and match["path"] in files:
            line = int(match["line"])
            inside = self._defs(path=match["path"], line=line)
            inside.sort(key=lambda d: d.end_line - d.start_line)
            return "symbol", inside[:1], None
        match = _NAME_SUBJECT.match(text)
        if match and match["path"] in files:
            name = match["name"]
            found = self._defs(path=match["path"], qname=name)
            return "symbol", found or self._defs(path=match["path"], name=name), None
        if "." in text or "::" in text:
            qname = text.replace("::", ".")
            found = self._defs(qname=qname)
            if not found:
                last = qname.rsplit(".", 1)[-1]
                found = [d for d in self._defs(name=last) if d.qname.endswith("." + qname)]
            return "symbol", found, None
        return "symbol", self._defs(name=text), None

    def near_misses(self, query: str, limit: int = 10) -> list[Candidate]:
        if self._names is None:
            self._names = self.store.graph_def_names()
        word = re.split(r"[:./]", query.strip())[-1] or query.strip()
        lowered = word.lower()
        close = [n for n in self._names if lowered and lowered in n.lower()][: limit * 2]
        close += difflib.get_close_matches(word, self._names, n=limit, cutoff=0.7)
        seen: list[Def] = []
        for name in dict.fromkeys(close):
            seen.extend(self._defs(name=name)[:3])
            if len(seen) >= limit:
                break
        return [candidate(d) for d in seen[:limit]]

    # -- occurrences ------------------------------------------------------------------------------

    def line_text(self, path: str, line: int) -> str:
        """The indexed text of one line (from the stored chunks; the disk may have moved on)."""
        lines = self._lines.get(path)
        if lines is None:
            lines = {}
            for _, _, start, _, _, _, content in self.store.chunk_spans(path):
                for i, text in enumerate(content.split("\n")):
                    lines.setdefault(start + i, text)
            if len(self._lines) > 256:
                self._lines.clear()
            self._lines[path] = lines
        return lines.get(line, "").strip()[:300]

    def occurrences(self, subject: Def, kinds: tuple[str, ...] | None = None) -> tuple[list[_Occurrence], int]:
        """Occurrences of the subject (exact, or by name when it is the only definition so named) and how
        many of its name could not be resolved to one definition (left out)."""
        resolver = self.resolver
        unique = resolver.count_name(subject.name) == 1
        fam = family(subject.path)
        out: list[_Occurrence] = []
        ambiguous = 0
        rows = self.store.graph_refs(name=subject.name)
        is_member = subject.is_member
        for path, line, name, kind, scope, module, target, member in rows:
            if kinds is not None and kind not in kinds:
                continue
            found = resolver.resolve(module, target) if module is not None and target is not None else None
            if isinstance(found, Def):
                if found.key == subject.key:
                    out.append(_Occurrence(path, line, name, kind, scope, "exact"))
                continue
            if found is not None:  # MISSING or EXTERNAL: known not to be a definition of the project
                continue
            if family(path) != fam or bool(member) != is_member:
                continue  # `x.name` can only be a member; a bare `name` only a top-level definition
            if fam == "rust" and subject.kind == "method" and member and kind != "call":
                continue  # Rust: `x.name` without a call is a field, never a method
            if unique:
                out.append(_Occurrence(path, line, name, kind, scope, "name"))
            else:
                ambiguous += 1
        out.sort(key=lambda o: (o.path, o.line))
        return out, ambiguous

    def _scope_def(self, path: str, scope: str | None) -> Def | None:
        return self.resolver.def_at(path, scope) if scope else None

    def _item(self, occ: _Occurrence, depth: int = 1, kind: str | None = None) -> GraphItem:
        enclosing = self._scope_def(occ.path, occ.scope)
        return GraphItem(
            path=occ.path, start_line=occ.line, end_line=occ.line, symbol=occ.scope,
            symbol_type=enclosing.kind if enclosing is not None else None,
            kind=kind or {"call": "call", "import": "import"}.get(occ.kind, "reference"),
            confidence=occ.confidence, depth=depth, content=self.line_text(occ.path, occ.line),
        )

    def _definition_item(self, d: Def, depth: int = 0, kind: str = "definition") -> GraphItem:
        return GraphItem(path=d.path, start_line=d.line, end_line=d.line, symbol=d.qname, symbol_type=d.kind,
                         kind=kind, confidence="exact", depth=depth, content=self.line_text(d.path, d.line))

    def callees_of(self, subject: Def) -> tuple[list[tuple[int, str | None, Def, str]], int]:
        """(line, scope, callee, confidence) of the calls inside the subject, and how many were unresolved."""
        resolver = self.resolver
        rows = [r[1:3] + r[4:] for r in self.store.graph_refs(path=subject.path, lines=(subject.start_line,
                                                                                        subject.end_line), kind="call")]
        out = []
        unresolved = 0
        fam = family(subject.path)
        for line, name, scope, module, target, member in rows:
            if scope != subject.qname and not (scope or "").startswith(subject.qname + "."):
                continue
            found = resolver.resolve(module, target) if module is not None and target is not None else None
            if isinstance(found, Def):
                out.append((line, scope, found, "exact"))
            elif found is None and resolver.count_name(name) == 1:
                only = self._defs(name=name)
                if only and family(only[0].path) == fam and bool(member) == only[0].is_member:
                    out.append((line, scope, only[0], "name"))
                else:
                    unresolved += 1
            elif found is None:
                unresolved += 1
        return out, unresolved

    # -- modes --------------------------------------------------------------------------------------

    def query(self, query: str, mode: str = "find_references", subject_type: str = "auto", max_depth: int = 2,
              max_nodes: int = 50) -> GraphAnswer:
        started = time.perf_counter()
        if not isinstance(query, str) or not query.strip():
            raise GraphError("query must name a symbol (a name, Class.method, path:name or path:line) or a path")
        check_mode(mode)
        check_subject_type(subject_type)
        _bounded("max_depth", max_depth, 1, MAX_DEPTH)
        _bounded("max_nodes", max_nodes, 1, MAX_NODES)
        self.refresh()
        kind, defs, path = self.subject(query, subject_type)
        answer = GraphAnswer(query=query, mode=mode, resolution="resolved", subject=None, results=[],
                             candidates=[], warnings=[])
        if kind == "path" and path is not None:
            self._path_mode(answer, path, defs, mode, max_depth, max_nodes)
        elif not defs:
            answer.resolution = "subject_not_found"
            answer.candidates = self.near_misses(query)
            answer.warnings.append(f"no definition matches {query.strip()!r}" + (
                "; near misses are in candidates" if answer.candidates else ""))
        elif len(defs) > 1:
            answer.resolution = "disambiguation_required"
            answer.candidates = [candidate(d) for d in defs[:max(max_nodes, 20)]]
            answer.warnings.append(f"{len(defs)} definitions match {query.strip()!r}: ask again with a qualified "
                                   "name, path:name or path:line from candidates")
        else:
            subject = defs[0]
            answer.subject = candidate(subject)
            getattr(self, "_" + mode)(answer, subject, max_depth, max_nodes)
        if len(answer.results) > max_nodes:
            answer.warnings.append(f"{len(answer.results) - max_nodes} more results left out (max_nodes {max_nodes})")
            answer.results = answer.results[:max_nodes]
            answer.truncated = True
        answer.took_ms = round((time.perf_counter() - started) * 1000, 2)
        return answer

    def _find_references(self, answer: GraphAnswer, subject: Def, max_depth: int, max_nodes: int) -> None:
        occurrences, ambiguous = self.occurrences(subject)
        same = self._defs(path=subject.path, qname=subject.qname)  # overloads, property setters
        answer.results = [self._definition_item(d) for d in same] + [self._item(o) for o in occurrences]
        self._ambiguity(answer, subject, ambiguous)

    def _ambiguity(self, answer: GraphAnswer, subject: Def, ambiguous: int) -> None:
        if ambiguous:
            answer.warnings.append(
                f"{ambiguous} more occurrences of {subject.name!r} could not be resolved to one of its "
                f"{self.resolver.count_name(subject.name)} definitions and are not listed")

    def _callers(self, answer: GraphAnswer, subject: Def, max_depth: int, max_nodes: int) -> None:
        self._users([subject], answer, max_depth, max_nodes, kinds=("call",), target_from=2)

    def _callees(self, answer: GraphAnswer, subject: Def, max_depth: int, max_nodes: int) -> None:
        seen = {subject.key}
        frontier = [subject]
        unresolved_total = 0
        for depth in range(1, max_depth + 1):
            following: list[Def] = []
            for source in frontier:
                calls, unresolved = self.callees_of(source)
                unresolved_total += unresolved if depth == 1 else 0
                for line, scope, callee, confidence in calls:
                    answer.results.append(GraphItem(
                        path=source.path, start_line=line, end_line=line, symbol=scope or source.qname,
                        symbol_type=source.kind, kind="callee", confidence=confidence,  # type: ignore[arg-type]
                        depth=depth, content=self.line_text(source.path, line),
                        target=f"{callee.path}:{callee.line} {callee.qname}"))
                    if callee.key not in seen:
                        seen.add(callee.key)
                        following.append(callee)
                if len(answer.results) > max_nodes:
                    return
            frontier = following
        if unresolved_total:
            answer.warnings.append(f"{unresolved_total} calls go outside the project or could not be resolved to "
                                   "one definition and are not listed")

    def _explain_symbol(self, answer: GraphAnswer, subject: Def, max_depth: int, max_nodes: int) -> None:
        members = self._defs(path=subject.path, parent=subject.qname)
        references, ambiguous = self.occurrences(subject)
        calls = sum(1 for o in references if o.kind == "call")
        callees, _ = self.callees_of(subject)
        bases = []
        for module, name in subject.bases:
            found = self.resolver.resolve(module, name)
            bases.append(f"{found.qname} ({found.path}:{found.line})" if isinstance(found, Def) else name)
        tests = {f"{o.path}:{o.line} {o.scope or ''}".strip(): None for o in references if is_test_path(o.path)}
        answer.details = SymbolDetails(
            signature=subject.signature, doc=subject.doc, members=[candidate(m) for m in members], bases=bases,
            callers=calls, callees=len(callees), references=len(references), tests=list(tests))
        answer.results = [self._definition_item(subject)] + [self._definition_item(m, 1, "member") for m in members]
        self._ambiguity(answer, subject, ambiguous)

    def _impact_analysis(self, answer: GraphAnswer, subject: Def, max_depth: int, max_nodes: int) -> None:
        self._impact([subject], answer, max_depth, max_nodes)

    def _impact(self, start: list[Def], answer: GraphAnswer, max_depth: int, max_nodes: int) -> None:
        """Everything that uses the subject (calls, references, imports), then what uses those, by depth."""
        self._users(start, answer, max_depth, max_nodes, kinds=None, target_from=1)

    def _users(self, start: list[Def], answer: GraphAnswer, max_depth: int, max_nodes: int,
               kinds: tuple[str, ...] | None, target_from: int) -> None:
        """Breadth first from `start` through the definitions whose code uses them (occurrences of
        `kinds`, None: any), by depth; results from depth `target_from` on name what they use."""
        seen = {d.key for d in start}
        frontier = start
        for depth in range(1, max_depth + 1):
            following: list[Def] = []
            for target in frontier:
                occurrences, ambiguous = self.occurrences(target, kinds)
                if depth == 1 and len(start) == 1:
                    self._ambiguity(answer, target, ambiguous)
                for occ in occurrences:
                    item = self._item(occ, depth)
                    if depth >= target_from:
                        item.target = f"{target.path}:{target.line} {target.qname}"
                    answer.results.append(item)
                    user = self._scope_def(occ.path, occ.scope)
                    if user is not None and user.key not in seen:
                        seen.add(user.key)
                        following.append(user)
                if len(answer.results) > max_nodes:
                    return
            frontier = following
            if not frontier:
                return

    # -- path subjects -------------------------------------------------------------------------------

    def _path_mode(self, answer: GraphAnswer, path: str, defs: list[Def], mode: str, max_depth: int,
                   max_nodes: int) -> None:
        answer.subject = Candidate(symbol=posixpath.basename(path), kind="file", path=path, start_line=1,
                                   end_line=max(self.line_count(path), 1))
        if mode == "explain_symbol":
            answer.results = [self._definition_item(d, 1, "member") for d in defs]
            return
        if mode == "callees":
            for d in defs:
                self._callees(answer, d, max_depth, max_nodes)
            return
        inside = {d.key for d in defs}
        if mode == "impact_analysis":
            answer.results.extend(self.importers(path))
            self._impact(defs, answer, max_depth, max_nodes)
            return
        kinds = ("call",) if mode == "callers" else None
        if mode == "find_references":  # a file is referenced by the imports that resolve to it, too
            answer.results.extend(self.importers(path))
        for d in defs:
            occurrences, _ = self.occurrences(d, kinds)
            for occ in occurrences:
                enclosing = self._scope_def(occ.path, occ.scope)
                if occ.path == path and (enclosing is None or enclosing.key in inside or enclosing.path == path):
                    continue  # uses inside the file itself are not what a file's users are
                item = self._item(occ)
                item.target = f"{d.path}:{d.line} {d.qname}"
                answer.results.append(item)
        unique = {(i.path, i.start_line, i.kind): i for i in answer.results}  # an import line once
        answer.results = sorted(unique.values(), key=lambda i: (i.path, i.start_line))

    def importers(self, path: str) -> list[GraphItem]:
        """The import statements (one item per importing file and line) whose module is this file."""
        out = []
        for importer, _, module, name, line in self.store.graph_imports():
            if importer == path or module.startswith("file:"):
                continue
            files = self.resolver.module_files(module)
            hit = path in files
            if not hit and name and not files:
                continue
            if not hit and name:  # `from pkg import mod`: the module may be a submodule of pkg
                sub = files[0] if files else ""
                hit = sub.endswith("__init__.py") and self.resolver.module_files(
                    "rel:" + posixpath.join(posixpath.dirname(sub), name)) == (path,)
            if hit:
                out.append(GraphItem(path=importer, start_line=line, end_line=line, symbol=None, symbol_type=None,
                                     kind="import", confidence="exact", depth=1,
                                     content=self.line_text(importer, line), target=path))
        unique = {(i.path, i.start_line): i for i in out}
        return sorted(unique.values(), key=lambda i: (i.path, i.start_line))

    def line_count(self, path: str) -> int:
        return max((r[3] for r in self.store.chunk_spans(path)), default=0)
