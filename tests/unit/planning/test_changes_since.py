"""planning/changes.py: --since maps Compose service edits, env_files and seed files to services."""

from __future__ import annotations

import pytest

from stacklet.config.stack import load_stack
from stacklet.errors import PlanError
from stacklet.planning.changes import changed_services

from .test_changes import edit, git, repo  # noqa: F401 (the repo fixture)

COMPOSE = """\
services:
  api:
    build: ./api
    env_file: [shared.env]
  worker:
    build: {context: ./worker}
    env_file: [shared.env, worker.env]
  db:
    image: postgres:16
"""


@pytest.fixture
def project(repo, compose_cli):  # noqa: F811
    folder = repo / "stacks" / "demo"
    edit(repo, "stacks/demo/compose.yaml", COMPOSE)
    edit(repo, "stacks/demo/shared.env", "DB=postgres://db:5432/x\n")
    edit(repo, "stacks/demo/worker.env", "QUEUE=jobs\n")
    edit(repo, "seeds/demo/db/001.sql", "select 1;\n")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "env files and seeds")
    return folder


def test_compose_service_edit_maps_to_that_service(repo, project):
    edit(repo, "stacks/demo/compose.yaml", COMPOSE.replace("    image: postgres:16", "    image: postgres:17"))
    assert changed_services(load_stack(project), "HEAD") == {"db": ["compose.yaml"]}


def test_env_files_and_seed_files(repo, project):
    edit(repo, "stacks/demo/shared.env", "DB=postgres://db:5432/y\n")
    edit(repo, "stacks/demo/worker.env", "QUEUE=other\n")
    edit(repo, "seeds/demo/db/002.sql", "select 2;\n")
    hits = changed_services(load_stack(project), "HEAD")
    assert hits == {"api": ["shared.env"], "worker": ["shared.env", "worker.env"],
                    "db": [str(repo / "seeds/demo/db/002.sql")]}


def test_unmapped_files_are_named(repo, project):
    edit(repo, "stacks/demo/notes.txt")
    with pytest.raises(PlanError) as info:
        changed_services(load_stack(project), "HEAD")
    assert "notes.txt" in info.value.message and "env_file" in info.value.hint


def test_files_no_service_owns_are_named_in_the_plan_when_others_map(repo, project, monkeypatch):
    from stacklet.ops.commands import make_slice_plan

    edit(repo, "stacks/demo/notes.txt")
    edit(repo, "stacks/demo/worker.env", "QUEUE=other\n")
    monkeypatch.chdir(project)
    plan = make_slice_plan(load_stack(project), [], "HEAD", None)
    assert plan.changed == ["worker"]
    assert any("notes.txt" in note and "owned by no service" in note for note in plan.notes), plan.notes
