"""The scorer behind `amanmcp eval` and benchmarks/quality.py: the bench's rules, exactly."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import pytest

from amanmcp.evaluation import EvalError, Target, evaluate, load_cases, ndcg, target_ranks


@dataclass
class Hit:
    path: str
    start_line: int = 1
    end_line: int = 10


def test_ndcg_is_one_for_targets_in_the_first_ranks_and_partial_otherwise() -> None:
    assert ndcg((1, 2)) == pytest.approx(1.0)
    assert ndcg((2,)) == pytest.approx(1 / math.log2(3))
    assert ndcg((None, None)) == 0.0
    assert ndcg((*range(1, 11), None, None)) == pytest.approx(1.0)  # ideal is capped at 10 targets


def test_a_target_counts_once_at_its_first_matching_result_and_a_result_serves_one_target() -> None:
    hits = [Hit("pkg/a.py"), Hit("pkg/a.py"), Hit("pkg/b.py")]
    assert target_ranks(hits, "repo", (Target("repo/pkg/a.py"), Target("a.py"), Target("pkg/b.py"))) == (1, 2, 3)


def test_a_span_target_needs_overlapping_lines() -> None:
    hits = [Hit("a.py", 1, 20), Hit("a.py", 40, 60)]
    assert target_ranks(hits, "r", (Target("r/a.py", 45, 50),)) == (2,)
    assert target_ranks(hits, "r", (Target("r/a.py", 25, 30),)) == (None,)


def test_only_the_top_ten_count() -> None:
    hits = [Hit(f"x{i}.py") for i in range(10)] + [Hit("a.py")]
    assert target_ranks(hits, "r", (Target("a.py"),)) == (None,)


def test_evaluate_reports_overall_and_per_category(tmp_path: Path) -> None:
    file = tmp_path / "q.json"
    file.write_text(json.dumps([
        {"query": "one", "relevant": ["r/a.py"], "secondary": ["r/b.py"], "category": "semantic"},
        {"query": "two", "relevant": [{"path": "r/c.py", "start_line": 5, "end_line": 9}], "category": "symbol"},
    ]))
    answers = {"one": [Hit("b.py"), Hit("a.py")], "two": [Hit("d.py")]}
    report = evaluate(lambda q: answers[q], load_cases(file), "r")
    assert report.by_category["symbol"].ndcg == 0.0 and report.by_category["symbol"].recall == 0.0
    one = report.by_category["semantic"]
    assert one.recall == 1.0 and one.mrr == 1.0 and one.ndcg == pytest.approx(1.0)  # two targets, ranks 1-2
    assert report.overall.queries == 2 and report.overall.ndcg == pytest.approx(one.ndcg / 2)
    verbose = report.to_dict(verbose=True)["queries"]
    assert verbose[0]["targets"] == [{"target": "r/a.py", "rank": 2}, {"target": "r/b.py", "rank": 1}]


@pytest.mark.parametrize(("text", "message"), [
    ("not json", "not valid JSON"),
    ("[]", "non-empty list"),
    ('[{"relevant": ["a"]}]', '"query"'),
    ('[{"query": "q", "relevant": []}]', '"relevant"'),
    ('[{"query": "q", "relevant": [{"path": "a", "start_line": 9, "end_line": 2}]}]', "target"),
])
def test_bad_query_files_say_what_is_wrong(tmp_path: Path, text: str, message: str) -> None:
    file = tmp_path / "q.json"
    file.write_text(text)
    with pytest.raises(EvalError, match=message):
        load_cases(file)
