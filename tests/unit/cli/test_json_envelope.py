"""Every command's --json output is one JSON object with `ok`, success or error (no Docker engine here:
commands that need one answer with the error envelope)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from stacklet.cli.app import app

from ..conftest import REPO_ROOT

pytestmark = pytest.mark.usefixtures("compose_cli")

NO_ENGINE = {"DOCKER_HOST": "unix:///nonexistent/docker.sock", "STACKLET_STACK": ""}

COMMANDS = [
    ["plan", "orders", "--stack", "shop"],
    ["plan", "nope", "--stack", "shop"],
    ["why", "catalog", "--changed", "orders", "--stack", "shop"],
    ["graph", "--stack", "shop"],
    ["graph", "--format", "png", "--stack", "shop"],
    ["skill", "--stack", "shop"],
    ["version"],
    ["up", "orders", "--stack", "shop"],
    ["reload", "orders", "--slice", "x"],
    ["status", "x"],
    ["ls"],
    ["logs", "--slice", "x"],
    ["down", "x"],
    ["gc"],
    ["seed", "--slice", "x"],
    ["reset", "--slice", "x"],
    ["check", "x"],
    ["traffic", "x"],
    ["fault", "apply", "slow-db", "--slice", "x"],
    ["fault", "add", "orders-db", "latency", "latency=5", "--slice", "x"],
    ["fault", "clear", "--slice", "x"],
    ["fault", "ls", "--slice", "x"],
    ["doctor"],
    ["warm", "orders", "--stack", "shop"],
    ["warm", "orders", "--count", "0", "--stack", "shop"],
    ["baseline", "up", "--stack", "shop"],
    ["baseline", "down", "--stack", "shop"],
    ["baseline", "status", "--stack", "shop"],
]


@pytest.mark.parametrize("args", COMMANDS, ids=[" ".join(c[:2]) for c in COMMANDS])
def test_json_is_one_object_with_ok(args, monkeypatch):
    monkeypatch.chdir(REPO_ROOT)
    result = CliRunner().invoke(app, [*args, "--json"], env=NO_ENGINE, catch_exceptions=False)
    document = json.loads(result.stdout)
    assert isinstance(document, dict) and isinstance(document["ok"], bool), result.stdout[:300]
    if document["ok"] is False:
        assert document["message"] and "hint" in document and result.exit_code in (2, 3)
    else:
        assert result.exit_code in (0, 2)
