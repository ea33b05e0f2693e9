"""Which language a path holds, decided from its name alone (no content sniffing, so it is free)."""

from __future__ import annotations

from posixpath import basename, splitext

from amanmcp.models import ContentType

_EXTENSIONS: dict[str, str] = {
    ".py": "python", ".pyi": "python", ".pyw": "python",
    ".go": "go",
    ".js": "javascript", ".jsx": "javascript", ".mjs": "javascript", ".cjs": "javascript",
    ".ts": "typescript", ".mts": "typescript", ".cts": "typescript",
    ".tsx": "tsx",
    ".rs": "rust",
    ".java": "java",
    ".c": "c", ".h": "c",  # .h is ambiguous; C is the safer reading and C++ headers still window fine
    ".cc": "cpp", ".cpp": "cpp", ".cxx": "cpp", ".c++": "cpp",
    ".hh": "cpp", ".hpp": "cpp", ".hxx": "cpp", ".h++": "cpp",
    ".cs": "csharp",
    ".rb": "ruby", ".rake": "ruby", ".gemspec": "ruby",
    ".php": "php",
    ".kt": "kotlin", ".kts": "kotlin",
    ".swift": "swift",
    ".scala": "scala", ".sc": "scala",
    ".lua": "lua",
    ".sh": "bash", ".bash": "bash", ".zsh": "bash",
    ".ex": "elixir", ".exs": "elixir",
    ".hs": "haskell",
    ".zig": "zig",
    ".md": "markdown", ".markdown": "markdown", ".mdx": "markdown",
    ".rst": "rst",
    ".txt": "text", ".text": "text",
    ".yaml": "yaml", ".yml": "yaml",
    ".toml": "toml",
    ".json": "json",
    ".ini": "ini", ".cfg": "ini", ".conf": "ini",
    ".html": "html", ".htm": "html",
    ".css": "css",
    ".sql": "sql",
    ".xml": "xml",
}  # fmt: skip

# Names without a telling extension.
_FILENAMES: dict[str, str] = {
    "makefile": "make",
    "gnumakefile": "make",
    "dockerfile": "dockerfile",
    "cmakelists.txt": "cmake",
    "gemfile": "ruby",
    "rakefile": "ruby",
    ".bashrc": "bash",
    ".zshrc": "bash",
    ".profile": "bash",
}

# Prose gets "docs"; everything else, configs included, is "code" because people
# search configs by exact keys the way they search code.
_PROSE = frozenset({"markdown", "rst", "text"})


def detect_language(path: str) -> str | None:
    """Language name for `path`, or None when the name says nothing we know."""
    name = basename(path).lower()
    if name in _FILENAMES:
        return _FILENAMES[name]
    return _EXTENSIONS.get(splitext(name)[1])


def content_type(language: str) -> ContentType:
    """Prose languages are "docs", the rest "code"."""
    return "docs" if language in _PROSE else "code"
