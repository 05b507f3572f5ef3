"""changes.py: changed services from `git diff`, by build context and `paths:` globs."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from stacklet.planning.changes import changed_files, changed_services, services_for_files
from stacklet.errors import PlanError
from stacklet.config.stack import load_stack

from ..conftest import SHOP_DIR, skip_or_fail

COMPOSE = """\
services:
  api:
    build: ./api
    environment:
      DB: postgresql://u:p@db:5432/app
  worker:
    build: {context: ./worker}
  db:
    image: postgres:16
"""
STACK = """\
name: demo
services:
  api:
    paths: ["shared/**", "docs/api.md"]
  worker:
    paths: ["shared/*.py"]
"""
FILES = {
    "stacks/demo/compose.yaml": COMPOSE,
    "stacks/demo/stack.yaml": STACK,
    "stacks/demo/api/app.py": "print('api')\n",
    "stacks/demo/worker/main.py": "print('worker')\n",
    "stacks/demo/shared/util.py": "X = 1\n",
    "stacks/demo/shared/data/seed.sql": "select 1;\n",
    "stacks/demo/docs/api.md": "# api\n",
    "stacks/demo/docs/other.md": "# other\n",
    "README.md": "repo\n",
    ".gitignore": "*.log\n",
}


def git(cwd: Path, *args: str) -> str:
    if shutil.which("git") is None:
        skip_or_fail("git is not installed")
    result = subprocess.run(
        ["git", "-c", "user.name=Test", "-c", "user.email=test@example.com", "-c", "commit.gpgsign=false",
         "-c", "core.hooksPath=/dev/null", *args],
        cwd=cwd, capture_output=True, text=True, check=True)
    return result.stdout


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    for name, text in FILES.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    git(root, "init", "-q", "-b", "main")
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "first")
    return root


@pytest.fixture
def stack(repo, compose_cli):
    return load_stack(repo / "stacks" / "demo")


def edit(repo: Path, name: str, text: str = "changed\n") -> None:
    path = repo / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


class TestChangedFiles:
    def test_modified_and_untracked(self, repo):
        edit(repo, "stacks/demo/api/app.py")
        edit(repo, "stacks/demo/worker/new.py")
        edit(repo, "debug.log")  # ignored
        files = changed_files("HEAD", repo)
        assert sorted(files) == sorted([repo / "stacks/demo/api/app.py", repo / "stacks/demo/worker/new.py"])
        assert all(f.is_absolute() for f in files)

    def test_from_a_subfolder(self, repo):
        edit(repo, "README.md")
        assert changed_files("HEAD", repo / "stacks" / "demo") == [repo / "README.md"]

    def test_committed_since_a_ref(self, repo):
        edit(repo, "stacks/demo/worker/main.py")
        git(repo, "commit", "-q", "-am", "second")
        assert changed_files("HEAD~1", repo) == [repo / "stacks/demo/worker/main.py"]
        assert changed_files("HEAD", repo) == []

    def test_staged_and_deleted(self, repo):
        edit(repo, "stacks/demo/api/added.py")
        git(repo, "add", "stacks/demo/api/added.py")
        (repo / "stacks/demo/docs/api.md").unlink()
        assert sorted(changed_files("HEAD", repo)) == sorted([repo / "stacks/demo/api/added.py",
                                                              repo / "stacks/demo/docs/api.md"])

    def test_file_names_with_spaces_and_accents(self, repo):
        edit(repo, "stacks/demo/api/my file.py")
        edit(repo, "stacks/demo/api/café.py")
        git(repo, "add", "stacks/demo/api/café.py")
        assert sorted(changed_files("HEAD", repo)) == sorted([repo / "stacks/demo/api/café.py",
                                                              repo / "stacks/demo/api/my file.py"])

    def test_bad_ref(self, repo):
        with pytest.raises(PlanError) as info:
            changed_files("no-such-branch", repo)
        err = info.value
        assert "no-such-branch" in err.message
        assert "--since" in err.hint
        assert err.exit_code == 3

    def test_not_a_git_repository(self, tmp_path):
        folder = tmp_path / "plain"
        folder.mkdir()
        with pytest.raises(PlanError) as info:
            changed_files("HEAD", folder)
        assert "not inside a git repository" in info.value.message
        assert info.value.hint


class TestChangedServices:
    def test_build_context(self, repo, stack):
        edit(repo, "stacks/demo/api/app.py")
        assert changed_services(stack, "HEAD") == {"api": ["api/app.py"]}

    def test_build_context_in_long_form(self, repo, stack):
        edit(repo, "stacks/demo/worker/main.py")
        assert changed_services(stack, "HEAD") == {"worker": ["worker/main.py"]}

    def test_paths_globs(self, repo, stack):
        edit(repo, "stacks/demo/shared/util.py")
        assert changed_services(stack, "HEAD") == {"api": ["shared/util.py"], "worker": ["shared/util.py"]}

    def test_globs_match_deeper_files(self, repo, stack):
        edit(repo, "stacks/demo/shared/data/seed.sql")
        edit(repo, "stacks/demo/docs/api.md")
        edit(repo, "stacks/demo/docs/other.md")
        hits = changed_services(stack, "HEAD")
        assert list(hits) == ["api"]
        assert sorted(hits["api"]) == ["docs/api.md", "shared/data/seed.sql"]

    def test_untracked_files_count(self, repo, stack):
        edit(repo, "stacks/demo/worker/jobs/new_job.py")
        assert changed_services(stack, "HEAD") == {"worker": ["worker/jobs/new_job.py"]}

    def test_committed_changes(self, repo, stack):
        edit(repo, "stacks/demo/api/app.py")
        git(repo, "commit", "-q", "-am", "second")
        edit(repo, "stacks/demo/worker/main.py")
        assert changed_services(stack, "HEAD~1") == {"api": ["api/app.py"], "worker": ["worker/main.py"]}
        assert changed_services(stack, "HEAD") == {"worker": ["worker/main.py"]}

    def test_accented_file_name(self, repo, stack):
        edit(repo, "stacks/demo/api/café.py")
        git(repo, "add", ".")
        assert changed_services(stack, "HEAD") == {"api": ["api/café.py"]}

    def test_nothing_touched(self, repo, stack):
        edit(repo, "README.md")
        with pytest.raises(PlanError) as info:
            changed_services(stack, "HEAD")
        assert "no service of demo" in info.value.message
        assert "1 file(s)" in info.value.message
        assert "paths:" in info.value.hint

    def test_bad_ref(self, stack):
        with pytest.raises(PlanError) as info:
            changed_services(stack, "v9.9.9")
        assert "v9.9.9" in info.value.message
        assert info.value.hint


class TestServicesForFiles:
    """Pure mapping on the shop: no git needed."""

    def test_shop_build_contexts(self, shop):
        files = [SHOP_DIR / "services/orders/app.py", SHOP_DIR / "images/postgres/entrypoint.sh",
                 SHOP_DIR / "README.md"]
        assert services_for_files(shop, files) == {
            "orders": ["services/orders/app.py"],
            "orders-db": ["images/postgres/entrypoint.sh"],
            "inventory-db": ["images/postgres/entrypoint.sh"],
            "catalog-db": ["images/postgres/entrypoint.sh"],
        }

    def test_shop_shared_dockerfile(self, shop):
        hits = services_for_files(shop, [SHOP_DIR / "services/Dockerfile"])
        assert set(hits) == {"gateway", "orders", "payments", "inventory", "catalog", "users", "fraud",
                             "notifications"}

    def test_files_outside_the_stack(self, shop, tmp_path):
        assert services_for_files(shop, [tmp_path / "elsewhere.py"]) == {}
