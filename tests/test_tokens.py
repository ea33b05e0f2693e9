from amanmcp.tokens import index_words, query_words, split_identifier


def test_split_identifier() -> None:
    assert split_identifier("getHTTPResponse_code") == ["get", "http", "response", "code"]
    assert split_identifier("parse_args") == ["parse", "args"]
    assert split_identifier("HTTPAdapter") == ["http", "adapter"]


def test_index_words_keep_whole_identifier_and_parts() -> None:
    assert index_words("def retryWithBackoff(x): pass") == [
        "def", "retrywithbackoff", "retry", "with", "backoff", "x", "pass",
    ]


def test_query_words_drop_stopwords_and_punctuation() -> None:
    assert query_words("where are retries handled?") == ["retries", "handled"]
    assert query_words('"AND" * NEAR(') == ["near"]
    assert query_words("the") == ["the"]
    assert query_words("*** )( ---") == []
