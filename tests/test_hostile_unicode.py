"""Queries in other scripts: Cyrillic, Greek, accented Latin and CJK are words, indexed and searched alike."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from amanmcp.config import Settings
from amanmcp.indexer import Indexer
from amanmcp.search import Searcher, SearchError
from amanmcp.tokens import index_words, query_words

RUSSIAN = '''"""Модуль подключения к базе данных."""


def open_connection(dsn):
    # Устанавливаем соединение с сервером и проверяем пароль пользователя
    return connect(dsn)
'''
CHINESE = '''// 缓存模块：负责把查询结果保存在内存里
export function cacheResult(key, value) {
  // 如果缓存已满，就删除最旧的条目
  store.set(key, value);
}
'''
JAPANESE = "# 設定\n\n設定ファイルを読み込んでから、サーバーを起動します。\n"


def test_words_in_other_scripts() -> None:
    assert query_words("соединение с сервером") == ["соединение", "с", "сервером"]
    assert query_words("Ελληνικά κείμενα") == ["ελληνικά", "κείμενα"]
    assert query_words("café naïve") == ["café", "naïve"]
    assert query_words("删除最旧的条目") == ["删除", "除最", "最旧", "旧的", "的条", "条目"]
    assert query_words("缓存") == ["缓存"] and query_words("库") == ["库"]
    assert index_words("缓存模块") == ["缓存", "存模", "模块", "缓", "存", "模", "块"]  # and each character
    assert index_words("getДанные cacheResult缓存") == [
        "getданные", "cacheresult", "cache", "result", "缓存", "缓", "存",
    ]
    assert query_words("*** )( ---") == []


@pytest.fixture
def multilingual(project: Path) -> Path:
    (project / "db_ru.py").write_text(RUSSIAN)
    (project / "web" / "cache_zh.js").write_text(CHINESE)
    (project / "docs" / "start_ja.md").write_text(JAPANESE)
    return project


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("соединение с сервером", "db_ru.py"),
        ("пароль пользователя", "db_ru.py"),
        ("базе данных", "db_ru.py"),
        ("缓存模块", "web/cache_zh.js"),
        ("删除最旧的条目", "web/cache_zh.js"),
        ("查询结果", "web/cache_zh.js"),
        ("缓存", "web/cache_zh.js"),
        ("サーバーを起動", "docs/start_ja.md"),
    ],
)
def test_search_in_other_scripts(multilingual: Path, settings: Settings, embedder, query: str, expected: str) -> None:
    Indexer(multilingual, settings, embedder).run()
    searcher = Searcher(multilingual, settings, embedder)
    try:
        response = searcher.search(query, limit=3)
        assert response.results and response.results[0].path == expected, [r.path for r in response.results]
        bm25_only = Searcher(multilingual, settings.model_copy(update={"search": settings.search.model_copy(
            update={"vector_weight": 0.0})}), None)
        assert bm25_only.search(query, limit=1).results[0].path == expected  # found by its words, not by luck
        bm25_only.close()
    finally:
        searcher.close()


def test_punctuation_only_query_is_still_refused(multilingual: Path, settings: Settings, embedder) -> None:
    Indexer(multilingual, settings, embedder).run()
    with pytest.raises(SearchError, match="only punctuation"):
        Searcher(multilingual, settings, embedder).search("、。！？")


def test_cli_search_in_cyrillic_and_chinese(multilingual: Path) -> None:
    amanmcp = [sys.executable, "-m", "amanmcp"]
    assert subprocess.run([*amanmcp, "index", str(multilingual)], capture_output=True, timeout=300).returncode == 0
    for query, expected in (("соединение с сервером", "db_ru.py"), ("删除最旧的条目", "web/cache_zh.js")):
        out = subprocess.run([*amanmcp, "search", query, "--path", str(multilingual), "--format", "json", "-n", "1"],
                             capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, out.stderr
        assert json.loads(out.stdout)["results"][0]["path"] == expected
