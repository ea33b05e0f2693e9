"""A CPU-only run never imports torch (issue 12): `index`, `search` and a `serve` session run in
subprocesses whose imports of torch, sentence_transformers and transformers are blocked, and give
the same results as a plain run.

The blocker is a `sitecustomize` on PYTHONPATH, so it also reaches every process those start.
Two modes:
- `forbidden`: the libraries look installed (`importlib.util.find_spec` finds them, as with the
  `gpu` extra on a CPU-only machine), yet importing one raises; every attempt is also logged,
  so an attempt that some library swallows still fails the test.
- `absent`: they look not installed at all, as in a core install.

The real core install (a fresh venv from the built wheel, no torch on disk) is tests/test_install.py.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters

from amanmcp.config import load_config
from conftest import default_local_model

BLOCKED = ("torch", "sentence_transformers", "transformers")
QUERIES = ("retry with backoff", "parse the configuration file", "database is locked", "HTTPAdapter")

SITECUSTOMIZE = textwrap.dedent('''
    """Test-only import blocker (tests/test_no_torch.py): torch and friends must never be imported."""
    import importlib.machinery
    import importlib.util
    import os
    import sys
    import traceback

    _BLOCKED = {BLOCKED!r}
    _MODE = os.environ.get("AMANMCP_TEST_TORCH", "forbidden")
    _LOG = os.environ.get("AMANMCP_TEST_IMPORT_LOG")
    _real_find_spec = importlib.util.find_spec


    def _blocked(name):
        return name.partition(".")[0] in _BLOCKED


    def _find_spec(name, package=None):
        if isinstance(name, str) and _blocked(name):
            # forbidden: "installed" (a spec that cannot load); absent: not installed
            return importlib.machinery.ModuleSpec(name, None) if _MODE == "forbidden" else None
        return _real_find_spec(name, package)


    class _Blocker:
        @staticmethod
        def find_spec(name, path=None, target=None):
            if not _blocked(name):
                return None
            if _LOG:
                with open(_LOG, "a") as log:
                    log.write(f"import {{name}} in pid {{os.getpid()}}:\\n" + "".join(traceback.format_stack(limit=12)))
            raise ModuleNotFoundError(f"No module named {{name!r}} (blocked by the no-torch test)", name=name)


    importlib.util.find_spec = _find_spec
    sys.meta_path.insert(0, _Blocker())
''').format(BLOCKED=set(BLOCKED))


def blocker_dir(tmp: Path) -> Path:
    folder = tmp / "no-torch-site"
    folder.mkdir(exist_ok=True)
    (folder / "sitecustomize.py").write_text(SITECUSTOMIZE)
    return folder


def run_env(tmp: Path, mode: str | None) -> dict[str, str]:
    """A CPU-only environment (device pinned to cpu, so a GPU machine runs the same path); with the
    blocker when `mode` is set."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", str(tmp)),
        "XDG_CACHE_HOME": os.environ["XDG_CACHE_HOME"], "XDG_CONFIG_HOME": os.environ["XDG_CONFIG_HOME"],
        "HF_HUB_OFFLINE": "1", "AMANMCP_EMBEDDINGS_DEVICE": "cpu", "AMANMCP_LOG_LEVEL": "info",
    }
    if mode is not None:
        env |= {"PYTHONPATH": str(blocker_dir(tmp)), "AMANMCP_TEST_TORCH": mode,
                "AMANMCP_TEST_IMPORT_LOG": str(tmp / f"imports-{mode}.log")}
    return env


def amanmcp(env: dict[str, str], *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([sys.executable, "-m", "amanmcp", *args], capture_output=True, text=True, env=env,
                          timeout=timeout)
    assert proc.returncode == 0, f"amanmcp {' '.join(args)} failed:\n{proc.stderr[-3000:]}"
    return proc


def comparable(answer: dict[str, Any]) -> dict[str, Any]:
    """A search answer without its timing: what must be equal between two runs."""
    quality = answer["search_quality"]
    for r in answer["results"]:  # an MCP answer says what max_tokens cut: nothing, for these small results
        assert r.pop("truncated_lines", 0) == 0
    return {
        "results": [{**r, "score": round(r["score"], 4)} for r in answer["results"]],
        "mode": quality["mode"], "degraded": quality["degraded"], "backend": quality["backend"],
        "model": quality["model"],
    }


def assert_same(got: dict[str, dict[str, Any]], expected: dict[str, dict[str, Any]]) -> None:
    """Equal answers, or a message that names the first difference."""
    for query, answer in expected.items():
        other = got[query]
        for i, (a, b) in enumerate(zip(other["results"], answer["results"], strict=True)):
            diff = {k: (a.get(k), b.get(k)) for k in a.keys() | b.keys() if a.get(k) != b.get(k)}
            assert not diff, f"{query!r}, result {i}: {diff}"
        assert {k: v for k, v in other.items() if k != "results"} == {k: v for k, v in answer.items() if k != "results"}


def cli_answers(env: dict[str, str], root: Path) -> dict[str, dict[str, Any]]:
    return {q: comparable(json.loads(amanmcp(env, "search", q, "--path", str(root), "--format", "json", "-n",
                                             "5").stdout)) for q in QUERIES}


async def serve_answers(env: dict[str, str], root: Path) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """A short MCP session on `amanmcp serve root`: status once ready, then each query via the search tool."""
    params = StdioServerParameters(command=sys.executable, args=["-m", "amanmcp", "serve", str(root)], env=env)
    async with Client(params, mode="legacy", read_timeout_seconds=120) as client:

        async def call(tool: str, **arguments: Any) -> dict[str, Any]:
            result = await client.call_tool(tool, arguments)
            assert not result.is_error, result.content
            assert result.structured_content is not None
            return result.structured_content

        deadline = time.monotonic() + 60
        status = await call("index_status")
        while status["indexing"]["state"] != "watching":
            assert time.monotonic() < deadline, f"serve never finished its start-up run: {status['indexing']}"
            await anyio.sleep(0.05)
            status = await call("index_status")
        answers = {q: comparable(await call("search", query=q, limit=5)) for q in QUERIES}
    return status, answers


def copy_project(project: Path, name: str) -> Path:
    """A copy of the fixture project (links kept as links, so both copies skip the same files)."""
    target = project.parent / name
    shutil.copytree(project, target, symlinks=True)
    return target


@pytest.mark.parametrize("mode", ["forbidden", "absent"])
def test_index_search_serve_never_import_torch(project: Path, tmp_path: Path, mode: str) -> None:
    plain_root, blocked_root = copy_project(project, "plain"), copy_project(project, "blocked")
    plain, blocked = run_env(tmp_path, None), run_env(tmp_path, mode)
    log = Path(blocked["AMANMCP_TEST_IMPORT_LOG"])

    # the blocker works: a direct import fails in the blocked environment only
    probe = "import importlib.util, sys; print(importlib.util.find_spec('torch') is not None); import torch"
    refused = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=blocked)
    assert refused.returncode == 1 and "blocked by the no-torch test" in refused.stderr
    assert refused.stdout.strip() == ("True" if mode == "forbidden" else "False")
    log.unlink()

    amanmcp(plain, "index", str(plain_root))
    amanmcp(blocked, "index", str(blocked_root))
    expected = cli_answers(plain, plain_root)
    got = cli_answers(blocked, blocked_root)
    assert_same(got, expected)
    first = got[QUERIES[0]]
    assert first["results"][0]["path"] == "src/payments/retry.py"
    assert (first["mode"], first["degraded"], first["backend"]) == ("hybrid", False, "local")

    status, served = anyio.run(serve_answers, blocked, blocked_root)
    assert status["embedder"] == f"local:{default_local_model()} (384d)" and status["embedder_matches"]
    assert status["embedder_fallback"] is False
    assert_same(served, expected)  # the MCP tool answers as the CLI does

    assert not log.exists(), f"torch (or a friend) was imported:\n{log.read_text()[:4000]}"


@pytest.mark.parametrize(("gpu", "torch_ok", "runtime"), [
    ("cuda", False, "onnx"),  # a GPU but no `gpu` extra: ONNX on the CPU, no error
    ("cuda", True, "torch"),  # the extra and a GPU: torch (on the GPU, once loaded)
    ("mps", True, "torch"),
    (None, True, "onnx"),  # the extra on a CPU-only machine: still ONNX
    (None, False, "onnx"),
])
def test_auto_detection_with_and_without_the_gpu_extra(monkeypatch: pytest.MonkeyPatch, gpu: str | None,
                                                        torch_ok: bool, runtime: str) -> None:
    """Choosing the runtime imports nothing; queries of a BERT model never go through torch."""
    from amanmcp.embed import local

    monkeypatch.setattr(local, "gpu_hint", lambda: gpu)
    monkeypatch.setattr(local, "torch_available", lambda: torch_ok)
    embedder = local.LocalEmbedder()
    assert (embedder.runtime, embedder.query_runtime) == (runtime, "onnx")


def test_without_torch_errors_name_the_gpu_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    from amanmcp.embed import local
    from amanmcp.embed.base import EmbedderError

    monkeypatch.setattr(local, "torch_available", lambda: False)
    for kwargs in ({"runtime": "torch"}, {"device": "cuda"}, {"device": "mps"}):
        with pytest.raises(EmbedderError) as caught:
            local.LocalEmbedder(**kwargs).runtime  # noqa: B018 - choosing the runtime is what raises
        message = str(caught.value)
        assert "pip install 'amanmcp[gpu]'" in message and "torch==" not in message


def test_hub_model_without_torch_names_the_gpu_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from amanmcp.embed import local
    from amanmcp.embed.factory import local_problem

    monkeypatch.setattr(local, "torch_available", lambda: False)
    settings = load_config(tmp_path, env={"AMANMCP_EMBEDDINGS_MODEL": "someone/some-model"}).settings
    problem = local_problem(settings)
    assert problem is not None and "amanmcp[gpu]" in problem


def test_bench_skips_local_torch_without_torch(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from amanmcp import bench
    from amanmcp.embed import local

    monkeypatch.setattr(local, "torch_available", lambda: False)
    assert bench.skip_reason("local-onnx") is None and bench.skip_reason("static-hashed") is None
    monkeypatch.setattr(bench, "_run_worker", lambda *a: pytest.fail("a skipped target must not start a worker"))
    report = bench.run_bench(project, load_config(project, env={}).settings, ["local-torch"], limit=4)
    (row,) = report.results
    assert (row.name, row.available, row.skipped, row.chunks_per_s) == ("local-torch", False, True, None)
    assert row.detail.startswith("skipped:") and "torch" in row.detail and "amanmcp[gpu]" in row.detail
    assert report.to_dict()["results"][0]["skipped"] is True and report.to_dict()["ratios"] == {}


def test_bench_measures_local_torch_when_torch_is_present(project: Path) -> None:
    """The dev extra installs torch's CPU wheel: the GPU-path code keeps running in CI."""
    from amanmcp import bench
    from amanmcp.embed.local import torch_available

    if not torch_available():
        pytest.skip("torch is not installed here (a core install)")
    assert bench.skip_reason("local-torch") is None


@pytest.mark.parametrize(("torch_ok", "device", "level"), [(False, "auto", "warn"), (False, "cuda", "fail"),
                                                           (True, "auto", "ok")])
def test_doctor_says_how_to_enable_the_gpu(project: Path, monkeypatch: pytest.MonkeyPatch, torch_ok: bool,
                                           device: str, level: str) -> None:
    from amanmcp import doctor
    from amanmcp.embed import local

    monkeypatch.setattr(local, "gpu_hint", lambda: "cuda")
    monkeypatch.setattr(local, "torch_available", lambda: torch_ok)
    settings = load_config(project, env={"AMANMCP_EMBEDDINGS_DEVICE": device}).settings
    checks: list[doctor.Check] = []
    doctor._device(settings, checks.append)
    (check,) = checks
    assert check.level == level
    if torch_ok:
        assert "torch installed" in check.detail and not check.fix
    else:
        assert "torch not installed" in check.detail and "runs on the CPU (ONNX)" in check.detail
        assert "pip install 'amanmcp[gpu]'" in check.fix


def test_doctor_without_a_gpu_says_nothing_about_the_extra(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from amanmcp import doctor
    from amanmcp.embed import local

    monkeypatch.setattr(local, "gpu_hint", lambda: None)
    monkeypatch.setattr(local, "torch_available", lambda: False)
    checks: list[doctor.Check] = []
    doctor._device(load_config(project, env={}).settings, checks.append)
    assert checks[0].level == "ok" and "amanmcp[gpu]" not in checks[0].detail + checks[0].fix
