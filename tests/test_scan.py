from pathlib import Path

from amanmcp.scan import Scanner


def test_scan_honours_gitignore_excludes_secrets_binaries_and_symlinks(project: Path) -> None:
    result = Scanner(project).scan()
    paths = {f.path for f in result.files}
    assert "src/payments/retry.py" in paths
    assert "docs/guide.md" in paths
    assert "legacy.txt" in paths  # undecodable text is caught when read, not by the scanner
    for left_out in (
        "generated/big_table.py", "debug.log", ".env", "deploy/id_rsa", "certs/server.pem",
        "node_modules/leftpad/index.js", "assets/logo.png", "linked_outside.py", ".gitignore",
    ):
        assert left_out not in paths, left_out
    assert not any(p.startswith("linked_dir/") for p in paths)
    assert result.skipped["secret"] == 3
    assert result.skipped["binary"] == 1


def test_nested_gitignore_and_negation(tmp_path: Path) -> None:
    (tmp_path / "pkg" / "sub").mkdir(parents=True)
    (tmp_path / ".gitignore").write_text("*.tmp\n")
    (tmp_path / "pkg" / ".gitignore").write_text("secret_notes.md\n!keep.tmp\n")
    for rel in ("a.tmp", "pkg/keep.tmp", "pkg/drop.tmp", "pkg/secret_notes.md", "pkg/sub/secret_notes.md", "notes.md"):
        (tmp_path / rel).write_text("x\n")
    paths = {f.path for f in Scanner(tmp_path).scan().files}
    assert paths == {"pkg/keep.tmp", "notes.md"}


def test_translation_catalogues_are_left_out_unless_asked_for(tmp_path: Path) -> None:
    (tmp_path / "locale" / "fr" / "LC_MESSAGES").mkdir(parents=True)
    (tmp_path / "locale" / "fr" / "LC_MESSAGES" / "app.po").write_text('msgid "Save"\nmsgstr "Enregistrer"\n')
    (tmp_path / "locale" / "app.pot").write_text('msgid "Save"\nmsgstr ""\n')
    (tmp_path / "views.py").write_text("def save():\n    return _('Save')\n")
    assert [f.path for f in Scanner(tmp_path).scan().files] == ["views.py"]
    paths = {f.path for f in Scanner(tmp_path, exclude=["!*.po"]).scan().files}
    assert paths == {"views.py", "locale/fr/LC_MESSAGES/app.po"}


def test_size_limit(tmp_path: Path) -> None:
    (tmp_path / "big.py").write_text("x = 1\n" * 1000)
    (tmp_path / "small.py").write_text("x = 1\n")
    result = Scanner(tmp_path, max_file_size=1000).scan()
    assert [f.path for f in result.files] == ["small.py"]
    assert result.skipped["too_large"] == 1


def test_symlink_inside_root_is_kept(tmp_path: Path) -> None:
    (tmp_path / "real.py").write_text("def f():\n    pass\n")
    (tmp_path / "alias.py").symlink_to(tmp_path / "real.py")
    paths = {f.path for f in Scanner(tmp_path).scan().files}
    assert paths == {"real.py", "alias.py"}
