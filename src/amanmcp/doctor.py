"""`amanmcp doctor`: is every part of the embedding layer usable here, and if not, how to fix it.

Checks the embedder selection (and its fallback chain), each backend, the model files, the
device, disk space, and whether the current embedder matches the one that built the index.
Each check is ok, a warning (optional parts, e.g. no Ollama) or a failure, with a fix.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from amanmcp.config import Settings
from amanmcp.embed.base import EmbedderError, EmbedderIdentity
from amanmcp.errors import IndexDamagedError

if TYPE_CHECKING:
    from amanmcp.embed.http import HttpEmbedder

Level = Literal["ok", "warn", "fail"]
MIN_FREE_BYTES = 1 << 30


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    level: Level
    detail: str
    fix: str = ""
    facts: dict[str, object] | None = None  # the same, as fields (server checks), for --json


@dataclass(slots=True)
class DoctorReport:
    root: str
    checks: list[Check] = field(default_factory=list)
    selection: dict[str, object] | None = None

    @property
    def ok(self) -> bool:
        return all(c.level != "fail" for c in self.checks)

    def to_dict(self) -> dict[str, object]:
        return {"root": self.root, "ok": self.ok, "selection": self.selection,
                "checks": [{"name": c.name, "level": c.level, "detail": c.detail, "fix": c.fix,
                            **({"facts": c.facts} if c.facts is not None else {})} for c in self.checks]}


Add = Callable[[Check], None]


def run_doctor(root: Path, settings: Settings) -> DoctorReport:
    report = DoctorReport(str(root))
    add = report.checks.append
    current = _selection(settings, report, add)
    _local(settings, add)
    _static(settings, add)
    _servers(settings, add)
    _device(settings, add)
    _disk(root, add)
    _index(root, current, add)
    _reranker(settings, add)
    return report


def _selection(settings: Settings, report: DoctorReport, add: Add) -> EmbedderIdentity | None:
    from amanmcp.embed.factory import select_embedder

    requested = settings.embeddings.provider
    try:
        selection = select_embedder(settings)
        identity = selection.embedder.identity
    except EmbedderError as exc:
        add(Check("embedder", "fail", f"{requested}: {exc}",
                  "fix the backend as the message says, or set `embeddings.provider: auto`"))
        return None
    report.selection = {**selection.provenance.to_dict(), "identity": identity.to_dict()}
    level: Level = "warn" if selection.fallback else "ok"
    fix = "see the fallback chain: fix the first ✗ to get the in-process model back" if selection.fallback else ""
    add(Check("embedder", level, f"{identity.label()} — {selection.reason}", fix))
    if selection.attempts and requested == "auto":
        add(Check("fallback chain", level, selection.provenance.chain()))
    return identity


def _local(settings: Settings, add: Add) -> None:
    from amanmcp.embed.factory import local_problem
    from amanmcp.embed.local import LocalEmbedder, resolve_model

    problem = local_problem(settings)
    if problem:
        add(Check("backend local", "fail", problem,
                  "reinstall amanmcp (it ships the default model), name a local model folder, or for a hub "
                  "model install the GPU extra: `pip install 'amanmcp[gpu]'`"))
        return
    _, model_dir = resolve_model(settings.embeddings.model)
    e = settings.embeddings
    try:
        local = LocalEmbedder(e.model, device=e.device, batch_size=e.batch_size, runtime=e.runtime, quantize=e.quantize)
        runtime = local.describe()
    except EmbedderError as exc:
        add(Check("backend local", "fail", str(exc), "set `embeddings.runtime: auto`"))
        return
    files = ""
    if model_dir is not None:
        weights = model_dir / "model.safetensors"
        size = weights.stat().st_size / 1e6 if weights.is_file() else 0
        files = f"; model files {model_dir} ({size:.0f} MB weights)"
    add(Check("backend local", "ok", runtime + files))
    if local.runtime == "onnx" and model_dir is not None:
        from amanmcp.embed.onnx_bert import onnx_path

        path = onnx_path(model_dir, local.model_name, local.quantize)
        state = f"cached at {path}" if path.is_file() else f"not built yet (built once, ~seconds, into {path.parent})"
        add(Check("onnx model", "ok", state))


def _static(settings: Settings, add: Add) -> None:
    from amanmcp.embed.factory import make_backend
    from amanmcp.embed.static import DISTILLED, StaticEmbedder, distilled_path

    try:
        static = make_backend("static", settings)
    except EmbedderError as exc:
        add(Check("backend static", "warn", f"{exc}; auto would use the hashed bag of identifiers",
                  "`pip install model2vec`, or set `static.model: hashed`"))
        return
    detail = static.describe() if hasattr(static, "describe") else static.identity.label()
    if isinstance(static, StaticEmbedder) and static.requested == DISTILLED and static.source_dir is not None:
        path = distilled_path(static.source_dir, static.source_name)
        detail += "; cached" if (path / "model.safetensors").is_file() else "; distilled on first use (~10-40 s)"
    add(Check("backend static", "ok", detail))


SERVER_KINDS = {"mlx": "MLX server", "ollama": "Ollama", "tei": "text-embeddings-inference", "vllm": "vLLM",
                "infinity": "Infinity", "llamacpp": "llama.cpp", "amanmcp": "amanmcp embed-server",
                "openai": "OpenAI-compatible"}


def _servers(settings: Settings, add: Add) -> None:
    """Per configured server: reachable, what it is, model, dimensions, batch cap, truncation mode."""
    from amanmcp.embed.factory import SERVERS, is_apple_silicon, make_server

    for name in SERVERS:
        server = make_server(name, settings)
        optional = settings.embeddings.provider != name and not (name == "mlx" and is_apple_silicon())
        members = getattr(server, "members", [server])  # an `openai.endpoints` pool: each endpoint, then the pool
        for member in members:
            _server(f"backend {name}" + (f" {member.endpoint}" if len(members) > 1 else ""), name, member,
                    optional, add)
        if len(members) > 1 and any(member.health().ok for member in members):
            try:
                add(Check(f"backend {name} pool", "ok", server.describe()))
            except EmbedderError as exc:
                add(Check(f"backend {name} pool", "warn" if optional else "fail", str(exc),
                          "run the same model on every endpoint of `openai.endpoints`"))


def _server(check: str, name: str, server: HttpEmbedder, optional: bool, add: Add) -> None:
    report = server.server_report()
    level: Level = "warn" if optional else "fail"
    suffix = " (optional)" if optional else ""
    if not report.reachable:
        add(Check(check, level, f"{server.endpoint}: not reachable: {report.detail}{suffix}",
                  server.how_to_start(), report.to_dict()))
        return
    kind = SERVER_KINDS.get(report.dialect, report.dialect)
    facts = [f"{server.endpoint}: reachable ({kind})", f"model {report.model or 'unknown'}",
             f"{report.dimensions} dimensions" if report.dimensions else "dimensions unknown",
             f"batch cap {report.batch_cap}", f"truncation: {report.truncation}"]
    if report.problem:
        add(Check(check, level, "; ".join(facts) + f"; but {report.problem}{suffix}",
                  f"set `{name}.model` to a model the server serves, or fix the server", report.to_dict()))
        return
    add(Check(check, "ok", "; ".join(facts), "", report.to_dict()))


def _device(settings: Settings, add: Add) -> None:
    from amanmcp.embed.local import GPU_EXTRA, gpu_hint, has_module, torch_available

    hint = gpu_hint()
    parts = [f"GPU: {hint or 'none detected'}"]
    if has_module("onnxruntime"):
        import onnxruntime

        parts.append(f"onnxruntime {onnxruntime.__version__} ({', '.join(onnxruntime.get_available_providers())})")
    torch_ok = torch_available()
    parts.append("torch installed" if torch_ok else "torch not installed")
    from amanmcp.embed.onnx_bert import usable_cpus

    parts.append(f"{usable_cpus()} CPU cores")
    level: Level = "ok"
    fix = ""
    if settings.embeddings.device in ("cuda", "mps") and hint != settings.embeddings.device:
        level, fix = "fail", "set `embeddings.device: auto` (no such GPU here)"
    elif hint and not torch_ok:  # a GPU sits idle: the local model runs on the CPU through ONNX
        parts.append(f"the local model runs on the CPU (ONNX); to use the {hint.upper()} GPU install the GPU extra")
        level = "fail" if settings.embeddings.device == hint else "warn"
        fix = (f"`{GPU_EXTRA}` (pipx: `pipx install --force 'amanmcp[gpu]'`; "
               "uv: `uv tool install --reinstall 'amanmcp[gpu]'`)")
    add(Check("device", level, "; ".join(parts), fix))


def _disk(root: Path, add: Add) -> None:
    from amanmcp.embed.onnx_bert import cache_dir

    for label, path in (("disk (index)", root), ("disk (model cache)", cache_dir())):
        probe = path
        while not probe.exists() and probe != probe.parent:
            probe = probe.parent
        free = shutil.disk_usage(probe).free
        level: Level = "ok" if free >= MIN_FREE_BYTES else "warn"
        add(Check(label, level, f"{free / 1e9:.1f} GB free at {probe}",
                  "" if level == "ok" else "free some space: an index takes ~2-10 KB per chunk"))


def _index(root: Path, current: EmbedderIdentity | None, add: Add) -> None:
    from amanmcp.store import IndexLayout, load_meta

    generation = IndexLayout(root).current()
    if generation is None:
        add(Check("index", "warn", f"{root} is not indexed yet", f"run `amanmcp index {root}`"))
        return
    try:
        built = load_meta(generation).identity
    except IndexDamagedError as exc:  # one failed check among the others, not the end of the report
        add(Check("index", "fail", str(exc), f"run `amanmcp index --force {root}`"))
        return
    if built is None:
        add(Check("index", "fail", "the index records no embedder", f"run `amanmcp index --force {root}`"))
        return
    if current is None:
        add(Check("index", "fail", f"built with {built.label()}; no embedder is usable now, so searches are BM25-only",
                  f"make `{built.backend}` available again"))
    elif built == current:
        add(Check("index", "ok", f"built with {built.label()}, which the current embedder matches"))
    else:
        add(Check("index", "fail",
                  f"built with {built.label()} but the current embedder is {current.label()}: searches are BM25-only",
                  f"run `amanmcp index {root}` to re-embed, "
                  f"or select `{built.backend}` again (--backend / AMANMCP_EMBEDDER)"))


def _reranker(settings: Settings, add: Add) -> None:
    """Only when one is configured: score one pair, so a wrong URL or format shows here, not mid-search."""
    from amanmcp.embed.rerank import RerankError, make_reranker

    reranker = make_reranker(settings)
    if reranker is None:
        return
    try:
        reranker.score("where are retries handled", ["def retry(): ...", "README"])
        add(Check("reranker", "ok", f"{reranker.label} answers"))
    except RerankError as exc:
        add(Check("reranker", "fail", str(exc), "start the rerank server, fix `reranker.endpoint`/`reranker.format`, "
                                                "or unset `reranker.endpoint` to search without it"))
    finally:
        reranker.close()
