"""planning/changes.py: a `--since` ref can never be read by git as an option, from the CLI or any caller."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from stacklet.errors import PlanError
from stacklet.planning.changes import check_ref, changed_files

from . import test_changes as base
from ..conftest import REPO_ROOT

HOSTILE_REFS = ["--output=OUT", "-oOUT", "--output", "-", "", "HEAD\n--output=OUT", "a b", "x" * 300, "--no-index"]


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A git repository holding the demo stack, one commit deep."""
    root = tmp_path / "repo"
    for name, text in base.FILES.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    base.git(root, "init", "-q", "-b", "main")
    base.git(root, "add", ".")
    base.git(root, "commit", "-q", "-m", "first")
    return root


@pytest.mark.parametrize("ref", HOSTILE_REFS)
def test_option_like_refs_are_refused_before_git_runs(ref, repo, tmp_path):
    out = tmp_path / "OUT"
    with pytest.raises(PlanError) as caught:
        changed_files(ref.replace("OUT", str(out)), repo)
    assert "--since must name a git commit" in caught.value.message
    assert len(caught.value.message) < 250  # a 300-character ref is not printed whole
    assert not out.exists()


def test_refs_that_name_no_commit_are_a_plan_error(repo):
    with pytest.raises(PlanError, match="no such commit"):
        changed_files("does-not-exist", repo)
    with pytest.raises(PlanError, match="no such commit"):
        changed_files("HEAD^{tree}", repo)  # a tree is not a commit


def test_ordinary_refs_pass(repo):
    base.edit(repo, "README.md")
    assert check_ref("main") == "main"
    assert changed_files("main", repo) == [repo / "README.md"]
    assert changed_files("HEAD~0", repo) == [repo / "README.md"]


@pytest.mark.parametrize("argv", [["--since=--output=OUT"], ["--since", "--output=OUT"], ["--since=-oOUT"]])
def test_cli_plan_writes_nothing_and_exits_3(argv, repo, tmp_path, compose_cli):
    out = tmp_path / "written-by-git"
    argv = [a.replace("OUT", str(out)) for a in argv]
    done = subprocess.run([sys.executable, "-m", "stacklet", "plan", *argv, "--stack", "stacks/demo", "--json"],
                          cwd=repo, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(REPO_ROOT / "src")})
    assert done.returncode == 3, done.stderr
    error = json.loads(done.stdout)
    assert error["ok"] is False and error["error"] == "PlanError"
    assert "--since must name a git commit" in error["message"] and "HEAD~1" in error["hint"]
    assert not out.exists()
    assert "Traceback" not in done.stderr
