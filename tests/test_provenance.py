"""The commit a result names: dirty only when the code it depends on is edited."""

import subprocess

import pytest

from iqabench.provenance import git_commit


def _git(repo, *args):
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)


@pytest.fixture
def checkout(tmp_path):
    repo = tmp_path / "repo"
    (repo / "iqabench").mkdir(parents=True)
    (repo / "iqabench" / "model.py").write_text("x = 1\n")
    (repo / "pyproject.toml").write_text("[project]\n")
    _git(repo, "init", "-q")
    _git(repo, "add", ".")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "code")
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True,
                          text=True, check=True).stdout.strip()
    return repo, head


def test_outputs_written_inside_the_checkout_leave_it_clean(checkout):
    repo, head = checkout
    (repo / "results" / "study").mkdir(parents=True)
    (repo / "results" / "study" / "report.md").write_text("a report\n")
    # asked from a subfolder, as the installed package asks from its own folder
    assert git_commit(cwd=repo / "iqabench") == head


@pytest.mark.parametrize("edit", ["modify", "add", "delete"])
def test_edited_code_marks_the_commit(checkout, edit):
    repo, head = checkout
    if edit == "modify":
        (repo / "iqabench" / "model.py").write_text("x = 2\n")
    elif edit == "add":
        (repo / "iqabench" / "new.py").write_text("y = 1\n")
    else:
        (repo / "pyproject.toml").unlink()
    assert git_commit(cwd=repo / "iqabench") == f"{head} (with uncommitted changes)"


def test_explicit_paths_and_outside_a_checkout(checkout, tmp_path, monkeypatch):
    monkeypatch.delenv("IQABENCH_COMMIT", raising=False)
    repo, head = checkout
    (repo / "notes.txt").write_text("scratch\n")
    assert git_commit(cwd=repo) == head
    assert git_commit(["notes.txt"], cwd=repo) == f"{head} (with uncommitted changes)"
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    assert git_commit(cwd=outside) == "unknown"


def test_a_copied_tree_reports_the_declared_commit(checkout, tmp_path, monkeypatch):
    """A tree copied to another machine records the commit it was declared to be, marked
    as declared, with or without a (possibly stale) .git beside it."""
    repo, head = checkout
    outside = tmp_path / "copied"
    outside.mkdir()
    assert git_commit(cwd=repo) == head
    monkeypatch.setenv("IQABENCH_COMMIT", "abc123")
    assert git_commit(cwd=outside) == "abc123 (declared by IQABENCH_COMMIT)"
    assert git_commit(cwd=repo) == "abc123 (declared by IQABENCH_COMMIT)"
