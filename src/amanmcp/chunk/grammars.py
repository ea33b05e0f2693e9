"""Per-language knowledge: which tree-sitter nodes are symbols and what they are called.

Node type names were read off real parse trees of each bundled grammar, not guessed;
the odd ones (Zig's `Decl`, Elixir's everything-is-a-`call`, Haskell's `type_synomym`)
are the grammars' own spelling.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from tree_sitter import Node

# (symbol kind, name) for a node that defines something, None otherwise.
Hit = tuple[str, str] | None
Classifier = Callable[[Node], Hit]

_IDENTS = frozenset({"identifier", "type_identifier", "simple_identifier", "constant", "name", "word", "IDENTIFIER"})


def text(node: Node) -> str:
    """Node source as one line of text (names are short; whitespace is collapsed)."""
    raw = node.text.decode("utf-8", "replace") if node.text is not None else ""
    return " ".join(raw.split())


def _name(node: Node) -> str | None:
    """The defined name: the `name` field, the end of a C declarator chain, or a bare identifier child."""
    found = node.child_by_field_name("name")
    if found is None:
        found = node.child_by_field_name("declarator")
        # C/C++: pointer_declarator -> function_declarator -> identifier / qualified_identifier.
        while found is not None and found.type.endswith("declarator"):
            inner = found.child_by_field_name("declarator")
            if inner is None and found.named_child_count:  # e.g. C++ reference_declarator
                inner = found.named_child(found.named_child_count - 1)
            found = inner
    if found is None:
        found = next((c for c in node.named_children if c.type in _IDENTS), None)
    return text(found) if found is not None else None


def _named(kind: str, need_body: bool = False) -> Classifier:
    """Classifier for the common case: a fixed kind and a findable name."""

    def classify(node: Node) -> Hit:
        if need_body and node.child_by_field_name("body") is None:
            return None  # a forward declaration such as `struct foo;`
        name = _name(node)
        return (kind, name) if name else None

    return classify


@dataclass(frozen=True, slots=True)
class Spec:
    """How to find symbols in one grammar."""

    grammar: str
    kinds: Mapping[str, Classifier]
    # Nodes wrapping one definition (decorators, `export`, `template<>`): the span grows to them.
    wrappers: frozenset[str] = frozenset()
    # Sibling nodes right above a definition that belong to it (Rust `#[...]`, Haskell signatures).
    attached: frozenset[str] = frozenset()
    # Line prefixes of comments glued to the definition below them.
    comments: tuple[str, ...] = ("//", "/*")
    block_comment: tuple[str, str] | None = ("/*", "*/")
    # Haskell/Elixir define one function as several adjacent clauses: keep them as one symbol.
    merge_clauses: bool = False


# --- language-specific classifiers -------------------------------------------------


def _go_type_spec(node: Node) -> Hit:
    name = _name(node)
    body = node.child_by_field_name("type")
    kind = {"struct_type": "struct", "interface_type": "interface"}.get(body.type if body else "", "type")
    return (kind, name) if name else None


def _go_method(node: Node) -> Hit:
    name = _name(node)
    receiver = node.child_by_field_name("receiver")
    param = receiver.named_child(0) if receiver is not None else None
    rtype = param.child_by_field_name("type") if param is not None else None
    while rtype is not None and rtype.type in ("pointer_type", "generic_type"):
        rtype = rtype.named_child(0)  # *Point / Point[T] -> Point
    if not name:
        return None
    return ("method", f"{text(rtype)}.{name}" if rtype is not None else name)


_JS_FUNCTION_VALUES = frozenset({"arrow_function", "function_expression", "function", "generator_function"})


def _js_value(kind_of: Node | None) -> str | None:
    if kind_of is None:
        return None
    if kind_of.type in _JS_FUNCTION_VALUES:
        return "function"
    return "class" if kind_of.type in ("class", "class_expression") else None


def _js_declarator(node: Node) -> Hit:
    """`const f = () => {}` is how much modern JS spells a function."""
    kind = _js_value(node.child_by_field_name("value"))
    name = node.child_by_field_name("name")
    return (kind, text(name)) if kind and name is not None else None


def _js_field(node: Node) -> Hit:
    """Class fields holding arrow functions (`onClick = () => {}`) act as methods."""
    kind = _js_value(node.child_by_field_name("value"))
    name = node.child_by_field_name("property") or node.child_by_field_name("name")
    return ("function", text(name)) if kind == "function" and name is not None else None


def _js_pair(node: Node) -> Hit:
    """`{ getAdapter: (a) => {...} }`: object literals of functions are how much JS spells a module."""
    if _js_value(node.child_by_field_name("value")) != "function":
        return None
    key = node.child_by_field_name("key")
    if key is None or key.type in ("number", "computed_property_name"):
        return None  # `{ 34: function () {} }` is a table entry, not a name anyone searches for
    name = text(key).strip("'\"`")
    return ("function", name) if name else None


def _js_assignment(node: Node) -> Hit:
    """`Foo.prototype.bar = function () {}` / `exports.x = () => {}`."""
    kind = _js_value(node.child_by_field_name("right"))
    left = node.child_by_field_name("left")
    return (kind, text(left)) if kind and left is not None else None


def _rust_impl(node: Node) -> Hit:
    target = node.child_by_field_name("type")
    if target is not None and target.type == "generic_type":
        target = target.child_by_field_name("type")  # impl<T> Foo<T> -> Foo
    return ("impl", text(target)) if target is not None else None


def _c_typedef(node: Node) -> Hit:
    name = _name(node)
    inner = node.child_by_field_name("type")
    kind = "type"
    if inner is not None and inner.child_by_field_name("body") is not None:
        kind = {"struct_specifier": "struct", "union_specifier": "struct", "enum_specifier": "enum"}.get(
            inner.type, "type"
        )
    return (kind, name) if name else None


def _kotlin_class(node: Node) -> Hit:
    keywords = {c.type for c in node.children if not c.is_named}
    kind = "interface" if "interface" in keywords else "enum" if "enum" in keywords else "class"
    name = _name(node)
    return (kind, name) if name else None


_SWIFT_KINDS = {"struct": "struct", "enum": "enum", "extension": "impl"}


def _swift_class(node: Node) -> Hit:
    keyword = node.child_by_field_name("declaration_kind")
    name = _name(node)
    kind = _SWIFT_KINDS.get(text(keyword) if keyword is not None else "", "class")
    return (kind, name) if name else None


def _lua_assignment(node: Node) -> Hit:
    """`M.helper = function() end` / `local f = function() end`."""
    targets = next((c for c in node.named_children if c.type == "variable_list"), None)
    values = next((c for c in node.named_children if c.type == "expression_list"), None)
    if targets is None or values is None or values.named_child_count != 1:
        return None
    value = values.named_child(0)
    return ("function", text(targets)) if value is not None and value.type == "function_definition" else None


_EX_FUNCTIONS = frozenset(
    {"def", "defp", "defmacro", "defmacrop", "defguard", "defguardp", "defdelegate", "defn", "defnp"}
)
_EX_MODULES = {"defmodule": "module", "defprotocol": "interface", "defimpl": "impl"}


def _elixir_call(node: Node) -> Hit:
    """Elixir definitions are plain macro calls: `def name(args) do ... end`."""
    target = node.child_by_field_name("target")
    if target is None or target.type != "identifier":
        return None
    word = text(target)
    if word not in _EX_FUNCTIONS and word not in _EX_MODULES:
        return None
    args = next((c for c in node.named_children if c.type == "arguments"), None)
    head = args.named_child(0) if args is not None else None
    if head is None:
        return None
    if word in _EX_MODULES:
        return (_EX_MODULES[word], text(head))
    if head.type == "binary_operator":  # `def f(x) when is_integer(x)`
        head = head.child_by_field_name("left")
    if head is not None and head.type == "call":
        head = head.child_by_field_name("target")
    return ("function", text(head)) if head is not None else None


def _haskell_instance(node: Node) -> Hit:
    name = node.child_by_field_name("name")
    patterns = node.child_by_field_name("patterns")
    if name is None:
        return None
    return ("impl", f"{text(name)} {text(patterns)}" if patterns is not None else text(name))


def _zig_decl(node: Node) -> Hit:
    """Zig's grammar wraps every top-level item in `Decl`; look inside for fn or container."""
    first = node.named_child(0)
    if first is None:
        return None
    if first.type == "FnProto":
        name = first.child_by_field_name("function")
        return ("function", text(name)) if name is not None else None
    if first.type != "VarDecl":
        return None
    name = first.child_by_field_name("variable_type_function")
    value = first.named_child(1)  # ErrorUnionExpr > SuffixExpr > ContainerDecl
    while value is not None and value.type in ("ErrorUnionExpr", "SuffixExpr"):
        value = value.named_child(0)
    if name is None or value is None or value.type != "ContainerDecl":
        return None
    keyword = value.named_child(0)
    kind = "enum" if keyword is not None and text(keyword).startswith("enum") else "struct"
    return (kind, text(name))


def _zig_test(node: Node) -> Hit:
    label = next((c for c in node.named_children if c.type.startswith("STRINGLITERAL")), None)
    return ("test", text(label).strip('"')) if label is not None else None


# --- the table ---------------------------------------------------------------------

_FUNCTION = _named("function")
_CLASS = _named("class")

_JS_KINDS: dict[str, Classifier] = {
    "function_declaration": _FUNCTION,
    "generator_function_declaration": _FUNCTION,
    "class_declaration": _CLASS,
    "method_definition": _FUNCTION,
    "variable_declarator": _js_declarator,
    "field_definition": _js_field,
    "public_field_definition": _js_field,
    "assignment_expression": _js_assignment,
    "pair": _js_pair,
}
_JS_WRAPPERS = frozenset({"export_statement", "lexical_declaration", "variable_declaration", "expression_statement"})
_TS_KINDS: dict[str, Classifier] = {
    **_JS_KINDS,
    "abstract_class_declaration": _CLASS,
    "interface_declaration": _named("interface"),
    "type_alias_declaration": _named("type"),
    "enum_declaration": _named("enum"),
    "internal_module": _named("namespace"),
    "module": _named("namespace"),
}
_TS_WRAPPERS = _JS_WRAPPERS | {"ambient_declaration"}

_C_KINDS: dict[str, Classifier] = {
    "function_definition": _FUNCTION,
    "struct_specifier": _named("struct", need_body=True),
    "union_specifier": _named("struct", need_body=True),
    "enum_specifier": _named("enum", need_body=True),
    "type_definition": _c_typedef,
}
_HASH = ("#",)

SPECS: dict[str, Spec] = {
    "python": Spec(
        "python",
        {"function_definition": _FUNCTION, "class_definition": _CLASS},
        wrappers=frozenset({"decorated_definition"}),
        comments=_HASH,
        block_comment=None,
    ),
    "go": Spec(
        "go",
        {
            "function_declaration": _FUNCTION,
            "method_declaration": _go_method,
            "type_spec": _go_type_spec,
            "type_alias": _named("type"),
        },
        wrappers=frozenset({"type_declaration"}),
    ),
    "javascript": Spec("javascript", _JS_KINDS, wrappers=_JS_WRAPPERS),
    "typescript": Spec("typescript", _TS_KINDS, wrappers=_TS_WRAPPERS),
    "tsx": Spec("tsx", _TS_KINDS, wrappers=_TS_WRAPPERS),
    "rust": Spec(
        "rust",
        {
            "function_item": _FUNCTION,
            "struct_item": _named("struct"),
            "union_item": _named("struct"),
            "enum_item": _named("enum"),
            "trait_item": _named("trait"),
            "impl_item": _rust_impl,
            "type_item": _named("type"),
            "mod_item": _named("module", need_body=True),
            "macro_definition": _named("macro"),
        },
        attached=frozenset({"attribute_item"}),
    ),
    "java": Spec(
        "java",
        {
            "class_declaration": _CLASS,
            "record_declaration": _CLASS,
            "interface_declaration": _named("interface"),
            "annotation_type_declaration": _named("interface"),
            "enum_declaration": _named("enum"),
            "method_declaration": _FUNCTION,
            "constructor_declaration": _FUNCTION,
        },
    ),
    "c": Spec("c", _C_KINDS),
    "cpp": Spec(
        "cpp",
        {
            **_C_KINDS,
            "class_specifier": _named("class", need_body=True),
            "namespace_definition": _named("namespace"),
            "alias_declaration": _named("type"),
        },
        wrappers=frozenset({"template_declaration"}),
    ),
    "csharp": Spec(
        "csharp",
        {
            "class_declaration": _CLASS,
            "record_declaration": _CLASS,
            "struct_declaration": _named("struct"),
            "interface_declaration": _named("interface"),
            "enum_declaration": _named("enum"),
            "method_declaration": _FUNCTION,
            "constructor_declaration": _FUNCTION,
            "destructor_declaration": _FUNCTION,
            "delegate_declaration": _named("type"),
            "namespace_declaration": _named("namespace"),
        },
    ),
    "ruby": Spec(
        "ruby",
        {"method": _FUNCTION, "singleton_method": _FUNCTION, "class": _CLASS, "module": _named("module")},
        comments=_HASH,
        block_comment=None,
    ),
    "php": Spec(
        "php",
        {
            "function_definition": _FUNCTION,
            "method_declaration": _FUNCTION,
            "class_declaration": _CLASS,
            "interface_declaration": _named("interface"),
            "trait_declaration": _named("trait"),
            "enum_declaration": _named("enum"),
            "namespace_definition": _named("namespace", need_body=True),
        },
        comments=("//", "/*", "#"),
    ),
    "kotlin": Spec(
        "kotlin",
        {
            "class_declaration": _kotlin_class,
            "object_declaration": _CLASS,
            "function_declaration": _FUNCTION,
            "type_alias": _named("type"),
        },
    ),
    "swift": Spec(
        "swift",
        {
            "class_declaration": _swift_class,
            "protocol_declaration": _named("interface"),
            "function_declaration": _FUNCTION,
            "init_declaration": _FUNCTION,
            "typealias_declaration": _named("type"),
        },
    ),
    "scala": Spec(
        "scala",
        {
            "class_definition": _CLASS,
            "object_definition": _CLASS,
            "trait_definition": _named("trait"),
            "enum_definition": _named("enum"),
            "function_definition": _FUNCTION,
            "type_definition": _named("type"),
        },
    ),
    "lua": Spec(
        "lua",
        {"function_declaration": _FUNCTION, "assignment_statement": _lua_assignment},
        wrappers=frozenset({"variable_declaration"}),
        comments=("--",),
        block_comment=("--[[", "]]"),
    ),
    "bash": Spec("bash", {"function_definition": _FUNCTION}, comments=_HASH, block_comment=None),
    "elixir": Spec(
        "elixir",
        {"call": _elixir_call},
        attached=frozenset({"unary_operator"}),  # @doc / @spec / @impl, checked for the `@`
        comments=_HASH,
        block_comment=None,
        merge_clauses=True,
    ),
    "haskell": Spec(
        "haskell",
        {
            "function": _FUNCTION,
            "bind": _FUNCTION,
            "data_type": _named("type"),
            "newtype": _named("type"),
            "type_synomym": _named("type"),  # sic: the grammar's spelling
            "class": _CLASS,
            "instance": _haskell_instance,
        },
        attached=frozenset({"signature"}),
        comments=("--",),
        block_comment=("{-", "-}"),
        merge_clauses=True,
    ),
    "zig": Spec(
        "zig",
        {"Decl": _zig_decl, "TestDecl": _zig_test},
        comments=("//",),
        block_comment=None,
    ),
}
