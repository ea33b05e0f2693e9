"""One root for the errors a user can act on: each carries a plain sentence and its exit code.

The CLI maps them to exit codes in one place (`cli.friendly_errors`), the MCP server to tool
errors (`mcp_server`); nothing else needs to know which is which.
"""

from __future__ import annotations


class AmanError(Exception):
    """Something went wrong that the message explains; exit code 1."""

    exit_code = 1


class UsageError(AmanError):
    """The request itself is wrong (an argument, a setting, a file given): exit code 2."""

    exit_code = 2


class IndexDamagedError(AmanError):
    """The index on disk cannot be read; the message says how to rebuild it."""
