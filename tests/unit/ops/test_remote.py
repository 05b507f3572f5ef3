"""The remote baseline in the command layer: --advertise, --baseline-engine and baseline.engine, and an
engine that does not answer (no Docker daemon needed)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from stacklet.cli.app import app
from stacklet.docker.remote import engine_driver, remote_baseline
from stacklet.errors import EngineUnavailable

from ..conftest import REPO_ROOT

NO_ENGINE = "unix:///nonexistent/teambox.sock"


@pytest.fixture
def run(monkeypatch, shop):
    monkeypatch.chdir(REPO_ROOT)
    monkeypatch.delenv("STACKLET_STACK", raising=False)
    runner = CliRunner()
    return lambda *args: runner.invoke(app, list(args), catch_exceptions=False)


def test_an_engine_is_a_url_or_a_context():
    assert engine_driver("tcp://10.250.0.2:2375").host == "tcp://10.250.0.2:2375"
    assert engine_driver("team-box").context == "team-box" and engine_driver("team-box").host is None


def test_a_silent_baseline_engine_is_named():
    with pytest.raises(EngineUnavailable, match=f"the baseline engine {NO_ENGINE} does not answer") as caught:
        remote_baseline(NO_ENGINE, "shop")
    assert "baseline.engine" in caught.value.hint


@pytest.mark.parametrize("command", ["plan", "up"])
def test_plan_and_up_fail_naming_the_baseline_engine(run, command):
    result = run(command, "orders", "--stack", "shop", "--baseline-engine", NO_ENGINE, "--json")
    assert result.exit_code == 2
    error = json.loads(result.stdout)
    assert error["error"] == "EngineUnavailable" and NO_ENGINE in error["message"]


def test_plan_reads_the_engine_of_stack_yaml(run, tmp_path):
    folder = tmp_path / "remote"
    folder.mkdir()
    (folder / "compose.yaml").write_text("services:\n  web: {image: x/web, environment: {API: 'http://api:80'}}\n"
                                         "  api: {image: x/api, expose: ['80']}\n")
    (folder / "stack.yaml").write_text(f"name: remote\nbaseline:\n  engine: {NO_ENGINE}\n")
    result = run("plan", "web", "--stack", str(folder), "--json")
    assert result.exit_code == 2 and NO_ENGINE in json.loads(result.stdout)["message"]


@pytest.mark.parametrize("address", ["team-box.example", "10.250.0", "0x1", "--json"])
def test_advertise_must_be_an_ip_address(run, address):
    result = run("baseline", "up", "--stack", "shop", "--advertise", address, "--json")
    assert result.exit_code == 3
    error = json.loads(result.stdout)
    assert error["key"] == "--advertise" and "IP address" in error["message"]
