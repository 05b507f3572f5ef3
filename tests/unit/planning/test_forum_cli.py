"""The CLI in the forum's own folder: no --stack needed, --profile like Compose, hints that work from there."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from stacklet.ops.skill import render_skill
from stacklet.cli.app import app
from stacklet.config.stack import load_stack

from ..conftest import REPO_ROOT

FORUM = REPO_ROOT / "stacks" / "forum"


@pytest.fixture
def run(monkeypatch, compose_cli):
    monkeypatch.chdir(FORUM)
    monkeypatch.delenv("STACKLET_STACK", raising=False)
    monkeypatch.delenv("COMPOSE_PROFILES", raising=False)
    return lambda *args, env=None: CliRunner().invoke(app, list(args), env=env, catch_exceptions=False)


def test_plan_from_the_projects_folder(run):
    result = run("plan", "api", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["stack"] == "forum" and {s["name"] for s in data["local"]} >= {"api", "db", "migrate", "worker"}
    assert data["stack_options"] == ""  # nothing to pass from the project's own folder
    weak = [e for e in data["edges"] if e["weak"]]
    assert weak and all(o["file"] == "forum.env" for e in weak for o in e["origins"])


def test_profile_flag_and_env(run):
    absent = run("plan", "debug", "--json")
    assert absent.exit_code == 3 and "--profile debug" in json.loads(absent.stdout)["hint"]
    assert run("plan", "debug", "--profile", "debug", "--json").exit_code == 0
    assert run("plan", "debug", "--json", env={"COMPOSE_PROFILES": "debug"}).exit_code == 0


def test_why_names_key_variable_and_file(run):
    result = run("why", "db", "--changed", "worker")
    assert result.exit_code == 0
    assert "worker → db: services.worker.env_file (DATABASE_URL in forum.env) [weak: shared env_file]" in result.stdout


def test_skill_commands_work_from_where_it_is_printed(compose_cli):
    stack = load_stack(FORUM)
    here = render_skill(stack, FORUM)
    assert "`stacklet up SERVICE... --json`" in here and "--stack" not in here.split("## Boot")[1].split("\n\n")[1]
    from_root = render_skill(stack, REPO_ROOT)
    assert "`stacklet up SERVICE... --stack forum --json`" in from_root
