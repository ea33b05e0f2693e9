"""Settings in layers: defaults < user yaml < project yaml < AMANMCP_* environment.

Every effective value remembers where it came from, so `amanmcp config show` can say so and an
invalid value is reported with its key and the file (or variable) that set it.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal

import pathspec
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError

from amanmcp.errors import UsageError

PROJECT_FILE = ".amanmcp.yaml"
INDEX_DIR = ".amanmcp"
Provider = Literal["auto", "local", "mlx", "ollama", "openai", "static"]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _combination(message: str, *keys: str) -> PydanticCustomError:
    """A ValueError about several settings of one section together; `_explain` names each key and
    where it was set. `keys` are relative to the section."""
    return PydanticCustomError("combination", message, {"keys": keys})


class EmbeddingsSettings(_Section):
    provider: Provider = "auto"
    model: str = "all-MiniLM-L6-v2"
    device: Literal["auto", "cpu", "cuda", "mps"] = "auto"
    batch_size: int = Field(32, ge=1, le=1024)
    cache: bool = True  # query-embedding LRU (1,000 entries)
    runtime: Literal["auto", "torch", "onnx"] = "auto"  # local backend: auto = torch on a GPU, ONNX on a CPU
    # local ONNX runtime (CPUs): int8 dynamic quantisation, ~2x fp32 for the same bench quality; a distinct
    # model identity (`+int8`), so never mixed with fp32 vectors. GPUs (torch) always run fp32.
    quantize: bool = True


class SearchSettings(_Section):
    rrf_k: int = Field(60, ge=1)
    bm25_weight: float = Field(1.0, ge=0)
    vector_weight: float = Field(1.0, ge=0)
    symbol_weight: float = Field(1.0, ge=0)  # chunks whose symbol is named by a query word
    limit: int = Field(10, ge=1, le=100)
    candidates: int = Field(100, ge=10, le=2000)
    max_query_chars: int = Field(2000, ge=10)
    max_tokens: int = Field(8000, ge=500, le=200_000)  # MCP search answers are trimmed (whole lines) to fit

    @model_validator(mode="after")
    def _something_ranks(self) -> SearchSettings:
        if self.bm25_weight == self.vector_weight == self.symbol_weight == 0:
            raise _combination("search.bm25_weight, search.vector_weight and search.symbol_weight are all 0: "
                               "at least one must be above 0, or no search finds anything",
                               "bm25_weight", "vector_weight", "symbol_weight")
        return self


class StoreSettings(_Section):
    # None: the project's own SQLite index in <root>/.amanmcp; postgresql://...: a shared team store
    url: str | None = None
    # a shared store searches vectors exactly up to this many per search, then by pgvector's HNSW index:
    # lower than index.exact_search_max because a scan in PostgreSQL costs ~0.9 ms per 1,000 vectors
    exact_search_max: int = Field(20_000, ge=0)


class IndexSettings(_Section):
    max_file_size: int = Field(2 * 1024 * 1024, ge=1)
    exclude: list[str] = []
    max_chunk_lines: int = Field(120, ge=5)
    max_chunk_chars: int = Field(6000, ge=200)
    window_lines: int = Field(60, ge=5)
    window_overlap: int = Field(10, ge=0)
    exact_search_max: int = Field(100_000, ge=0)  # above this many vectors, use a usearch HNSW index
    graph: bool = True  # build the code graph (graph_query, expand_context); off only to measure its cost

    @field_validator("exclude")
    @classmethod
    def _patterns_compile(cls, value: list[str]) -> list[str]:
        for pattern in value:
            try:
                pathspec.GitIgnoreSpec.from_lines([pattern])
            except Exception as exc:
                raise ValueError(f"{pattern!r} is not a valid .gitignore pattern ({exc})") from None
        return value

    @model_validator(mode="after")
    def _windows_fit(self) -> IndexSettings:
        """Combinations that make chunking impossible: every file would fail to chunk.

        A window size or overlap left at its default follows a smaller max_chunk_lines instead."""
        if "window_lines" not in self.model_fields_set:
            self.window_lines = min(self.window_lines, self.max_chunk_lines)
        if "window_overlap" not in self.model_fields_set:
            self.window_overlap = min(self.window_overlap, self.window_lines // 2)
        if self.window_overlap >= self.window_lines:
            raise _combination(
                f"index.window_overlap ({self.window_overlap}) must be less than index.window_lines "
                f"({self.window_lines}), or no window moves forward and no file can be chunked",
                "window_overlap", "window_lines")
        if self.window_lines > self.max_chunk_lines:
            raise _combination(
                f"index.window_lines ({self.window_lines}) must be at most index.max_chunk_lines "
                f"({self.max_chunk_lines}): a window is one chunk", "window_lines", "max_chunk_lines")
        return self


class ServerSettings(_Section):
    endpoint: str = ""
    model: str = ""
    api_key: str = ""
    timeout: float = Field(60.0, gt=0)  # seconds to wait for one batch
    max_in_flight: int = Field(2, ge=1, le=64)  # batches sent concurrently


# Defaults live on the classes, so a file that sets only `mlx.endpoint` keeps the default model.
class MlxSettings(ServerSettings):
    endpoint: str = "http://localhost:9659"
    model: str = "small"  # small | medium | large (Qwen3-Embedding 0.6B/4B/8B), embeddinggemma, or a full name
    load_timeout: float = Field(60.0, gt=0)  # seconds the probe waits for a server that is loading its model


class OllamaSettings(ServerSettings):
    endpoint: str = "http://localhost:11434"
    model: str = "qwen3-embedding:0.6b"


class OpenAISettings(ServerSettings):
    endpoint: str = "http://localhost:8080"  # API base, with or without /v1 (routes without /v1 are tried on a 404)
    # Several API bases serving one model: a pool that spreads batches over them (replaces `endpoint`).
    endpoints: list[str] = Field(default_factory=list)

    @field_validator("endpoints", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        """`AMANMCP_OPENAI_BASE_URLS=http://a:8080,http://b:8080`: a string is a comma-separated list."""
        if isinstance(value, str):
            return [part.strip() for part in value.replace(" ", ",").split(",") if part.strip()]
        return value


class StaticSettings(_Section):
    model: str = "distilled"  # distilled (from embeddings.model, cached) | hashed | a model2vec folder or name


class RerankerSettings(_Section):
    """An optional rerank server (MLX server, text-embeddings-inference, or a Cohere-style API).

    Off unless `endpoint` is set; then the top `candidates` results of a search are re-scored by it.
    """

    endpoint: str = ""  # base URL; /rerank (or /v1/rerank) is appended. Empty = reranking off
    model: str = ""  # sent in requests when set; empty = whatever the server serves
    api_key: str = ""  # sent as `Authorization: Bearer <key>` when set
    format: Literal["auto", "mlx", "tei", "cohere"] = "auto"  # auto: `documents` form, then the tei `texts` form
    candidates: int = Field(30, ge=2, le=100)  # how many top results are reranked
    timeout: float = Field(10.0, gt=0)  # seconds to wait for one rerank request


class Settings(_Section):
    embeddings: EmbeddingsSettings = EmbeddingsSettings()
    search: SearchSettings = SearchSettings()
    index: IndexSettings = IndexSettings()
    mlx: MlxSettings = MlxSettings()
    ollama: OllamaSettings = OllamaSettings()
    openai: OpenAISettings = OpenAISettings()
    static: StaticSettings = StaticSettings()
    reranker: RerankerSettings = RerankerSettings()
    store: StoreSettings = StoreSettings()
    log_level: Literal["debug", "info", "warning", "error"] = "warning"


ENV_KEYS: dict[str, str] = {
    "AMANMCP_EMBEDDER": "embeddings.provider",
    "AMANMCP_EMBEDDINGS_MODEL": "embeddings.model",
    "AMANMCP_EMBEDDINGS_DEVICE": "embeddings.device",
    "AMANMCP_EMBEDDINGS_BATCH_SIZE": "embeddings.batch_size",
    "AMANMCP_EMBED_CACHE": "embeddings.cache",
    "AMANMCP_EMBEDDINGS_RUNTIME": "embeddings.runtime",
    "AMANMCP_EMBEDDINGS_QUANTIZE": "embeddings.quantize",
    "AMANMCP_STATIC_MODEL": "static.model",
    "AMANMCP_MLX_ENDPOINT": "mlx.endpoint",
    "AMANMCP_MLX_MODEL": "mlx.model",
    "AMANMCP_OLLAMA_HOST": "ollama.endpoint",
    "AMANMCP_OLLAMA_MODEL": "ollama.model",
    "AMANMCP_OLLAMA_API_KEY": "ollama.api_key",
    "AMANMCP_MLX_API_KEY": "mlx.api_key",
    "AMANMCP_OPENAI_BASE_URL": "openai.endpoint",
    "AMANMCP_OPENAI_BASE_URLS": "openai.endpoints",
    "AMANMCP_OPENAI_MODEL": "openai.model",
    "AMANMCP_OPENAI_API_KEY": "openai.api_key",
    "AMANMCP_RERANKER_ENDPOINT": "reranker.endpoint",
    "AMANMCP_RERANKER_MODEL": "reranker.model",
    "AMANMCP_RERANKER_API_KEY": "reranker.api_key",
    "AMANMCP_LOG_LEVEL": "log_level",
    "AMANMCP_STORE_URL": "store.url",
}
SECRET_KEYS = {f"{name}.api_key" for name, field in Settings.model_fields.items()  # every section's api_key
               if "api_key" in getattr(field.annotation, "model_fields", {})}


class ConfigError(UsageError):
    """A setting is invalid; the message names the key and where it was set."""


def user_config_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "amanmcp" / "config.yaml"


def find_project_root(path: Path) -> Path:
    """Nearest ancestor with `.git` or `.amanmcp.yaml`, else the path itself.

    A `.git` in the home folder (a dotfiles repository) or in `/` does not make it a project root:
    it would index a whole home folder. Only an `.amanmcp.yaml` there does (someone put it there)."""
    path = path.resolve()
    for candidate in (path, *path.parents):
        if (candidate / PROJECT_FILE).is_file() or ((candidate / ".git").exists() and not _too_wide(candidate)):
            return candidate
    return path


def is_project(root: Path) -> bool:
    """Whether `root` is marked as a project (see `find_project_root`)."""
    return (root / PROJECT_FILE).is_file() or ((root / ".git").exists() and not _too_wide(root))


def serve_root(path: Path | None) -> tuple[Path, str | None]:
    """The project `amanmcp serve` answers for, and None; or the folder and why it refuses to index it.

    Without `path` (a user-scope MCP server runs in whatever folder the client started in), the
    folder must be inside a project: a `.git` or `.amanmcp.yaml` up the tree. A `path` given
    explicitly is the user's choice: a folder without markers is allowed, unless it is the home
    folder itself or `/`."""
    start = (path if path is not None else Path.cwd()).expanduser().resolve()
    root = find_project_root(start)
    if is_project(root) or (path is not None and not _too_wide(root)):
        return root, None
    if _too_wide(root):
        why = f"{root} is {'your home folder' if root != Path(root.anchor) else 'the file system root'}"
    else:
        why = f"{root} is not inside a project (no .git or {PROJECT_FILE} in it or above it)"
    return root, (
        f"amanmcp is not pointed at a project: {why}, so it indexes nothing. Give it the project: "
        "`amanmcp serve /path/to/project` (in the MCP client's server command), or start the client in a "
        f"project folder (a git repository, or a folder where `amanmcp init` wrote {PROJECT_FILE})"
    )


def _too_wide(folder: Path) -> bool:
    """The home folder or the file system root: never indexed as a whole unless `.amanmcp.yaml` says so."""
    try:
        home = Path.home().resolve()
    except (OSError, RuntimeError):
        home = None
    return folder == Path(folder.anchor) or folder == home


def _flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flatten(value, dotted + "."))
        else:
            out[dotted] = value
    return out


def _nest(flat: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for dotted, value in flat.items():
        node = out
        *parents, leaf = dotted.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return out


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of settings at the top level")
    return _flatten(data)


class LoadedConfig(BaseModel):
    settings: Settings
    sources: dict[str, str]  # dotted key -> "default" | file path | env variable name
    root: Path | None

    def items(self) -> list[tuple[str, Any, str]]:
        """(key, value, source) for every setting, secrets masked."""
        rows = []
        for key, value in _flatten(self.settings.model_dump()).items():
            if key in SECRET_KEYS and value:
                value = "***"
            elif key == "store.url" and isinstance(value, str):  # its password, if it holds one
                value = re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", value)
            rows.append((key, value, self.sources.get(key, "default")))
        return rows


def load_config(root: Path | None = None, env: dict[str, str] | None = None) -> LoadedConfig:
    env = os.environ if env is None else env
    layers: list[tuple[str, dict[str, Any]]] = [(str(user_config_path()), _read_yaml(user_config_path()))]
    if root is not None:
        project = root / PROJECT_FILE
        layers.append((str(project), _read_yaml(project)))
    layers.append(("env", {key: env[var] for var, key in ENV_KEYS.items() if var in env}))

    merged: dict[str, Any] = {}
    sources: dict[str, str] = {}
    env_names = {key: var for var, key in ENV_KEYS.items()}
    for origin, values in layers:
        for key, value in values.items():
            merged[key] = value
            sources[key] = env_names[key] if origin == "env" else origin
    try:
        settings = Settings.model_validate(_nest(merged))
    except ValidationError as exc:
        raise ConfigError(_explain(exc, sources)) from None
    return LoadedConfig(settings=settings, sources=sources, root=root)


def _explain(exc: ValidationError, sources: dict[str, str]) -> str:
    lines = []
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"])
        if err["type"] == "combination":  # several keys together: name each and where it was set
            keys = [f"{key}.{k}" if key else k for k in err.get("ctx", {}).get("keys", ())]
            named = ", ".join(f"{k!r} (set in {sources.get(k, 'defaults')})" for k in keys)
            lines.append(f"invalid combination of settings {named}: {err['msg']}")
            continue
        where = sources.get(key, "defaults")
        lines.append(f"invalid setting {key!r} (set in {where}): {err['msg']}")
    return "\n".join(lines)
