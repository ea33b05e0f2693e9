"""Search answers sized for an MCP client: trimmed to `max_tokens`, rendered for reading.

A client caps what one tool answer may hold (Claude Code: 25,000 tokens by default, counted on
`structuredContent` when a tool sends it, since that is what its model reads). So every search
answer is fitted to a token budget before it leaves the server, and the budget holds for each
of the two forms the answer takes: the structured content (compact JSON, the full contract) and
the text block (a compact rendering for clients that show text: `path:start-end  symbol (type)`
then the snippet, never the JSON again).

Trimming is by whole lines, from the end of each result's content: every result keeps its path,
lines, symbol and score; the first lines of every result (its signature or heading) go in
before the rest of any one result; then results are completed best-first. What was cut is said:
`truncated_lines` on each result, and `truncated`, `omitted_results` and a `note` on the answer.
Only when the results' headers alone exceed the budget are whole results left out, from the
bottom of the ranking (`omitted_results`).

Tokens are counted with the default embedding model's tokenizer (all-MiniLM-L6-v2, a WordPiece
vocabulary), read from its `tokenizer.json` where it is on disk; without it, 4 characters count
as one token.
"""

from __future__ import annotations

import functools
import json
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from pydantic import Field
from pydantic.json_schema import SkipJsonSchema

from amanmcp.search import Explain, SearchError, SearchResponse, SearchResult, preview

log = logging.getLogger(__name__)
MIN_MAX_TOKENS = 500
MAX_MAX_TOKENS = 200_000
HEAD_LINES = 3  # the lines every result gets before any result gets the rest: a signature, a heading


class AnswerResult(SearchResult):
    """One result of a tool answer: the search result contract, plus what trimming left out."""

    explain: SkipJsonSchema[Explain | None] = Field(default=None, exclude=True)  # tools never explain
    truncated_lines: int = 0  # lines cut from the end of `content` to fit max_tokens; 0: content is whole


class SearchAnswer(SearchResponse):
    """A search tool's structured content: the search response contract, fitted to `max_tokens`."""

    results: list[AnswerResult]  # type: ignore[assignment]
    max_tokens: int  # the budget this answer was fitted to (tokens of the default model's tokenizer)
    truncated: bool = False  # some content (or whole results) was left out to fit max_tokens
    omitted_results: int = 0  # lower-ranked results left out entirely: their headers alone did not fit
    note: str = ""  # what was cut and how to get the rest; empty when nothing was


class TokenCounter:
    """Counts tokens the way the budget is defined: the default model's tokenizer, else chars/4.

    Counts of long texts (result contents, which recur from query to query) are remembered by the
    text's hash: the tokenizer takes milliseconds for an answer's worth of new text, as long as the
    search itself, so `serve` also counts every indexed chunk once in the background (`warm`)."""

    CACHED = 250_000  # texts whose counts are remembered (two per chunk: as text and as JSON)
    SHORT = 256  # characters: shorter texts are counted afresh (cheap, and mostly one-off)

    def __init__(self, tokenizer: Any | None, name: str) -> None:
        self._tokenizer = tokenizer
        self.name = name
        self._known: OrderedDict[int, int] = OrderedDict()
        self._lock = threading.Lock()  # tool threads and the warm-up share it

    def count(self, text: str) -> int:
        return self.counts([text])[0]

    def counts(self, texts: Sequence[str]) -> list[int]:
        if self._tokenizer is None:
            return [-(-len(t) // 4) for t in texts]
        keys = [hash(t) if len(t) >= self.SHORT else None for t in texts]
        with self._lock:
            out: list[int | None] = [None if k is None else self._known.get(k) for k in keys]
        todo = [i for i, known in enumerate(out) if known is None]
        if todo:
            encoded = self._tokenizer.encode_batch([texts[i] for i in todo], add_special_tokens=False)
            with self._lock:
                for i, e in zip(todo, encoded, strict=True):
                    out[i] = len(e.ids)
                    if keys[i] is not None:
                        self._known[keys[i]] = len(e.ids)
                while len(self._known) > self.CACHED:
                    self._known.popitem(last=False)
        return [int(n or 0) for n in out]

    def warm(self, contents: Iterable[str], stop: threading.Event, batch: int = 128) -> int:
        """Count `contents` in both forms an answer holds them (text, JSON-escaped); returns how many."""
        if self._tokenizer is None:
            return 0
        done = 0
        group: list[str] = []
        for content in contents:
            group.append(content)
            if len(group) == batch:
                done += self._warm_group(group)
                group = []
                if stop.wait(0.005):  # let a search in progress have the cores
                    return done
        return done + (self._warm_group(group) if group else 0)

    def _warm_group(self, group: list[str]) -> int:
        self.counts([*group, *(json.dumps(c, ensure_ascii=False)[1:-1] for c in group)])
        return len(group)


@functools.lru_cache(maxsize=1)
def token_counter() -> TokenCounter:
    """The process's counter: the default model's tokenizer when its files are on disk (never fetched)."""
    try:
        from tokenizers import Tokenizer

        from amanmcp.embed.default_model import model_dir

        folder = model_dir(fetch=False)
        if folder is not None and (folder / "tokenizer.json").is_file():
            tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
            tokenizer.no_truncation()  # the file caps inputs at 128 tokens and pads them: not for counting
            tokenizer.no_padding()
            return TokenCounter(tokenizer, "all-MiniLM-L6-v2 tokenizer")
    except Exception as exc:  # a broken or missing tokenizer must never fail a search
        log.warning("counting tokens as characters/4: the default model's tokenizer is unavailable (%s)", exc)
    return TokenCounter(None, "characters/4")


def check_max_tokens(value: object) -> int:
    """`value` as a budget, or a SearchError that says what a budget must be."""
    if isinstance(value, bool) or not isinstance(value, int) or not MIN_MAX_TOKENS <= value <= MAX_MAX_TOKENS:
        raise SearchError(f"max_tokens must be a whole number between {MIN_MAX_TOKENS} and {MAX_MAX_TOKENS:,}, "
                          f"not {preview(value)}")
    return value


def compact_json(data: Any) -> str:
    """The structured content as a client stringifies it (JSON.stringify: no spaces, UTF-8 kept)."""
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def fit(response: SearchResponse, max_tokens: int, counter: TokenCounter | None = None) -> tuple[SearchAnswer, str]:
    """The answer to send for `response`: its structured content and its text rendering, each at
    most `max_tokens` tokens."""
    counter = counter or token_counter()
    lines = [r.content.split("\n") if r.content else [] for r in response.results]

    def build(count: int, kept: Sequence[int]) -> tuple[SearchAnswer, str, int]:
        answer = _answer(response, lines, count, kept, max_tokens)
        return answer, render_text(answer), measure(answer, counter)

    whole = _answer(response, lines, len(lines), [len(result) for result in lines], max_tokens)
    whole_text = render_text(whole)
    if bound(whole, counter) <= max_tokens:  # the common case, told without tokenising: nothing to cut
        return whole, whole_text
    size = measure(whole, counter)
    if size <= max_tokens:
        return whole, whole_text
    flat = [line for result in lines for line in result]
    text_costs = iter(counter.counts(flat))
    json_costs = iter(counter.counts([json.dumps(line, ensure_ascii=False)[1:-1] for line in flat]))
    # A line's cost in each form: its tokens, plus the newline (`\n` is a token or two in JSON).
    costs = [[(next(text_costs), next(json_costs) + 2) for _ in result] for result in lines]

    # As many results as fit with their first lines (a result without any content says little),
    # best first; if not even one does, as many headers alone as fit.
    count = len(lines)

    def heads(m: int) -> list[int]:
        return [min(HEAD_LINES, len(result)) for result in lines[:m]]

    if build(count, heads(count))[2] > max_tokens:
        count = _most(count - 1, lambda m: build(m, heads(m))[2] <= max_tokens)
        if count == 0:
            count = _most(len(lines), lambda m: build(m, [0] * m)[2] <= max_tokens)
            answer, text, _ = build(count, [0] * count)
            return answer, text
    answer, text, size = build(count, [0] * count)
    # Then content, line by line, within what the headers leave; re-measured, since the note and
    # the per-result markers cost a little too, and a budget that proves too generous shrinks.
    spare = max_tokens - size
    for _ in range(6):
        kept = _allocate(costs[:count], spare)
        trial, trial_text, trial_size = build(count, kept)
        if trial_size <= max_tokens:
            return trial, trial_text
        spare -= trial_size - max_tokens + 8
        if spare <= 0:
            break
    return answer, text


def measure(answer: SearchAnswer, counter: TokenCounter) -> int:
    """Tokens of the larger of the answer's two forms, as `counter.count` of each whole would say.

    Counted in parts: the answer without its contents, plus each content. The split is exact for a
    BERT tokenizer: a content sits between `"` (punctuation, always a token of its own) in the
    JSON and between newlines in the text, so no token spans a boundary; contents' counts are
    remembered, leaving only the small skeleton to tokenize per answer. (With the chars/4 fallback
    the parts round up, so the sum is never below the whole.)"""
    skeleton_json, skeleton_text, json_parts, text_parts = _parts(answer, counter)
    skeleton = counter.counts([skeleton_json, skeleton_text])
    return max(skeleton[0] + json_parts, skeleton[1] + text_parts)


def bound(answer: SearchAnswer, counter: TokenCounter) -> int:
    """At least `measure(answer, counter)`, without tokenising the per-answer skeleton: its characters
    stand for its tokens (a token covers at least one character, and chars/4 rounds up to at most
    the characters). Far below the budget, as most answers are, that settles it."""
    skeleton_json, skeleton_text, json_parts, text_parts = _parts(answer, counter)
    return max(len(skeleton_json) + json_parts, len(skeleton_text) + text_parts)


def _parts(answer: SearchAnswer, counter: TokenCounter) -> tuple[str, str, int, int]:
    """The answer's skeleton (contents emptied) as JSON and as text, and the tokens of its contents in
    each form (remembered counts)."""
    contents = [r.content for r in answer.results]
    bare = answer.model_copy(update={"results": [r.model_copy(update={"content": ""}) for r in answer.results]})
    escaped = [json.dumps(c, ensure_ascii=False)[1:-1] for c in contents]
    parts = counter.counts([*escaped, *contents])
    return (compact_json(bare.model_dump(mode="json")), render_text(bare), sum(parts[: len(contents)]),
            sum(parts[len(contents):]))


def _most(limit: int, fits: Callable[[int], bool]) -> int:
    """The largest m in 0..limit with fits(m) (fits is monotone; fits(0) is assumed)."""
    low, high = 0, limit
    while low < high:
        mid = (low + high + 1) // 2
        if fits(mid):
            low = mid
        else:
            high = mid - 1
    return low


def _allocate(costs: list[list[tuple[int, int]]], spare: int) -> list[int]:
    """How many leading lines of each result fit in `spare` tokens (in each form): first up to
    HEAD_LINES of every result, best first; then the rest of each result, best first, up to the
    first result that does not fit whole (cut there; the ones after it keep their first lines)."""
    kept = [0] * len(costs)
    used = [0, 0]

    def take(i: int, upto: int) -> bool:
        """Lines of result i up to `upto`; False when the next one does not fit."""
        while kept[i] < min(upto, len(costs[i])):
            text_cost, json_cost = costs[i][kept[i]]
            if used[0] + text_cost > spare or used[1] + json_cost > spare:
                return False
            used[0] += text_cost
            used[1] += json_cost
            kept[i] += 1
        return True

    for i in range(len(costs)):
        take(i, HEAD_LINES)
    for i in range(len(costs)):  # the first result that cannot be completed is the last to grow
        if not take(i, len(costs[i])):
            break
    return kept


def _answer(
    response: SearchResponse, lines: list[list[str]], count: int, kept: Sequence[int], max_tokens: int
) -> SearchAnswer:
    results = []
    cut_lines = cut_results = 0
    for result, result_lines, n in zip(response.results[:count], lines, kept, strict=False):
        dropped = len(result_lines) - n
        cut_lines += dropped
        cut_results += dropped > 0
        fields = result.model_dump(exclude={"explain", "content"})
        results.append(AnswerResult(**fields, content="\n".join(result_lines[:n]), truncated_lines=dropped))
    omitted = len(response.results) - count
    notes = []
    if cut_lines:
        notes.append(f"{cut_lines} line{_s(cut_lines)} cut from the end of {cut_results} of {count} result{_s(count)} "
                     "(truncated_lines on each; its path and lines still say where it is)")
    if omitted:
        notes.append(f"the {omitted} lowest-ranked result{_s(omitted)} left out: even without content, "
                     f"{len(response.results)} results do not fit")
    note = ""
    if notes:
        note = (f"Trimmed to fit max_tokens={max_tokens}: {'; '.join(notes)}. For the rest, read the files at "
                "the lines given, or ask again with a higher max_tokens or a lower limit.")
    return SearchAnswer(
        query=response.query, results=results, search_quality=response.search_quality, took_ms=response.took_ms,
        max_tokens=max_tokens, truncated=bool(cut_lines or omitted), omitted_results=omitted, note=note,
    )


def render_text(answer: SearchAnswer) -> str:
    """The text block: one line about the answer, then each result's header line and snippet."""
    quality = answer.search_quality
    n = len(answer.results)
    how = quality.mode + (f", degraded: {quality.reason}" if quality.degraded and quality.reason else "")
    out = [f"{n} result{_s(n)} for {json.dumps(answer.query, ensure_ascii=False)} ({how})" if n else
           f"No results for {json.dumps(answer.query, ensure_ascii=False)} ({how})."]
    for i, r in enumerate(answer.results, 1):
        header = f"[{i}] {r.path}:{r.start_line}-{r.end_line}"
        if r.symbol:
            header += f"  {r.symbol}" + (f" ({r.symbol_type})" if r.symbol_type else "")
        if r.stale:
            header += "  [stale: changed on disk since it was indexed]"
        out.extend(("", header))
        if r.content:
            out.append(r.content)
        if r.truncated_lines:
            out.append(f"… {r.truncated_lines} more line{_s(r.truncated_lines)} not shown (max_tokens)")
    if answer.note:
        out.extend(("", answer.note))
    return "\n".join(out)


def _s(n: int) -> str:
    return "" if n == 1 else "s"
