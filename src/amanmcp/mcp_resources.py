"""What `amanmcp serve` offers as MCP resources: the index status, and each indexed file.

Files are listed as `file://` URIs (absolute, percent-encoded) in pages, and read only when the
URI names a file the index holds, inside the project root once symlinks are resolved: a path
outside the root, a file the index left out (ignored, binary, a credential file) or a link
that leads out of the project is refused. A file is served as the index saw it: decoded as
UTF-8, with embedded secrets replaced by the same `[REDACTED:<kind>]` markers.
"""

from __future__ import annotations

import mimetypes
import os
from collections.abc import Callable
from pathlib import Path
from urllib.parse import unquote, urlsplit

from mcp.server.mcpserver.exceptions import ResourceError, ResourceNotFoundError
from mcp_types import Resource

from amanmcp.config import Settings
from amanmcp.scan import is_secret, read_text, redact_secrets, secret_content
from amanmcp.store import IndexLayout, IndexStore

STATUS_URI = "amanmcp://index/status"
PAGE = 500  # files per resources/list page


class IndexFiles:
    """The indexed files of one project, as the current index generation lists them."""

    def __init__(self, root: Path, settings: Callable[[], Settings]) -> None:
        self.root = root.resolve()
        self._settings = settings

    def _read(self, what: Callable[[IndexStore], object]) -> object:
        current = IndexLayout(self.root).current()
        if current is None:
            return None
        store = IndexStore(current, readonly=True)
        try:
            return what(store)
        finally:
            store.close()

    def files(self) -> dict[str, int]:
        """Relative path -> size in bytes, sorted by path; empty before the first build."""
        stats = self._read(lambda store: store.file_stats()) or {}
        return {path: size for path, (size, _) in sorted(stats.items())}  # type: ignore[union-attr]

    def languages(self) -> list[str]:
        """The languages the index holds, sorted; empty when there is no index (or it cannot be read)."""
        try:
            return sorted(self._read(lambda store: store.languages()) or {})  # type: ignore[arg-type]
        except Exception:  # a tools/list must never fail on the index's account
            return []

    def uri(self, path: str) -> str:
        return (self.root / path).as_uri()

    def page(self, cursor: str | None) -> tuple[list[Resource], str | None]:
        """One page of file resources and the cursor of the next (None after the last)."""
        try:
            start = int(cursor or 0)
            if start < 0:
                raise ValueError
        except ValueError:
            raise ResourceError(f"cursor {cursor!r} is not one this server gave out; list from the start") from None
        files = list(self.files().items())
        resources = [
            Resource(uri=self.uri(path), name=path, mime_type=mime_type(path), size=size)
            for path, size in files[start : start + PAGE]
        ]
        return resources, str(start + PAGE) if start + PAGE < len(files) else None

    def read(self, uri: str) -> tuple[str, str]:
        """(text, mime type) of the indexed file `uri` names, or a ResourceError that says why not."""
        parts = urlsplit(uri)
        if parts.scheme != "file" or parts.netloc not in ("", "localhost") or parts.query or parts.fragment:
            raise ResourceNotFoundError(f"{uri} is not a file:// URI of this project; resources/list gives them")
        path = Path(os.path.normpath(unquote(parts.path)))
        try:
            rel = path.relative_to(self.root).as_posix()
        except ValueError:
            raise ResourceNotFoundError(f"{uri} is outside the project root {self.root}; only its indexed files "
                                        "can be read") from None
        if rel not in self.files() or is_secret(rel):
            raise ResourceNotFoundError(f"{rel} is not an indexed file of this project (ignored, excluded, binary, "
                                        "or not indexed yet); resources/list gives the files that are")
        try:
            real = path.resolve(strict=True)
            real.relative_to(self.root)
        except FileNotFoundError:
            raise ResourceNotFoundError(f"{rel} was indexed but is gone from disk") from None
        except ValueError:
            raise ResourceNotFoundError(f"{rel} leads outside the project root; it is not served") from None
        try:
            if real.stat().st_size > self._settings().index.max_file_size:
                raise ResourceError(f"{rel} is larger than index.max_file_size; it is not served")
            text = read_text(real)
        except OSError as exc:
            raise ResourceError(f"{rel} could not be read: {exc.strerror or exc}") from None
        if text is None or secret_content(text):
            raise ResourceError(f"{rel} is binary, not UTF-8, or a credential file now; it is not served")
        return redact_secrets(text)[0], mime_type(rel)


def mime_type(path: str) -> str:
    guess = mimetypes.guess_type(path)[0]
    return guess if guess and (guess.startswith("text/") or guess == "application/json") else "text/plain"
