"""One file's graph from the same tree-sitter parse chunking made (`chunk.code.parse` keeps it)."""

from __future__ import annotations

import logging

from amanmcp.chunk.code import parse
from amanmcp.chunk.grammars import SPECS
from amanmcp.chunk.languages import detect_language
from amanmcp.chunk.lines import split_lines
from amanmcp.graph import generic, python
from amanmcp.graph.model import FileGraph

log = logging.getLogger(__name__)


def extract_file(path: str, text: str) -> FileGraph | None:
    """Definitions, references and imports of one file; None when its language has no grammar here.

    The text is normalised as chunking normalises it, so line numbers agree with the chunks' and
    the tree chunking just built is reused rather than parsed again."""
    language = detect_language(path)
    spec = SPECS.get(language or "")
    if language is None or spec is None or not text.strip():
        return None
    source = "\n".join(split_lines(text)).encode("utf-8", "replace")
    tree = parse(spec.grammar, source)
    if tree is None:
        return None
    try:
        if language == "python":
            return python.extract(tree.root_node, path)
        return generic.extract(tree.root_node, path, language, spec)
    except RecursionError:  # a hostile nesting depth: the file keeps its chunks, not its graph
        log.warning("%s: too deeply nested for the code graph", path)
        return FileGraph()
