"""amanmcp: local-first code search engine and MCP server."""

from importlib.metadata import PackageNotFoundError, version

try:  # the version is written once, in pyproject.toml; the installed package's metadata carries it
    __version__ = version("amanmcp")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"
