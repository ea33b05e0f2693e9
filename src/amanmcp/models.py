"""Plain data shared by every stage: what a chunk is and what a search returns."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

ContentType = Literal["code", "docs"]


@dataclass(frozen=True, slots=True)
class Chunk:
    """One searchable piece of a file. Lines are 1-based and inclusive."""

    path: str  # relative to the project root, forward slashes
    start_line: int
    end_line: int
    content: str
    language: str  # "python", "go", "markdown", "text", ...
    content_type: ContentType
    symbol: str | None = None  # "parse_args", "HttpClient.send", "Install > Linux"
    symbol_type: str | None = None  # function, method, class, type, section, ...
