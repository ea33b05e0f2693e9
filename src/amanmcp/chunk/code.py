"""Symbol-aware chunking of source code: one chunk per definition, found with tree-sitter."""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, replace

from tree_sitter import Node, Parser, Tree
from tree_sitter_language_pack import get_parser

from amanmcp.chunk.grammars import Spec
from amanmcp.chunk.lines import Emitter

# Parsers are costly to build and reusable; one per grammar for the whole process.
_PARSERS: dict[str, Parser | None] = {}

_LEAF_KINDS = frozenset({"function", "method", "type", "macro", "test"})
_CLASS_KINDS = frozenset({"class", "struct", "interface", "enum", "trait", "impl"})
_STRAY_LINES = 3  # at most this many code lines between two members join the member above
_FRAGMENT_LINES = 2  # a run of at most this many meaningful lines between definitions joins one
_HEADER_LINES = 4  # `impl Trait for T {` with its associated types joins the first method
# Containers whose header is not a definition of their own (`impl Foo {`): a tiny header joins the first member.
_HEADERLESS = frozenset({"impl", "namespace"})
_COMMENT = re.compile(r"\s*(#|//|/\*|\*|--|;)")


def _parser(grammar: str) -> Parser | None:
    """Cached parser, or None if this build lacks the grammar (the file is then windowed)."""
    if grammar not in _PARSERS:
        try:
            _PARSERS[grammar] = get_parser(grammar)  # type: ignore[arg-type]
        except Exception:  # any loader failure just means "no grammar"
            _PARSERS[grammar] = None
    return _PARSERS[grammar]


_LAST = threading.local()  # the last tree this thread parsed: the code graph reads the same parse


def parse(grammar: str, source: bytes) -> Tree | None:
    """The tree of `source`, parsed once: chunking and the code graph of one file share it."""
    last = getattr(_LAST, "tree", None)
    if last is not None and last[0] == grammar and (last[1] is source or last[1] == source):
        return last[2]
    parser = _parser(grammar)
    if parser is None:
        return None
    tree = parser.parse(source)
    _LAST.tree = (grammar, source, tree)
    return tree


def _last_row(node: Node) -> int:
    """Last row holding node text: some nodes (Rust `///`, C `#include`) end at column 0 of the next row."""
    row, col = node.end_point
    return row - 1 if col == 0 and row > node.start_point[0] else row


@dataclass(slots=True)
class _Sym:
    """A definition: qualified name, kind, row span (doc comments included) and defining node."""

    name: str
    kind: str
    start: int
    end: int
    node: Node
    scope: str  # prefix its own name was qualified with


class _Walker:
    """Finds symbols in one parsed file and emits their chunks."""

    def __init__(self, spec: Spec, source: bytes, em: Emitter) -> None:
        self.spec = spec
        self.source = source
        self.em = em

    def collect(self, root: Node, floor: int, scope: str, in_class: bool) -> list[_Sym]:
        """Definitions under `root` in document order, not descending into the ones found.

        Only multi-line nodes (and wrappers) are searched, which keeps the walk far
        smaller than the tree: function bodies and one-line statements are skipped.
        """
        kinds, wrappers = self.spec.kinds, self.spec.wrappers
        found: list[_Sym] = []
        stack = root.named_children[::-1]
        while stack:
            node = stack.pop()
            classify = kinds.get(node.type)
            hit = classify(node) if classify is not None else None
            if hit is None:
                if node.type in wrappers or node.end_point[0] > node.start_point[0]:
                    stack.extend(node.named_children[::-1])
                continue
            kind, name = hit
            if kind == "function" and in_class:
                kind = "method"
            name = scope + name
            outer = self._outer(node, root)
            start, end = outer.start_point[0], _last_row(outer)
            if self.spec.merge_clauses and found and found[-1].name == name and found[-1].kind == kind:
                found[-1].end = max(found[-1].end, end)
                continue
            low = found[-1].end + 1 if found else floor
            if start < low:
                continue  # shares a line with the previous symbol or its container's header
            found.append(_Sym(name, kind, self._lead(outer, start, low), end, node, scope))
        return found

    def emit(self, sym: _Sym) -> None:
        """One chunk if it fits; else a header for uncovered lines plus its members, else windows.

        Namespaces are always opened up: a whole-file `namespace App { ... }` chunk would hide
        every class in it.
        """
        em = self.em
        if sym.kind != "namespace" and em.fits(sym.start, sym.end):
            em.span(sym.start, sym.end, sym.name, sym.kind)
            return
        children: list[_Sym] = []
        if sym.kind not in _LEAF_KINDS:
            scope = sym.scope if sym.kind == "namespace" else sym.name + "."
            children = self.collect(sym.node, sym.node.start_point[0] + 1, scope, sym.kind in _CLASS_KINDS)
        if sym.kind in _CLASS_KINDS:  # `type Item = Foo;` in an impl or trait is part of its header, not a symbol
            children = [c for c in children if not (c.kind == "type" and c.end - c.start < _FRAGMENT_LINES)]
        if not children:
            em.span(sym.start, sym.end, sym.name, sym.kind)
            return
        if sym.kind in _CLASS_KINDS:
            children = self._absorb_strays(children, sym.end)
        children = self.attach_fragments(children, sym.start, sym.end, keep_header=sym.kind not in _HEADERLESS)
        covered = [(c.start, c.end) for c in children]
        em.gaps(sym.start, sym.end, covered, sym.name, sym.kind, skip_trivial=True)
        for child in children:
            self.emit(child)

    def _absorb_strays(self, children: list[_Sym], end: int) -> list[_Sym]:
        """Stray lines between members join a member instead of becoming header fragments.

        Lines right after a member that are about it (`as_manager.queryset_only = True`) join
        that member; a run of only comments before a member (a `# PRIVATE METHODS #` banner)
        joins the member it introduces. Left alone they become two-line chunks named after the
        container, which crowd the container's real header out of the results.
        """
        lines = self.em.lines
        out = [replace(c) for c in children]
        for i, child in enumerate(out):
            stop = children[i + 1].start - 1 if i + 1 < len(children) else end
            own = re.compile(rf"\b{re.escape(child.name.rsplit('.', 1)[-1])}\b")
            taken = 0
            for row in range(child.end + 1, stop + 1):
                if not lines[row].strip():
                    continue
                if taken == _STRAY_LINES or not own.search(lines[row]) or not self.em.fits(child.start, row):
                    break
                child.end, taken = row, taken + 1
            if i + 1 < len(out):
                rest = [r for r in range(child.end + 1, stop + 1) if lines[r].strip()]
                nxt = out[i + 1]
                if rest and all(_COMMENT.match(lines[r]) for r in rest) and self.em.fits(rest[0], nxt.end):
                    nxt.start = rest[0]
        return out

    def attach_fragments(
        self, children: list[_Sym], lo: int, hi: int, *, keep_header: bool, only_comments: bool = False
    ) -> list[_Sym]:
        """Runs of one or two lines between definitions join a neighbour instead of becoming chunks.

        A stray field, a banner comment or `impl Foo {` is too little to be an answer, yet as its
        own chunk it wins exact-word matches over the definitions it sits beside. It joins the
        definition below (or else above) when that still fits; a container's own header stays
        unless the container defines nothing itself (an impl block). At the top of a file only
        comment banners move: module code (imports, a `__main__` block) keeps its own chunk.
        """
        em = self.em
        out = [replace(c) for c in children]
        for start, end in em.uncovered(lo, hi, [(c.start, c.end) for c in children]):
            header = start == lo
            if (header and keep_header) or not 0 < em.meaningful(start, end) <= (
                _HEADER_LINES if header else _FRAGMENT_LINES
            ):
                continue
            if only_comments and not all(self._is_comment(line) for line in em.lines[start : end + 1] if line.strip()):
                continue
            after = next((c for c in out if c.start > end), None)
            before = next((c for c in reversed(out) if c.end < start), None)
            if after is not None and em.fits(start, after.end):
                after.start = start
            elif before is not None and em.fits(before.start, end):
                before.end = end
        return out

    def _is_comment(self, line: str) -> bool:
        """By this language's comment markers (a C `#include` is code, a Python `#` line is not)."""
        text = line.strip()
        block = self.spec.block_comment
        return text.startswith(self.spec.comments) or (
            block is not None and (text.startswith(("*", block[0])) or text.endswith(block[1]))
        )

    def _outer(self, node: Node, root: Node) -> Node:
        """Grow to wrappers that hold only this definition (decorators, `export`, `template<>`)."""
        outer = node
        while (parent := outer.parent) is not None and parent.type in self.spec.wrappers and parent != root:
            if sum(1 for c in parent.named_children if c.type == outer.type) != 1:
                break  # e.g. Go `type ( A int; B string )`: each spec is its own symbol
            outer = parent
        return outer

    def _lead(self, outer: Node, start: int, low: int) -> int:
        """Pull the start up over adjacent doc comments, attributes and signatures (not above `low`)."""
        attached = self.spec.attached
        prev = outer.prev_named_sibling
        while (
            prev is not None
            and prev.start_point[0] >= low
            and (_last_row(prev) >= start - 1 or self._doc_block_above(prev, start))
            and ("comment" in prev.type or prev.type in attached)
            and self._glued(prev)
        ):
            start = prev.start_point[0]
            prev = prev.prev_named_sibling
        return self._comment_lines(start, low)

    def _doc_block_above(self, node: Node, start: int) -> bool:
        """A `/** ... */` doc block one blank line above a definition still documents it (common in JS)."""
        return (
            "comment" in node.type
            and _last_row(node) == start - 2
            and not self.em.lines[start - 1].strip()
            and self.source[node.start_byte : node.start_byte + 3] == b"/**"
        )

    def _glued(self, node: Node) -> bool:
        """A sibling belongs to the next definition only if it begins its own line."""
        src = self.source
        if node.type == "unary_operator" and src[node.start_byte : node.start_byte + 1] != b"@":
            return False  # Elixir: only module attributes like @doc/@spec attach
        line_start = src.rfind(b"\n", 0, node.start_byte) + 1
        return not src[line_start : node.start_byte].strip()

    def _comment_lines(self, start: int, low: int) -> int:
        """Comment lines right above, by text: some grammars misplace comment nodes (Ruby, Kotlin, Haskell)."""
        lines = self.em.lines
        prefixes, block = self.spec.comments, self.spec.block_comment
        row = start
        while row > low:
            line = lines[row - 1].strip()
            if block is not None and line.endswith(block[1]):
                top = row - 1
                while top >= low and block[0] not in lines[top]:
                    top -= 1
                if top < low or not lines[top].lstrip().startswith(block[0]):
                    break
                row = top
            elif line.startswith(prefixes):
                row -= 1
            else:
                break
        return row


def chunk_code(em: Emitter, spec: Spec) -> None:
    """Chunk a source file by its definitions; everything else becomes line windows."""
    source = "\n".join(em.lines).encode("utf-8", "replace")
    tree = parse(spec.grammar, source)
    symbols: list[_Sym] = []
    if tree is not None:
        walker = _Walker(spec, source, em)
        symbols = walker.collect(tree.root_node, 0, "", False)
        if symbols:
            symbols = walker.attach_fragments(symbols, 0, len(em.lines) - 1, keep_header=False, only_comments=True)
        for sym in symbols:
            walker.emit(sym)
    covered = [(s.start, s.end) for s in symbols]
    em.gaps(0, len(em.lines) - 1, covered, None, None, skip_trivial=bool(symbols))
