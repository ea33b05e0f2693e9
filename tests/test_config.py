from pathlib import Path

import pytest

from amanmcp.config import ConfigError, find_project_root, load_config, user_config_path


def test_layers_and_sources(tmp_path: Path) -> None:
    user = user_config_path()
    user.parent.mkdir(parents=True, exist_ok=True)
    user.write_text("search:\n  limit: 7\n  rrf_k: 30\nembeddings:\n  batch_size: 8\n")
    (tmp_path / ".amanmcp.yaml").write_text("search:\n  limit: 5\n")
    loaded = load_config(tmp_path, env={"AMANMCP_EMBEDDINGS_BATCH_SIZE": "16", "AMANMCP_EMBED_CACHE": "false"})
    s = loaded.settings
    assert (s.search.limit, s.search.rrf_k, s.embeddings.batch_size, s.embeddings.cache) == (5, 30, 16, False)
    src = loaded.sources
    assert src["search.limit"] == str(tmp_path / ".amanmcp.yaml")
    assert src["search.rrf_k"] == str(user)
    assert src["embeddings.batch_size"] == "AMANMCP_EMBEDDINGS_BATCH_SIZE"
    rows = {k: (v, source) for k, v, source in loaded.items()}
    assert rows["search.bm25_weight"] == (1.0, "default")


def test_invalid_value_names_key_and_file(tmp_path: Path) -> None:
    (tmp_path / ".amanmcp.yaml").write_text("search:\n  limit: lots\n")
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path, env={})
    assert "search.limit" in str(info.value)
    assert str(tmp_path / ".amanmcp.yaml") in str(info.value)


def test_unknown_key_and_bad_env(tmp_path: Path) -> None:
    (tmp_path / ".amanmcp.yaml").write_text("embeddings:\n  modle: x\n")
    with pytest.raises(ConfigError, match=r"embeddings\.modle"):
        load_config(tmp_path, env={})
    (tmp_path / ".amanmcp.yaml").write_text("")
    with pytest.raises(ConfigError, match="AMANMCP_EMBEDDER"):
        load_config(tmp_path, env={"AMANMCP_EMBEDDER": "gpu-please"})


def test_broken_yaml(tmp_path: Path) -> None:
    (tmp_path / ".amanmcp.yaml").write_text("search: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(tmp_path, env={})


def test_project_root_detection(tmp_path: Path) -> None:
    (tmp_path / "repo" / ".git").mkdir(parents=True)
    deep = tmp_path / "repo" / "a" / "b"
    deep.mkdir(parents=True)
    assert find_project_root(deep) == (tmp_path / "repo").resolve()
    plain = tmp_path / "plain"
    plain.mkdir()
    assert find_project_root(plain) == plain.resolve()
