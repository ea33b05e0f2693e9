"""Python: definitions, references resolved by scope (LEGB), imports, `self`/`cls` and simple types.

A name is resolved the way Python resolves it, as far as the syntax shows: a name bound anywhere in
a function is local to it (and is not a reference to anything outside); class bodies do not leak
into their methods; module names come from definitions, assignments and imports (star imports
searched at query time). `self.x` is looked up on the enclosing class; `x.y` on what `x` is when
the code says so: an import, a class, `x = Cls(...)` or a parameter annotated `x: Cls`.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass

from tree_sitter import Node

from amanmcp.graph.model import Definition, FileGraph, Import, Reference

_FUNCTION_SCOPE_STOP = frozenset({"function_definition", "class_definition", "lambda"})
# Where a scan for bindings goes on: statements and their parts, never into expressions (fast; a
# comprehension is a scope of its own, a walrus binds at statement level in practice).
_STATEMENTS = frozenset({
    "block", "if_statement", "elif_clause", "else_clause", "for_statement", "while_statement", "try_statement",
    "except_clause", "except_group_clause", "finally_clause", "with_statement", "with_clause", "with_item",
    "match_statement", "case_clause", "expression_statement", "decorated_definition", "assignment",
    "parenthesized_expression", "module",
})
_LEAVES = frozenset({"integer", "float", "true", "false", "none", "comment", "ellipsis", "escape_sequence",
                     "string_content", "string_start", "string_end", "line_continuation"})
_COMPREHENSIONS = frozenset({"list_comprehension", "set_comprehension", "dictionary_comprehension",
                             "generator_expression"})
_PATTERNS = frozenset({"pattern_list", "tuple_pattern", "list_pattern", "tuple", "list", "parenthesized_expression",
                       "list_splat_pattern", "expression_list"})


@dataclass(frozen=True, slots=True)
class Bind:
    module: str | None = None
    target: str | None = None
    local: bool = False  # a local variable: not a reference to anything named elsewhere
    inst: tuple[str, str] | None = None  # what an attribute on it is looked up on (`x = Cls()`, `self`)


@dataclass(slots=True)
class _Scope:
    kind: str  # module | class | function
    qname: str  # "" for the module
    names: dict[str, Bind]


def _text(node: Node | None) -> str:
    return node.text.decode("utf-8", "replace") if node is not None and node.text is not None else ""


def _join(a: str, b: str) -> str:
    return f"{a}.{b}" if a else b


def module_spec(path: str, node: Node) -> str:
    """The spec of an import's module: `rel:STEM` for relative imports, `py:a.b` for absolute ones."""
    if node.type != "relative_import":
        return "py:" + _text(node)
    prefix = next((c for c in node.children if c.type == "import_prefix"), None)
    dots = len(_text(prefix))
    rest = next((c for c in node.children if c.type == "dotted_name"), None)
    base = posixpath.dirname(path)
    for _ in range(dots - 1):
        if not base:
            return "ext:" + _text(node)
        base = posixpath.dirname(base)
    if rest is not None:
        base = posixpath.join(base, *_text(rest).split("."))
    return "rel:" + base


class PythonGraph:
    def __init__(self, path: str) -> None:
        self.path = path
        self.own = "file:" + path
        self.graph = FileGraph()
        self.stars = False
        self.bases: dict[str, list[tuple[str, str]]] = {}

    # -- bindings ---------------------------------------------------------------------------

    def _targets(self, node: Node | None, out: list[str]) -> None:
        """Names bound by an assignment target (`a, (b, *c) = ...`); attributes and subscripts bind none."""
        if node is None:
            return
        if node.type == "identifier":
            out.append(_text(node))
        elif node.type in _PATTERNS:
            for child in node.named_children:
                self._targets(child, out)

    def _import_binds(self, node: Node, scope: _Scope, module_level: bool) -> None:
        graph = self.graph
        line = node.start_point[0] + 1
        if node.type == "import_statement":
            for item in node.children_by_field_name("name"):
                if item.type == "aliased_import":
                    dotted, alias = item.child_by_field_name("name"), _text(item.child_by_field_name("alias"))
                    spec, local, name = "py:" + _text(dotted), alias, ""
                else:
                    first = _text(item).split(".")[0]
                    spec, local, name = "py:" + first, first, ""
                scope.names[local] = Bind(spec, name)
                if module_level:
                    graph.imports.append(Import(local, spec, name, line))
            return
        source = node.child_by_field_name("module_name")
        if source is None:
            return
        spec = module_spec(self.path, source)
        if any(c.type == "wildcard_import" for c in node.children):
            if module_level:
                graph.imports.append(Import("*", spec, "", line))
                self.stars = True
            return
        for item in node.children_by_field_name("name"):
            if item.type == "aliased_import":
                name, local = _text(item.child_by_field_name("name")), _text(item.child_by_field_name("alias"))
            else:
                name = local = _text(item)
            scope.names[local] = Bind(spec, name)
            if module_level:
                graph.imports.append(Import(local, spec, name, line))

    def _prescan(self, body: Node, scope: _Scope, outer: list[_Scope]) -> None:
        """Bind every name the block binds (not descending into nested definitions), before any use."""
        local = scope.kind == "function"
        declared_global: set[str] = set()
        stack = list(reversed(body.named_children))  # document order: imports bind before their uses
        while stack:
            node = stack.pop()
            kind = node.type
            if kind in ("function_definition", "class_definition"):
                name = _text(node.child_by_field_name("name"))
                scope.names[name] = Bind(self.own, _join(scope.qname, name))
                continue
            if kind == "lambda":
                continue
            if kind in ("import_statement", "import_from_statement"):
                self._import_binds(node, scope, scope.kind == "module")
                continue
            if kind in ("global_statement", "nonlocal_statement"):
                declared_global.update(_text(c) for c in node.named_children if c.type == "identifier")
                continue
            names: list[str] = []
            inst: tuple[str, str] | None = None
            if kind in ("assignment", "augmented_assignment"):
                left = node.child_by_field_name("left")
                self._targets(left, names)
                inst = self._typed(node, [*outer, scope])
                if left is not None and left.type == "attribute" and inst is not None:
                    self._typed_attribute(left, inst, [*outer, scope])
            elif kind in ("for_statement", "for_in_clause"):
                self._targets(node.child_by_field_name("left"), names)
            elif kind == "named_expression":
                self._targets(node.child_by_field_name("name"), names)
            elif kind == "as_pattern":
                alias = node.child_by_field_name("alias")
                if alias is not None:
                    self._targets(alias.named_children[0] if alias.named_children else alias, names)
            elif kind == "except_clause":
                names.extend(_text(c) for c in node.named_children[1:2] if c.type == "identifier")
            if inst is not None and len(names) == 1 and scope.kind != "function":  # `app = Server()`, `x: T`
                self.graph.imports.append(Import(_join(scope.qname, names[0]), inst[0], inst[1],
                                                 node.start_point[0] + 1))
            for name in names:
                if name in scope.names and not scope.names[name].local and scope.kind != "function":
                    continue  # a module/class name keeps its definition or import when also assigned
                if local:
                    scope.names[name] = Bind(local=True, inst=inst)
                else:
                    scope.names[name] = Bind(self.own, _join(scope.qname, name), inst=inst)
            if kind in _STATEMENTS or kind == "with_item" or kind == "as_pattern":
                stack.extend(reversed(node.named_children))
        for name in declared_global:
            scope.names.pop(name, None)

    def _typed(self, node: Node, stack: list[_Scope]) -> tuple[str, str] | None:
        """What an assignment makes its single target an instance of: its annotation, or `Cls(...)`."""
        annotation = node.child_by_field_name("type")
        if annotation is not None:
            inner = annotation.named_children[0] if annotation.named_children else None
            if inner is not None and inner.type in ("identifier", "attribute"):
                return self._expr(inner, stack, bare=True)
        right = node.child_by_field_name("right")
        if right is not None and right.type in ("call", "identifier"):
            return self._expr(right, stack)
        return None

    def _typed_attribute(self, left: Node, inst: tuple[str, str], stack: list[_Scope]) -> None:
        """`self.app = app` (app: Server) in a method: `self.app.x` is then looked up on Server."""
        obj = left.child_by_field_name("object")
        if obj is None or obj.type != "identifier":
            return
        bind = self._lookup(_text(obj), stack)
        if bind is None or bind.inst is None or bind.inst[0] != self.own or not bind.local:
            return
        local = f"{bind.inst[1]}.{_text(left.child_by_field_name('attribute'))}"
        self.graph.imports.append(Import(local, inst[0], inst[1], left.start_point[0] + 1))

    def _lookup(self, name: str, stack: list[_Scope]) -> Bind | None:
        for i in range(len(stack) - 1, -1, -1):
            scope = stack[i]
            if scope.kind == "class" and i != len(stack) - 1:
                continue  # class bodies are not visible from their methods
            found = scope.names.get(name)
            if found is not None:
                return found
        if self.stars:  # a name from a star import: looked up through this file's imports at query time
            return Bind(self.own, name)
        return None

    def _expr(self, node: Node | None, stack: list[_Scope], bare: bool = False) -> tuple[str, str] | None:
        """(module, qualified name) an expression names: what an attribute on it is looked up on."""
        if node is None:
            return None
        if node.type == "identifier":
            bind = self._lookup(_text(node), stack)
            if bind is None:
                return None
            if bind.inst is not None and not bare:
                return bind.inst
            if bind.local or bind.module is None or bind.target is None:
                return None
            return bind.module, bind.target
        if node.type == "attribute":
            base = self._expr(node.child_by_field_name("object"), stack)
            if base is None:
                return None
            return base[0], _join(base[1], _text(node.child_by_field_name("attribute")))
        if node.type == "call":
            fn = node.child_by_field_name("function")
            if fn is not None and _text(fn) == "super":
                bases = self.bases.get(self._class_of(stack) or "", [])
                return bases[0] if bases and bases[0][0] != "?" else None
            return self._expr(fn, stack, bare=True)  # `Cls().x`: looked up on the class
        return None

    def _class_of(self, stack: list[_Scope]) -> str | None:
        for i in range(len(stack) - 1, 0, -1):
            if stack[i].kind == "function" and stack[i - 1].kind == "class":
                return stack[i - 1].qname
        return None

    # -- walk -------------------------------------------------------------------------------

    def module(self, root: Node) -> FileGraph:
        scope = _Scope("module", "", {})
        self._prescan(root, scope, [])
        stack = [scope]
        for child in root.named_children:
            self._visit(child, stack)
        return self.graph

    def _ref(self, node: Node, name: str, stack: list[_Scope], target: tuple[str, str] | None, kind: str,
             member: bool = False) -> None:
        scope = stack[-1].qname or None  # lambdas and comprehensions carry their enclosing name
        module, qname = target if target is not None else (None, None)
        self.graph.refs.append(Reference(name, node.start_point[0] + 1, kind, scope, module, qname, member))

    def _is_call(self, node: Node) -> bool:
        parent = node.parent
        if parent is None:
            return False
        if parent.type == "decorator":
            return True
        fn = parent.child_by_field_name("function") if parent.type == "call" else None
        return fn is not None and fn.start_byte == node.start_byte and fn.end_byte == node.end_byte

    def _visit(self, node: Node, stack: list[_Scope]) -> None:
        kind = node.type
        if kind in _LEAVES:
            return
        if kind == "identifier":
            name = _text(node)
            bind = self._lookup(name, stack)
            if bind is not None and bind.local:
                return
            target = (bind.module, bind.target) if bind is not None and bind.module and bind.target else None
            self._ref(node, name, stack, target, "call" if self._is_call(node) else "ref")
            return
        if kind == "attribute":
            obj = node.child_by_field_name("object")
            attr = node.child_by_field_name("attribute")
            if obj is not None:
                self._visit(obj, stack)
            if attr is not None:
                base = self._expr(obj, stack)
                target = (base[0], _join(base[1], _text(attr))) if base is not None else None
                self._ref(attr, _text(attr), stack, target, "call" if self._is_call(node) else "ref", member=True)
            return
        if kind == "decorated_definition":
            for child in node.named_children:
                if child.type == "decorator":
                    self._visit_children(child, stack)
            definition = node.child_by_field_name("definition")
            if definition is not None:
                self._define(definition, stack, node)
            return
        if kind in ("function_definition", "class_definition"):
            self._define(node, stack, node)
            return
        if kind == "lambda":
            scope = _Scope("function", stack[-1].qname, {})
            params = node.child_by_field_name("parameters")
            if params is not None:
                self._params(params, scope, stack, None)
            body = node.child_by_field_name("body")
            if body is not None:
                self._prescan(_Holder(body), scope, stack)  # type: ignore[arg-type]
                self._visit(body, [*stack, scope])
            return
        if kind in ("import_statement", "import_from_statement"):
            self._import_refs(node, stack)
            return
        if kind in _COMPREHENSIONS:  # its own scope: the loop variables are local to it
            scope = _Scope("function", stack[-1].qname, {})
            for clause in node.named_children:
                if clause.type == "for_in_clause":
                    names: list[str] = []
                    self._targets(clause.child_by_field_name("left"), names)
                    for name in names:
                        scope.names[name] = Bind(local=True)
            self._visit_children(node, [*stack, scope])
            return
        if kind == "keyword_argument":
            value = node.child_by_field_name("value")
            if value is not None:
                self._visit(value, stack)
            return
        if kind == "string":
            for child in node.named_children:
                if child.type == "interpolation":
                    self._visit_children(child, stack)
            return
        if kind in ("comment", "global_statement", "nonlocal_statement"):
            return
        for child in node.named_children:
            self._visit(child, stack)

    def _visit_children(self, node: Node, stack: list[_Scope]) -> None:
        for child in node.named_children:
            self._visit(child, stack)

    def _import_refs(self, node: Node, stack: list[_Scope]) -> None:
        """The imported names are references to what they import (`from .app import Server`)."""
        if node.type != "import_from_statement":
            return
        source = node.child_by_field_name("module_name")
        if source is None:
            return
        spec = module_spec(self.path, source)
        for item in node.children_by_field_name("name"):
            name_node = item.child_by_field_name("name") if item.type == "aliased_import" else item
            if name_node is None:
                continue
            parts = name_node.named_children or [name_node]
            last = parts[-1]
            self._ref(last, _text(last), stack, (spec, _text(name_node)), "import")

    def _params(self, params: Node, scope: _Scope, outer: list[_Scope], cls: str | None) -> None:
        """Bind parameters (locals); defaults and annotations are read in the enclosing scope."""
        first = True
        for param in params.named_children:
            name_node: Node | None = None
            annotation = param.child_by_field_name("type")
            if param.type == "identifier":
                name_node = param
            elif param.type in ("default_parameter", "typed_default_parameter"):
                name_node = param.child_by_field_name("name")
            elif param.type in ("typed_parameter", "list_splat_pattern", "dictionary_splat_pattern"):
                name_node = next((c for c in param.named_children if c.type == "identifier"), None)
            value = param.child_by_field_name("value")
            if value is not None:
                self._visit(value, outer)
            inst = None
            if annotation is not None:
                self._visit(annotation, outer)
                inner = annotation.named_children[0] if annotation.named_children else None
                inst = self._expr(inner, outer, bare=True)
            if name_node is not None:
                if first and cls is not None:
                    inst = (self.own, cls)
                scope.names[_text(name_node)] = Bind(local=True, inst=inst)
            first = False

    def _define(self, node: Node, stack: list[_Scope], outer: Node) -> None:
        parent = stack[-1]
        name_node = node.child_by_field_name("name")
        name = _text(name_node)
        qname = _join(parent.qname, name)
        is_class = node.type == "class_definition"
        kind = "class" if is_class else ("method" if parent.kind == "class" else "function")
        body = node.child_by_field_name("body")
        bases: list[tuple[str, str]] = []
        if is_class:
            supers = node.child_by_field_name("superclasses")
            if supers is not None:
                for base in supers.named_children:
                    if base.type != "keyword_argument":
                        found = self._expr(base, stack, bare=True)
                        if found is not None:
                            bases.append(found)
                        elif _text(base) != "object":  # a base we cannot see: its members are unknown
                            bases.append(("?", _text(base)))
                self._visit(supers, stack)
        self.bases[qname] = bases
        head_end = body.start_byte if body is not None else node.end_byte
        signature = " ".join(node.text[: head_end - node.start_byte].decode("utf-8", "replace").split())
        self.graph.defs.append(Definition(
            qname, name, kind, outer.start_point[0] + 1, _end_line(node),
            name_node.start_point[0] + 1 if name_node is not None else node.start_point[0] + 1,
            parent.qname or None, tuple(bases), signature[:300], _docstring(body),
        ))
        if body is None:
            return
        if is_class:
            scope = _Scope("class", qname, {})
            self._prescan(body, scope, stack)
            self._visit_children(body, [*stack, scope])
            return
        scope = _Scope("function", qname, {})
        decorators = {_text(d).lstrip("@").strip() for d in outer.named_children if d.type == "decorator"}
        cls = parent.qname if parent.kind == "class" and "staticmethod" not in decorators else None
        params = node.child_by_field_name("parameters")
        if params is not None:
            self._params(params, scope, stack, cls)
        returns = node.child_by_field_name("return_type")
        if returns is not None:
            self._visit(returns, stack)
        self._prescan(body, scope, stack)
        self._visit_children(body, [*stack, scope])


class _Holder:
    """A one-child stand-in so that `_prescan` can scan a lambda's expression body."""

    def __init__(self, node: Node) -> None:
        self.named_children = [node]


def _end_line(node: Node) -> int:
    row, col = node.end_point
    return row if col == 0 and row > node.start_point[0] else row + 1


def _docstring(body: Node | None) -> str:
    if body is None or not body.named_children:
        return ""
    first = body.named_children[0]
    if first.type == "expression_statement" and first.named_children:
        first = first.named_children[0]
    if first.type == "string":
        raw = _text(first)
        return " ".join(raw.strip("\"'rbuRBU").split())[:400]
    return ""


def extract(root: Node, path: str) -> FileGraph:
    return PythonGraph(path).module(root)
