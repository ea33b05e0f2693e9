"""Secrets never reach the index: credential files are skipped, tokens inside files are redacted in place."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from amanmcp.config import Settings
from amanmcp.indexer import Indexer
from amanmcp.scan import Scanner, is_secret, redact_secrets
from amanmcp.search import Searcher
from amanmcp.store import IndexLayout

# Built from pieces so this file itself holds no string a secret scanner would flag as a live token.
AWS_ID = "AKIA" + "Q3EXAMPLE7XYZ2AB"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCY" + "EXAMPLEKEY"
GITHUB = "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"
GITHUB_PAT = "github_pat_" + "11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyzABCDEFGH"
GITLAB = "glpat-" + "x9Y8w7V6u5T4s3R2q1P0"
SLACK = "xoxb-" + "123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx"
JWT = ("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9" + ".eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIn0"
       + ".SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c")
KEY_LINES = ["MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKB",
             "wQNQbmB0QvRtUXr8hZrd1fZ3uYq8ZQmnRkLxvRrQe0cVJu1tEPrWa5gKk7rSrDbO",
             "Zm9vYmFyYmF6cXV4cXV1eHNlY3JldGtleW1hdGVyaWFsZm9yYWxsdGhlbGluZXM="]
PRIVATE_KEY = "\n".join(["-----BEGIN RSA PRIVATE KEY-----", *KEY_LINES, "-----END RSA PRIVATE KEY-----"])

SECRET_VALUES = [AWS_ID, AWS_SECRET, GITHUB, GITHUB_PAT, GITLAB, SLACK, JWT, *KEY_LINES]

CONFIG_PY = f'''"""Deployment settings (with secrets that should never have been committed)."""

AWS_ACCESS_KEY_ID = "{AWS_ID}"
aws_secret_access_key = "{AWS_SECRET}"
GITHUB_TOKEN = "{GITHUB}"
FINE_GRAINED = "{GITHUB_PAT}"
GITLAB_TOKEN = "{GITLAB}"
SLACK_BOT = "{SLACK}"
SESSION = "{JWT}"
SIGNING_KEY = """{PRIVATE_KEY}
"""


def deployment_region_settings():
    """Where the deployment runs."""
    return "eu-west-1"
'''

CREDENTIAL_FILES = {
    ".envrc": "export DB_PASSWORD=envrc-hunter2\n",
    ".git-credentials": "https://bob:gitcred-hunter2@github.com\n",
    ".pgpass": "db.example.com:5432:app:bob:pgpass-hunter2\n",
    "infra/terraform.tfvars": 'db_password = "tfvars-hunter2"\n',
    "infra/prod.tfvars": 'api_token = "prodtfvars-hunter2"\n',
    "infra/terraform.tfstate": '{"outputs": {"password": {"value": "tfstate-hunter2"}}}\n',
    "infra/terraform.tfstate.backup": '{"outputs": {"password": {"value": "tfbackup-hunter2"}}}\n',
    "home/.kube/config": "users:\n- name: admin\n  user:\n    token: kube-hunter2\n",
    "ops/kubeconfig": "users:\n- user:\n    token: kubeconfig-hunter2\n",
    "ops/staging.kubeconfig": "users:\n- user:\n    token: stagingkube-hunter2\n",
    "home/.netrc": "machine api.example.com login bob password netrc-hunter2\n",
    "home/.npmrc": "//registry.npmjs.org/:_authToken=npmrc-hunter2\n",
    "home/.pypirc": "[pypi]\npassword = pypirc-hunter2\n",
    "home/.docker/config.json": '{"auths": {"ghcr.io": {"auth": "docker-hunter2"}}}\n',
    "vpn/office.ovpn": "client\n<key>\novpn-hunter2\n</key>\n",
    "web/.htpasswd": "bob:$apr1$htpasswd-hunter2\n",
    "home/.ssh/id_ed25519": "ssh-hunter2\n",
    "gcp/project-1234.json": json.dumps({"type": "service_account", "project_id": "demo",
                                         "private_key": "gcpkey-hunter2", "client_email": "x@demo.iam"}),
}


def test_credential_files_are_secret_by_name_or_place() -> None:
    for path in CREDENTIAL_FILES:
        if path.startswith("gcp/"):
            continue  # a service-account key is known by its content
        assert is_secret(path), path
    for path in ("src/config.py", "docs/kubernetes.md", "terraform/main.tf", "infra/terraform.tfvars.example",
                 "README.md", "docker/config.py"):
        assert not is_secret(path), path


def test_redaction_keeps_lines_and_counts() -> None:
    redacted, count = redact_secrets(CONFIG_PY)
    assert count == 8  # seven tokens and one key block
    assert len(redacted.splitlines()) == len(CONFIG_PY.splitlines())  # every line stays where it was
    for value in SECRET_VALUES:
        assert value not in redacted, value
    lines = redacted.splitlines()
    assert lines[2] == 'AWS_ACCESS_KEY_ID = "[REDACTED:aws-access-key-id]"'
    assert lines[3] == 'aws_secret_access_key = "[REDACTED:aws-secret-key]"'
    assert lines[4] == 'GITHUB_TOKEN = "[REDACTED:github-token]"'
    assert lines[9] == 'SIGNING_KEY = """-----BEGIN RSA PRIVATE KEY-----'
    assert lines[10:13] == ["[REDACTED:private-key]"] * 3 and lines[13] == "-----END RSA PRIVATE KEY-----"
    assert "def deployment_region_settings():" in lines  # ordinary code is untouched


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("no secrets: AKIA is a prefix, ghp_short, eyJ alone", "no secrets: AKIA is a prefix, ghp_short, eyJ alone"),
        ('key = "-----BEGIN PRIVATE KEY-----\\nMIIEabc\\n-----END PRIVATE KEY-----\\n"',
         'key = "-----BEGIN PRIVATE KEY-----[REDACTED:private-key]-----END PRIVATE KEY-----\\n"'),
        ("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\nQUFBQUFBQUFB\n\ndef after(): pass\n",
         "-----BEGIN OPENSSH PRIVATE KEY-----\n[REDACTED:private-key]\n[REDACTED:private-key]\n\ndef after(): pass\n"),
        ("AWS_SECRET_ACCESS_KEY: " + AWS_SECRET, "AWS_SECRET_ACCESS_KEY: [REDACTED:aws-secret-key]"),
        ("token=" + GITLAB + " and " + SLACK, "token=[REDACTED:gitlab-token] and [REDACTED:slack-token]"),
    ],
)
def test_redaction_cases(text: str, expected: str) -> None:
    assert redact_secrets(text)[0] == expected


@pytest.fixture
def leaky(project: Path) -> Path:
    (project / "deploy").mkdir(exist_ok=True)
    (project / "deploy" / "settings.py").write_text(CONFIG_PY)
    for rel, text in CREDENTIAL_FILES.items():
        path = project / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return project


def test_no_secret_is_stored_or_found(leaky: Path, settings: Settings, embedder) -> None:
    report = Indexer(leaky, settings, embedder).run()
    assert report.skipped["redacted_secrets"] == 8
    assert report.skipped["secret"] == 3 + len(CREDENTIAL_FILES)
    scanned = {f.path for f in Scanner(leaky).scan().files}
    assert not scanned & set(CREDENTIAL_FILES) - {"gcp/project-1234.json"}

    db = IndexLayout(leaky).current() / "index.db"  # nothing in the database: content, names, words
    dump = "\n".join(sqlite3.connect(db).iterdump())
    for value in [*SECRET_VALUES, *(t.split("hunter2")[0].rsplit(" ", 1)[-1] + "hunter2"
                                    for t in CREDENTIAL_FILES.values() if "hunter2" in t)]:
        assert value not in dump, value
    assert "hunter2" not in dump

    searcher = Searcher(leaky, settings, embedder)
    try:
        for query in [*SECRET_VALUES, "hunter2", "password", "kube token", "private key"]:
            for r in searcher.search(query, limit=20).results:
                assert "hunter2" not in r.content and not any(v in r.content for v in SECRET_VALUES), (query, r.path)
        hit = searcher.search("deployment_region_settings", limit=1).results[0]
        assert hit.path == "deploy/settings.py"
        settings_chunks = [r for r in searcher.search("GITHUB_TOKEN SIGNING_KEY", limit=5).results
                           if r.path == "deploy/settings.py"]
        assert settings_chunks and "[REDACTED:github-token]" in settings_chunks[0].content
    finally:
        searcher.close()


def test_cli_reports_redactions_and_finds_no_secret(leaky: Path) -> None:
    amanmcp = [sys.executable, "-m", "amanmcp"]
    result = subprocess.run([*amanmcp, "index", str(leaky)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "redacted_secrets 8" in result.stdout
    status = json.loads(subprocess.run([*amanmcp, "status", "--path", str(leaky), "--format", "json"],
                                       capture_output=True, text=True, timeout=300).stdout)
    assert status["skipped"]["redacted_secrets"] == 8
    for query in (GITHUB, "hunter2"):
        out = subprocess.run([*amanmcp, "search", query, "--path", str(leaky), "--format", "json", "-n", "20"],
                             capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, out.stderr
        results = json.dumps(json.loads(out.stdout)["results"])  # the query itself is echoed, of course
        assert GITHUB not in results and "hunter2" not in results


def test_a_file_that_becomes_a_secret_leaves_the_index(project: Path, settings: Settings, embedder) -> None:
    key = project / "keys" / "deploy.json"
    key.parent.mkdir()
    key.write_text('{"name": "deploy key holder"}\n')
    Indexer(project, settings, embedder).run()
    searcher = Searcher(project, settings, embedder)
    assert "keys/deploy.json" in [r.path for r in searcher.search("deploy key holder", limit=3).results]
    key.write_text(json.dumps({"type": "service_account", "private_key": "sa-hunter2"}))
    report = Indexer(project, settings, embedder).run()
    assert report.files_removed == 1 and report.skipped["secret"] == 4
    assert "keys/deploy.json" not in [r.path for r in searcher.search("deploy key holder", limit=10).results]
    searcher.close()
