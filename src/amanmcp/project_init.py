"""`amanmcp init`: set a project up for amanmcp and for MCP clients, safely re-runnable.

Writes `.amanmcp.yaml` only when absent (pinning the detected backend, so the index never mixes
vector spaces), keeps `.amanmcp/` out of git, and registers the server in `.mcp.json` (Claude
Code's project scope) without touching other servers or a working entry the user edited.
Nothing here prints: the CLI renders the returned report.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from amanmcp.config import INDEX_DIR, PROJECT_FILE, ConfigError, Settings
from amanmcp.embed.factory import select_embedder

MCP_JSON = ".mcp.json"
SERVER_NAME = "amanmcp"


@dataclass(frozen=True, slots=True)
class InitReport:
    root: Path
    backend: str
    reason: str  # why this backend
    config: str  # created | kept
    gitignore: str  # created | added | kept
    mcp_json: str  # created | added | updated | kept
    command: str  # what `.mcp.json` runs
    user_scope: str  # the `claude mcp add` line for every project of this user
    approval: tuple[str, ...] = ()  # how Claude Code's approval of a project server goes (lines to show)
    guidance: tuple[tuple[str, str], ...] = ()  # (CLAUDE.md | AGENTS.md, created | added | kept)


def amanmcp_command() -> str:
    """Absolute path of the `amanmcp` executable: MCP clients do not share the shell's PATH/venv."""
    beside = Path(sys.executable).parent / "amanmcp"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("amanmcp")
    return str(Path(found).resolve()) if found else "amanmcp"


def init_project(root: Path, settings: Settings, backend: str | None = None) -> InitReport:
    selection = select_embedder(settings, backend)
    command = amanmcp_command()
    return InitReport(
        root=root,
        backend=selection.backend,
        reason=selection.reason,
        config=_write_config(root, selection.backend, selection.embedder.identity.model),
        gitignore=_ignore_index(root),
        mcp_json=_register(root, command),
        command=command,
        user_scope=f"claude mcp add --scope user {SERVER_NAME} -- {shlex.quote(command)} serve",
        approval=claude_approval(root),
        guidance=write_guidance(root),
    )


GUIDANCE_START = "<!-- amanmcp:start -->"
GUIDANCE_END = "<!-- amanmcp:end -->"
GUIDANCE = f"""{GUIDANCE_START}
## Code questions: use amanmcp

This project is indexed by amanmcp (MCP server `{SERVER_NAME}`). For questions about the code, use its
tools before grep or opening files one by one:
- `search_code`, `search_docs`, `search`: where something is implemented or documented, by meaning or name.
- `graph_query`: where X is used (`find_references`), who calls it (`callers`), what it calls (`callees`),
  what a change to it reaches (`impact_analysis`), its signature, doc and members (`explain_symbol`).
  It resolves names through imports and scopes; grep also matches comments, strings and namesakes.
- `expand_context`: before editing or explaining a symbol or file, one call returns its code, callers,
  callees, tests and docs within a token budget.
Use grep for exact strings, regular expressions, log messages and config keys.
{GUIDANCE_END}
"""


def write_guidance(root: Path) -> tuple[tuple[str, str], ...]:
    """The assistant-facing section in CLAUDE.md (created when absent) and AGENTS.md (when present).

    A file that already holds the section is kept as it is (the user may have edited it); any other
    content is never touched: the section is appended."""
    out = []
    for name in ("CLAUDE.md", "AGENTS.md"):
        path = root / name
        if not path.exists():
            if name == "CLAUDE.md":
                path.write_text(GUIDANCE, encoding="utf-8")
                out.append((name, "created"))
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        if GUIDANCE_START in text:
            out.append((name, "kept"))
            continue
        gap = "" if not text else "\n" if text.endswith("\n") else "\n\n"
        path.write_text(text + gap + GUIDANCE, encoding="utf-8")
        out.append((name, "added"))
    return tuple(out)


def claude_approval(root: Path) -> tuple[str, ...]:
    """What a user of Claude Code must do before a project server from `.mcp.json` runs.

    Claude Code never starts a project-scope server unasked: until the user approves it,
    `claude mcp list` shows it as "Pending approval" and no session uses it (checked with
    Claude Code 2.1: `claude mcp list`, `claude mcp get`, `claude mcp reset-project-choices`)."""
    return (
        f"Claude Code asks before it starts a server from {MCP_JSON}: run `claude` in {root} and approve "
        f"{SERVER_NAME} when it asks (or later in its /mcp menu).",
        f"Until then `claude mcp list` (run in that folder) shows {SERVER_NAME} as \"Pending approval\"; once "
        "approved it shows \"Connected\". Turned it down? `claude mcp reset-project-choices` asks again.",
    )


def _write_config(root: Path, backend: str, model: str) -> str:
    path = root / PROJECT_FILE
    if path.exists():
        return "kept"
    path.write_text(
        "# amanmcp settings for this project. They override ~/.config/amanmcp/config.yaml; AMANMCP_*\n"
        "# environment variables override both. `amanmcp config show` lists every setting and its source.\n"
        "embeddings:\n"
        f"  provider: {backend}  # detected by `amanmcp init` (model {model}); auto|local|mlx|ollama|openai|static\n"
        "index:\n"
        "  exclude: []  # extra gitignore-style patterns to leave out of the index\n",
        encoding="utf-8",
    )
    return "created"


def _ignore_index(root: Path) -> str:
    path = root / ".gitignore"
    entry = f"{INDEX_DIR}/"
    if not path.exists():
        path.write_text(f"{entry}\n", encoding="utf-8")
        return "created"
    text = path.read_text(encoding="utf-8", errors="replace")
    if any(line.strip().strip("/") == INDEX_DIR for line in text.splitlines()):
        return "kept"
    path.write_text(text + ("" if text.endswith("\n") or not text else "\n") + f"{entry}\n", encoding="utf-8")
    return "added"


def _register(root: Path, command: str) -> str:
    path = root / MCP_JSON
    data: dict[str, Any] = {}
    if path.exists():
        try:
            data = json.loads(path.read_text(encoding="utf-8") or "{}")
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: not valid JSON ({exc}); fix or remove it, then re-run `amanmcp init`") from None
        if not isinstance(data, dict) or not isinstance(data.get("mcpServers", {}), dict):
            raise ConfigError(f"{path}: expected {{\"mcpServers\": {{...}}}} at the top level")
    servers = data.setdefault("mcpServers", {})
    entry = servers.get(SERVER_NAME)
    wanted = {"command": command, "args": ["serve"]}
    if isinstance(entry, dict) and "serve" in entry.get("args", []) and shutil.which(str(entry.get("command", ""))):
        return "kept"  # a working entry, perhaps edited on purpose (env, another path): leave it
    outcome = "created" if not path.exists() else "updated" if entry is not None else "added"
    servers[SERVER_NAME] = {**entry, **wanted} if isinstance(entry, dict) else wanted
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return outcome
