"""Graph questions on one project's index (read-only), picking up re-indexes between questions.

Both front ends (the CLI's `graph`/`context` and the MCP tools) call this and print or send the same
models, so their JSON is the same. The index is the project's own (SQLite) or, with a `store_url`,
one repository of a shared PostgreSQL store; the engine reads either through the store seam.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING

from amanmcp.answers import check_max_tokens, compact_json, token_counter
from amanmcp.errors import AmanError
from amanmcp.graph.context import ContextAnswer, build_context, check_seed_type
from amanmcp.graph.query import GraphAnswer, GraphEngine
from amanmcp.store import IndexLayout, IndexStore
from amanmcp.store.db import SCHEMA_VERSION

if TYPE_CHECKING:
    from amanmcp.store.pg import PgStore


class GraphService:
    def __init__(self, root: Path, store_url: str | None = None, repo: str | None = None) -> None:
        """`store_url` and `repo`: answer from that repository of a shared store (`team.repo_name`)."""
        self.root = root
        self.layout = IndexLayout(root)
        self.store_url = store_url
        self.repo = repo or root.resolve().name
        self._generation: Path | int | None = None
        self._store: IndexStore | PgStore | None = None
        self._engine: GraphEngine | None = None
        self._lock = threading.Lock()  # one connection; tools run in worker threads

    @property
    def shared(self) -> bool:
        return bool(self.store_url)

    def close(self) -> None:
        with self._lock:
            if self._store is not None:
                self._store.close()
                self._store = None

    def engine(self) -> GraphEngine:
        if self.store_url:
            return self._shared_engine(self.store_url)
        current = self.layout.current()
        if current is None:
            raise AmanError(f"{self.root} has no index yet: run `amanmcp index {self.root}` first")
        if current != self._generation or self._engine is None:
            if self._store is not None:
                self._store.close()
            self._store = IndexStore(current, readonly=True)
            self._generation = current
            self._engine = GraphEngine(self._store, self.root.name)
        assert isinstance(self._store, IndexStore)
        schema = self._store.get_meta("schema_version")
        if schema != SCHEMA_VERSION:  # an index from before the graph has no graph tables
            raise AmanError(f"the index of {self.root} was built by an older amanmcp (schema {schema}, not "
                            f"{SCHEMA_VERSION}) and has no code graph: run `amanmcp index {self.root}` to rebuild it "
                            "(`amanmcp serve` rebuilds it by itself)")
        if self._store.get_meta("graph") is False:
            raise AmanError("this index was built without the code graph (index.graph is off): turn it on and run "
                            f"`amanmcp index --force {self.root}`")
        return self._engine

    def _shared_engine(self, url: str) -> GraphEngine:
        """The engine on the repository's live generation of the shared store, followed across rebuilds."""
        from amanmcp.store.pg import PgDatabase, PgStore, describe

        if self._store is None:
            self._store = PgStore(PgDatabase(url), {})
        assert isinstance(self._store, PgStore)
        try:
            live = self._store.live_generations()
        except AmanError:  # the connection was lost (a server restart, an idle timeout): one fresh try
            self._store.close()
            self._store = PgStore(PgDatabase(url), {})
            self._generation = self._engine = None
            live = self._store.live_generations()
        generation = live.get(self.repo, ("", None))[1]
        if generation is None:
            held = ", ".join(live) or "no repositories yet"
            raise AmanError(f"repository {self.repo!r} is not in the store at {describe(url)} (it holds: {held}): "
                            f"run `amanmcp index --repo {self.repo}` with this store on the project first")
        if generation != self._generation or self._engine is None:
            self._store.view({generation: self.repo})
            self._generation = generation
            self._engine = GraphEngine(self._store, self.root.name)
        if self._store.meta_items().get("graph") is not True:
            raise AmanError(f"repository {self.repo!r} in the store at {describe(url)} has no code graph (indexed "
                            "by an older amanmcp, or with index.graph off): turn index.graph on and run "
                            f"`amanmcp index --repo {self.repo}` with this store on {self.root}")
        return self._engine

    def query(self, query: str, mode: str = "find_references", subject_type: str = "auto", max_depth: int = 2,
              max_nodes: int = 50, max_tokens: int | None = None) -> GraphAnswer:
        budget = check_max_tokens(max_tokens) if max_tokens is not None else None
        with self._lock:
            answer = self.engine().query(query, mode, subject_type, max_depth, max_nodes)
        return fit_graph(answer, budget) if budget is not None else answer

    def context(self, seed: str, seed_type: str = "auto", max_tokens: int = 4000) -> ContextAnswer:
        check_seed_type(seed_type)
        budget = check_max_tokens(max_tokens)
        with self._lock:
            return build_context(self.engine(), seed, seed_type, budget)


def fit_graph(answer: GraphAnswer, max_tokens: int) -> GraphAnswer:
    """Drop results from the end until the answer's JSON fits the budget, and say how many went."""
    count = token_counter().count
    if count(compact_json(answer.model_dump(mode="json"))) <= max_tokens:
        return answer
    results = answer.results
    low, high = 0, len(results)
    while low < high:  # the most results that fit
        mid = (low + high + 1) // 2
        trial = answer.model_copy(update={"results": results[:mid]})
        if count(compact_json(trial.model_dump(mode="json"))) <= max_tokens - 40:
            low = mid
        else:
            high = mid - 1
    fitted = answer.model_copy(update={"results": results[:low], "truncated": True,
                                       "warnings": [*answer.warnings, f"{len(results) - low} more results left out "
                                                    f"to fit max_tokens {max_tokens}"]})
    return fitted
