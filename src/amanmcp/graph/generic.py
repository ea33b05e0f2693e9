"""Every other chunked language: definitions by the chunker's own classifiers, references by identifier.

Names are resolved as far as the syntax allows without a type checker: a definition of the same
file (or, in Go, of the same package folder), an import (JS/TS `import`/`require`/re-exports, Go
import paths, Rust `use` and `mod`), a qualified access through an imported module (`pkg.Func`,
`ns.f`, `a::b::f`), or `this.x` on the enclosing class. Anything else keeps only its name.
"""

from __future__ import annotations

import posixpath

from tree_sitter import Node

from amanmcp.chunk.grammars import Spec
from amanmcp.graph.model import Definition, FileGraph, Import, Reference

IDENT_TYPES = frozenset({
    "identifier", "type_identifier", "field_identifier", "property_identifier", "simple_identifier",
    "constant", "shorthand_property_identifier", "shorthand_property_identifier_pattern",
    "package_identifier", "IDENTIFIER", "name", "word", "variable",
})
CALLS = {"call_expression": "function", "call": "function", "method_invocation": "name",
         "invocation_expression": "function", "new_expression": "constructor", "macro_invocation": "macro",
         "function_call_expression": "function", "member_call_expression": "name"}
MEMBERS = {"member_expression": ("object", "property"), "selector_expression": ("operand", "field"),
           "field_expression": ("value", "field"), "scoped_identifier": ("path", "name"),
           "qualified_type": ("package", "name"), "scoped_type_identifier": ("path", "name")}
CONTAINERS = frozenset({"class", "struct", "interface", "enum", "trait", "impl", "module", "namespace"})
JS = frozenset({"javascript", "typescript", "tsx"})
SKIP_PARENTS = frozenset({"import_statement", "import_declaration", "use_declaration", "import_spec",
                          "export_clause", "comment", "string", "string_literal", "template_string",
                          "interpreted_string_literal", "raw_string_literal"})
# Scopes whose parameters and declarations are local names (a reference to nothing outside).
FUNCTIONS = frozenset({"function_declaration", "function_expression", "arrow_function", "method_definition",
                       "generator_function_declaration", "function", "generator_function", "func_literal",
                       "method_declaration", "function_item", "closure_expression"})
PARAMS = frozenset({"formal_parameters", "parameter_list", "parameters", "closure_parameters"})
DECLARATORS = {"variable_declarator": "name", "short_var_declaration": "left", "var_spec": "name",
               "let_declaration": "pattern", "range_clause": "left"}
_SIGNATURES = {"function_signature": "function", "method_signature": "method",
               "abstract_method_signature": "method"}
# Names that label something rather than refer to it: object keys, property and field declarations.
KEY_FIELDS = {"pair": "key", "pair_pattern": "key", "property_signature": "name", "public_field_definition": "name",
              "field_definition": "property", "labeled_statement": "label", "field_declaration": "name",
              "keyed_element": "key", "field_initializer": "field"}
BINDING_LEAVES = frozenset({"identifier", "shorthand_property_identifier_pattern"})
NOT_BINDING = frozenset({"assignment_pattern"})  # `x = default`: only the left side binds


def _text(node: Node | None) -> str:
    return node.text.decode("utf-8", "replace") if node is not None and node.text is not None else ""


def _js_spec(path: str, source: str) -> str:
    if source.startswith("."):
        return "rel:" + posixpath.normpath(posixpath.join(posixpath.dirname(path), source))
    return "ext:" + source


class GenericGraph:
    def __init__(self, path: str, language: str, spec: Spec) -> None:
        self.path = path
        self.language = language
        self.spec = spec
        self.own = "file:" + path
        self.graph = FileGraph()
        self.names: dict[str, tuple[str, str]] = {}  # file-level bindings: name -> (module, qualified name)
        self.def_names: set[tuple[int, int]] = set()  # byte spans of definitions' name nodes
        self.types: dict[str, str] = {}  # JS/TS module-level variables of a known class

    def run(self, root: Node) -> FileGraph:
        self._defs(root, "", "")
        for d in self.graph.defs:
            if d.parent is None:
                self.names.setdefault(d.name, (self.own, d.qname))
        self._imports(root)
        if self.language in JS:
            self._field_types(root)
        self._refs(root)
        return self.graph

    # -- definitions ---------------------------------------------------------------------------

    def _defs(self, root: Node, scope: str, container: str) -> None:
        stack: list[tuple[Node, str, str]] = [(c, scope, container) for c in reversed(root.named_children)]
        kinds = self.spec.kinds
        while stack:
            node, scope, container = stack.pop()
            classify = kinds.get(node.type)
            hit = classify(node) if classify is not None else None
            if hit is None and node.type in _SIGNATURES:  # TS overloads and interface methods: definition sites
                name_field = node.child_by_field_name("name")
                hit = (_SIGNATURES[node.type], _text(name_field)) if name_field is not None else None
            if hit is None:
                stack.extend((c, scope, container) for c in reversed(node.named_children))
                continue
            kind, name = hit
            if kind == "function" and container:
                kind = "method"
            qname = name if "." in name or not scope else f"{scope}.{name}"
            own = name.rsplit(".", 1)[-1]
            name_node = self._name_node(node, own)
            if name_node is not None:
                self.def_names.add((name_node.start_byte, name_node.end_byte))
            body = node.child_by_field_name("body")
            head_end = body.start_byte if body is not None else min(node.end_byte, node.start_byte + 300)
            signature = " ".join(node.text[: head_end - node.start_byte].decode("utf-8", "replace").split())
            self.graph.defs.append(Definition(
                qname, own, kind, node.start_point[0] + 1, _end_line(node),
                (name_node or node).start_point[0] + 1, scope or None, self._bases(node), signature[:300],
                _comment_above(node),
            ))
            stack.extend((c, qname, qname if kind in CONTAINERS else "") for c in reversed(node.named_children))

    def _field_types(self, root: Node) -> None:
        """Module variables and class fields of a known class (`x: Foo`, `new Foo()`, `constructor(private
        x: Foo)`): recorded as typed bindings (`Cls.field` -> Foo) the resolver follows for `this.x.m()`."""
        for node in root.named_children:
            inner = node.child_by_field_name("declaration") if node.type == "export_statement" else node
            if inner is not None and inner.type in ("lexical_declaration", "variable_declaration"):
                for decl in inner.named_children:
                    held = _declared_type(decl)
                    name = decl.child_by_field_name("name")
                    if held is not None and name is not None and name.type == "identifier":
                        self.types[_text(name)] = held
        for d in self.graph.defs:
            if d.kind != "class":
                continue
            body = self._class_body(root, d)
            for member in body.named_children if body is not None else []:
                if member.type == "public_field_definition":
                    held = _declared_type(member)
                    name = member.child_by_field_name("name")
                    if held is not None and name is not None:
                        self._typed_field(d.qname, _text(name), held, member)
                elif member.type == "method_definition" and _text(member.child_by_field_name("name")) == "constructor":
                    params = member.child_by_field_name("parameters")
                    for param in params.named_children if params is not None else []:
                        held = _annotation(param.child_by_field_name("type"))
                        pattern = param.child_by_field_name("pattern")
                        modifier = any(c.type == "accessibility_modifier" for c in param.named_children)
                        if held is not None and pattern is not None and modifier:
                            self._typed_field(d.qname, _text(pattern), held, param)

    def _class_body(self, root: Node, d: Definition) -> Node | None:
        stack = [root]
        while stack:
            node = stack.pop()
            if node.type in ("class_declaration", "abstract_class_declaration", "class") and \
                    node.start_point[0] + 1 == d.start_line and _text(node.child_by_field_name("name")) == d.name:
                return node.child_by_field_name("body")
            if node.start_point[0] + 1 <= d.start_line <= node.end_point[0] + 1:
                stack.extend(node.named_children)
        return None

    def _typed_field(self, cls: str, field: str, held: str, node: Node) -> None:
        module, qname = self._typed(held)
        self.graph.imports.append(Import(f"{cls}.{field}", module, qname, node.start_point[0] + 1))

    def _name_node(self, node: Node, name: str) -> Node | None:
        found = node.child_by_field_name("name")
        if found is not None and _text(found) == name:
            return found
        todo = list(node.named_children)
        while todo:  # the first identifier spelled like the name, before the body
            child = todo.pop(0)
            if child.type in IDENT_TYPES and _text(child) == name:
                return child
            if child.type not in ("block", "statement_block", "class_body", "body", "declaration_list",
                                  "field_declaration_list", "compound_statement"):
                todo.extend(child.named_children)
        return None

    def _bases(self, node: Node) -> tuple[tuple[str, str], ...]:
        heritage = next((c for c in node.named_children if c.type == "class_heritage"), None)
        if heritage is None:
            return ()
        out = []
        for clause in heritage.named_children:
            for value in clause.named_children:
                if value.type in ("identifier", "type_identifier"):
                    out.append(("@name", _text(value)))  # resolved through the file's bindings below
        return tuple(out)

    # -- imports ----------------------------------------------------------------------------------

    def _bind(self, local: str, module: str, name: str, line: int) -> None:
        self.graph.imports.append(Import(local, module, name, line))
        if local not in ("*", "default"):
            self.names[local] = (module, name)

    def _imports(self, root: Node) -> None:
        if self.language in JS:
            self._js_imports(root)
        elif self.language == "go":
            self._go_imports(root)
        elif self.language == "rust":
            self._rust_imports(root)
        # base classes named by a bare identifier now resolve through the file's bindings
        fixed = []
        for d in self.graph.defs:
            if d.bases:
                bases = tuple(self.names.get(n, (self.own, n)) if m == "@name" else (m, n) for m, n in d.bases)
                d = Definition(d.qname, d.name, d.kind, d.start_line, d.end_line, d.line, d.parent, bases,
                               d.signature, d.doc)
            fixed.append(d)
        self.graph.defs = fixed

    def _js_imports(self, root: Node) -> None:
        for node in root.named_children:
            line = node.start_point[0] + 1
            if node.type == "import_statement":
                spec = _js_spec(self.path, _text(node.child_by_field_name("source")).strip("'\"`"))
                clause = next((c for c in node.named_children if c.type == "import_clause"), None)
                for part in clause.named_children if clause is not None else []:
                    if part.type == "identifier":
                        self._bind(_text(part), spec, "default", line)
                    elif part.type == "namespace_import":
                        ident = next((c for c in part.named_children if c.type == "identifier"), None)
                        if ident is not None:
                            self._bind(_text(ident), spec, "", line)
                    elif part.type == "named_imports":
                        for item in part.named_children:
                            name = _text(item.child_by_field_name("name"))
                            alias = item.child_by_field_name("alias")
                            if name:
                                self._bind(_text(alias) if alias is not None else name, spec, name, line)
            elif node.type == "export_statement":
                source = node.child_by_field_name("source")
                spec = _js_spec(self.path, _text(source).strip("'\"`")) if source is not None else self.own
                clause = next((c for c in node.named_children if c.type == "export_clause"), None)
                value = node.child_by_field_name("value")
                declaration = node.child_by_field_name("declaration")
                if clause is not None:
                    for item in clause.named_children:
                        name = _text(item.child_by_field_name("name"))
                        alias = item.child_by_field_name("alias")
                        local = _text(alias) if alias is not None else name
                        if source is not None or local != name:
                            self.graph.imports.append(Import(local, spec, name, line))
                elif source is not None:
                    ns = next((c for c in node.named_children if c.type == "namespace_export"), None)
                    ident = next((c for c in ns.named_children), None) if ns is not None else None
                    self.graph.imports.append(Import(_text(ident) if ident is not None else "*", spec, "", line))
                elif any(c.type == "default" for c in node.children):
                    target = value if value is not None else declaration
                    if target is not None and target.type == "identifier":
                        self.graph.imports.append(Import("default", self.own, _text(target), line))
                    elif target is not None and target.child_by_field_name("name") is not None:
                        self.graph.imports.append(Import("default", self.own,
                                                         _text(target.child_by_field_name("name")), line))
            elif node.type in ("lexical_declaration", "variable_declaration"):
                for decl in node.named_children:
                    value = decl.child_by_field_name("value")
                    if value is None or value.type != "call_expression" or \
                            _text(value.child_by_field_name("function")) != "require":
                        continue
                    args = value.child_by_field_name("arguments")
                    source = args.named_children[0] if args is not None and args.named_children else None
                    if source is None or source.type != "string":
                        continue
                    spec = _js_spec(self.path, _text(source).strip("'\"`"))
                    target = decl.child_by_field_name("name")
                    if target is not None and target.type == "identifier":
                        self._bind(_text(target), spec, "default", line)
                    elif target is not None and target.type == "object_pattern":
                        for item in target.named_children:
                            if item.type == "shorthand_property_identifier_pattern":
                                self._bind(_text(item), spec, _text(item), line)
                            elif item.type == "pair_pattern":
                                key, val = item.child_by_field_name("key"), item.child_by_field_name("value")
                                self._bind(_text(val), spec, _text(key), line)

    def _go_imports(self, root: Node) -> None:
        for spec_node in _descendants(root, "import_spec"):
            path = _text(spec_node.child_by_field_name("path")).strip('"`')
            alias = spec_node.child_by_field_name("name")
            local = _text(alias) if alias is not None else path.rsplit("/", 1)[-1]
            if local not in ("_", "."):
                self._bind(local, "go:" + path, "", spec_node.start_point[0] + 1)

    def _rust_imports(self, root: Node) -> None:
        folder = posixpath.dirname(self.path)
        stem = posixpath.splitext(self.path)[0]
        base = folder if posixpath.basename(stem) in ("lib", "main", "mod") else stem
        for node in root.named_children:
            line = node.start_point[0] + 1
            if node.type == "mod_item" and node.child_by_field_name("body") is None:
                name = _text(node.child_by_field_name("name"))
                self._bind(name, "rel:" + posixpath.join(base, name), "", line)
            elif node.type == "use_declaration":
                arg = node.child_by_field_name("argument")
                if arg is not None:
                    self._rust_use(arg, "", line)

    def _rust_use(self, node: Node, prefix: str, line: int) -> None:
        def join(a: str, b: str) -> str:
            return f"{a}::{b}" if a and b else a or b

        if node.type == "scoped_identifier":
            path = join(prefix, _text(node.child_by_field_name("path")))
            name = _text(node.child_by_field_name("name"))
            self._bind(name, "rs:" + path, name, line)
        elif node.type == "use_as_clause":
            inner = node.child_by_field_name("path")
            alias = _text(node.child_by_field_name("alias"))
            if inner is not None and inner.type == "scoped_identifier":
                path = join(prefix, _text(inner.child_by_field_name("path")))
                self._bind(alias, "rs:" + path, _text(inner.child_by_field_name("name")), line)
        elif node.type == "scoped_use_list":
            path = join(prefix, _text(node.child_by_field_name("path")))
            items = node.child_by_field_name("list")
            for item in items.named_children if items is not None else []:
                self._rust_use(item, path, line)
        elif node.type == "use_list":
            for item in node.named_children:
                self._rust_use(item, prefix, line)
        elif node.type == "identifier" and prefix:
            self._bind(_text(node), "rs:" + prefix, _text(node), line)
        elif node.type == "use_wildcard":
            inner = next((c for c in node.named_children), None)
            path = join(prefix, _text(inner) if inner is not None else "")
            if path:
                self.graph.imports.append(Import("*", "rs:" + path, "", line))

    # -- references ---------------------------------------------------------------------------------

    def _refs(self, root: Node) -> None:
        defs = sorted(self.graph.defs, key=lambda d: (d.start_line, -d.end_line))
        classes = [d for d in defs if d.kind in ("class", "struct", "impl", "trait", "interface")]
        package = "dir:" + posixpath.dirname(self.path) if self.language == "go" else None
        stack: list[tuple[Node, frozenset[str], dict[str, str]]] = [(root, frozenset(), self.types)]
        while stack:
            node, local, types = stack.pop()
            kind = node.type
            if kind == "import_statement" or kind == "export_clause":
                self._import_refs(node, defs)
                continue
            if kind in SKIP_PARENTS:
                continue
            if kind in FUNCTIONS:
                names = _locals(node)
                local = local | names
                typed = _types(node) if self.language in JS else {}
                types = {**{k: v for k, v in types.items() if k not in names}, **typed}
            if kind in IDENT_TYPES and not node.named_children:
                self._ref(node, local, types, defs, classes, package)
                continue
            stack.extend((c, local, types) for c in reversed(node.named_children))

    def _ref(self, node: Node, local: frozenset[str], types: dict[str, str], defs: list[Definition],
             classes: list[Definition], package: str | None) -> None:
        if (node.start_byte, node.end_byte) in self.def_names:
            return
        parent = node.parent
        declared = parent is not None and parent.type in DECLARATORS and _is_field(
            parent, DECLARATORS[parent.type], node)
        key = KEY_FIELDS.get(parent.type) if parent is not None else None
        if key is not None and _is_field(parent, key, node):  # type: ignore[arg-type]
            return  # `{ name: value }`: the key names a property, not the definition called `name`
        if node.type == "shorthand_property_identifier_pattern" or declared:
            return  # declares a local variable
        name = _text(node)
        member = _is_member(node)
        if not member and name in local:
            return
        line = node.start_point[0] + 1
        target = self._target(node, name, line, classes, package, local, types)
        kind = "call" if _is_call(node) else "ref"
        self.graph.refs.append(Reference(name, line, kind, _enclosing(defs, line), *(target or (None, None)), member))

    def _import_refs(self, node: Node, defs: list[Definition]) -> None:
        """The names an import or export clause mentions are references to what they import."""
        source = node.child_by_field_name("source") or (
            node.parent.child_by_field_name("source") if node.parent is not None else None)
        spec = _js_spec(self.path, _text(source).strip("'\"`")) if source is not None else None
        stack = list(node.named_children)
        while stack:
            item = stack.pop()
            if item.type in ("import_specifier", "export_specifier"):
                name_node = item.child_by_field_name("name")
                if name_node is not None:
                    name = _text(name_node)
                    target = (spec, name) if spec is not None else self.names.get(name, (self.own, name))
                    line = name_node.start_point[0] + 1
                    self.graph.refs.append(Reference(name, line, "import", _enclosing(defs, line), *target))
            elif item.type == "identifier" and item.parent is not None and item.parent.type == "import_clause":
                line = item.start_point[0] + 1
                self.graph.refs.append(Reference(_text(item), line, "import", None, spec, "default"))
            elif item.type not in ("string",):
                stack.extend(item.named_children)

    def _typed(self, type_name: str) -> tuple[str, str]:
        return self.names.get(type_name, (self.own, type_name))

    def _target(self, node: Node, name: str, line: int, classes: list[Definition], package: str | None,
                local: frozenset[str] = frozenset(), types: dict[str, str] | None = None) -> tuple[str, str] | None:
        parent = node.parent
        fields = MEMBERS.get(parent.type) if parent is not None else None
        if parent is not None and fields is not None:
            member = parent.child_by_field_name(fields[1])
            if member is not None and member.start_byte == node.start_byte:
                obj = parent.child_by_field_name(fields[0])
                if obj is None:
                    return None
                if obj.type in ("this", "self") or _text(obj) == "self":
                    cls = next((c for c in reversed(classes) if c.start_line <= line <= c.end_line), None)
                    return (self.own, f"{cls.qname}.{name}") if cls is not None else None
                held = (types or {}).get(_text(obj)) if obj.type == "identifier" else None
                if held is not None:  # `x: Foo` or `x = new Foo()`: x's members are Foo's
                    module, qname = self._typed(held)
                    return module, f"{qname}.{name}"
                if obj.type == "member_expression" and self.language in JS:  # `this.field.name`
                    inner = obj.child_by_field_name("object")
                    field = obj.child_by_field_name("property")
                    if inner is not None and inner.type == "this" and field is not None:
                        cls = next((c for c in reversed(classes) if c.start_line <= line <= c.end_line), None)
                        return (self.own, f"{cls.qname}.{_text(field)}.{name}") if cls is not None else None
                if obj.type in IDENT_TYPES and _text(obj) in local:
                    return None  # a local variable of unknown type
                bound = self.names.get(_text(obj)) if obj.type in IDENT_TYPES else None
                if bound is None and obj.type in ("scoped_identifier", "identifier") and self.language == "rust":
                    if obj.type == "identifier" and any(i.local == "*" for i in self.graph.imports):
                        return self.own, f"{_text(obj)}.{name}"  # `use crate::codec::*; FramedRead::new`
                    return ("rs:" + _text(obj), name)
                if bound is not None:
                    return bound[0], f"{bound[1]}.{name}" if bound[1] else name
                return None
        bound = self.names.get(name)
        if bound is not None:
            return bound
        if package is not None:
            return package, name
        return None


def _descendants(root: Node, kind: str) -> list[Node]:
    out, stack = [], [root]
    while stack:
        node = stack.pop()
        if node.type == kind:
            out.append(node)
        elif node.type in ("source_file", "import_declaration", "import_spec_list"):
            stack.extend(node.named_children)
    return out


def _is_field(parent: Node, field: str, node: Node) -> bool:
    value = parent.child_by_field_name(field)
    return value is not None and value.start_byte <= node.start_byte and node.end_byte <= value.end_byte and (
        value.type not in ("expression_list",) or any(c.start_byte == node.start_byte for c in value.named_children))


def _is_member(node: Node) -> bool:
    parent = node.parent
    fields = MEMBERS.get(parent.type) if parent is not None else None
    if parent is None or fields is None:
        return False
    member = parent.child_by_field_name(fields[1])
    return member is not None and member.start_byte == node.start_byte


def _bound_names(node: Node | None, out: set[str]) -> None:
    """Names a parameter list or declaration pattern binds (not its default values or types)."""
    if node is None:
        return
    stack = [node]
    while stack:
        item = stack.pop()
        if item.type in BINDING_LEAVES:
            out.add(_text(item))
        elif item.type in NOT_BINDING:
            left = item.child_by_field_name("left")
            if left is not None:
                stack.append(left)
        elif item.type == "pair_pattern":
            value = item.child_by_field_name("value")
            if value is not None:
                stack.append(value)
        elif "type" not in item.type and item.type not in FUNCTIONS:
            stack.extend(item.named_children)


def _annotation(node: Node | None) -> str | None:
    """The class a TS type annotation names (`: Foo`, `: Foo<T>`), None for anything else."""
    if node is None or not node.named_children:
        return None
    inner = node.named_children[0]
    if inner.type == "generic_type":
        inner = inner.named_children[0] if inner.named_children else inner
    return _text(inner) if inner.type == "type_identifier" else None


def _declared_type(decl: Node) -> str | None:
    """`x: Foo` or `x = new Foo(...)` (a variable declarator or a class field)."""
    held = _annotation(decl.child_by_field_name("type"))
    value = decl.child_by_field_name("value")
    if held is None and value is not None and value.type == "new_expression":
        ctor = value.child_by_field_name("constructor")
        held = _text(ctor) if ctor is not None and ctor.type == "identifier" else None
    return held


def _types(function: Node) -> dict[str, str]:
    """Parameters and variables of a function whose class is written down (JS/TS)."""
    out: dict[str, str] = {}
    params = function.child_by_field_name("parameters")
    for param in params.named_children if params is not None else []:
        pattern = param.child_by_field_name("pattern")
        held = _annotation(param.child_by_field_name("type"))
        if held is not None and pattern is not None and pattern.type == "identifier":
            out[_text(pattern)] = held
    body = function.child_by_field_name("body")
    stack = [body] if body is not None else []
    while stack:
        node = stack.pop()
        if node.type == "variable_declarator":
            name = node.child_by_field_name("name")
            held = _declared_type(node)
            if held is not None and name is not None and name.type == "identifier":
                out[_text(name)] = held
        if node.type not in FUNCTIONS:
            stack.extend(node.named_children)
    return out


def _locals(function: Node) -> frozenset[str]:
    """Parameters and variables declared in a function (not in functions nested in it)."""
    out: set[str] = set()
    for child in function.named_children:
        if child.type in PARAMS:
            _bound_names(child, out)
    params = function.child_by_field_name("parameters") or function.child_by_field_name("parameter")
    if params is not None and params.type == "identifier":  # `x => x + 1`
        out.add(_text(params))
    body = function.child_by_field_name("body")
    stack = [body] if body is not None else []
    while stack:
        node = stack.pop()
        field = DECLARATORS.get(node.type)
        if field is not None:
            _bound_names(node.child_by_field_name(field), out)
        if node.type not in FUNCTIONS:
            stack.extend(node.named_children)
    return frozenset(out)


def _is_call(node: Node) -> bool:
    parent = node.parent
    if parent is None:
        return False
    fields = MEMBERS.get(parent.type)
    if fields is not None:
        member = parent.child_by_field_name(fields[1])
        if member is None or member.start_byte != node.start_byte:
            return False
        node, parent = parent, parent.parent
        if parent is None:
            return False
    field = CALLS.get(parent.type)
    fn = parent.child_by_field_name(field) if field is not None else None
    return fn is not None and fn.start_byte == node.start_byte and fn.end_byte == node.end_byte


def _enclosing(defs: list[Definition], line: int) -> str | None:
    best = None
    for d in defs:
        if d.start_line > line:
            break
        if d.end_line >= line:
            best = d.qname
    return best


def _end_line(node: Node) -> int:
    row, col = node.end_point
    return row if col == 0 and row > node.start_point[0] else row + 1


def _comment_above(node: Node) -> str:
    prev = node.prev_named_sibling
    target = node
    while prev is None and target.parent is not None and target.parent.type in (
        "export_statement", "decorated_definition", "template_declaration"):
        target = target.parent
        prev = target.prev_named_sibling
    if prev is None or "comment" not in prev.type or prev.end_point[0] < target.start_point[0] - 1:
        return ""
    raw = _text(prev)
    lines = [ln.strip().strip("/*#!").strip() for ln in raw.splitlines()]
    return " ".join(ln for ln in lines if ln and not ln.startswith("@"))[:400]


def extract(root: Node, path: str, language: str, spec: Spec) -> FileGraph:
    return GenericGraph(path, language, spec).run(root)
