"""expand_context: a ranked pack of whole chunks around a seed, each with its role and its path from the seed.

Order of what goes in: the seed's implementation, what it calls, what calls it, the tests that use
it, docs and config that name it. The pack is filled to `max_tokens` with whole chunks in that
order (a chunk that does not fit is left out and a smaller one after it may still go in); what
was left out is counted. The seed resolves as graph_query's subject does, with the same
`resolution` contract: an ambiguous seed gets candidates and no items.
"""

from __future__ import annotations

import posixpath
import re
import time
from typing import Any, Literal

from pydantic import BaseModel

from amanmcp.answers import token_counter
from amanmcp.graph.query import Candidate, GraphEngine, GraphError, candidate, is_test_path
from amanmcp.graph.resolve import Def
from amanmcp.tokens import index_words

SEED_TYPES = ("auto", "symbol", "path")
ROLES = ("implementation", "callee", "caller", "test", "doc", "config")
_CONFIG_LANGUAGES = ("yaml", "toml", "json", "ini")
PER_ROLE = {"callee": 8, "caller": 8, "test": 5, "doc": 3, "config": 2}
ITEM_OVERHEAD = 40  # tokens of an item's keys and header beside its content


class ContextItem(BaseModel):
    path: str
    start_line: int
    end_line: int
    symbol: str | None
    symbol_type: str | None
    role: Literal["implementation", "callee", "caller", "test", "doc", "config"]
    via: list[str]  # the path from the seed: ["Server.route", "calls Router.add"]
    tokens: int
    content: str


class ContextAnswer(BaseModel):
    seed: str
    resolution: Literal["resolved", "disambiguation_required", "subject_not_found"]
    subject: Candidate | None
    items: list[ContextItem]
    candidates: list[Candidate]
    warnings: list[str]
    max_tokens: int
    used_tokens: int
    omitted_items: int = 0  # candidates for the pack that did not fit max_tokens
    took_ms: float = 0.0


def check_seed_type(seed_type: str) -> str:
    if seed_type not in SEED_TYPES:
        raise GraphError(f"seed_type must be one of {', '.join(SEED_TYPES)}, not {seed_type!r}")
    return seed_type


def _chunks(engine: GraphEngine, path: str, start: int, end: int) -> list[tuple]:  # type: ignore[type-arg]
    return engine.store.chunk_spans(path, start, end)


def _chunk_at(engine: GraphEngine, path: str, line: int) -> tuple | None:  # type: ignore[type-arg]
    rows = _chunks(engine, path, line, line)
    return min(rows, key=lambda r: r[3] - r[2]) if rows else None


def build_context(engine: GraphEngine, seed: str, seed_type: str, max_tokens: int) -> ContextAnswer:
    started = time.perf_counter()
    if not isinstance(seed, str) or not seed.strip():
        raise GraphError("seed must name a symbol, a path, or a search result's path:line")
    engine.refresh()
    kind, defs, path = engine.subject(seed, seed_type)
    answer = ContextAnswer(seed=seed, resolution="resolved", subject=None, items=[], candidates=[], warnings=[],
                           max_tokens=max_tokens, used_tokens=0)
    wanted: list[tuple[tuple, str, list[str]]] = []  # type: ignore[type-arg]  # (chunk row, role, via)
    if kind == "path" and path is not None:
        files = engine.resolver.files
        paths = [path] if path in files else sorted(f for f in files if f.startswith(path.rstrip("/") + "/"))
        rows = [r for p in paths for r in _chunks(engine, p, 1, 10**9)]
        if not rows:
            answer.resolution = "subject_not_found"
            answer.warnings.append(f"{seed.strip()!r} is not an indexed file or folder")
            return answer
        answer.subject = Candidate(symbol=posixpath.basename(path), kind="file", path=path, start_line=1,
                                   end_line=max(r[3] for r in rows))
        wanted += [(r, "implementation", [path]) for r in rows]
        for d in defs[:20]:
            _neighbours(engine, d, wanted, [path, d.qname])
    elif not defs:
        answer.resolution = "subject_not_found"
        answer.candidates = engine.near_misses(seed)
        answer.warnings.append(f"no definition matches {seed.strip()!r}")
        return answer
    elif len(defs) > 1:
        answer.resolution = "disambiguation_required"
        answer.candidates = [candidate(d) for d in defs[:20]]
        answer.warnings.append(f"{len(defs)} definitions match {seed.strip()!r}: ask again with one of candidates")
        return answer
    else:
        subject = defs[0]
        answer.subject = candidate(subject)
        wanted += [(r, "implementation", [subject.qname]) for r in _chunks(engine, subject.path, subject.start_line,
                                                                             subject.end_line)]
        _neighbours(engine, subject, wanted, [subject.qname])
    _fill(answer, wanted, max_tokens)
    answer.took_ms = round((time.perf_counter() - started) * 1000, 2)
    return answer


def _neighbours(engine: GraphEngine, subject: Def, wanted: list, via: list[str]) -> None:  # type: ignore[type-arg]
    calls, _ = engine.callees_of(subject)
    for _line, _scope, callee, _conf in calls[: PER_ROLE["callee"]]:
        for row in _chunks(engine, callee.path, callee.start_line, callee.start_line)[:1]:
            wanted.append((row, "callee", [*via, f"calls {callee.qname}"]))
    occurrences, _ = engine.occurrences(subject)
    tests = [o for o in occurrences if is_test_path(o.path)]
    callers = [o for o in occurrences if o.kind == "call" and not is_test_path(o.path)]
    for occ in callers[: PER_ROLE["caller"]]:
        row = _chunk_at(engine, occ.path, occ.line)
        if row is not None:
            wanted.append((row, "caller", [*via, f"called by {occ.scope or occ.path} at {occ.path}:{occ.line}"]))
    for occ in tests[: PER_ROLE["test"]]:
        row = _chunk_at(engine, occ.path, occ.line)
        if row is not None:
            wanted.append((row, "test", [*via, f"used by test {occ.scope or occ.path} at {occ.path}:{occ.line}"]))
    word = re.escape(subject.name)
    whole = index_words(subject.name)[:1]  # the name as the full-text index holds it
    if not whole:
        return
    wheres: tuple[tuple[str, dict[str, Any]], ...] = (("doc", {"content_type": "docs"}),
                                                      ("config", {"languages": _CONFIG_LANGUAGES}))
    for role, where in wheres:
        rows = engine.store.mentions(whole[0], 20, **where)
        picked = [r for r in rows if re.search(rf"(?<![\w$]){word}(?![\w$])", r[6])][: PER_ROLE[role]]
        wanted += [(r, role, [*via, f"named in {r[1]}:{r[2]}"]) for r in picked]


def _fill(answer: ContextAnswer, wanted: list, max_tokens: int) -> None:  # type: ignore[type-arg]
    count = token_counter().count
    seen: set[int] = set()
    used = 0
    for row, role, via in wanted:
        if row[0] in seen:
            continue
        seen.add(row[0])
        tokens = count(row[6]) + ITEM_OVERHEAD
        if used + tokens > max_tokens:
            answer.omitted_items += 1
            continue
        used += tokens
        answer.items.append(ContextItem(path=row[1], start_line=row[2], end_line=row[3], symbol=row[4],
                                        symbol_type=row[5], role=role, via=via, tokens=tokens, content=row[6]))
    answer.used_tokens = used
    if answer.omitted_items:
        answer.warnings.append(f"{answer.omitted_items} more chunks did not fit max_tokens {max_tokens}")
