"""`amanmcp doctor`: every check says what it found, and a failing one says how to fix it."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from amanmcp.config import load_config
from amanmcp.doctor import run_doctor
from amanmcp.embed.factory import select_embedder
from amanmcp.embed.http import clear_probe_cache
from amanmcp.indexer import Indexer
from embed_helpers import amanmcp_command, closed_port_url


def dead(env: dict[str, str] | None = None) -> dict[str, str]:
    url = closed_port_url()
    return {"AMANMCP_MLX_ENDPOINT": url, "AMANMCP_OLLAMA_HOST": url, "AMANMCP_OPENAI_BASE_URL": url, **(env or {})}


def by_name(report) -> dict[str, object]:
    return {c.name: c for c in report.checks}


def test_healthy_machine_without_servers(project: Path) -> None:
    clear_probe_cache()
    report = run_doctor(project, load_config(project, env=dead()).settings)
    checks = by_name(report)
    assert report.ok
    assert checks["embedder"].level == "ok" and "local" in checks["embedder"].detail
    assert checks["backend local"].level == "ok" and "model files" in checks["backend local"].detail
    assert checks["backend static"].level == "ok"
    for server in ("backend ollama", "backend openai"):
        assert checks[server].level == "warn" and "(optional)" in checks[server].detail and checks[server].fix
    assert checks["index"].level == "warn" and "amanmcp index" in checks["index"].fix
    assert {"device", "disk (index)", "disk (model cache)"} <= set(checks)
    assert report.selection and report.selection["backend"] == "local"
    assert "reranker" not in checks  # none configured: nothing to check


def test_a_configured_reranker_that_is_down_fails_with_a_fix(project: Path) -> None:
    clear_probe_cache()
    env = dead({"AMANMCP_RERANKER_ENDPOINT": closed_port_url()})
    report = run_doctor(project, load_config(project, env=env).settings)
    check = by_name(report)["reranker"]
    assert not report.ok and check.level == "fail"
    assert "unreachable" in check.detail and "reranker.endpoint" in check.fix


def test_index_built_by_another_embedder_fails_with_a_fix(project: Path) -> None:
    settings = load_config(project, env=dead({"AMANMCP_STATIC_MODEL": "hashed"})).settings
    Indexer(project, settings, select_embedder(settings, "static").embedder).run()
    report = run_doctor(project, settings)
    index = by_name(report)["index"]
    assert not report.ok and index.level == "fail"
    assert "static:hashed-identifiers-v1" in index.detail and "BM25-only" in index.detail
    assert "re-embed" in index.fix


def test_explicit_unreachable_backend_fails(project: Path) -> None:
    clear_probe_cache()
    report = run_doctor(project, load_config(project, env=dead({"AMANMCP_EMBEDDER": "ollama"})).settings)
    checks = by_name(report)
    assert not report.ok
    assert checks["embedder"].level == "fail" and "Ollama not reachable" in checks["embedder"].detail
    assert checks["backend ollama"].level == "fail" and "ollama serve" in checks["backend ollama"].fix


def test_doctor_cli_json_and_exit_code(project: Path) -> None:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "XDG_CACHE_HOME": os.environ["XDG_CACHE_HOME"],
           "XDG_CONFIG_HOME": str(project.parent / "xdg-config"), **dead()}
    ok = subprocess.run([*amanmcp_command(), "doctor", "--path", str(project)], capture_output=True, text=True,
                        env=env, timeout=120)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "✓ embedder" in ok.stdout and "fix:" in ok.stdout and "Traceback" not in ok.stderr
    env["AMANMCP_EMBEDDER"] = "mlx"
    failed = subprocess.run([*amanmcp_command(), "doctor", "--path", str(project), "--json"], capture_output=True,
                            text=True, env=env, timeout=120)
    assert failed.returncode == 1
    data = json.loads(failed.stdout)
    assert data["ok"] is False and data["checks"][0]["name"] == "embedder"
    assert "MLX server not reachable" in data["checks"][0]["detail"]
