"""What ranking works on: one candidate chunk with its evidence from each retriever."""

from __future__ import annotations

from dataclasses import dataclass, field

from amanmcp.ranking.features import features


@dataclass(slots=True)
class Candidate:
    """A chunk that some retriever found, with the ranks it got there.

    `score` starts as the fused score and every ranking step adjusts it; `signals` records each
    step's effect (name -> multiplier or added amount) so `--explain` can show why it ranks there.
    """

    id: int
    path: str
    start_line: int
    end_line: int
    content: str
    content_type: str = "code"
    language: str = "text"
    symbol: str | None = None
    symbol_type: str | None = None
    bm25_rank: int | None = None
    vector_rank: int | None = None
    vector_score: float | None = None
    symbol_rank: int | None = None
    file_rank: int | None = None  # rank of the chunk's file by the similarity of its centroid to the query
    digest: str | None = None  # content features stored at index time; computed here when absent
    traits: int | None = None
    fused: float = 0.0
    score: float = 0.0
    signals: dict[str, float] = field(default_factory=dict)

    @property
    def name(self) -> str | None:
        """The symbol's own name: `Session.send` -> `send`, `a::b::C` -> `C`."""
        if not self.symbol:
            return None
        return self.symbol.rsplit(" > ", 1)[-1].rsplit(".", 1)[-1].rsplit("::", 1)[-1]

    def features(self) -> tuple[str, int]:
        """(digest, traits) of the content: the stored ones, else computed once."""
        if self.digest is None or self.traits is None:
            self.digest, self.traits = features(self.content)
        return self.digest, self.traits
